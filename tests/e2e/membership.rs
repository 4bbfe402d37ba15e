use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, wait_state};
use crate::util::{Server, alive, pids, wait_for};

/// Two workers the driver runs, an observe-only pool for foreign agents, an allow-list, and
/// an hourly cap of one action, so that anything counted against it starves the rest.
const POLICY: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 3

[pools.worker]
min_agents = 2
max_agents = 2
allow_agents = ["edge-*"]

[pools.external]
driver = { type = "none" }

[automation]
max_actions_per_hour = 1
"#;

async fn push(server: &Server, agent: &str, pool: &str) {
    let batch =
        json!([{"agent": agent, "metric": "queue_size", "value": 3, "labels": {"pool": pool}}]);
    let (status, body) = server.post_json("/api/v1/samples", &batch).await;
    assert_eq!(status, 200, "{body}");
}

async fn pool_of(server: &Server, agent: &str) -> Option<String> {
    let agents = server.agents().await;
    let found = agents.iter().find(|a| a["id"] == agent)?;
    found["pool"].as_str().map(str::to_string)
}

/// The agents of pool `worker`, the one the driver runs.
async fn workers(server: &Server) -> Vec<Value> {
    let agents = server.agents().await;
    agents
        .into_iter()
        .filter(|a| a["pool"] == "worker")
        .collect()
}

async fn actions(server: &Server) -> Vec<Value> {
    let (_, actions) = server.get("/api/v1/actions").await;
    actions.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn ghost_agents_never_count_in_a_driver_pool_nor_starve_the_replacement_of_a_killed_worker() {
    let server = Server::start(POLICY);
    agents_up(&server, 2).await;

    // A foreign agent naming the driver's pool is watched in the observe-only pool instead.
    push(&server, "fake-1", "worker").await;
    assert_eq!(
        pool_of(&server, "fake-1").await.as_deref(),
        Some("external")
    );

    // An allowed one joins; once silent it is offline, and being run by no driver it is
    // deregistered with an alert rather than restarted: no action is recorded for it.
    push(&server, "edge-1", "worker").await;
    assert_eq!(pool_of(&server, "edge-1").await.as_deref(), Some("worker"));
    wait_for("edge-1 deregistered", Duration::from_secs(20), || async {
        pool_of(&server, "edge-1").await.is_none().then_some(())
    })
    .await;
    let alert = wait_for(
        "agent_not_managed firing",
        Duration::from_secs(10),
        || async {
            let (_, alerts) = server.get("/api/v1/alerts").await;
            alerts
                .as_array()?
                .iter()
                .find(|a| a["rule"] == "agent_not_managed" && a["agent"] == "edge-1")
                .cloned()
        },
    )
    .await;
    assert_eq!(alert["state"], "firing", "{alert}");
    let recorded = actions(&server).await;
    assert!(
        recorded.iter().all(|a| a["agent"] != "edge-1"),
        "nothing was recorded for a ghost: {recorded:?}"
    );

    // Use up the hourly cap with a real change.
    let pool = workers(&server).await;
    let first = pool[0]["id"].as_str().unwrap().to_string();
    let restart = json!({"pool": "worker", "change": {"type": "restart", "agent": first}});
    let (status, action) = server.post_json("/api/v1/actions", &restart).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    wait_state(&server, id, "applied", 30).await;
    let agents = workers(&server).await;

    // A real worker killed is replaced although the cap is used up: replacing capacity
    // below min_agents is never held back by other actions.
    let victim = pids(&agents)[1];
    let victim_id = agents[1]["id"].as_str().unwrap().to_string();
    let killed_ms = swarmpilot::clock::now_ms();
    // SAFETY: killing a worker process of our own server.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let replacement = wait_for("a restart proposed", Duration::from_secs(20), || async {
        actions(&server)
            .await
            .into_iter()
            .find(|a| a["kind"] == "restart" && a["agent"] == victim_id.as_str())
    })
    .await;
    // Decided within two sampling intervals of the kill (by the controller's own record).
    let decided_ms = replacement["created_ms"].as_i64().unwrap() - killed_ms;
    assert!(
        decided_ms <= 2_000,
        "replacement decided {decided_ms} ms after the kill: {replacement}"
    );
    let after = wait_for(
        "the replacement running",
        Duration::from_secs(20),
        || async {
            let agents: Vec<Value> = server
                .agents()
                .await
                .into_iter()
                .filter(|a| a["pool"] == "worker")
                .collect();
            let pids = pids(&agents);
            (agents.len() == 2 && !pids.contains(&victim) && pids.iter().all(|p| alive(*p)))
                .then_some(agents)
        },
    )
    .await;
    assert_eq!(after.len(), 2, "{after:?}");
}

#[tokio::test]
async fn a_restart_whose_start_keeps_failing_escalates_instead_of_leaving_a_ghost() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    let exe = env!("CARGO_BIN_EXE_swarmpilot");
    // Starts fail while the marker file exists.
    let policy = format!(
        "[global]\nsampling_interval_secs = 1\nheartbeat_timeout_secs = 3\n\
         [pools.worker]\nmin_agents = 2\nmax_agents = 2\nstartup_secs = 2\n\
         [pools.worker.driver]\ntype = \"process\"\n\
         command = [\"sh\", \"-c\", \"test -e {} && exit 3; exec {exe} agent --listen 127.0.0.1:{{port}} --pool {{pool}} --id {{agent}}\"]\n",
        broken.display()
    );
    let server = Server::start(&policy);
    let agents = agents_up(&server, 2).await;
    let target = agents[0]["id"].as_str().unwrap().to_string();
    std::fs::write(&broken, "").unwrap();

    let restart = json!({"pool": "worker", "change": {"type": "restart", "agent": target}});
    let (status, action) = server.post_json("/api/v1/actions", &restart).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    let failed = wait_for("the restart failed", Duration::from_secs(30), || async {
        let (_, action) = server.get(&format!("/api/v1/actions/{id}")).await;
        (action["state"] == "failed").then_some(action)
    })
    .await;
    // Every step is on record: the stop, then each failed start, then the escalation.
    let log = server.log().await;
    let rows: Vec<&str> = log
        .iter()
        .filter(|row| row["action_id"] == id)
        .filter_map(|row| row["reason"].as_str())
        .collect();
    assert!(rows[0].contains("escalated"), "{failed} {rows:?}");
    let steps: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|r| r.starts_with("restart step"))
        .collect();
    assert_eq!(steps.len(), 4, "stop and three starts: {steps:?}");
    // No ghost: the agent is gone from the fleet, and the escalation is an alert.
    assert!(pool_of(&server, &target).await.is_none());
    let (_, alerts) = server.get("/api/v1/alerts").await;
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "restart_escalated" && a["agent"] == target.as_str()),
        "{alerts}"
    );

    // Once starts work again, the pool is brought back to its minimum.
    std::fs::remove_file(&broken).unwrap();
    agents_up(&server, 2).await;
}
