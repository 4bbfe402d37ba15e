//! Which agents are pulled, and that forgotten ones stop.

use super::*;
use crate::actors::fleet::AgentView;
use crate::actors::messages::{AdmitSamples, IngestSamples, PullObserved, PullOutcome};

#[test]
fn endpoints_become_metrics_sockets() {
    assert_eq!(
        metrics_url("http://127.0.0.1:40123").as_deref(),
        Ok("ws://127.0.0.1:40123/metrics")
    );
    assert_eq!(
        metrics_url("http://10.0.0.7:80/").as_deref(),
        Ok("ws://10.0.0.7:80/metrics")
    );
    assert!(metrics_url("https://agent.internal").is_err());
    assert!(metrics_url("http://").is_err());
}

#[test]
fn pulled_pools_and_static_targets_are_the_targets() {
    let text = r#"
[pools.w]
pull = "websocket"
[pools.q]
[pools.external]
min_agents = 0
driver = { type = "none" }
[[ingest.websocket]]
agent = "ext-1"
pool = "external"
url = "ws://127.0.0.1:9/metrics"
"#;
    let policy = crate::policy::load_str("t.toml", text).unwrap().policy;
    let mut pulled = AgentView::blank("w-1", "w");
    pulled.endpoint = Some("http://127.0.0.1:4000".into());
    pulled.pid = Some(4242);
    let mut other = AgentView::blank("q-1", "q");
    other.endpoint = Some("http://127.0.0.1:4001".into());
    let no_endpoint = AgentView::blank("w-2", "w");
    let fleet = FleetSnapshot::of(vec![pulled, other, no_endpoint]);
    let got = targets(&policy, &fleet);
    let mut agents: Vec<&str> = got.keys().map(String::as_str).collect();
    agents.sort();
    assert_eq!(agents, ["ext-1", "w-1"]);
    assert_eq!(got["w-1"].url, "ws://127.0.0.1:4000/metrics");
    assert_eq!(got["w-1"].kind, TargetKind::Fleet);
    assert!(got["w-1"].process_sampled);
    assert!(!got["ext-1"].process_sampled);
    assert_eq!(
        got["ext-1"].kind,
        TargetKind::Static {
            pool: "external".into()
        }
    );
}

/// A fleet whose snapshot the test sets, and a sink for everything a puller sends.
#[derive(Default)]
struct Fake {
    fleet: std::sync::Arc<std::sync::Mutex<FleetSnapshot>>,
    outcomes: std::sync::Arc<std::sync::Mutex<Vec<PullObserved>>>,
}

impl Actor for Fake {
    type Context = Context<Self>;
}

impl Handler<GetFleet> for Fake {
    type Result = actix::MessageResult<GetFleet>;
    fn handle(&mut self, _: GetFleet, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.fleet.lock().unwrap().clone())
    }
}

impl Handler<IngestSamples> for Fake {
    type Result = ();
    fn handle(&mut self, _: IngestSamples, _: &mut Context<Self>) {}
}

impl Handler<AdmitSamples> for Fake {
    type Result = actix::MessageResult<AdmitSamples>;
    fn handle(&mut self, _: AdmitSamples, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(Vec::new())
    }
}

impl Handler<PullObserved> for Fake {
    type Result = ();
    fn handle(&mut self, msg: PullObserved, _: &mut Context<Self>) {
        self.outcomes.lock().unwrap().push(msg);
    }
}

/// An agent of pool `w` serving on a loopback port nothing listens on.
fn unreachable_agent(id: &str) -> AgentView {
    let mut agent = AgentView::blank(id, "w");
    agent.endpoint = Some("http://127.0.0.1:1".into());
    agent
}

/// Asks `pull` until it pulls exactly `expected`, or panics after five seconds.
async fn wait_pulled(pull: &actix::Addr<WsPull>, expected: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let pulled = pull.send(Pulled).await.unwrap();
        if pulled == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pulled {pulled:?}, expected {expected:?}"
        );
        actix::clock::sleep(Duration::from_millis(50)).await;
    }
}

#[actix::test]
async fn forgotten_agents_stop_being_pulled_and_new_ones_start() {
    let text = "[global]\nsampling_interval_secs = 1\n[pools.w]\npull = \"websocket\"\n";
    let policy = PolicyHandle::new(crate::policy::load_str("t.toml", text).unwrap());
    let fake = Fake::default();
    let (fleet, outcomes) = (fake.fleet.clone(), fake.outcomes.clone());
    fleet.lock().unwrap().agents = FleetSnapshot::of(vec![unreachable_agent("w-1")]).agents;
    let fake = fake.start();
    let links = PullLinks {
        ingest: fake.clone().recipient(),
        admit: fake.clone().recipient(),
        health: fake.clone().recipient(),
        failures: Default::default(),
    };
    let pull = WsPull::new(policy, fake.recipient(), links).start();
    wait_pulled(&pull, &["w-1"]).await;

    // The task runs: the closed port is reported unreachable.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !outcomes
        .lock()
        .unwrap()
        .iter()
        .any(|o| o.agent == "w-1" && o.outcome == PullOutcome::Unreachable)
    {
        assert!(std::time::Instant::now() < deadline, "no outcome reported");
        actix::clock::sleep(Duration::from_millis(50)).await;
    }

    fleet.lock().unwrap().agents = FleetSnapshot::of(vec![unreachable_agent("w-2")]).agents;
    pull.send(ForgetAgent {
        agent: "w-1".into(),
    })
    .await
    .unwrap();
    assert!(
        !pull
            .send(Pulled)
            .await
            .unwrap()
            .contains(&"w-1".to_string()),
        "stopped at once, not at the next reconcile"
    );
    wait_pulled(&pull, &["w-2"]).await;
}
