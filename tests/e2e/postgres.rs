//! The controller on PostgreSQL (`[store] url`), against a real server the tests initialise:
//! the same crash recovery and store-failure paths as on SQLite, nothing written to an SQLite
//! file beside it, and two controllers on one database: one leads, the other stands by and
//! takes over when the leader is killed.

use std::time::{Duration, Instant};

use serde_json::json;
use swarmpilot::store::testing::TestServer;

use crate::gate::{agents_up, rows, scale_web, settled, wait_state};
use crate::shutdown::{killed_on, policy_with};
use crate::store_faults::{halted, recovers, scaling_server_with};
use crate::util::Server;

/// The lease of the two-controller test, seconds: short, with room for a slow machine (a
/// leader steps down when four fifths of it pass without a renewal).
const LEASE_SECS: u64 = 6;

/// `[store]` naming a new database on the test server.
fn store_on_postgres() -> String {
    let url = TestServer::shared().fresh_database();
    format!("[store]\nurl = \"{url}\"\n")
}

#[tokio::test]
async fn on_postgres_a_controller_killed_while_applying_reconciles_its_action_once() {
    let server = killed_on(&policy_with(&store_on_postgres()), "applying", |server| {
        assert!(
            !server.data_dir.join("swarmpilot.db").exists(),
            "no SQLite file beside PostgreSQL"
        );
    })
    .await;
    let (_, system) = server.get("/api/v1/system").await;
    assert_eq!(system["store"], "postgres", "{system}");
}

#[tokio::test]
async fn on_postgres_a_store_failing_while_applying_stops_actuation_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fault, id) = scaling_server_with(dir.path(), 4, &store_on_postgres()).await;
    wait_state(&server, id, "applying", 10).await;
    std::fs::write(&fault, "").unwrap();
    halted(&server, "applying", id).await;
    recovers(&server, &fault, id).await;
}

/// Asserts `server` is a standby pointing at `leader`.
async fn is_standby_of(server: &Server, leader: &Server) {
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "standby", "{ready}");
    assert_eq!(ready["leader"], leader.url.as_str(), "{ready}");
    let (status, system) = server.get("/api/v1/system").await;
    assert_eq!(status, 200, "{system}");
    assert_eq!(system["role"], "standby", "{system}");
}

#[tokio::test]
async fn a_standby_takes_over_a_killed_leader_and_reconciles_its_action_once() {
    let url = TestServer::shared().fresh_database();
    let policy = policy_with(&format!(
        "[store]\nurl = \"{url}\"\nlease_secs = {LEASE_SECS}\n"
    ));
    let mut first = Server::start(&policy);
    agents_up(&first, 1).await;
    let second = Server::start(&policy);
    is_standby_of(&second, &first).await;
    // The standby reads the store, and refuses what only the leader can do.
    let (status, system) = first.get("/api/v1/system").await;
    assert_eq!((status, system["role"].as_str()), (200, Some("leader")));
    let ask = json!({"pool": "web", "change": {"type": "scale", "to": 3}});
    let (status, refused) = second.post_json("/api/v1/actions", &ask).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "standby", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&first.url), "{refused}");

    // The leader is killed while it applies an action.
    let id = scale_web(&first, 2).await;
    wait_state(&first, id, "applying", 30).await;
    let acknowledged = rows(&first.log().await, id);
    assert_eq!(
        rows(&second.log().await, id),
        acknowledged,
        "the standby reads the log"
    );
    let killed = Instant::now();
    let status = first.stop_with(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the leader was still running when killed: {status:?}"
    );
    crate::kube_lease::leads_within(&second, 30).await;
    let took = killed.elapsed();
    // The lease runs out, the standby's next try (a second later at most) takes it, and it
    // starts.
    let bound = Duration::from_secs(LEASE_SECS + 1 + 5);
    assert!(took < bound, "took over after {took:?}");
    eprintln!("takeover after the leader's SIGKILL: {took:?}");

    // The action in flight is reconciled once, and the log keeps every transition the dead
    // leader had acknowledged.
    settled(&second, id, 40).await;
    let log = second.log().await;
    let states = rows(&log, id);
    assert!(
        states.starts_with(&acknowledged),
        "{acknowledged:?} then {states:?}"
    );
    let applying = states.iter().filter(|s| *s == "applying").count();
    assert_eq!(applying, 1, "applied once: {states:?}");
    for action in log.iter().filter_map(|row| row["action_id"].as_i64()) {
        let applied = rows(&log, action)
            .iter()
            .filter(|s| *s == "applied")
            .count();
        assert!(applied <= 1, "action {action} applied twice");
    }

    // The old leader, started again, stays a standby of the new one, which still leads.
    first.start_after_stop();
    is_standby_of(&first, &second).await;
    let pid = second.pid().expect("the new leader runs");
    assert!(crate::util::alive(pid), "the new leader exited");
    assert_eq!(second.get("/readyz").await.0, 200);
    // A standby's answers need a token, and name the leader in a header too.
    let anonymous = crate::util::client()
        .get(format!("{}/api/v1/system", first.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let leader = anonymous.headers().get("x-swarmpilot-leader").cloned();
    assert_eq!(
        leader.and_then(|h| h.to_str().ok().map(String::from)),
        Some(second.url.clone())
    );
}
