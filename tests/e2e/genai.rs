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
