//! Input limits under hostile bodies: compressed requests that decode to millions of items
//! are refused before they are built, an answer lists only the first refusals, and the
//! controller's peak memory stays bounded while four such requests arrive at once.

use std::io::Write;

use serde_json::{Value, json};

use crate::util::{Server, client, viewer_token};

/// The shipped limits: 4 MiB bodies, 100,000 items per request, 100 refusals listed.
const POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
driver = { type = "none" }
"#;

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(body).unwrap();
    gzip.finish().unwrap()
}

/// The server's peak resident memory so far, kilobytes (`VmHWM`).
fn peak_kb(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid().unwrap()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// `length-delimited field` in protobuf's wire format.
fn field(number: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
    out
}

/// An OTLP request of one gauge with `points` empty data points (two bytes each).
fn empty_points(points: usize) -> Vec<u8> {
    let gauge = [0x0a, 0x00].repeat(points);
    let metric = [field(1, b"m"), field(5, &gauge)].concat();
    field(1, &field(2, &field(2, &metric)))
}

/// Sends `body` (gzipped) to `path` as `content_type` four times at once; answers each
/// status and body.
async fn four_at_once(
    server: &Server,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Vec<(u16, Vec<u8>)> {
    let sends = (0..4).map(|_| {
        client()
            .post(format!("{}{path}", server.url))
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(body.clone())
            .send()
    });
    let mut answers = Vec::new();
    for response in futures_util::future::join_all(sends).await {
        let response = response.expect("an answer");
        let status = response.status().as_u16();
        answers.push((status, response.bytes().await.unwrap().to_vec()));
    }
    answers
}

#[tokio::test]
async fn bombs_of_items_are_refused_before_they_are_built_within_bounded_memory() {
    let server = Server::start(POLICY);
    let before = peak_kb(&server);
    let grown = |phase: &str| {
        let mb = (peak_kb(&server) - before) / 1024;
        eprintln!("peak RSS after {phase}: +{mb} MB");
        mb
    };

    // 2,000,000 bare numbers in 4 MB, a few KB gzipped: 413 once 100,000 are read.
    let numbers = format!("[{}1]", "1,".repeat(1_999_999));
    let bomb = gzip(numbers.as_bytes());
    assert!(bomb.len() < 16_000, "{}", bomb.len());
    for (status, body) in four_at_once(&server, "/api/v1/samples", "application/json", bomb).await {
        assert_eq!(status, 413);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_items", "{body}");
        assert_eq!(body["error"]["field"], "body");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("ingest.max_items_per_request"),
            "{message}"
        );
    }

    // Under the item limit, every item bad: all counted, 100 listed, an answer of kilobytes.
    let numbers = format!("[{}1]", "1,".repeat(99_999));
    for (status, body) in four_at_once(
        &server,
        "/api/v1/samples",
        "application/json",
        gzip(numbers.as_bytes()),
    )
    .await
    {
        assert_eq!(status, 400);
        assert!(body.len() < 16_384, "an answer of {} bytes", body.len());
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["accepted"], 0);
        assert_eq!(body["rejected_count"], 100_000);
        assert_eq!(body["rejected"].as_array().unwrap().len(), 100);
        assert_eq!(body["error"]["field"], "[0]");
    }

    grown("the samples");
    // OTLP: 2,000,000 empty data points, refused on the wire before decoding.
    let bomb = gzip(&empty_points(2_000_000));
    assert!(bomb.len() < 16_000, "{}", bomb.len());
    for (status, body) in four_at_once(&server, "/v1/metrics", "application/x-protobuf", bomb).await
    {
        assert_eq!(status, 413);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_items", "{body}");
    }
    // The same in OTLP JSON.
    let points = vec![json!({}); 1_000_000];
    let request = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "m", "gauge": {"dataPoints": points}}]}]}]});
    let bomb = gzip(request.to_string().as_bytes());
    for (status, _) in four_at_once(&server, "/v1/metrics", "application/json", bomb).await {
        assert_eq!(status, 413);
    }

    // Sixteen requests that each decode to 4 MB, four at a time: the peak grew by less than
    // 128 MB (before the limits, one such OTLP request took 680 MB, and six such sample
    // batches 1.9 GB).
    let grew_mb = grown("OTLP");
    assert!(grew_mb < 128, "peak RSS grew by {grew_mb} MB");
    // And the controller still takes a good sample.
    let (status, body) = server
        .post_json(
            "/api/v1/samples",
            &json!([{"agent": "a-1", "metric": "queue_size", "value": 1}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn labels_past_their_limits_are_refused_by_name() {
    let server = Server::start(&format!(
        "{POLICY}\n[ingest]\nmax_labels_per_sample = 3\nmax_label_bytes = 64\n"
    ));
    let labels: serde_json::Map<String, Value> =
        (0..4).map(|n| (format!("l{n}"), json!("v"))).collect();
    let (status, body) = server
        .post_json(
            "/api/v1/samples",
            &json!([
                {"agent": "a-1", "metric": "queue_size", "value": 1, "labels": labels},
                {"agent": "a-1", "metric": "queue_size", "value": 1,
                 "labels": {"zone": "z".repeat(65)}},
                {"agent": "a-1", "metric": "queue_size", "value": 1, "labels": {"zone": "b"}},
            ]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected_count"], 2);
    assert_eq!(body["error"]["field"], "[0].labels");
    let second = body["rejected"][1]["reason"].as_str().unwrap();
    assert!(second.contains("ingest.max_label_bytes"), "{second}");
}

#[tokio::test]
async fn joins_stop_at_the_pool_and_fleet_limits() {
    let server = Server::start(
        "[pools.external]\ndriver = { type = \"none\" }\nmin_agents = 0\nmax_agents = 3\n\
         [pools.edge]\ndriver = { type = \"none\" }\nmin_agents = 0\nmax_agents = 10\n\
         [ingest]\nmax_agents = 5\n",
    );
    let push = |pool: &'static str, names: std::ops::Range<usize>| {
        let batch: Vec<Value> = names
            .map(|n| {
                json!({"agent": format!("{pool}-{n}"), "metric": "queue_size", "value": 1,
                       "labels": {"pool": pool}})
            })
            .collect();
        let server = &server;
        async move { server.post_json("/api/v1/samples", &json!(batch)).await }
    };
    let (status, body) = push("external", 0..4).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected_count"].clone()),
        (json!(3), json!(1))
    );
    let reason = body["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("pools.external.max_agents"), "{reason}");
    assert_eq!(body["error"]["field"], "[3].agent");
    let (status, body) = push("edge", 0..3).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["accepted"], 2);
    let reason = body["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("ingest.max_agents"), "{reason}");
    // Agents already in keep reporting.
    let (status, body) = push("external", 0..3).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.agents().await.len(), 5);
}

#[tokio::test]
async fn each_token_has_its_own_request_rate_and_is_told_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = viewer_token(dir.path(), "viewer-secret-of-the-rate-test");
    let server = Server::start(&format!(
        "[global]\nrequests_per_sec_per_token = 1\nrequest_burst_per_token = 3\n{viewer}\
         [pools.external]\nmin_agents = 0\ndriver = {{ type = \"none\" }}\n"
    ));
    let get = |token: &str| {
        client()
            .get(format!("{}/api/v1/pools", server.url))
            .bearer_auth(token.to_string())
            .send()
    };
    // The burst, then a refusal naming the setting with the wait (within a second at 1 a
    // second; the three requests take far less than a second).
    for _ in 0..3 {
        assert_eq!(get(&server.token).await.unwrap().status(), 200);
    }
    let refused = get(&server.token).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("global.requests_per_sec_per_token"),
        "{message}"
    );
    // Another token is not held back by the first; open routes need no token and no rate.
    assert_eq!(
        get("viewer-secret-of-the-rate-test")
            .await
            .unwrap()
            .status(),
        200
    );
    let health = client()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_token_brings_at_most_so_many_new_agents_a_minute() {
    let server = Server::start(&format!(
        "{POLICY}\n[ingest]\nmax_new_agents_per_minute_per_token = 3\n"
    ));
    let batch: Vec<Value> = (0..5)
        .map(|n| json!({"agent": format!("new-{n}"), "metric": "queue_size", "value": 1}))
        .collect();
    let (status, body) = server.post_json("/api/v1/samples", &json!(batch)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected_count"], 2);
    let reason = body["rejected"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("ingest.max_new_agents_per_minute_per_token"),
        "{reason}"
    );
    // The agents that joined keep reporting.
    let (status, body) = server
        .post_json("/api/v1/samples", &json!(batch[..3]))
        .await;
    assert_eq!(status, 200, "{body}");
}
