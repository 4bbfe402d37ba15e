use std::time::Duration;

use serde_json::json;

use crate::gate::{agents_up, rows, scale_web, settled, state_of, wait_state};
use crate::store_faults::slow_web;
use crate::util::{Server, processes_of, wait_for};

/// The slow workers of `store_faults`, up to four, pushed agents in `external`, and a
/// shutdown grace of two seconds.
fn policy() -> String {
    policy_with("")
}

/// [`policy`], with `extra` in it.
pub(crate) fn policy_with(extra: &str) -> String {
    slow_web(
        1,
        4,
        "shutdown_grace_secs = 2\n",
        &format!("[pools.external]\ndriver = {{ type = \"none\" }}\nmax_agents = 5000\n{extra}"),
    )
}

/// Puts a scale-out of the pool from one agent to two in `state`; returns its id.
async fn action_in(server: &Server, state: &str) -> i64 {
    agents_up(server, 1).await;
    let id = scale_web(server, 2).await;
    if state == "rolling_back" {
        wait_state(server, id, "applied", 30).await;
        let url = format!("{}/api/v1/actions/{id}/rollback", server.url);
        let token = server.token.clone();
        // Answered once done, or never: the controller is killed during the drain.
        tokio::spawn(async move {
            let _ = crate::util::client()
                .post(url)
                .bearer_auth(token)
                .send()
                .await;
        });
    }
    wait_state(server, id, state, 30).await;
    id
}

fn integrity(server: &Server) -> String {
    let db = rusqlite::Connection::open(server.data_dir.join("swarmpilot.db")).unwrap();
    db.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

async fn killed_in(state: &str) {
    killed_on(&policy(), state, |server| {
        assert_eq!(integrity(server), "ok")
    })
    .await;
}

/// Kills a controller on `policy` with SIGKILL while an action is in `state`, checks its
/// store with `check`, starts it again and checks the action was reconciled once and no
/// worker was left behind; answers the restarted server.
pub(crate) async fn killed_on(policy: &str, state: &str, check: impl Fn(&Server)) -> Server {
    let mut server = Server::start(policy);
    let id = action_in(&server, state).await;
    server.stop_with(libc::SIGKILL);
    check(&server);
    wait_for("no orphan worker", Duration::from_secs(5), || async {
        processes_of(&server.data_dir).is_empty().then_some(())
    })
    .await;
    server.start_after_stop();
    let settled = settled(&server, id, 40).await;
    let states = rows(&server.log().await, id);
    let applying = states.iter().filter(|s| *s == "applying").count();
    assert_eq!(applying, 1, "applied once: {states:?}");
    let expected = if settled["state"] == "applied" { 2 } else { 1 };
    let agents = agents_up(&server, expected).await;
    // Every worker running belongs to the fleet the controller knows.
    assert_eq!(processes_of(&server.data_dir).len(), agents.len());
    server
}

#[tokio::test]
async fn a_controller_killed_while_applying_leaves_an_intact_log_and_no_orphan() {
    killed_in("applying").await;
}

#[tokio::test]
async fn a_controller_killed_while_verifying_leaves_an_intact_log_and_no_orphan() {
    killed_in("verifying").await;
}

#[tokio::test]
async fn a_controller_killed_while_rolling_back_leaves_an_intact_log_and_no_orphan() {
    killed_in("rolling_back").await;
}

#[tokio::test]
async fn sigterm_under_load_exits_within_the_grace_and_a_second_exits_at_once() {
    let mut server = Server::start(&policy());
    agents_up(&server, 1).await;
    // Load: a thousand agents pushing samples as fast as the API takes them.
    let url = format!("{}/api/v1/samples", server.url);
    let token = server.token.clone();
    let load = tokio::spawn(async move {
        let client = crate::util::client();
        let batch: Vec<_> = (0..1000)
            .map(|n| {
                json!({"agent": format!("load-{n}"), "metric": "queue_size", "value": n,
                       "labels": {"pool": "external"}})
            })
            .collect();
        loop {
            let sent = client
                .post(&url)
                .bearer_auth(&token)
                .json(&batch)
                .send()
                .await;
            if sent.is_err() {
                break;
            }
        }
    });
    wait_for(
        "the load's agents registered",
        Duration::from_secs(20),
        || async { (server.agents().await.len() > 1000).then_some(()) },
    )
    .await;
    // An action in flight: three workers, each a second or more to start.
    let id = scale_web(&server, 4).await;
    wait_state(&server, id, "applying", 10).await;
    // Grace 2 s, then at most 5 s to stop the agents; a little for the process to end.
    let (status, took) = server.stop_within(libc::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(took <= Duration::from_secs(8), "took {took:?}");
    load.abort();
    // The loaded fleet did not go offline for the controller's own stop, and the final
    // report, written within the bound, names its agents.
    let log = server.log_text();
    assert!(!log.contains("Agent offline."), "offline at shutdown");
    let report = log
        .lines()
        .filter_map(|line| line.strip_prefix("final report: "))
        .find(|file| file.ends_with(".json"))
        .unwrap_or_else(|| panic!("no final report in the server's log"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(report["period"], "final");
    let agents = report["agents"].as_array().unwrap();
    assert!(agents.len() > 1000, "{} agents reported", agents.len());
    // Stopped by the controller (its children's process groups), not left to the kernel.
    wait_for("every worker stopped", Duration::from_secs(2), || async {
        processes_of(&server.data_dir).is_empty().then_some(())
    })
    .await;

    // Started again, recovery settles the interrupted action; a second SIGTERM during the
    // graceful shutdown's wait exits at once.
    server.start_after_stop();
    let _ = wait_for("recovery settled it", Duration::from_secs(40), || async {
        let state = state_of(&server, id).await["state"].clone();
        (state != "applying").then_some(())
    })
    .await;
    agents_up(&server, 1).await;
    let id = scale_web(&server, 4).await;
    wait_state(&server, id, "applying", 10).await;
    let pid = server.pid().unwrap() as i32;
    let heard = || server.log_text().matches("Shutting down.").count();
    let before = heard();
    // SAFETY: signalling the server we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // Signals of one kind are not queued: the second is sent once the first was heard.
    wait_for(
        "the first SIGTERM heard",
        Duration::from_secs(5),
        || async { (heard() > before).then_some(()) },
    )
    .await;
    let (status, took) = server.stop_within(libc::SIGTERM, Duration::from_secs(5));
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert!(took <= Duration::from_secs(1), "took {took:?}");
}
