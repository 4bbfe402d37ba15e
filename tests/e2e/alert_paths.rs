//! Alerts from samples pushed through the API, to real receivers of every channel: a local
//! HTTP server for the webhook and Slack formats, aiosmtpd for email, Debian's
//! prometheus-alertmanager; then silences, inhibition, a receiver that fails before it
//! succeeds, and one that never answers while samples keep coming in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::receivers::{Alertmanager, SmtpServer};
use crate::util::{Receiver, Server, wait_for};
use swarmpilot::clock::now_ms;

/// Pushes `queue_size` for `agents` every 250 ms, at the value the test sets, while it lives.
struct Pusher {
    value: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Pusher {
    fn start(server: &Server, agents: &[&str], value: f64) -> Pusher {
        let value = Arc::new(AtomicU64::new(value.to_bits()));
        let (url, token) = (
            format!("{}/api/v1/samples", server.url),
            server.token.clone(),
        );
        let agents: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
        let shared = value.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let v = f64::from_bits(shared.load(Ordering::SeqCst));
                let batch: Vec<Value> = agents
                    .iter()
                    .map(|a| json!({"agent": a, "metric": "queue_size", "value": v, "labels": {"pool": "edge"}}))
                    .collect();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&batch)
                    .send()
                    .await;
                assert!(response.is_ok_and(|r| r.status().is_success()));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Pusher { value, task }
    }

    fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn url_file(dir: &tempfile::TempDir, name: &str, url: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, url).unwrap();
    path.display().to_string()
}

const EDGE: &str = "[global]\nsampling_interval_secs = 1\nheartbeat_timeout_secs = 30\n\
    [pools.edge]\nmin_agents = 0\ndriver = { type = \"none\" }\n\
    [alert_defaults]\nenabled = false\n";

