//! Rate-limit-aware decisions with real processes: bundled workers that call a local mock
//! model provider (`swarmpilot mock-provider`). Under CPU load the pool scales out; when the
//! provider answers 429 the controller lowers the agents' concurrency and does not scale
//! out, though the load grows.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use swarmpilot::demo::load::{LoadConfig, LoadGenerator};

use crate::util::{EXE, Server, wait_for};

/// A mock provider process, killed when dropped.
struct Provider {
    child: Child,
    url: String,
}

impl Provider {
    fn start() -> Provider {
        let mut child = Command::new(EXE)
            .args(["mock-provider", "--latency-ms", "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the mock provider starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("its address");
        let url = line
            .trim()
            .strip_prefix("mock provider listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Provider { child, url }
    }
}

impl Provider {
    /// A controller on `policy` whose workers call this provider.
    fn serve(&self, policy: &str) -> Server {
        Server::start_with_env(policy, &[("SWARMPILOT_MODEL_PROVIDER", &self.url)])
    }

    /// Limits each model to `requests_per_sec` calls a second (as many at once).
    async fn limit(&self, requests_per_sec: f64) {
        let limits = json!({"requests_per_sec": requests_per_sec, "burst": requests_per_sec,
                            "latency_ms": 20});
        let response = reqwest::Client::new()
            .post(format!("{}/admin/limits", self.url))
            .json(&limits)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn policy() -> &'static str {
    r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 4

[pools.coders]
min_agents = 1
max_agents = 4
target_cpu_percent = 30
startup_secs = 2
scale_down_stabilization_secs = 600
concurrency = { max = 8, min = 1, throttle_percent = 5, recover_secs = 600 }

[pools.coders.driver]
type = "process"
env = ["SWARMPILOT_MODEL_PROVIDER"]

# The workers' Prometheus text: their model calls, tokens and refusals.
[ingest.scrape_pools.coders]

[automation]
auto_apply = ["scale", "restart", "adjust_concurrency"]
"#
}

/// The first action of `kind` to be applied (verified and kept), once there is one.
async fn applied(server: &Server, kind: &str) -> Value {
    let what = format!("a {kind} applied and verified");
    wait_for(&what, Duration::from_secs(60), || async {
        actions(server)
            .await
            .into_iter()
            .find(|a| a["change"]["type"] == kind && a["state"] == "applied")
    })
    .await
}

/// Tasks for pool `coders`, each burning `cpu_ms` of CPU besides its model call.
fn coders_load(server: &Server, cpu_ms: f64) -> LoadGenerator {
    LoadGenerator::start(LoadConfig {
        api: server.url.clone(),
        token: server.token.clone(),
        pool: "coders".into(),
        cpu_ms,
    })
}

/// What the agent at `endpoint` answers on `GET path` of its own API.
async fn agent_api(endpoint: &str, path: &str) -> Value {
    reqwest::get(format!("{endpoint}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn actions(server: &Server) -> Vec<Value> {
    let (status, body) = server.get("/api/v1/actions?limit=500").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

fn scale_ups(actions: &[Value]) -> Vec<&Value> {
    actions
        .iter()
        .filter(|a| a["change"]["type"] == "scale")
        .filter(|a| a["change"]["to"].as_u64() > a["change"]["from"].as_u64())
        .filter(|a| a["change"]["from"].as_u64() > Some(0))
        .collect()
}

#[tokio::test]
async fn throttling_lowers_concurrency_where_cpu_load_scales_out() {
    let provider = Provider::start();
    let server = provider.serve(policy());
    server.one_ready_agent().await;
    let load = coders_load(&server, 10.0);

    // CPU load with a provider that answers everything: 40 tasks/s of 10 ms is 40% of a
    // core against a 30% target, so the pool scales out.
    load.set_rate("cpu", 40.0);
    wait_for("a scale-out on CPU", Duration::from_secs(40), || async {
        let actions = actions(&server).await;
        let applied = scale_ups(&actions)
            .into_iter()
            .any(|a| a["state"] == "applied");
        applied.then_some(())
    })
    .await;
    let agent = server.agents().await.into_iter().next().unwrap();
    assert!(
        agent["metrics"]["tokens_in_per_s"].as_f64() > Some(0.0),
        "the workers report their model use: {agent}"
    );

    // The provider now refuses all but 5 calls a second while the load doubles (80% of a
    // core): a CPU autoscaler would add agents, which would only make more refused calls.
    provider.limit(5.0).await;
    load.set_rate("throttled", 80.0);
    let lowered = applied(&server, "adjust_concurrency").await;
    let (from, to) = (
        lowered["change"]["from"].as_u64().unwrap(),
        lowered["change"]["to"].as_u64().unwrap(),
    );
    assert_eq!(from, 8, "{lowered}");
    assert!((4..8).contains(&to), "{lowered}");
    assert!(
        lowered["reason"].as_str().unwrap().contains("rate limit"),
        "{lowered}"
    );
    assert!(
        lowered["evidence"]["throttled_percent"].as_f64() > Some(5.0),
        "{lowered}"
    );
    // Every worker was told: its own API says so.
    let agents = server.agents().await;
    for agent in &agents {
        let endpoint = agent["endpoint"].as_str().unwrap();
        let limit = agent_api(endpoint, "/concurrency").await;
        assert!(
            limit["limit"].as_u64() <= Some(to),
            "{}: {limit}",
            agent["id"]
        );
    }
    // While throttled, the doubled CPU load brought no scale-out after the first step down
    // (ids increase): the optimizer kept deciding meanwhile, as a second step down shows.
    wait_for("a second step down", Duration::from_secs(60), || async {
        let actions = actions(&server).await;
        let steps = actions
            .iter()
            .filter(|a| a["change"]["type"] == "adjust_concurrency")
            .filter(|a| a["change"]["to"].as_u64() < a["change"]["from"].as_u64())
            .count();
        (steps >= 2).then_some(())
    })
    .await;
    let all = actions(&server).await;
    load.stop();
    let since: Vec<&Value> = scale_ups(&all)
        .into_iter()
        .filter(|a| a["id"].as_i64() > lowered["id"].as_i64())
        .collect();
    assert!(since.is_empty(), "scale-outs while throttled: {since:?}");
}

/// Two workers on `mock-small`, which the provider limits to 5 calls a second for each
/// model; `mock-small-b` is listed as equivalent.
const SPREAD_POLICY: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 4

[pools.coders]
min_agents = 2
max_agents = 2
target_cpu_percent = 30
startup_secs = 2
model = { name = "mock-small" }
equivalent_models = [{ name = "mock-small-b" }]

[pools.coders.driver]
type = "process"
env = ["SWARMPILOT_MODEL_PROVIDER"]

[ingest.scrape_pools.coders]

[automation]
auto_apply = ["scale", "restart", "switch_model"]
"#;

/// The pool's refused share of model calls now, from its agents' latest readings.
async fn refused_share(server: &Server) -> Option<f64> {
    let agents = server.agents().await;
    let sum = |name: &str| -> f64 {
        agents
            .iter()
            .filter_map(|a| a["metrics"][name].as_f64())
            .sum()
    };
    let calls = sum("model_calls_per_s");
    (calls > 0.0).then(|| sum("errors_rate_limited_per_s") / calls)
}

#[tokio::test]
async fn a_throttled_model_sheds_an_agent_to_its_equivalent() {
    let provider = Provider::start();
    provider.limit(5.0).await;
    let server = provider.serve(SPREAD_POLICY);
    wait_for("two agents", Duration::from_secs(30), || async {
        (server.agents().await.len() == 2).then_some(())
    })
    .await;
    let load = coders_load(&server, 1.0);
    // 20 calls a second on one model limited to 5: about three quarters refused.
    load.set_rate("throttled", 20.0);
    let moved = applied(&server, "switch_model").await;
    assert_eq!(moved["change"]["from"], "mock-small", "{moved}");
    assert_eq!(moved["change"]["to"], "mock-small-b", "{moved}");
    let percent = moved["evidence"]["models"]["mock-small"]["throttled_percent"].as_f64();
    assert!(percent > Some(50.0), "{moved}");
    // The worker itself now names the other model.
    let agent = moved["change"]["agent"].as_str().unwrap().to_string();
    let (status, view) = server.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(status, 200, "{view}");
    let model = agent_api(view["endpoint"].as_str().unwrap(), "/model").await;
    assert_eq!(model["model"], "mock-small-b", "{model}");
    // With the calls spread over two limits, fewer are refused: about half, not three
    // quarters.
    wait_for(
        "the refused share falls",
        Duration::from_secs(30),
        || async {
            refused_share(&server)
                .await
                .filter(|s| *s < 0.65)
                .map(|_| ())
        },
    )
    .await;
    // One agent on each model: a second move would only turn the spread round, so none comes
    // (a regression guard against moving agents back and forth).
    let all = actions(&server).await;
    load.stop();
    let moves = all
        .iter()
        .filter(|a| a["change"]["type"] == "switch_model")
        .count();
    assert_eq!(moves, 1, "{all:?}");
}
