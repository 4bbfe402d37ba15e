use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, wait_for};

/// Observe-only pools only (`external`, `bots`), one-second ticks, a three-second task timeout
/// and at most `max_open` open tasks per agent; `extra` is appended.
fn policy(max_open: usize, extra: &str) -> String {
    format!(
        r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[pools.bots]
min_agents = 0
driver = {{ type = "none" }}

[ingest]
task_timeout_secs = 3
max_open_tasks_per_agent = {max_open}
{extra}"#
    )
}

async fn start(server: &Server, task: &str, body: Value) -> (u16, Value) {
    server
        .post_json(&format!("/api/v1/tasks/{task}/start"), &body)
        .await
}

async fn end(server: &Server, task: &str, body: Value) -> (u16, Value) {
    server
        .post_json(&format!("/api/v1/tasks/{task}/end"), &body)
        .await
}

/// The values of `metric` still in `agent`'s ring buffer, oldest first.
async fn recent(server: &Server, agent: &str, metric: &str) -> Vec<f64> {
    let (status, body) = server
        .get(&format!("/api/v1/agents/{agent}/series/{metric}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn reported_tasks_become_response_time_throughput_and_error_rate_and_a_forgotten_one_fails() {
    let server = Server::start(&policy(100, ""));
    let bot = json!({"agent": "bot-1", "pool": "bots"});
    for task in ["t1", "t2"] {
        let (status, reply) = start(&server, task, bot.clone()).await;
        assert_eq!(
            (status, reply["state"].as_str()),
            (201, Some("running")),
            "{reply}"
        );
    }
    // A queued task, then the same id started again: it runs.
    let queued = json!({"agent": "bot-1", "queued": true});
    let (status, reply) = start(&server, "t3", queued).await;
    assert_eq!(
        (status, reply["state"].as_str()),
        (201, Some("queued")),
        "{reply}"
    );
    let (status, reply) = start(&server, "t3", json!({"agent": "bot-1"})).await;
    assert_eq!(
        (status, reply["state"].as_str()),
        (200, Some("running")),
        "{reply}"
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, reply) = end(&server, "t1", json!({"agent": "bot-1", "success": true})).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["duration_ms"].as_i64().unwrap() >= 150, "{reply}");
    let (status, _) = end(&server, "t2", json!({"agent": "bot-1", "success": false})).await;
    assert_eq!(status, 200);

    // The agent joined the pool its first start named, and its tick reported the two ends.
    let agent = wait_for("bot-1's task metrics", Duration::from_secs(10), || async {
        let agents = server.agents().await;
        agents
            .into_iter()
            .find(|a| a["id"] == "bot-1" && a["metrics"]["response_time_ms"].is_number())
    })
    .await;
    assert_eq!(agent["pool"], "bots");
    let metrics = &agent["metrics"];
    assert!(
        metrics["response_time_ms"].as_f64().unwrap() >= 150.0,
        "{metrics}"
    );
    assert_eq!(metrics["active_tasks"], 1.0, "t3 runs: {metrics}");
    assert_eq!(metrics["queue_size"], 0.0, "{metrics}");
    assert!(metrics["throughput_per_s"].is_number(), "{metrics}");
    // One success and one failure: 50% in one interval, or 0% then 100% if a tick fell
    // between the two ends.
    let rates = recent(&server, "bot-1", "error_rate").await;
    assert!(
        rates.first() == Some(&50.0) || rates.starts_with(&[0.0, 100.0]),
        "{rates:?}"
    );
    let throughput = recent(&server, "bot-1", "throughput_per_s").await;
    assert!(throughput.iter().any(|&t| t > 0.0), "{throughput:?}");

    // The pool sums its agents.
    let (_, pools) = server.get("/api/v1/pools").await;
    let bots = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bots")
        .unwrap();
    assert!(bots["tasks"]["throughput_per_s"].is_number(), "{bots}");
    assert!(bots["tasks"]["active_tasks"].is_number(), "{bots}");

    // t3 is never ended: after the three-second timeout it counts as a failure.
    wait_for("t3 to time out", Duration::from_secs(10), || async {
        let rates = recent(&server, "bot-1", "error_rate").await;
        let active = recent(&server, "bot-1", "active_tasks").await;
        (rates.last() == Some(&100.0) && rates.len() > 1 && active.last() == Some(&0.0))
            .then_some(())
    })
    .await;
    let (status, reply) = end(&server, "t3", json!({"agent": "bot-1", "success": true})).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"]["field"], "task_id");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 3 s"),
        "{reply}"
    );
}

