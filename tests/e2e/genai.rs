//! AI agent fleets: GenAI metrics from the real OpenTelemetry SDK (the shipped example script)
//! and task ends with tokens become per-agent token, cost and error series, and pool figures.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, wait_for};

/// The shipped example that records GenAI metrics with the OpenTelemetry SDK.
const EXAMPLE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/policies/examples/ai-fleet/genai_metrics.py"
);
/// The shipped AI fleet example policy.
const EXAMPLE_POLICY: &str = include_str!("../../policies/examples/ai-fleet/policy.toml");
/// One-second ticks, and the observe-only pool tasks report into.
const TEST_POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
driver = { type = "none" }
"#;

fn f(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

/// The agent `id` once it has every metric of `metrics`.
async fn agent_with(server: &Server, id: &str, metrics: &[&str]) -> Value {
    wait_for(id, Duration::from_secs(20), || async {
        let (status, agent) = server.get(&format!("/api/v1/agents/{id}")).await;
        (status == 200 && metrics.iter().all(|m| agent["metrics"].get(m).is_some()))
            .then_some(agent)
    })
    .await
}

#[tokio::test]
async fn genai_metrics_from_the_opentelemetry_sdk_become_token_cost_and_error_series() {
    let server = Server::start_dir(&[("policy.toml", EXAMPLE_POLICY), ("test.toml", TEST_POLICY)]);
    let args = ["--agent", "coder-1", "--pool", "coders", "--rounds", "2"];
    server.run_otel_script(EXAMPLE_SCRIPT, &args, &[]).await;
    let series = [
        "tokens_in_per_s",
        "tokens_out_per_s",
        "cost_per_hour",
        "model_calls_per_s",
        "model_latency_ms",
        "errors_rate_limited_per_s",
    ];
    let agent = agent_with(&server, "coder-1", &series).await;
    assert_eq!(agent["pool"], "coders", "{agent}");
    let metrics = &agent["metrics"];
    // Every call used 1,200 input and 300 output tokens of gpt-4o-mini (0.15 and 0.60 per
    // million): output is a quarter of input, and an hour of it costs
    // input/s x (0.15 + 0.25 x 0.60) / 1e6 x 3600.
    let tokens_in = f(&metrics["tokens_in_per_s"]);
    assert!(tokens_in > 0.0, "{metrics}");
    let ratio = f(&metrics["tokens_out_per_s"]) / tokens_in;
    assert!((ratio - 0.25).abs() < 1e-9, "{metrics}");
    let cost = f(&metrics["cost_per_hour"]);
    let expected = tokens_in * 0.3 / 1e6 * 3600.0;
    assert!(
        (cost - expected).abs() < 1e-9 * expected.max(1.0),
        "{cost} != {expected}"
    );
    // Three calls of 0.8 s and one 429 of 0.05 s a round: four calls, a quarter throttled.
    let calls = f(&metrics["model_calls_per_s"]);
    let throttled = f(&metrics["errors_rate_limited_per_s"]);
    assert!((throttled / calls - 0.25).abs() < 1e-6, "{metrics}");
    let latency = f(&metrics["model_latency_ms"]);
    assert!((latency - 612.5).abs() < 1e-6, "{metrics}");

    // Read back as series, and summed up for the pool.
    for metric in [
        "tokens_in_per_s",
        "cost_per_hour",
        "errors_rate_limited_per_s",
    ] {
        let (status, body) = server
            .get(&format!("/api/v1/agents/coder-1/series/{metric}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let recent = body["recent"].as_array().expect("recent points");
        assert!(!recent.is_empty(), "{metric}: {body}");
    }
    let (_, pools) = server.get("/api/v1/pools").await;
    let coders = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "coders")
        .unwrap();
    let models = &coders["models"];
    assert_eq!(models["currency"], "USD", "{coders}");
    assert!(f(&models["cost_per_hour"]) > 0.0, "{coders}");
    assert!(f(&models["errors_per_s"]["rate_limited"]) > 0.0, "{coders}");
}

#[tokio::test]
async fn task_ends_carry_tokens_cost_and_error_kinds() {
    let server = Server::start_dir(&[("policy.toml", EXAMPLE_POLICY), ("test.toml", TEST_POLICY)]);
    let post = |path: String, body: Value| {
        let server = &server;
        async move { server.post_json(&path, &body).await }
    };
    for task in ["t1", "t2"] {
        let (status, body) = post(
            format!("/api/v1/tasks/{task}/start"),
            json!({"agent": "coder-2", "pool": "coders"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // Bad fields are named.
    let cases = [
        (
            json!({"agent": "coder-2", "success": true, "error_kind": "rate_limited"}),
            "error_kind",
        ),
        (
            json!({"agent": "coder-2", "success": false, "error_kind": "flaky"}),
            "error_kind",
        ),
        (
            json!({"agent": "coder-2", "success": true, "tokens_in": -1}),
            "tokens_in",
        ),
        (
            json!({"agent": "coder-2", "success": true, "tokens_out": "many"}),
            "tokens_out",
        ),
        (
            json!({"agent": "coder-2", "success": true, "model": ""}),
            "model",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = post("/api/v1/tasks/t1/end".into(), body.clone()).await;
        assert_eq!(
            (status, reply["error"]["field"].as_str()),
            (400, Some(field)),
            "{body}: {reply}"
        );
    }
    let done = json!({"agent": "coder-2", "success": true, "tokens_in": 2_000_000,
        "tokens_out": 500_000, "model": "gpt-4o-mini", "provider": "openai"});
    let (status, body) = post("/api/v1/tasks/t1/end".into(), done).await;
    assert_eq!(status, 200, "{body}");
    let throttled = json!({"agent": "coder-2", "success": false, "error_kind": "rate_limited"});
    let (status, body) = post("/api/v1/tasks/t2/end".into(), throttled).await;
    assert_eq!(status, 200, "{body}");
    // Two tasks ended in one interval, one costing 2 x 0.15 + 0.5 x 0.60 = 0.60: 0.30 a task.
    let agent = agent_with(&server, "coder-2", &["cost_per_task"]).await;
    let metrics = &agent["metrics"];
    assert!(
        (f(&metrics["cost_per_task"]) - 0.3).abs() < 1e-9,
        "{metrics}"
    );
    assert!(f(&metrics["errors_rate_limited_per_s"]) > 0.0, "{metrics}");
    assert!(f(&metrics["tokens_in_per_s"]) > 0.0, "{metrics}");
}

/// A pool whose agents push token rates with no cost, priced by the model the pool names.
const PRICED_POOL: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 120

[alert_defaults]
enabled = false

[[genai.prices]]
provider = "openai"
model = "gpt-4o-mini*"
input_per_million = 0.15
output_per_million = 0.60

[pools.pushed]
min_agents = 0
driver = { type = "none" }
model = { provider = "openai", name = "gpt-4o-mini" }
"#;

#[tokio::test]
async fn pushed_token_rates_are_priced_by_the_pools_model_and_reported() {
    let server = Server::start(PRICED_POOL);
    // Three whole past minutes of 1,000 input and 250 output tokens a second and two tasks a
    // second, then a sample now that closes them.
    let now = swarmpilot::clock::now_ms();
    let base = now / 60_000 * 60_000 - 180_000;
    let mut batch: Vec<Value> = Vec::new();
    for m in 0..3i64 {
        let ts = base + m * 60_000 + 10_000;
        for (metric, value) in [
            ("tokens_in_per_s", 1_000.0),
            ("tokens_out_per_s", 250.0),
            ("throughput_per_s", 2.0),
        ] {
            batch.push(json!({"agent": "p-1", "metric": metric, "value": value,
                              "timestamp": ts, "labels": {"pool": "pushed"}}));
        }
    }
    batch.push(
        json!({"agent": "p-1", "metric": "cpu_percent", "value": 1.0,
                      "labels": {"pool": "pushed"}}),
    );
    let (status, reply) = server
        .post_json("/api/v1/samples", &Value::Array(batch))
        .await;
    assert_eq!(status, 200, "{reply}");
    // (1,000 x 0.15 + 250 x 0.60) / 1e6 a second: 1.08 an hour, 0.00015 a task.
    let series = format!("/api/v1/agents/p-1/series/cost_per_hour?since={base}&until={now}");
    let points = wait_for(
        "three priced minutes stored",
        Duration::from_secs(20),
        || async {
            let (_, body) = server.get(&series).await;
            let points = body["points"].as_array()?.clone();
            (points.len() == 3).then_some(points)
        },
    )
    .await;
    for point in &points {
        assert!((f(&point["mean"]) - 1.08).abs() < 1e-9, "{points:?}");
    }
    let agent = agent_with(&server, "p-1", &["cost_per_task"]).await;
    assert!(
        (f(&agent["metrics"]["cost_per_task"]) - 0.00015).abs() < 1e-12,
        "{agent}"
    );

    // The report integrates them: three minutes of it.
    let until = base + 180_000;
    let path = format!("/api/v1/reports/hourly?format=json&since={base}&until={until}");
    let (status, report) = server.get(&path).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["currency"], "USD");
    let pool = report["kpis"]
        .as_array()
        .and_then(|k| k.iter().find(|p| p["pool"] == "pushed"))
        .unwrap_or_else(|| panic!("no pool in {report}"))["current"]
        .clone();
    assert!(
        (f(&pool["model_cost"]) - 3.0 * 1.08 / 60.0).abs() < 1e-9,
        "{pool}"
    );
    assert!(
        (f(&pool["model_tokens"]) - 1_250.0 * 180.0).abs() < 1e-6,
        "{pool}"
    );
    assert!(
        (f(&pool["model_cost_per_task"]) - 0.00015).abs() < 1e-12,
        "{pool}"
    );
    let summary = report["summary"].to_string();
    assert!(
        summary.contains("Models used 225.0 k tokens and cost 0.05 USD"),
        "{summary}"
    );
}

/// Runs `swarmpilot hook ARGS` against `url` with `token`; answers (exit code, stderr).
async fn hook(url: &str, token: &str, args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(crate::util::EXE)
        .arg("hook")
        .args(args)
        .env("SWARMPILOT_URL", url)
        .env("SWARMPILOT_TOKEN", token)
        .env("SWARMPILOT_AGENT", "coder-3")
        .env("SWARMPILOT_POOL", "coders")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the hook finishes")
        .expect("the hook runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[tokio::test]
async fn the_hook_reports_tasks_and_never_fails_one_unless_strict() {
    let server = Server::start_dir(&[("policy.toml", EXAMPLE_POLICY), ("test.toml", TEST_POLICY)]);
    let (code, stderr) = hook(&server.url, &server.token, &["pre-task", "--task", "h1"]).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    let end = [
        "post-task",
        "--task",
        "h1",
        "--model",
        "gpt-4o-mini",
        "--provider",
        "openai",
        "--tokens-in",
        "1000000",
        "--tokens-out",
        "0",
    ];
    let (code, stderr) = hook(&server.url, &server.token, &end).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    let agent = agent_with(&server, "coder-3", &["cost_per_task"]).await;
    assert_eq!(agent["pool"], "coders", "{agent}");
    assert!(
        (f(&agent["metrics"]["cost_per_task"]) - 0.15).abs() < 1e-9,
        "{agent}"
    );

    // Refused (the task has ended): said on stderr, exit 0; 1 with --strict.
    let (code, stderr) = hook(&server.url, &server.token, &end).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no open task"), "{stderr}");
    let strict: Vec<&str> = end.iter().copied().chain(["--strict"]).collect();
    let (code, _) = hook(&server.url, &server.token, &strict).await;
    assert_eq!(code, 1);

    // Nothing listening: the task goes on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (code, stderr) = hook(&closed, &server.token, &["pre-task", "--task", "h2"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cannot reach the controller"), "{stderr}");
    let (code, _) = hook(
        &closed,
        &server.token,
        &["pre-task", "--task", "h2", "--strict"],
    )
    .await;
    assert_eq!(code, 1);
}
