//! Workers start with a scrubbed environment: what a process needs, what the pool's policy
//! lists, and the controller's name; never the controller's secrets.

use swarmpilot::drivers::process::BASE_ENV;

use crate::gate::agents_up;
use crate::util::Server;

#[tokio::test]
async fn a_worker_gets_what_its_pool_lists_and_none_of_the_controllers_secrets() {
    let policy = "[global]\nsampling_interval_secs = 1\n\
         [pools.web]\nmin_agents = 1\nmax_agents = 1\n\
         [pools.web.driver]\ntype = \"process\"\nenv = [\"WORKER_REGION\"]\n";
    let server = Server::start_with_env(
        policy,
        &[
            ("WORKER_REGION", "eu-west"),
            ("CONTROLLER_DB_PASSWORD", "hunter2-secret"),
        ],
    );
    let agents = agents_up(&server, 1).await;
    let pid = agents[0]["pid"].as_u64().expect("a local worker has a pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the worker's environ");
    let vars: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        vars.contains(&"WORKER_REGION=eu-west".to_string()),
        "{vars:?}"
    );
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
    assert!(
        vars.iter().any(|v| v.starts_with("SWARMPILOT_CONTROLLER=")),
        "{vars:?}"
    );
    assert!(
        !vars.iter().any(|v| v.contains("hunter2")),
        "a controller secret leaked: {vars:?}"
    );
    // The data directory's admin token path is not in it either, nor any other variable the
    // policy did not list.
    let listed = ["SWARMPILOT_CONTROLLER", "WORKER_REGION"];
    for var in &vars {
        let name = var.split('=').next().unwrap_or_default();
        assert!(
            BASE_ENV.contains(&name) || listed.contains(&name),
            "{name} was passed: {vars:?}"
        );
    }
}
