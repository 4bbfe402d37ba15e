//! The registry's snapshots: agents shared while none changed, never a stale one.

use super::*;
use crate::notify::receivers::wait_until;

/// Takes what the registry and its agent actors send out.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

macro_rules! swallow {
    ($($message:ty),*) => {$(
        impl Handler<$message> for Sink {
            type Result = ();
            fn handle(&mut self, _: $message, _: &mut Context<Self>) {}
        }
    )*};
}

swallow!(WatchProcess, TrackAgent, Heartbeat, ThresholdCrossed);

fn registry() -> Addr<FleetSupervisor> {
    let sink = Sink.start();
    let links = FleetLinks {
        watch: sink.clone().recipient(),
        forget: Vec::new(),
        track: sink.clone().recipient(),
        heartbeat: sink.clone().recipient(),
        crossings: sink.recipient(),
        anomalies: Vec::new(),
        models: None,
        rollups: None,
        events: None,
    };
    let policy = PolicyHandle::new(crate::policy::load_str("t.toml", "").unwrap());
    FleetSupervisor::new(policy, links).start()
}

fn cpu(ts_ms: i64, value: f64) -> Sample {
    Sample {
        agent: "w-1".into(),
        metric: crate::domain::metric::CPU_PERCENT.into(),
        ts_ms,
        value,
    }
}

fn register(fleet: &Addr<FleetSupervisor>, pid: Option<u32>) {
    register_id(fleet, "w-1", pid);
}

fn register_id(fleet: &Addr<FleetSupervisor>, id: &str, pid: Option<u32>) {
    fleet.do_send(RegisterAgent {
        handle: AgentHandle {
            id: id.into(),
            pool: "w".into(),
            pid,
            endpoint: None,
            started_ms: 0,
        },
        startup_grace_secs: 10,
    });
}

/// The first snapshot whose first agent reads `value` as its CPU.
async fn snapshot_reading(fleet: &Addr<FleetSupervisor>, value: f64) -> FleetSnapshot {
    wait_until("the reading in a snapshot", async || {
        let snapshot = fleet.send(GetFleet).await.unwrap();
        let read = snapshot.agents[0]
            .metrics
            .get(crate::domain::metric::CPU_PERCENT);
        (read == Some(&value)).then_some(snapshot)
    })
    .await
}

#[actix::test]
async fn snapshots_share_the_agents_until_one_changes() {
    let fleet = registry();
    // Each snapshot below is held while the next is taken, as the read routes hold theirs.
    let empty = fleet.send(GetFleet).await.unwrap();
    assert!(empty.agents.is_empty());
    register(&fleet, None);
    let first = fleet.send(GetFleet).await.unwrap();
    let again = fleet.send(GetFleet).await.unwrap();
    assert_eq!(first.agents.len(), 1, "a registration makes a new list");
    assert!(Arc::ptr_eq(&first.agents, &again.agents), "nothing changed");

    // The first samples make it active, even those the agent never publishes (no time).
    fleet.do_send(IngestSamples(vec![cpu(0, 1.0)]));
    let active = fleet.send(GetFleet).await.unwrap();
    assert_eq!(active.agents[0].status, AgentStatus::Active);

    // A reading the agent actor writes is in the next snapshot taken after it.
    fleet.do_send(IngestSamples(vec![cpu(1_000, 42.0)]));
    let read = snapshot_reading(&fleet, 42.0).await;
    assert!(!Arc::ptr_eq(&active.agents, &read.agents));
    assert_eq!(read.samples_routed, 2);

    // A status the health actor sets, a new process and a departure each make a new one.
    fleet.do_send(AgentHealthChanged {
        agent: "w-1".into(),
        pool: "w".into(),
        status: AgentStatus::Offline,
        last_seen_ms: 1_000,
    });
    let offline = fleet.send(GetFleet).await.unwrap();
    assert_eq!(offline.agents[0].status, AgentStatus::Offline);
    register(&fleet, Some(7));
    let restarted = fleet.send(GetFleet).await.unwrap();
    assert_eq!(restarted.agents[0].status, AgentStatus::Starting);
    assert_eq!(restarted.agents[0].pid, Some(7));
    fleet.do_send(DeregisterAgent {
        agent: "w-1".into(),
    });
    assert!(fleet.send(GetFleet).await.unwrap().agents.is_empty());
}

#[actix::test]
async fn snapshots_list_the_agents_in_natural_order_as_they_come_and_go() {
    let fleet = registry();
    for id in ["w-10", "w-2", "a", "w-1", "w-02", "w-3"] {
        register_id(&fleet, id, None);
    }
    // Registered again: listed once.
    register_id(&fleet, "w-2", Some(9));
    fleet.do_send(DeregisterAgent {
        agent: "w-3".into(),
    });
    fleet.do_send(DeregisterAgent {
        agent: "nobody".into(),
    });
    let ids = |snapshot: &FleetSnapshot| -> Vec<String> {
        snapshot.agents.iter().map(|a| a.id.clone()).collect()
    };
    let snapshot = fleet.send(GetFleet).await.unwrap();
    assert_eq!(ids(&snapshot), ["a", "w-1", "w-02", "w-2", "w-10"]);
    register_id(&fleet, "w-3", None);
    fleet.do_send(DeregisterAgent { agent: "a".into() });
    let snapshot = fleet.send(GetFleet).await.unwrap();
    assert_eq!(ids(&snapshot), ["w-1", "w-02", "w-2", "w-3", "w-10"]);
}

#[actix::test]
async fn an_unchanged_agent_keeps_its_view_while_another_changes() {
    let fleet = registry();
    register_id(&fleet, "w-1", None);
    register_id(&fleet, "w-2", None);
    fleet.do_send(IngestSamples(vec![cpu(1_000, 1.0)]));
    let before = snapshot_reading(&fleet, 1.0).await;
    let (w1, w2) = (before.agents[0].clone(), before.agents[1].clone());
    // Nobody holds the list in between, as with the pulls and scrapes that ask each second.
    drop(before);

    fleet.do_send(IngestSamples(vec![cpu(2_000, 2.0)]));
    let after = snapshot_reading(&fleet, 2.0).await;
    assert!(Arc::ptr_eq(&w2, &after.agents[1]), "w-2 did not change");
    assert!(!Arc::ptr_eq(&w1, &after.agents[0]), "w-1 changed");
    // The view taken before is as it was.
    assert_eq!(
        w1.metrics.get(crate::domain::metric::CPU_PERCENT),
        Some(&1.0)
    );
    assert_eq!(w1.last_sample_ms, 1_000);
    assert_eq!(after.agents[0].last_sample_ms, 2_000);

    // A status change alone makes the agent's view again.
    fleet.do_send(AgentHealthChanged {
        agent: "w-2".into(),
        pool: "w".into(),
        status: AgentStatus::Offline,
        last_seen_ms: 0,
    });
    let offline = fleet.send(GetFleet).await.unwrap();
    assert_eq!(offline.agents[1].status, AgentStatus::Offline);
    assert!(Arc::ptr_eq(&after.agents[0], &offline.agents[0]));
}
