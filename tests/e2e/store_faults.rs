use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, rows, scale_web, settled, state_of, wait_state};
use crate::util::{Server, wait_for};

/// Pool `web` of at most `max_agents` workers that take `start_secs` to start, a
/// verification window of four seconds, two seconds of drain (time for a test to act in each
/// state), `global` lines in `[global]`, and `extra`.
pub(crate) fn slow_web(start_secs: u32, max_agents: usize, global: &str, extra: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_swarmpilot");
    format!(
        "[global]\nsampling_interval_secs = 1\nheartbeat_timeout_secs = 4\n{global}\
         [pools.web]\nmin_agents = 1\nmax_agents = {max_agents}\nstartup_secs = 5\ndrain_ms = 2000\n\
         [pools.web.driver]\ntype = \"process\"\n\
         command = [\"sh\", \"-c\", \"sleep {start_secs}; exec {exe} agent --listen 127.0.0.1:{{port}} --pool {{pool}} --id {{agent}}\"]\n\
         [automation.verification]\nwindow_secs = 4\n{extra}"
    )
}

/// A server whose store fails every write while the returned path exists, its pool scaled
/// from one agent to two by the returned action.
async fn scaling_server(dir: &Path, start_secs: u32) -> (Server, PathBuf, i64) {
    scaling_server_with(dir, start_secs, "").await
}

/// [`scaling_server`], with `extra` in its policy.
pub(crate) async fn scaling_server_with(
    dir: &Path,
    start_secs: u32,
    extra: &str,
) -> (Server, PathBuf, i64) {
    let fault = dir.join("fail-writes");
    let server = Server::start_with_env(
        &slow_web(start_secs, 3, "", extra),
        &[("SWARMPILOT_TEST_FAIL_WRITES_WHILE", fault.to_str().unwrap())],
    );
    agents_up(&server, 1).await;
    let id = scale_web(&server, 2).await;
    (server, fault, id)
}

/// Waits until the controller says actuation stopped, and checks every place that says so.
pub(crate) async fn halted(server: &Server, state: &str, id: i64) {
    // The readiness probe's own write fails first; then the actuator's, which halts it.
    let body = wait_for(
        "GET /readyz 503, halted",
        Duration::from_secs(30),
        || async {
            let (status, body) = server.get("/readyz").await;
            let reason = body["reason"].as_str().unwrap_or_default();
            (status == 503 && reason.contains("the store refused a write")).then_some(body)
        },
    )
    .await;
    let reason = body["reason"].as_str().unwrap();
    let (_, automation) = server.get("/api/v1/automation").await;
    assert_eq!(automation["halted"]["reason"], reason, "{automation}");
    let (_, alerts) = server.get("/api/v1/alerts").await;
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "store_write_failed")
        .cloned();
    assert_eq!(alert.map(|a| a["state"].clone()), Some(json!("firing")));
    // The API shows what the store holds, and nothing new is accepted.
    assert_eq!(state_of(server, id).await["state"], state);
    let restart = json!({"pool": "web", "change": {"type": "scale", "to": 3}});
    let (status, refused) = server.post_json("/api/v1/actions", &restart).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "halted", "{refused}");
}

/// Lets writes work again; waits for the controller to reconcile and the action to settle,
/// then checks it was applied once and the pool matches its outcome.
pub(crate) async fn recovers(server: &Server, fault: &Path, id: i64) -> Value {
    std::fs::remove_file(fault).unwrap();
    wait_for("GET /readyz 200", Duration::from_secs(20), || async {
        (server.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    let settled = settled(server, id, 40).await;
    let log = server.log().await;
    let states = rows(&log, id);
    let applying = states.iter().filter(|s| *s == "applying").count();
    assert_eq!(applying, 1, "applied once: {states:?}");
    let expected = if settled["state"] == "applied" { 2 } else { 1 };
    agents_up(server, expected).await;
    let (_, alerts) = server.get("/api/v1/alerts").await;
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "store_write_failed")
        .cloned()
        .unwrap();
    assert_eq!(alert["state"], "resolved", "{alert}");
    settled
}

#[tokio::test]
async fn a_store_failing_while_applying_stops_actuation_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // Four seconds to start: time to fail the store before the apply ends.
    let (server, fault, id) = scaling_server(dir.path(), 4).await;
    wait_state(&server, id, "applying", 10).await;
    std::fs::write(&fault, "").unwrap();
    halted(&server, "applying", id).await;
    recovers(&server, &fault, id).await;
}

#[tokio::test]
async fn a_store_failing_while_verifying_stops_actuation_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fault, id) = scaling_server(dir.path(), 1).await;
    wait_state(&server, id, "verifying", 20).await;
    std::fs::write(&fault, "").unwrap();
    halted(&server, "verifying", id).await;
    let settled = recovers(&server, &fault, id).await;
    assert_eq!(settled["state"], "applied", "{settled}");
}

#[tokio::test]
async fn a_store_failing_while_rolling_back_stops_actuation_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fault, id) = scaling_server(dir.path(), 1).await;
    wait_state(&server, id, "applied", 30).await;
    // The rollback answers once it is done; the drain leaves time to fail the store first.
    let url = format!("{}/api/v1/actions/{id}/rollback", server.url);
    let token = server.token.clone();
    let rollback = tokio::spawn(async move {
        crate::util::client()
            .post(url)
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    wait_state(&server, id, "rolling_back", 10).await;
    std::fs::write(&fault, "").unwrap();
    assert_eq!(rollback.await.unwrap().unwrap(), 503);
    halted(&server, "rolling_back", id).await;
    let settled = recovers(&server, &fault, id).await;
    assert_eq!(settled["state"], "rolled_back", "{settled}");
}

#[tokio::test]
async fn readyz_says_not_ready_while_the_store_takes_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fail-writes");
    let policy = "[pools.external]\nmin_agents = 0\ndriver = { type = \"none\" }\n";
    let server = Server::start_with_env(
        policy,
        &[("SWARMPILOT_TEST_FAIL_WRITES_WHILE", fault.to_str().unwrap())],
    );
    assert_eq!(server.get("/readyz").await.0, 200);
    // Nothing is being applied: only the probe's own write finds the store refusing.
    std::fs::write(&fault, "").unwrap();
    let body = wait_for("GET /readyz 503", Duration::from_secs(10), || async {
        let (status, body) = server.get("/readyz").await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["status"], "not_ready", "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("the store refuses writes"), "{body}");
    // The controller keeps answering reads meanwhile.
    assert_eq!(server.get("/healthz").await.0, 200);
    std::fs::remove_file(&fault).unwrap();
    wait_for("GET /readyz 200", Duration::from_secs(10), || async {
        (server.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
}
