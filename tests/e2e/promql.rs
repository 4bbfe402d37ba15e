use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