#[tokio::test]
async fn bad_task_requests_get_clear_errors_and_the_cap_holds() {
    let secrets = tempfile::tempdir().unwrap();
    let viewer = secrets.path().join("vera.token");
    std::fs::write(&viewer, "vera-secret\n").unwrap();
    let tokens = format!(
        "[[global.tokens]]\nname = \"vera\"\nrole = \"viewer\"\ntoken_file = \"{}\"\n",
        viewer.display()
    );
    let server = Server::start(&policy(2, &tokens));
    let field = |reply: &Value| reply["error"]["field"].as_str().map(str::to_string);
    let cases = [
        (json!({}), 400, "agent"),
        (json!({"agent": 7}), 400, "agent"),
        (json!({"agent": "host"}), 400, "agent"),
        (json!({"agent": "b-1", "pool": "nowhere"}), 400, "pool"),
        (json!({"agent": "b-1", "queued": "yes"}), 400, "queued"),
        (json!({"agent": "b-1", "priority": 3}), 400, "priority"),
        (json!([1]), 400, "body"),
    ];
    for (body, want, want_field) in cases {
        let (status, reply) = start(&server, "t", body.clone()).await;
        assert_eq!(
            (status, field(&reply)),
            (want, Some(want_field.into())),
            "{body}: {reply}"
        );
    }
    let (status, reply) = server.post("/api/v1/tasks/t/start", "{\"agent\": ").await;
    assert_eq!(
        (status, field(&reply)),
        (400, Some("body".into())),
        "{reply}"
    );
    let (status, reply) = start(&server, "a%20b", json!({"agent": "b-1"})).await;
    assert_eq!(
        (status, field(&reply)),
        (400, Some("task_id".into())),
        "{reply}"
    );
    let (status, reply) = server
        .post_json_as(
            "/api/v1/tasks/t/start",
            &json!({"agent": "b-1"}),
            "vera-secret",
        )
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    // Nothing refused above was recorded: the first real start is new.
    let (status, reply) = start(&server, "t", json!({"agent": "b-1"})).await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = start(&server, "t", json!({"agent": "b-1"})).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (409, Some("task_open")),
        "{reply}"
    );
    let (status, reply) = start(&server, "t", json!({"agent": "b-2"})).await;
    assert_eq!(
        (status, field(&reply)),
        (409, Some("agent".into())),
        "{reply}"
    );
    let (status, reply) = end(&server, "t", json!({"agent": "b-2", "success": true})).await;
    assert_eq!(
        (status, field(&reply)),
        (409, Some("agent".into())),
        "{reply}"
    );
    let (status, reply) = end(&server, "t", json!({"agent": "b-1"})).await;
    assert_eq!(
        (status, field(&reply)),
        (400, Some("success".into())),
        "{reply}"
    );
    let (status, reply) = end(&server, "t", json!({"agent": "b-1", "success": "true"})).await;
    assert_eq!(
        (status, field(&reply)),
        (400, Some("success".into())),
        "{reply}"
    );
    let (status, reply) = end(&server, "never", json!({"agent": "b-1", "success": true})).await;
    assert_eq!(
        (status, field(&reply)),
        (404, Some("task_id".into())),
        "{reply}"
    );

    // Two open tasks per agent at most: the third waits for an end.
    let (status, _) = start(&server, "u", json!({"agent": "b-1", "queued": true})).await;
    assert_eq!(status, 201);
    let (status, reply) = start(&server, "v", json!({"agent": "b-1"})).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (429, Some("too_many_open_tasks")),
        "{reply}"
    );
    let (status, _) = end(&server, "t", json!({"agent": "b-1", "success": true})).await;
    assert_eq!(status, 200);
    let (status, _) = start(&server, "v", json!({"agent": "b-1"})).await;
    assert_eq!(status, 201);
    // The agent with no pool named joined the default one.
    let agents = server.agents().await;
    let b1 = agents
        .iter()
        .find(|a| a["id"] == "b-1")
        .expect("b-1 admitted");
    assert_eq!(b1["pool"], "external");

    // The series endpoint's own errors.
    let (status, _) = server.get("/api/v1/agents/ghost/series/queue_size").await;
    assert_eq!(status, 404);
    for (query, want_field) in [
        ("step=90", "step"),
        ("since=yesterday", "since"),
        ("step=x", "step"),
    ] {
        let (status, reply) = server
            .get(&format!("/api/v1/agents/b-1/series/active_tasks?{query}"))
            .await;
        assert_eq!(
            (status, field(&reply)),
            (400, Some(want_field.into())),
            "{query}: {reply}"
        );
    }
}

