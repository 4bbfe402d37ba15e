//! A pool too large for per-agent samples: 100,000 agents run by an orchestrator (the
//! `http` driver) and seen only through one PromQL aggregate. The controller holds the
//! aggregate and the driver's count, never an agent, and scales from the driver's size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_http;
use crate::util::{Server, wait_for};

/// The orchestrator's pool: its replicas, every size it was asked for, and how many of the
/// first state requests it refuses.
struct Orchestrator {
    replicas: AtomicU64,
    asked: Mutex<Vec<u64>>,
    refusals: AtomicU64,
}

fn orchestrator(replicas: u64, refusals: u64) -> (String, Arc<Orchestrator>) {
    let pool = Arc::new(Orchestrator {
        replicas: AtomicU64::new(replicas),
        asked: Mutex::default(),
        refusals: AtomicU64::new(refusals),
    });
    let kept = pool.clone();
    let url = fake_http::serve(move |_, _, body| match body["action"].as_str() {
        Some("state") if kept.refusals.load(Ordering::SeqCst) > 0 => {
            kept.refusals.fetch_sub(1, Ordering::SeqCst);
            (400, json!({"error": "not yet"}))
        }
        Some("state") => (200, json!({"size": kept.replicas.load(Ordering::SeqCst)})),
        Some("scale") => {
            let to = body["to"].as_u64().unwrap_or(0);
            kept.replicas.store(to, Ordering::SeqCst);
            kept.asked.lock().unwrap().push(to);
            (200, json!({"size": to}))
        }
        _ => (400, json!({"error": "unknown action"})),
    });
    (url, pool)
}

/// A Prometheus-compatible server whose instant queries answer one sample of `value`.
fn prometheus(value: f64) -> String {
    fake_http::serve(move |_, path, _| {
        if path != "/api/v1/query" {
            return (404, json!({"status": "error", "error": "not found"}));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let sample = json!({"metric": {}, "value": [now, value.to_string()]});
        let data = json!({"resultType": "vector", "result": [sample]});
        (200, json!({"status": "success", "data": data}))
    })
}

/// Resident memory of process `pid`, MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test]
async fn a_pool_of_100000_agents_seen_only_through_promql_scales_from_its_driver_size() {
    // Its size is unknown until the third time it is asked (about 10 s): nothing is
    // scaled on a guess meanwhile.
    let (orchestrator_url, pool) = orchestrator(100_000, 2);
    // 6,000,000 queued tasks at 50 per agent: 120,000 agents.
    let prometheus_url = prometheus(6_000_000.0);
    let policy = format!(
        r#"
[pools.fleet]
min_agents = 1
max_agents = 200000
driver = {{ type = "http", url = "{orchestrator_url}/pool", timeout_ms = 2000 }}
scale_on = {{ input = "queue", target_per_agent = 50.0 }}

[[ingest.promql]]
server = "{prometheus_url}"
pool = "fleet"
input = "queue"
query = "sum(queue_depth)"
"#
    );
    let server = Server::start(&policy);
    let action: Value = wait_for("a scale-out", Duration::from_secs(60), || async {
        let (_, actions) = server.get("/api/v1/actions").await;
        let actions = actions.as_array()?.clone();
        actions
            .into_iter()
            .find(|a| a["change"]["type"] == "scale" && a["state"] == "applied")
    })
    .await;
    assert_eq!(action["change"]["from"], 100_000, "{action}");
    assert_eq!(action["change"]["to"], 120_000, "{action}");
    assert_eq!(pool.asked.lock().unwrap().as_slice(), [120_000]);
    assert_eq!(pool.refusals.load(Ordering::SeqCst), 0);
    let (_, actions) = server.get("/api/v1/actions").await;
    let scales = actions
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["change"]["type"] == "scale");
    assert_eq!(scales.count(), 1, "no scale from a guessed size: {actions}");
    // Nothing per agent is held: no agent is known, and the memory is the controller's own.
    let (_, agents) = server.get("/api/v1/agents").await;
    assert_eq!(agents.as_array().map(Vec::len), Some(0), "{agents}");
    let (_, pools) = server.get("/api/v1/pools").await;
    let fleet = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fleet")
        .unwrap();
    assert_eq!(fleet["inputs"]["queue"], 6_000_000.0, "{fleet}");
    let rss = rss_mib(server.pid().unwrap());
    eprintln!("controller RSS with a pool of 120,000 agents: {rss:.0} MiB");
    assert!(rss < 200.0, "{rss:.0} MiB");
}
