use std::time::{Duration, Instant};

use serde_json::Value;
use swarmpilot::demo::load::{LoadConfig, LoadGenerator};

use crate::util::{Server, alive, pids, wait_for};

const STABILIZATION_SECS: u64 = 8;

fn policy() -> String {
    format!(
        r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 4

[pools.worker]
min_agents = 1
max_agents = 4
target_cpu_percent = 30
scale_down_stabilization_secs = {STABILIZATION_SECS}
drain_ms = 300
# As the shipped policy: a scale-in removes at most half the pool at once, which the risk
# gate applies by itself (4 to 1 at once disrupts 75% of the pool and waits for a person).
scale_down = {{ percent = 50, agents = 0, period_secs = 15 }}
"#
    )
}

fn applied_scales(actions: &[Value], grow: bool) -> Vec<Value> {
    actions
        .iter()
        .filter(|a| a["state"] == "applied" && a["change"]["type"] == "scale")
        .filter(|a| {
            let (from, to) = (
                a["change"]["from"].as_u64().unwrap(),
                a["change"]["to"].as_u64().unwrap(),
            );
            from > 0 && (to > from) == grow
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_load_step_scales_out_and_a_drop_scales_back_in_after_the_window() {
    let server = Server::start(&policy());
    server.one_ready_agent().await;

    // 40 tasks/s of 20 ms CPU is 80% of a core: well above the 30% target for one agent.
    let load = LoadGenerator::start(LoadConfig {
        api: server.url.clone(),
        token: server.token.clone(),
        pool: "worker".into(),
        cpu_ms: 20.0,
    });
    load.set_rate("high", 40.0);
    let step = Instant::now();
    let agents = wait_for(
        "a scale-out within 30 s of the step",
        Duration::from_secs(30),
        || async {
            let agents = server.agents().await;
            (agents.len() >= 2).then_some(agents)
        },
    )
    .await;
    let started = pids(&agents);
    assert!(
        started.len() >= 2 && started.iter().all(|&pid| alive(pid)),
        "{agents:?}"
    );
    report_reaction(step.elapsed());
    let scale_out = wait_for(
        "the scale-out applied and verified in the log",
        Duration::from_secs(30),
        || async {
            let (_, actions) = server.get("/api/v1/actions").await;
            applied_scales(actions.as_array().unwrap(), true)
                .first()
                .cloned()
        },
    )
    .await;
    assert!(
        scale_out["reason"].as_str().unwrap().contains("CPU"),
        "{scale_out}"
    );
    // Low risk: the gate let it apply by itself, and it says what it should do.
    assert_eq!(scale_out["risk"]["class"], "low", "{scale_out}");
    assert_eq!(scale_out["risk"]["mode"], "auto");
    assert!(
        scale_out["expected_effect"]
            .as_str()
            .unwrap()
            .contains("mean agent CPU from"),
        "{scale_out}"
    );
    assert!(
        scale_out["evidence"]["decision"]["observed"]
            .as_f64()
            .unwrap()
            > 30.0
    );

    // Load falls to 4 tasks/s (8% of a core).
    load.set_rate("low", 4.0);
    let scale_in = wait_for("a scale-in", Duration::from_secs(60), || async {
        let (_, actions) = server.get("/api/v1/actions").await;
        applied_scales(actions.as_array().unwrap(), false)
            .first()
            .cloned()
    })
    .await;
    load.stop();
    // The window counts from the last recommendation above the new size, which the decision
    // names on the controller's own clock: the scale-in comes a full window after it, exactly.
    let decision = &scale_in["evidence"]["decision"];
    let last_higher_ms = decision["last_higher_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("a scale-down names its last higher recommendation: {scale_in}"));
    let created_ms = scale_in["created_ms"].as_i64().unwrap();
    assert!(
        created_ms - last_higher_ms > STABILIZATION_SECS as i64 * 1000,
        "scaled in {} ms after the last higher recommendation, inside the {STABILIZATION_SECS} s \
         window: {scale_in}",
        created_ms - last_higher_ms
    );
    let log = server.log().await;
    let rows: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r["action_id"] == scale_in["id"])
        .map(|r| {
            (
                r["to_state"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("applied", "auto"),
            ("verifying", "auto"),
            ("applying", "auto"),
            ("proposed", "auto")
        ]
    );

    let remaining = wait_for(
        "the pool back at one agent",
        Duration::from_secs(40),
        || async {
            let agents = server.agents().await;
            (agents.len() == 1).then_some(agents)
        },
    )
    .await;
    // An agent leaves the fleet as its stop begins; its process exits within the stop's grace.
    let kept = pids(&remaining);
    let stopped: Vec<u32> = started
        .into_iter()
        .filter(|pid| !kept.contains(pid))
        .collect();
    wait_for(
        "every stopped agent's process to exit",
        Duration::from_secs(15),
        || async { stopped.iter().all(|&pid| !alive(pid)).then_some(()) },
    )
    .await;
}

/// Reports how fast the scale-out came, visible with `--nocapture`.
fn report_reaction(elapsed: Duration) {
    eprintln!(
        "scale-out seen {:.1} s after the load step",
        elapsed.as_secs_f64()
    );
}