#[tokio::test]
async fn pushed_samples_of_past_minutes_are_read_back_as_rollups_by_step() {
    let server = Server::start(&policy(10, ""));
    let now = chrono::Utc::now().timestamp_millis();
    // Four whole minutes before the last even minute, so steps of 120 s hold two each.
    let base = now / 120_000 * 120_000 - 240_000;
    let minutes: [&[f64]; 4] = [
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        &[10.0, 20.0],
        &[7.0],
        &[3.0, 5.0, 7.0, 9.0, 11.0],
    ];
    let mut batch = Vec::new();
    for (m, values) in minutes.iter().enumerate() {
        for (i, value) in values.iter().enumerate() {
            let ts = base + m as i64 * 60_000 + i as i64 * 5_000;
            batch.push(json!({"agent": "roll-1", "metric": "queue_depth", "value": value, "timestamp": ts}));
        }
    }
    // A sample of the current minute finishes the last past one.
    batch.push(json!({"agent": "roll-1", "metric": "queue_depth", "value": 0.0}));
    let (status, reply) = server
        .post_json("/api/v1/samples", &Value::Array(batch))
        .await;
    assert_eq!(status, 200, "{reply}");

    let read = |step: u32| {
        let server = &server;
        async move {
            let (status, body) = server
                .get(&format!(
                    "/api/v1/agents/roll-1/series/queue_depth?since={base}&until={}&step={step}",
                    base + 240_000
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let by_minute = wait_for(
        "four minutes of rollups",
        Duration::from_secs(15),
        || async {
            let body = read(60).await;
            (body["points"].as_array().unwrap().len() == 4).then_some(body)
        },
    )
    .await;
    let figures = |point: &Value| {
        (
            point["ts_ms"].as_i64().unwrap(),
            point["min"].as_f64().unwrap(),
            point["max"].as_f64().unwrap(),
            point["mean"].as_f64().unwrap(),
            point["count"].as_u64().unwrap(),
            point["p95"].as_f64(),
        )
    };
    let points: Vec<_> = by_minute["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(figures)
        .collect();
    assert_eq!(
        points,
        [
            (base, 1.0, 6.0, 3.5, 6, Some(6.0)),
            (base + 60_000, 10.0, 20.0, 15.0, 2, None),
            (base + 120_000, 7.0, 7.0, 7.0, 1, None),
            (base + 180_000, 3.0, 11.0, 7.0, 5, Some(11.0)),
        ]
    );
    assert_eq!(by_minute["step_secs"], 60);
    assert_eq!(
        by_minute["recent"].as_array().unwrap().len(),
        14,
        "{by_minute}"
    );

    let by_two = read(120).await;
    let points: Vec<_> = by_two["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(figures)
        .collect();
    assert_eq!(
        points,
        [
            (base, 1.0, 20.0, 51.0 / 8.0, 8, Some(6.0)),
            (base + 120_000, 3.0, 11.0, 7.0, 6, Some(11.0)),
        ]
    );

    // The same window drawn: a PNG, kept for a person to look at.
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/agents/roll-1/series/queue_depth?since={base}&step=60&format=png",
            server.url
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("series.png");
    std::fs::write(out, &png).unwrap();
}
