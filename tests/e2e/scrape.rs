use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, wait_for};

/// Debian's `prometheus-node-exporter`, which scripts/test installs.
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// promtool from Debian's `prometheus`, which scripts/test installs.
const PROMTOOL: &str = "/usr/bin/promtool";

/// A real node exporter on a loopback port, killed when dropped.
struct NodeExporter {
    child: Child,
    port: u16,
}

impl NodeExporter {
    /// Starts the exporter on `port` (a free one when 0) with only the unprivileged load and
    /// CPU collectors, and waits until it answers.
    async fn start(port: u16) -> NodeExporter {
        assert!(
            std::path::Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: run scripts/test --install-only"
        );
        let port = if port == 0 { free_port() } else { port };
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.loadavg",
                "--collector.cpu",
                "--log.level=error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus-node-exporter");
        let exporter = NodeExporter { child, port };
        let url = exporter.url();
        let client = reqwest::Client::new();
        wait_for("the node exporter", Duration::from_secs(10), || async {
            let response = client.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        exporter
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The controller's log; `Server` writes it beside the data directory.
fn server_log(server: &Server) -> String {
    std::fs::read_to_string(server.data_dir.parent().unwrap().join("server.log")).unwrap()
}

/// `GET /metrics` without a token: the status, content type and page.
pub(crate) async fn metrics_page(server: &Server) -> (u16, String, String) {
    let response = reqwest::get(format!("{}/metrics", server.url))
        .await
        .expect("GET /metrics");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

/// The value of the line of `page` that starts with `series ` exactly.
pub(crate) fn value_of(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

async fn agent(server: &Server, id: &str) -> Option<Value> {
    server.agents().await.into_iter().find(|a| a["id"] == id)
}

#[tokio::test]
async fn a_real_node_exporter_is_scraped_and_its_outage_counted_and_reported() {
    let mut exporter = NodeExporter::start(0).await;
    let policy = format!(
        r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 30

[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[pools.hosts]
min_agents = 0
driver = {{ type = "none" }}

[[ingest.scrape]]
url = "{url}"
agent = "node-1"
pool = "hosts"
timeout_ms = 800
metrics = [
  {{ from = "node_load1", to = "load1" }},
  {{ from = "node_cpu_seconds_total", labels = {{ mode = "idle" }}, to = "cpu_idle_cores" }},
  {{ from = "node_cpu_seconds_total", labels = {{ mode = "user" }}, to = "cpu_user_percent", scale = 100 }},
]
"#,
        url = exporter.url()
    );
    let server = Server::start(&policy);

    // Both readings arrive: the gauge at once, the counter's rate from the second scrape.
    let node = wait_for(
        "node-1's load and CPU rate",
        Duration::from_secs(15),
        || async {
            let node = agent(&server, "node-1").await?;
            let metrics = &node["metrics"];
            (metrics["load1"].is_number() && metrics["cpu_idle_cores"].is_number()).then_some(node)
        },
    )
    .await;
    assert_eq!(node["pool"], "hosts", "{node}");
    assert_eq!(node["status"], "active", "{node}");
    let load1 = node["metrics"]["load1"].as_f64().unwrap();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    let host_load1: f64 = loadavg.split(' ').next().unwrap().parse().unwrap();
    assert!(
        (load1 - host_load1).abs() < 1.0,
        "{load1} vs /proc/loadavg {loadavg}"
    );
    // Idle CPU seconds per second across every CPU: between 0 and the number of CPUs.
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let idle = node["metrics"]["cpu_idle_cores"].as_f64().unwrap();
    assert!(
        (0.0..=cpus * 1.2).contains(&idle),
        "{idle} idle cores of {cpus}"
    );
    let user = node["metrics"]["cpu_user_percent"].as_f64().unwrap();
    assert!((0.0..=cpus * 120.0).contains(&user), "{user}% user");
    let (_, _, page) = metrics_page(&server).await;
    assert_eq!(
        value_of(
            &page,
            r#"swarmpilot_scrape_up{agent="node-1",pool="hosts"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert!(
        value_of(
            &page,
            r#"swarmpilot_agent_load1{agent="node-1",pool="hosts"}"#
        )
        .is_some()
    );

    // The exporter dies: failures are counted, the agent is marked error, one warning.
    exporter.kill();
    let page = wait_for("three failed scrapes", Duration::from_secs(15), || async {
        let (_, _, page) = metrics_page(&server).await;
        let series = r#"swarmpilot_scrape_consecutive_failures{agent="node-1",pool="hosts"}"#;
        (value_of(&page, series)? >= 3.0).then_some(page)
    })
    .await;
    assert_eq!(
        value_of(
            &page,
            r#"swarmpilot_scrape_up{agent="node-1",pool="hosts"}"#
        ),
        Some(0.0)
    );
    let failures = value_of(
        &page,
        r#"swarmpilot_scrape_failures_total{agent="node-1",pool="hosts"}"#,
    )
    .unwrap();
    assert!(failures >= 3.0, "{page}");
    let node = agent(&server, "node-1").await.unwrap();
    assert_eq!(node["status"], "error", "{node}");
    let log = server_log(&server);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Scrape failed."))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per outage:\n{log}");
    assert!(warnings[0].contains("node-1"), "{}", warnings[0]);

    // Back on the same port: up again, active again.
    let _exporter = NodeExporter::start(exporter.port).await;
    wait_for("node-1 active again", Duration::from_secs(15), || async {
        let node = agent(&server, "node-1").await?;
        (node["status"] == "active").then_some(())
    })
    .await;
    let (_, _, page) = metrics_page(&server).await;
    assert_eq!(
        value_of(
            &page,
            r#"swarmpilot_scrape_consecutive_failures{agent="node-1",pool="hosts"}"#
        ),
        Some(0.0),
        "{page}"
    );
    assert!(server_log(&server).contains("Scrape target back."));
}

/// Two bundled workers whose `/metrics` the controller scrapes.
pub(crate) const WORKERS: &str = r#"
[global]
sampling_interval_secs = 1

[pools.worker]
min_agents = 2
max_agents = 2

[ingest.scrape_pools.worker]
timeout_ms = 800
"#;

/// Sends tasks to `endpoint` until dropped, one in five of them failing.
pub(crate) fn keep_busy(endpoint: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for n in 0u64.. {
            let _ = client
                .post(format!("{endpoint}/work"))
                .json(&json!({"cpu_ms": 2, "fail": n % 5 == 4}))
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

pub(crate) async fn two_workers(server: &Server) -> Vec<Value> {
    wait_for(
        "two workers with endpoints",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            (agents.len() == 2 && agents.iter().all(|a| a["endpoint"].is_string()))
                .then_some(agents)
        },
    )
    .await
}

#[tokio::test]
async fn the_bundled_workers_are_scraped_for_throughput_errors_and_latency() {
    let server = Server::start(WORKERS);
    let agents = two_workers(&server).await;
    let (busy, idle) = (agents[0]["id"].clone(), agents[1]["id"].clone());
    let load = keep_busy(agents[0]["endpoint"].as_str().unwrap().to_string());

    let metrics = wait_for(
        "the busy worker's scraped metrics",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            let agent = agents.iter().find(|a| a["id"] == busy)?;
            let metrics = agent["metrics"].clone();
            let positive = |name: &str| metrics[name].as_f64().is_some_and(|v| v > 0.0);
            (positive("throughput_per_s") && positive("error_rate") && positive("response_time_ms"))
                .then_some(metrics)
        },
    )
    .await;
    load.abort();
    let throughput = metrics["throughput_per_s"].as_f64().unwrap();
    // Tasks of 2 ms CPU, 10 ms apart, one at a time: at most ~80 a second.
    assert!((1.0..100.0).contains(&throughput), "{metrics}");
    let error_rate = metrics["error_rate"].as_f64().unwrap();
    assert!(
        (10.0..=30.0).contains(&error_rate),
        "one in five failed: {metrics}"
    );
    let latency = metrics["response_time_ms"].as_f64().unwrap();
    assert!((1.0..1000.0).contains(&latency), "{metrics}");
    assert!(
        metrics["response_time_p95_ms"].as_f64().unwrap() >= latency * 0.5,
        "{metrics}"
    );
    assert!(metrics["active_tasks"].is_number(), "{metrics}");

    // The other worker did nothing: scraped, with no throughput. Its first scrape may come
    // after the busy worker's metrics did.
    let other = wait_for(
        "the idle worker scraped",
        Duration::from_secs(20),
        || async {
            let other = agent(&server, idle.as_str().unwrap()).await?;
            other["metrics"]
                .get("throughput_per_s")
                .is_some()
                .then_some(other)
        },
    )
    .await;
    assert_eq!(other["metrics"]["throughput_per_s"], 0.0, "{other}");
    assert_eq!(other["metrics"]["active_tasks"], 0.0, "{other}");
    assert!(
        other["metrics"].get("error_rate").is_none(),
        "no tasks, no rate: {other}"
    );
}

#[tokio::test]
async fn get_metrics_passes_promtool_check_metrics() {
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: run scripts/test --install-only"
    );
    // Workers scraped, an unreachable static target, and pushed agents whose ids and
    // metric names need escaping and renaming.
    let policy = format!(
        r#"{WORKERS}
[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[[ingest.scrape]]
url = "http://127.0.0.1:{port}/metrics"
agent = "gone-1"
timeout_ms = 300
metrics = [{{ from = "up", to = "up" }}]
"#,
        port = free_port()
    );
    let server = Server::start(&policy);
    let agents = two_workers(&server).await;
    let load = keep_busy(agents[0]["endpoint"].as_str().unwrap().to_string());
    let pushed = json!([
        {"agent": "ext\"quote\\back", "metric": "queue_size", "value": 3},
        {"agent": "ext-2", "metric": "latency_ms", "value": 250},
        {"agent": "ext-2", "metric": "requests_total", "value": 12},
        {"agent": "ext-2", "metric": "heapUsedKb", "value": 2},
        {"agent": "ext-2", "metric": "node:load1", "value": 0.5}
    ]);
    let (status, reply) = server.post_json("/api/v1/samples", &pushed).await;
    assert_eq!(status, 200, "{reply}");

    let page = wait_for("a full page", Duration::from_secs(20), || async {
        let (status, kind, page) = metrics_page(&server).await;
        assert_eq!(status, 200, "{page}");
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        let ready = page.contains("swarmpilot_agent_throughput_per_second{")
            && page.contains("swarmpilot_agent_response_time_seconds{")
            && page.contains("swarmpilot_agent_latency_seconds{")
            && page.contains(r#"swarmpilot_scrape_failures_total{agent="gone-1",pool="external"}"#);
        ready.then_some(page)
    })
    .await;
    load.abort();

    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().unwrap();
        stdin.write_all(page.as_bytes()).unwrap();
    }
    let output = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool: {said}\npage:\n{page}");
    assert!(said.trim().is_empty(), "promtool: {said}");

    // Escaped label values, converted units, and the controller's own families.
    for series in [
        r#"swarmpilot_agent_queue_size{agent="ext\"quote\\back",pool="external"} 3"#,
        r#"swarmpilot_agent_requests_total_value{agent="ext-2",pool="external"} 12"#,
        r#"swarmpilot_agent_heap_used_bytes{agent="ext-2",pool="external"} 2000"#,
        r#"swarmpilot_agent_node_load1{agent="ext-2",pool="external"} 0.5"#,
        r#"swarmpilot_agents{pool="worker",status="active"} 2"#,
        r#"swarmpilot_scrape_up{agent="gone-1",pool="external"} 0"#,
        r#"swarmpilot_actions{state="applied"} "#,
        r#"swarmpilot_alerts_firing{level="critical"} 0"#,
    ] {
        assert!(
            page.lines().any(|l| l.starts_with(series)),
            "no {series:?} in\n{page}"
        );
    }
    let latency = value_of(
        &page,
        r#"swarmpilot_agent_latency_seconds{agent="ext-2",pool="external"}"#,
    );
    assert!(
        (latency.unwrap() - 0.25).abs() < 1e-9,
        "250 ms: {latency:?}"
    );
    assert!(value_of(&page, "swarmpilot_samples_ingested_total").unwrap() >= 5.0);
    // The ring buffers account for what they hold.
    let points = value_of(&page, "swarmpilot_ring_buffer_points").unwrap();
    let bytes = value_of(&page, "swarmpilot_ring_buffer_bytes").unwrap();
    assert!(
        points >= 5.0 && bytes > 0.0,
        "{points} points, {bytes} bytes"
    );
    assert!(
        page.contains("# TYPE swarmpilot_host_system_cpu_percent gauge"),
        "{page}"
    );
}
