use std::time::Duration;

use serde_json::json;

use crate::util::{Server, wait_for};

/// A controller with no pools of its own but the observe-only `external` one, and `edge`.
fn policy(unknown_agents: &str) -> String {
    format!(
        r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
max_agents = 100
driver = {{ type = "none" }}

[pools.edge]
min_agents = 0
driver = {{ type = "none" }}

[ingest]
unknown_agents = "{unknown_agents}"
max_body_bytes = 65536
"#
    )
}

#[tokio::test]
async fn a_partly_bad_batch_keeps_its_good_samples_and_names_each_bad_one() {
    let server = Server::start(&policy("join"));
    let body = json!([
        {"agent": "ext-1", "metric": "cpu_percent", "value": 42.5},
        {"agent": "ext-1", "metric": "cpu_percent", "value": "NaN"},
        {"agent": "ext-1", "metric": "cpu percent", "value": 1},
        {"metric": "queue_size", "value": 3},
        {"agent": "edge-1", "metric": "queue_size", "value": 7, "labels": {"pool": "edge"}},
        {"agent": "ext-1", "metric": "queue_size", "value": 1, "timestamp": 4_102_444_800_000_i64},
        {"agent": "ghost-1", "metric": "queue_size", "value": 1, "labels": {"pool": "nowhere"}},
        {"agent": "ext-1", "metric": "memory_percent", "value": "+Inf"}
    ]);
    let (status, reply) = server.post_json("/api/v1/samples", &body).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["accepted"], 2, "{reply}");
    let rejected: Vec<(u64, &str)> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "value"),
            (2, "metric"),
            (3, "agent"),
            (5, "timestamp"),
            (6, "agent"),
            (7, "value")
        ],
        "{reply}"
    );
    assert_eq!(reply["error"]["field"], "[1].value");
    assert!(
        reply["rejected"][4]["reason"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );

    // The good samples arrived: each unknown agent joined its pool.
    let agents = wait_for("both pushed agents", Duration::from_secs(10), || async {
        let agents = server.agents().await;
        (agents.len() == 2
            && agents
                .iter()
                .all(|a| !a["metrics"].as_object().unwrap().is_empty()))
        .then_some(agents)
    })
    .await;
    let pools: Vec<(&str, &str)> = agents
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["pool"].as_str().unwrap()))
        .collect();
    assert_eq!(pools, [("edge-1", "edge"), ("ext-1", "external")]);
    assert_eq!(agents[1]["metrics"]["cpu_percent"], 42.5);

    // A clean batch is 200 with nothing rejected; an observe-only pool is never actuated.
    let (status, reply) = server
        .post_json(
            "/api/v1/samples",
            &json!([{"agent": "ext-1", "metric": "queue_size", "value": 2}]),
        )
        .await;
    assert_eq!(
        (status, reply["accepted"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    let (status, reply) = server
        .post_json(
            "/api/v1/actions",
            &json!({"pool": "external", "change": {"type": "scale", "to": 3}}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["error"]["code"], "observe_only");
}

#[tokio::test]
async fn bodies_that_are_not_batches_get_400_or_413_and_nothing_is_lost() {
    let server = Server::start(&policy("reject"));
    let (status, reply) = server
        .post("/api/v1/samples", "[\n{\"agent\": \"a\",,}]")
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["field"], "body");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 2 column 15"), "{message}");

    let big = format!(
        "[{}]",
        vec![r#"{"agent":"a","metric":"m","value":1}"#; 3000].join(",")
    );
    let (status, reply) = server.post("/api/v1/samples", &big).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");

    // Under `reject`, agents the controller does not run are refused by name.
    let (status, reply) = server
        .post_json(
            "/api/v1/samples",
            &json!([{"agent": "stranger", "metric": "m", "value": 1}]),
        )
        .await;
    assert_eq!(
        (status, reply["accepted"].as_u64()),
        (400, Some(0)),
        "{reply}"
    );
    assert!(
        reply["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown agent"),
        "{reply}"
    );
    assert!(server.agents().await.is_empty());
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "the controller keeps running");
}

#[tokio::test]
async fn the_agent_list_is_paged_in_id_order_with_a_summary_of_each() {
    let server = Server::start(&policy("join"));
    // 23 agents, ids that sort differently as text and as numbers (ext-2 before ext-10).
    let body: Vec<_> = (1..=23)
        .map(|n| json!({"agent": format!("ext-{n}"), "metric": "cpu_percent", "value": n}))
        .collect();
    let (status, reply) = server.post_json("/api/v1/samples", &json!(body)).await;
    assert_eq!(status, 200, "{reply}");
    // Each agent's actor records its sample a moment after the agent joins: wait for both.
    wait_for(
        "23 agents with their readings",
        Duration::from_secs(10),
        || async {
            let (_, page) = server.get("/api/v1/agents").await;
            let page = page.as_array()?;
            (page.len() == 23 && page.iter().all(|a| a["cpu_percent"].is_number())).then_some(())
        },
    )
    .await;

    let pages = server
        .pages("/api/v1/agents?limit=10&pool=external", 10)
        .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [10, 10, 3],
        "the Link header leads to every page once"
    );
    let ids: Vec<String> = pages
        .concat()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (1..=23).map(|n| format!("ext-{n}")).collect();
    assert_eq!(ids, expected);
    let first = &pages[0][0];
    assert_eq!(first["pool"], "external");
    assert_eq!(first["cpu_percent"], 1.0);
    assert!(
        first.get("metrics").is_none(),
        "the list is a summary: {first}"
    );

    let response = crate::util::client()
        .get(format!("{}/api/v1/agents?limit=5&after=ext-20", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["X-Total-Count"], "23");
    assert!(response.headers().get("Link").is_none(), "the last page");
    let tail: Vec<serde_json::Value> = response.json().await.unwrap();
    assert_eq!(tail.len(), 3);

    let (_, edge) = server.get("/api/v1/agents?pool=edge").await;
    assert_eq!(edge, json!([]));
    for (query, field) in [("status=sleepy", "status"), ("limit=0", "limit")] {
        let (status, body) = server.get(&format!("/api/v1/agents?{query}")).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_agent_that_posts_heartbeats_stays_online_while_a_silent_one_goes_offline() {
    let server = Server::start(&policy("join").replace(
        "sampling_interval_secs = 1",
        "sampling_interval_secs = 1\nheartbeat_timeout_secs = 3",
    ));
    let body = json!([
        {"agent": "beat-1", "metric": "queue_size", "value": 1},
        {"agent": "quiet-1", "metric": "queue_size", "value": 1}
    ]);
    let (status, reply) = server.post_json("/api/v1/samples", &body).await;
    assert_eq!(status, 200, "{reply}");
    let status_of = |id: &'static str| {
        let server = &server;
        async move {
            let (_, agent) = server.get(&format!("/api/v1/agents/{id}")).await;
            agent["status"].as_str().unwrap_or_default().to_string()
        }
    };
    // beat-1 posts a heartbeat at every look; quiet-1 says nothing until it is offline.
    wait_for("quiet-1 offline", Duration::from_secs(20), || async {
        let (code, seen) = server.post("/api/v1/agents/beat-1/heartbeat", "").await;
        assert_eq!(
            (code, seen["agent"].as_str()),
            (200, Some("beat-1")),
            "{seen}"
        );
        (status_of("quiet-1").await == "offline").then_some(())
    })
    .await;
    assert_ne!(
        status_of("beat-1").await,
        "offline",
        "its heartbeats kept it online"
    );
    let (code, body) = server.post("/api/v1/agents/nobody/heartbeat", "").await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("first samples")
    );
}
