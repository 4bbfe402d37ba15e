use std::time::Duration;

use crate::util::{Server, alive, pids, processes_of, wait_for};

const POLICY: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 3

[pools.worker]
min_agents = 2
max_agents = 2
"#;

async fn two_agents(server: &Server) -> Vec<u32> {
    let agents = wait_for("two agents", Duration::from_secs(20), || async {
        let agents = server.agents().await;
        (agents.len() == 2).then_some(agents)
    })
    .await;
    pids(&agents)
}

#[tokio::test]
async fn a_killed_worker_is_noticed_offline_and_replaced() {
    let server = Server::start(POLICY);
    let before = two_agents(&server).await;
    let victim = before[0];
    // SAFETY: killing a worker process of our own server.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    // Reaped at once: a zombie would still answer kill(pid, 0).
    wait_for(
        "the killed worker reaped",
        Duration::from_secs(2),
        || async { (!alive(victim)).then_some(()) },
    )
    .await;

    let restart = wait_for(
        "a restart action applied",
        Duration::from_secs(30),
        || async {
            let (_, actions) = server.get("/api/v1/actions?status=applied").await;
            actions
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["kind"] == "restart")
                .cloned()
        },
    )
    .await;
    let reason = restart["reason"].as_str().unwrap();
    assert!(reason.contains("offline"), "{reason}");
    let agent_id = restart["agent"].as_str().unwrap().to_string();

    let after = wait_for(
        "the replacement running",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            let replaced = agents.iter().find(|a| a["id"] == agent_id.as_str())?;
            let pid = replaced["pid"].as_u64()? as u32;
            (pid != victim && alive(pid) && agents.len() == 2).then_some(pids(&agents))
        },
    )
    .await;
    assert!(!after.contains(&victim));
}

#[tokio::test]
async fn no_worker_outlives_a_terminated_controller() {
    let mut server = Server::start(POLICY);
    let workers = two_agents(&server).await;
    assert_eq!(processes_of(&server.data_dir).len(), 2);
    let status = server.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    for pid in workers {
        assert!(!alive(pid), "worker {pid} left behind");
    }
    assert!(processes_of(&server.data_dir).is_empty());
}

#[tokio::test]
async fn no_worker_outlives_a_killed_controller() {
    let mut server = Server::start(POLICY);
    let workers = two_agents(&server).await;
    server.stop_with(libc::SIGKILL);
    // The kernel delivers the parent-death signal; give it a moment to land.
    wait_for(
        "workers to die with their controller",
        Duration::from_secs(5),
        || async { workers.iter().all(|&pid| !alive(pid)).then_some(()) },
    )
    .await;
}