#[tokio::test]
async fn a_sustained_breach_is_one_grouped_message_per_channel_a_repeat_then_one_resolved() {
    let (hook, slack) = (Receiver::start(), Receiver::start());
    let mut smtp = SmtpServer::start().await;
    let mut alertmanager = Alertmanager::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let policy = format!(
        "{EDGE}[[alerts]]\nname = \"queue_deep\"\nmetric = \"queue_size\"\nabove = 100\n\
         for_secs = 2\nlevel = \"warning\"\n\
         [channels.hook]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [channels.chat]\ntype = \"slack\"\nurl_file = \"{}\"\n\
         [channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         from = \"swarmpilot@example.org\"\nto = [\"oncall@example.org\"]\n\
         [channels.am]\ntype = \"alertmanager\"\nurl = \"{}\"\n\
         [[routes]]\nmatchers = {{ rule = \"queue_deep\" }}\nchannels = [\"hook\", \"chat\", \"mail\", \"am\"]\n\
         group_wait_secs = 1\ngroup_interval_secs = 1\nrepeat_interval_secs = 8\n",
        url_file(&secrets, "hook", &hook.url),
        url_file(&secrets, "slack", &slack.url),
        smtp.port,
        alertmanager.url
    );
    let server = Server::start(&policy);
    let agents = ["e-1", "e-2", "e-3"];
    let pusher = Pusher::start(&server, &agents, 10.0);

    // A breach shorter than `for` (2 s) sends nothing: every agent's alert is pending, then
    // goes away when the value falls back.
    let breached = Instant::now();
    pusher.set(150.0);
    wait_for("three pending alerts", Duration::from_secs(10), || async {
        let (_, alerts) = server.get("/api/v1/alerts?state=pending&pool=edge").await;
        (alerts.as_array()?.len() == 3).then_some(())
    })
    .await;
    let pending_after = breached.elapsed();
    pusher.set(10.0);
    // The breach lasts at most this plus one push interval (250 ms): shorter than `for`.
    assert!(
        pending_after < Duration::from_millis(1500),
        "pending only after {pending_after:?}, too close to `for` (2 s) to test it"
    );
    // Pending alerts are removed when the value falls back; fired ones would stay listed (as
    // firing or resolved), so an empty list means none fired.
    wait_for(
        "the pending alerts gone",
        Duration::from_secs(10),
        || async {
            let (_, alerts) = server.get("/api/v1/alerts?pool=edge").await;
            alerts.as_array()?.is_empty().then_some(())
        },
    )
    .await;
    assert!(
        hook.bodies().is_empty() && slack.bodies().is_empty(),
        "{:?}",
        hook.bodies()
    );
    assert!(smtp.messages().is_empty());

    // A sustained one: one grouped message per channel.
    pusher.set(150.0);
    let first = wait_for(
        "the grouped webhook message",
        Duration::from_secs(20),
        || async { hook.bodies().into_iter().next() },
    )
    .await;
    let fired_at = Instant::now();
    assert_eq!(first["title"], "[FIRING:3] edge queue_deep", "{first}");
    assert_eq!(first["details"]["alerts"].as_array().unwrap().len(), 3);
    let chat = wait_for("the Slack message", Duration::from_secs(10), || async {
        slack.bodies().into_iter().next()
    })
    .await;
    assert!(
        chat["text"]
            .as_str()
            .unwrap()
            .contains("[FIRING:3] edge queue_deep"),
        "{chat}"
    );
    let mail = smtp.wait_for_messages(1).await;
    assert_eq!(mail[0]["subject"], "[FIRING:3] edge queue_deep");
    let held = loop {
        let alerts = alertmanager.alerts().await;
        if !alerts.is_empty() {
            break alerts;
        }
        assert!(
            fired_at.elapsed() < Duration::from_secs(10),
            "Alertmanager holds {alerts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // One Alertmanager alert per group, its description naming every agent.
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["labels"]["alertname"], "queue_deep");
    assert_eq!(held[0]["labels"]["pool"], "edge");
    let description = held[0]["annotations"]["description"].as_str().unwrap();
    assert!(
        ["e-1", "e-2", "e-3"]
            .iter()
            .all(|a| description.contains(a)),
        "{description}"
    );

    // Nothing more until repeat_interval (8 s), then one repeat.
    let repeat = wait_for("the repeat", Duration::from_secs(20), || async {
        let bodies = hook.bodies();
        (bodies.len() >= 2).then(|| bodies[1].clone())
    })
    .await;
    assert!(
        fired_at.elapsed() >= Duration::from_secs(7),
        "repeated after {:?}",
        fired_at.elapsed()
    );
    assert_eq!(repeat["title"], first["title"]);
    assert_eq!(slack.bodies().len(), 2);

    // The value falls back: one resolved message per channel, then silence.
    // If the three resolutions straddle a tick of the group's timer, a [FIRING:n] update
    // naming the resolved ones comes first, as Alertmanager's would; then exactly one
    // [RESOLVED].
    pusher.set(10.0);
    let bodies = wait_for("the resolved message", Duration::from_secs(20), || async {
        let bodies = hook.bodies();
        bodies[2..]
            .iter()
            .any(|b| b["title"] == "[RESOLVED] edge queue_deep")
            .then_some(bodies)
    })
    .await;
    let (resolved, updates) = bodies[2..].split_last().unwrap();
    assert_eq!(
        resolved["title"], "[RESOLVED] edge queue_deep",
        "{bodies:?}"
    );
    assert!(
        updates.len() <= 1
            && updates
                .iter()
                .all(|u| u["title"].as_str().unwrap().starts_with("[FIRING:")),
        "{bodies:?}"
    );
    let sent = bodies.len();
    let mail = smtp.wait_for_messages(sent).await;
    assert_eq!(mail[sent - 1]["subject"], "[RESOLVED] edge queue_deep");
    let resolving = Instant::now();
    while !alertmanager.alerts().await.is_empty() {
        assert!(
            resolving.elapsed() < Duration::from_secs(10),
            "Alertmanager still holds them"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.alerts_looked_at(now_ms() + 3_000).await;
    assert_eq!(hook.bodies().len(), sent, "{:?}", hook.bodies());
    assert_eq!(slack.bodies().len(), sent);
    let (_, alerts) = server.get("/api/v1/alerts?state=resolved&pool=edge").await;
    assert_eq!(alerts.as_array().unwrap().len(), 3, "{alerts}");
}

#[tokio::test]
async fn a_critical_alert_inhibits_the_pools_warnings_and_a_silence_mutes_its_agent() {
    let hook = Receiver::start();
    let secrets = tempfile::tempdir().unwrap();
    let policy = format!(
        "{EDGE}[[alerts]]\nname = \"queue_high\"\nmetric = \"queue_size\"\nabove = 100\nlevel = \"warning\"\n\
         [[alerts]]\nname = \"queue_full\"\nmetric = \"queue_size\"\nabove = 200\nlevel = \"critical\"\n\
         [channels.hook]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nchannels = [\"hook\"]\ngroup_by = [\"pool\", \"rule\"]\n\
         group_wait_secs = 1\ngroup_interval_secs = 1\n",
        url_file(&secrets, "hook", &hook.url),
    );
    let server = Server::start(&policy);
    let silence = json!({"matchers": [{"name": "agent", "value": "e-9", "is_regex": false}],
                         "ends_at": "2999-01-01T00:00:00Z", "comment": "being rebuilt"});
    let (status, created) = server.post_json("/api/v1/silences", &silence).await;
    assert_eq!(status, 201, "{created}");
    let _pusher = Pusher::start(&server, &["e-1", "e-9"], 250.0);
    let critical = wait_for("the critical message", Duration::from_secs(20), || async {
        hook.bodies()
            .into_iter()
            .find(|b| b["title"].as_str().unwrap_or("").contains("queue_full"))
    })
    .await;
    assert_eq!(
        critical["title"], "[FIRING:1] edge queue_full",
        "{critical}"
    );
    assert_eq!(critical["details"]["alerts"][0]["labels"]["agent"], "e-1");
    server.alerts_looked_at(now_ms() + 4_000).await;
    let titles: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["title"].to_string())
        .collect();
    assert_eq!(
        titles.len(),
        1,
        "the warnings stay inhibited, e-9 silenced: {titles:?}"
    );
    // Both alerts of both agents still fire; the API says what mutes e-9's.
    let (_, alerts) = server.get("/api/v1/alerts?state=firing&pool=edge").await;
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    let muted = alerts.iter().filter(|a| a["agent"] == "e-9");
    assert!(
        muted.clone().count() == 2
            && muted
                .into_iter()
                .all(|a| a["silenced_by"] == json!([created["id"]]))
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_the_message_and_a_dead_one_does_not_slow_ingestion() {
    let flaky = Receiver::failing_first(3);
    // A receiver that accepts connections and never answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    let secrets = tempfile::tempdir().unwrap();
    let policy = format!(
        "{EDGE}[[alerts]]\nname = \"queue_deep\"\nmetric = \"queue_size\"\nabove = 100\n\
         [channels.flaky]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [channels.dead]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nchannels = [\"flaky\", \"dead\"]\ngroup_wait_secs = 0\n",
        url_file(&secrets, "flaky", &flaky.url),
        url_file(&secrets, "dead", &dead_url),
    );
    let server = Server::start(&policy);
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for i in 0..40 {
        let value = if i >= 5 { 150.0 } else { 10.0 };
        let batch = json!([{"agent": "e-1", "metric": "queue_size", "value": value, "labels": {"pool": "edge"}}]);
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/v1/samples", server.url))
            .bearer_auth(&server.token)
            .json(&batch)
            .send()
            .await
            .unwrap();
        slowest = slowest.max(sent.elapsed());
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = wait_for(
        "the message after three failures",
        Duration::from_secs(20),
        || async { flaky.bodies().into_iter().next() },
    )
    .await;
    assert_eq!(got["title"], "[FIRING:1] edge queue_deep", "{got}");
    assert_eq!(flaky.attempts(), 4, "three failures, then success");
    assert!(
        slowest < Duration::from_millis(500),
        "a push took {slowest:?} while a receiver hung"
    );
    // The dead receiver's attempts time out and are counted, in their own tasks.
    wait_for(
        "the dead receiver's failures counted",
        Duration::from_secs(30),
        || async {
            let (_, counts) = server.get("/api/v1/notifications").await;
            (counts["dead"]["failed_attempts"].as_u64() >= Some(1)).then_some(())
        },
    )
    .await;
    drop(dead);
}

#[tokio::test]
async fn a_critical_cpu_alert_calls_the_optimizer_back_for_a_scale_out() {
    // A long sampling interval keeps the planner's own tick out of the way: the scale-out
    // must come from the alert.
    let policy = "[global]\nsampling_interval_secs = 10\n\
        [pools.worker]\nmin_agents = 1\nmax_agents = 3\ntarget_cpu_percent = 50\n\
        [alert_defaults]\nfor_secs = 0\n";
    let server = Server::start(policy);
    wait_for("one worker", Duration::from_secs(20), || async {
        let agents = server.agents().await;
        (agents.len() == 1 && agents[0]["status"] != "starting").then_some(())
    })
    .await;
    let breach = json!([{"agent": "worker-1", "metric": "cpu_percent", "value": 97.0}]);
    let (status, reply) = server.post_json("/api/v1/samples", &breach).await;
    assert_eq!(status, 200, "{reply}");
    let action = wait_for("the alert's scale-out", Duration::from_secs(8), || async {
        let (_, actions) = server.get("/api/v1/actions").await;
        actions
            .as_array()?
            .iter()
            .find(|a| {
                // Whichever of the two rules the alert actor told first (critical or
                // emergency) calls the optimizer back.
                let reason = a["reason"].as_str().unwrap_or("");
                reason.contains("critical alert") || reason.contains("emergency alert")
            })
            .cloned()
    })
    .await;
    assert_eq!(action["change"]["from"], 1, "{action}");
    assert!(action["change"]["to"].as_u64().unwrap() >= 2, "{action}");
    // 97% breaches both the critical (85) and the emergency (95) default rules.
    let rule = action["evidence"]["alert"]["rule"].as_str().unwrap();
    assert!(
        ["cpu_percent_critical", "cpu_percent_emergency"].contains(&rule),
        "{action}"
    );
}
