use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::scrape::{WORKERS, free_port, keep_busy, metrics_page, two_workers, value_of};
use crate::util::{Server, wait_for};

/// Debian's Prometheus server, which scripts/test installs (package `prometheus`).
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A real Prometheus on a loopback port with its own storage, killed when dropped.
struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `port`, scraping `targets` (host:port) every second.
    fn start(port: u16, targets: &[String]) -> Prometheus {
        assert!(
            std::path::Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: run scripts/test --install-only"
        );
        let dir = tempfile::tempdir().unwrap();
        let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: workers\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, _dir: dir }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_pool_input_is_read_with_promql_from_a_real_prometheus_scraping_the_workers() {
    let port = free_port();
    let policy = format!(
        r#"{WORKERS}
[[ingest.promql]]
server = "http://127.0.0.1:{port}"
pool = "worker"
input = "tasks_per_second"
query = "sum(rate(swarmpilot_agent_tasks_total[5s]))"
timeout_ms = 1000

[[ingest.promql]]
server = "http://127.0.0.1:{port}"
pool = "worker"
input = "per_agent"
query = "rate(swarmpilot_agent_tasks_total[5s])"
"#
    );
    let server = Server::start(&policy);
    let agents = two_workers(&server).await;
    let targets: Vec<String> = agents
        .iter()
        .map(|a| {
            a["endpoint"]
                .as_str()
                .unwrap()
                .trim_start_matches("http://")
                .to_string()
        })
        .collect();
    let _prometheus = Prometheus::start(port, &targets);
    let load = keep_busy(agents[0]["endpoint"].as_str().unwrap().to_string());

    let (input, worker) = wait_for(
        "the pool input from Prometheus",
        Duration::from_secs(40),
        || async {
            let (_, pools) = server.get("/api/v1/pools").await;
            let worker = pools
                .as_array()?
                .iter()
                .find(|p| p["name"] == "worker")?
                .clone();
            let value = worker["inputs"]["tasks_per_second"].as_f64()?;
            let refused = worker["input_errors"]["per_agent"].as_str()?;
            (value > 0.0 && refused.contains("2 series")).then_some((value, worker))
        },
    )
    .await;
    assert!(worker["inputs"].get("per_agent").is_none(), "{worker}");
    load.abort();
    // Tasks of 2 ms CPU, 10 ms apart, one at a time: at most ~80 a second.
    assert!((0.0..100.0).contains(&input), "{input}");

    // Two series are not one input: a failure, never a value (the error says why above).
    let (_, _, page) = metrics_page(&server).await;
    let per_agent = r#"swarmpilot_pool_input_failures_total{input="per_agent",pool="worker"}"#;
    assert!(value_of(&page, per_agent).unwrap() >= 1.0, "{page}");
    assert!(
        !page.contains(r#"swarmpilot_pool_input{input="per_agent""#),
        "{page}"
    );
    let seen = value_of(
        &page,
        r#"swarmpilot_pool_input{input="tasks_per_second",pool="worker"}"#,
    );
    assert!(seen.is_some_and(|v| v >= 0.0), "{page}");
}

/// The pool's `tasks_per_second` input as `GET /api/v1/pools` shows it.
async fn tasks_per_second(server: &Server) -> Option<f64> {
    let (_, pools) = server.get("/api/v1/pools").await;
    let worker = pools.as_array()?.iter().find(|p| p["name"] == "worker")?;
    worker["inputs"]["tasks_per_second"].as_f64()
}

/// Scale-outs of the pool from one agent or more (not the start-up to `min_agents`).
fn scale_outs(actions: &Value) -> Vec<Value> {
    let actions = actions.as_array().map(Vec::as_slice).unwrap_or_default();
    actions
        .iter()
        .filter(|a| a["change"]["type"] == "scale")
        .filter(|a| a["change"]["from"].as_u64().is_some_and(|from| from >= 1))
        .filter(|a| a["change"]["to"].as_u64() > a["change"]["from"].as_u64())
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_pool_scaling_on_a_promql_input_grows_when_its_workers_get_busy() {
    let port = free_port();
    // 10 tasks a second per agent; the CPU target is far above what the tasks cost, so only
    // the input can grow the pool.
    let query = "sum(rate(swarmpilot_agent_tasks_total[5s]))";
    let policy = format!(
        r#"
[global]
sampling_interval_secs = 1

[pools.worker]
min_agents = 1
max_agents = 3
target_cpu_percent = 80
scale_on = {{ input = "tasks_per_second", target_per_agent = 10.0 }}

[[ingest.promql]]
server = "http://127.0.0.1:{port}"
pool = "worker"
input = "tasks_per_second"
query = "{query}"
timeout_ms = 1000
"#
    );
    let server = Server::start(&policy);
    let first = wait_for("the first worker", Duration::from_secs(20), || async {
        let agents = server.agents().await;
        (agents.len() == 1 && agents[0]["endpoint"].is_string()).then(|| agents[0].clone())
    })
    .await;
    let endpoint = first["endpoint"].as_str().unwrap().to_string();
    let _prometheus = Prometheus::start(port, &[endpoint.trim_start_matches("http://").into()]);

    // Idle, the input reads 0 and the pool stays at one agent.
    let idle = wait_for("the idle input", Duration::from_secs(30), || async {
        tasks_per_second(&server).await
    })
    .await;
    assert!(idle < 1.0, "{idle}");
    assert_eq!(server.agents().await.len(), 1);
    let (_, actions) = server.get("/api/v1/actions").await;
    assert!(scale_outs(&actions).is_empty(), "{actions}");

    // Busy (some 50 tasks a second), it needs more than the three agents it may have.
    let load = keep_busy(endpoint);
    wait_for("the pool grown", Duration::from_secs(40), || async {
        let agents = server.agents().await;
        (agents.len() >= 2).then_some(())
    })
    .await;
    let (_, actions) = server.get("/api/v1/actions").await;
    load.abort();
    let scale_out = scale_outs(&actions).first().cloned();
    let scale_out = scale_out.unwrap_or_else(|| panic!("no scale-out in {actions}"));
    assert_eq!(scale_out["change"]["from"], 1, "{scale_out}");
    let to = scale_out["change"]["to"].as_u64().unwrap();
    assert!((2..=3).contains(&to), "within max_agents: {scale_out}");
    let reason = scale_out["reason"].as_str().unwrap();
    assert!(reason.contains("tasks_per_second"), "{reason}");
    let evidence = &scale_out["evidence"]["scale_on"];
    assert_eq!(evidence["input"], "tasks_per_second", "{scale_out}");
    assert_eq!(evidence["query"], query, "{scale_out}");
    assert_eq!(evidence["target_per_agent"], 10.0, "{scale_out}");
    // The plan is on the input's expected peak (forecast and margin), so the value read may
    // still be under the target while the load planned per agent is over it.
    assert!(evidence["value"].as_f64().unwrap() > 0.0, "{scale_out}");
    let planned = scale_out["evidence"]["decision"]["observed"]
        .as_f64()
        .unwrap();
    assert!(planned > 10.0, "{scale_out}");
    // The agents' CPU stayed below its target: the input, not CPU, led.
    let cpu = scale_out["evidence"]["agent_cpu_percent"]
        .as_object()
        .unwrap();
    assert!(
        cpu.values().all(|v| v.as_f64().is_none_or(|v| v < 80.0)),
        "{scale_out}"
    );
}
