//! OTLP/HTTP metrics on `POST /v1/metrics`: the real OpenTelemetry Python SDK pushing through
//! its OTLP exporter (protobuf, gzip), OTLP JSON from reqwest, and the errors.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, wait_for};

/// The Python script that pushes with the OpenTelemetry SDK.
const PUSH_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/otlp/push.py");

/// A controller with no pools of its own but the observe-only `external` one, and `edge`.
const POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
driver = { type = "none" }

[pools.edge]
min_agents = 0
driver = { type = "none" }

[ingest]
max_body_bytes = 65536
"#;

/// The agent `id`, once it has every metric of `metrics`.
async fn agent_with(server: &Server, id: &str, metrics: &[&str]) -> Value {
    wait_for(id, Duration::from_secs(15), || async {
        server.agents().await.into_iter().find(|agent| {
            agent["id"] == id && metrics.iter().all(|m| agent["metrics"].get(m).is_some())
        })
    })
    .await
}

/// Content-Type, Content-Encoding, body, the status expected and the field it names.
type BadRequest = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

fn post(server: &Server, content_type: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.url))
        .bearer_auth(&server.token)
        .header("content-type", content_type)
}

#[tokio::test]
async fn the_opentelemetry_sdk_pushes_gauges_counters_and_histograms() {
    let server = Server::start(POLICY);
    let stdout = server
        .run_otel_script(
            PUSH_SCRIPT,
            &[],
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")],
        )
        .await;

    let agent = agent_with(
        &server,
        "checkout-1",
        &["queue_depth", "tasks_done_per_s", "task_duration_p95"],
    )
    .await;
    assert_eq!(agent["pool"], "edge", "{agent}");
    let metrics = &agent["metrics"];
    // The gauge's callback value and the counter's total after the second export.
    assert_eq!(metrics["queue_depth"], 43.5, "{metrics}");
    assert_eq!(metrics["tasks_done"], 8.0, "{metrics}");
    // 3 more between the two points, over exactly the time between them on the SDK's clock
    // (the script prints both; the controller reads them in milliseconds).
    let times: Vec<i64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("tasks.done times: "))
        .unwrap_or_else(|| panic!("no point times in the script's output:\n{stdout}"))
        .split_whitespace()
        .map(|t| (t.parse::<u64>().unwrap() / 1_000_000) as i64)
        .collect();
    assert_eq!(times.len(), 2, "{stdout}");
    let expected = 3.0 / ((times[1] - times[0]) as f64 / 1000.0);
    let rate = metrics["tasks_done_per_s"].as_f64().unwrap();
    assert!(
        (rate - expected).abs() < 1e-9,
        "{rate} != {expected}: {metrics}"
    );
    // The histogram over the second export's window only: 30 and 40, both in the SDK's
    // default (25, 50] bucket, so the p95 is 25 + 25 × 0.95.
    assert_eq!(metrics["task_duration_count"], 2.0, "{metrics}");
    assert_eq!(metrics["task_duration_sum"], 70.0, "{metrics}");
    assert_eq!(metrics["task_duration_mean"], 35.0, "{metrics}");
    assert_eq!(metrics["task_duration_p95"], 48.75, "{metrics}");
}

#[tokio::test]
async fn otlp_json_keeps_good_points_and_bad_requests_get_4xx() {
    let server = Server::start(POLICY);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let resource = |name: &str| json!({"attributes": [{"key": "service.name", "value": {"stringValue": name}}]});
    let gauge = |points: Value| json!({"scopeMetrics": [{"metrics": [{"name": "queue.depth", "gauge": {"dataPoints": points}}]}]});
    let mut good = gauge(json!([
        {"asInt": "7", "timeUnixNano": now_ns},
        {"asDouble": "NaN", "timeUnixNano": now_ns}
    ]));
    good["resource"] = resource("json-agent");
    let mut nameless = gauge(json!([{"asDouble": 1.0, "timeUnixNano": now_ns}]));
    nameless["resource"] = json!({"attributes": []});
    let body = json!({"resourceMetrics": [good, nameless]});

    let response = post(&server, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["partialSuccess"]["rejectedDataPoints"], 2, "{reply}");
    let message = reply["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("dataPoints[1].asDouble: value is NaN"),
        "{message}"
    );
    assert!(
        message.contains("resourceMetrics[1].resource.attributes"),
        "{message}"
    );
    let agent = agent_with(&server, "json-agent", &["queue_depth"]).await;
    assert_eq!(agent["pool"], "external", "{agent}");
    assert_eq!(agent["metrics"]["queue_depth"], 7.0);

    // The same shape gzip-compressed, all good: an empty reply.
    let mut only_good = gauge(json!([{"asDouble": 9.5, "timeUnixNano": now_ns}]));
    only_good["resource"] = resource("json-agent");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(
        json!({"resourceMetrics": [only_good]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let response = post(&server, "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    wait_for(
        "the gzip-compressed value",
        Duration::from_secs(10),
        || async {
            let agents = server.agents().await;
            agents
                .iter()
                .any(|a| a["id"] == "json-agent" && a["metrics"]["queue_depth"] == 9.5)
                .then_some(())
        },
    )
    .await;

    // Errors, each with the JSON error shape naming its field. The limit holds for the
    // decoded body too: 70,000 zeros gzip to a few hundred bytes.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&[0; 70_000]).unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1_000);
    let cases: [BadRequest; 7] = [
        (
            "text/plain",
            None,
            b"queue_depth 1".to_vec(),
            415,
            "Content-Type",
        ),
        (
            "application/json",
            Some("br"),
            b"{}".to_vec(),
            415,
            "Content-Encoding",
        ),
        (
            "application/x-protobuf",
            None,
            b"\x0a\xff\xff\xff".to_vec(),
            400,
            "body",
        ),
        (
            "application/json",
            None,
            b"{\"resourceMetrics\": 7}".to_vec(),
            400,
            "body",
        ),
        ("application/x-protobuf", None, vec![0; 70_000], 413, "body"),
        ("application/x-protobuf", Some("gzip"), bomb, 413, "body"),
        (
            "application/x-protobuf",
            Some("gzip"),
            b"not gzip".to_vec(),
            400,
            "body",
        ),
    ];
    for (content_type, encoding, body, status, field) in cases {
        let mut request = post(&server, content_type).body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{content_type} {encoding:?}"
        );
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"]["field"], field, "{reply}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "the controller keeps running");
}

#[tokio::test]
async fn agents_the_policy_refuses_are_counted_in_the_partial_success() {
    let server =
        Server::start(&POLICY.replace("[ingest]", "[ingest]\nunknown_agents = \"reject\""));
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.instance.id", "value": {"stringValue": "stranger"}}]},
        "scopeMetrics": [{"metrics": [{"name": "load", "gauge": {"dataPoints": [{"asDouble": 1.0}, {"asInt": "2"}]}}]}]
    }]});
    let response = post(&server, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["partialSuccess"]["rejectedDataPoints"], 2, "{reply}");
    let message = reply["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message
            .contains("resourceMetrics[0].resource.attributes[service.instance.id]: unknown agent"),
        "{message}"
    );
    assert!(server.agents().await.is_empty());
}
