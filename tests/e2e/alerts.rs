//! Alerts through routes to a real webhook receiver: grouping, no repeats before the repeat
//! interval, and one resolved message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, wait_state};
use crate::util::{Receiver, Server, wait_for};
use swarmpilot::clock::now_ms;

#[tokio::test]
async fn a_breach_on_every_agent_is_one_grouped_message_then_one_resolved() {
    let receiver = Receiver::start();
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("hook.url");
    std::fs::write(&url_file, &receiver.url).unwrap();
    let policy = format!(
        "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 3\nmax_agents = 3\n\
         [[alerts]]\nname = \"mem_tiny\"\nmetric = \"memory_percent\"\nabove = 0.001\n\
         level = \"warning\"\npool = \"web\"\n\
         [channels.ops]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nmatchers = {{ rule = \"mem_tiny\" }}\nchannels = [\"ops\"]\n\
         group_wait_secs = 3\ngroup_interval_secs = 2\n\
         repeat_interval_secs = 3600\n",
        url_file.display()
    );
    let server = Server::start(&policy);
    agents_up(&server, 3).await;
    let first = wait_for("the grouped message", Duration::from_secs(30), || async {
        receiver.bodies().into_iter().next()
    })
    .await;
    assert_eq!(first["title"], "[FIRING:3] web mem_tiny", "{first}");
    assert_eq!(first["details"]["alerts"].as_array().unwrap().len(), 3);
    // Two group intervals and more pass with the controller looking, and nothing is repeated.
    server.alerts_looked_at(now_ms() + 5_000).await;
    assert_eq!(
        receiver.bodies().len(),
        1,
        "no repeat before repeat_interval"
    );

    // The operator raises the threshold: every agent's alert resolves, told once.
    let raise = json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "mem_tiny", "to": 1000}});
    let (status, action) = server.post_json("/api/v1/actions", &raise).await;
    assert_eq!(status, 202, "{action}");
    wait_state(&server, action["id"].as_i64().unwrap(), "applied", 30).await;
    // The agents see the new threshold on their next samples; if their resolutions straddle a
    // tick of the group's timer, a [FIRING:n] update naming the resolved ones comes first, as
    // Alertmanager's would. Either way exactly one [RESOLVED] message ends it.
    let bodies = wait_for("the resolved message", Duration::from_secs(30), || async {
        let bodies = receiver.bodies();
        bodies
            .iter()
            .any(|b| b["title"] == "[RESOLVED] web mem_tiny")
            .then_some(bodies)
    })
    .await;
    let resolved = bodies.last().unwrap();
    assert_eq!(resolved["title"], "[RESOLVED] web mem_tiny", "{bodies:?}");
    assert_eq!(resolved["labels"]["status"], "resolved");
    for update in &bodies[1..bodies.len() - 1] {
        let title = update["title"].as_str().unwrap();
        assert!(
            title == "[FIRING:1] web mem_tiny" || title == "[FIRING:2] web mem_tiny",
            "{bodies:?}"
        );
    }
    server.alerts_looked_at(now_ms() + 4_000).await;
    let all: Vec<Value> = receiver.bodies();
    assert_eq!(
        all.len(),
        bodies.len(),
        "nothing after the resolved message: {all:?}"
    );
    assert!(all.len() <= 4, "{all:?}");
}

#[tokio::test]
async fn a_silence_holds_the_message_until_it_is_deleted_and_alerts_can_be_acknowledged() {
    let receiver = Receiver::start();
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("hook.url");
    std::fs::write(&url_file, &receiver.url).unwrap();
    let policy = format!(
        "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 2\nmax_agents = 2\n\
         [[alerts]]\nname = \"mem_tiny\"\nmetric = \"memory_percent\"\nabove = 0.001\n\
         level = \"warning\"\npool = \"web\"\n\
         [channels.ops]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nmatchers = {{ rule = \"mem_tiny\" }}\nchannels = [\"ops\"]\n\
         group_wait_secs = 2\ngroup_interval_secs = 2\n",
        url_file.display()
    );
    let server = Server::start(&policy);
    // Bad silences are refused, naming the field.
    let (status, body) = server
        .post_json(
            "/api/v1/silences",
            &json!({"matchers": [], "ends_at": "2999-01-01T00:00:00Z", "comment": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("matchers"))
    );
    let bad_regex = json!({"matchers": [{"name": "rule", "value": "(", "is_regex": true}],
                           "ends_at": "2999-01-01T00:00:00Z", "comment": "x"});
    let (status, body) = server.post_json("/api/v1/silences", &bad_regex).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("matchers[0]"))
    );
    let nul = json!({"matchers": [{"name": "rule", "value": "mem_tiny"}],
                     "ends_at": "2999-01-01T00:00:00Z", "comment": "known\u{0}"});
    let (status, body) = server.post_json("/api/v1/silences", &nul).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("comment")),
        "{body}"
    );

    let silence = json!({"matchers": [{"name": "rule", "value": "mem_.*", "is_regex": true}],
                         "ends_at": "2999-01-01T00:00:00Z", "comment": "known, being fixed"});
    let (status, created) = server.post_json("/api/v1/silences", &silence).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["created_by"], "admin");
    assert_eq!(created["state"], "active");
    let silence_id = created["id"].as_i64().unwrap();

    agents_up(&server, 2).await;
    let firing = wait_for(
        "two silenced firing alerts",
        Duration::from_secs(30),
        || async {
            let (_, alerts) = server
                .get("/api/v1/alerts?state=firing&pool=web&level=warning")
                .await;
            let alerts = alerts.as_array()?.clone();
            let silenced = alerts
                .iter()
                .filter(|a| a["rule"] == "mem_tiny" && a["silenced_by"] == json!([silence_id]))
                .count();
            (silenced == 2).then_some(alerts)
        },
    )
    .await;
    // Past the group wait with the controller looking: a message would have been sent.
    server.alerts_looked_at(now_ms() + 5_000).await;
    assert!(
        receiver.bodies().is_empty(),
        "silenced: {:?}",
        receiver.bodies()
    );

    let id = firing.iter().find(|a| a["rule"] == "mem_tiny").unwrap()["id"]
        .as_u64()
        .unwrap();
    let (status, acked) = server
        .post_json(&format!("/api/v1/alerts/{id}/ack"), &json!(null))
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["acked"][0], "admin");
    let (status, _) = server
        .post_json("/api/v1/alerts/999/ack", &json!(null))
        .await;
    assert_eq!(status, 404);
    let (status, body) = server.get("/api/v1/alerts?level=loud").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("level"))
    );

    let client = reqwest::Client::new();
    let deleted = client
        .delete(format!("{}/api/v1/silences/{silence_id}", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let message = wait_for(
        "the message once unsilenced",
        Duration::from_secs(20),
        || async { receiver.bodies().into_iter().next() },
    )
    .await;
    assert_eq!(message["title"], "[FIRING:2] web mem_tiny");
    let (_, all) = server.get("/api/v1/silences").await;
    assert_eq!(all[0]["state"], "expired", "{all}");
}

#[tokio::test]
async fn the_alert_history_pages_back_through_every_state_change() {
    let server = Server::start(
        "[global]\nsampling_interval_secs = 1\nheartbeat_timeout_secs = 30\n\
         [pools.edge]\nmin_agents = 0\ndriver = { type = \"none\" }\n\
         [alert_defaults]\nenabled = false\n\
         [[alerts]]\nname = \"queue_deep\"\nmetric = \"queue_size\"\nabove = 100\nfor_secs = 0\n",
    );
    // Each agent's alert fires, then resolves.
    for value in [150.0, 10.0] {
        let batch: Vec<Value> = ["e-1", "e-2"]
            .iter()
            .map(|a| json!({"agent": a, "metric": "queue_size", "value": value, "labels": {"pool": "edge"}}))
            .collect();
        let (status, body) = server.post_json("/api/v1/samples", &json!(batch)).await;
        assert_eq!(status, 200, "{body}");
        wait_for(
            "the alerts in their new state",
            Duration::from_secs(10),
            || async {
                let (_, alerts) = server.get("/api/v1/alerts").await;
                let want = if value > 100.0 { "firing" } else { "resolved" };
                let alerts = alerts.as_array()?.clone();
                (alerts.len() == 2 && alerts.iter().all(|a| a["state"] == want)).then_some(())
            },
        )
        .await;
    }
    // Page by page, two rows at a time, following the Link header.
    let rows: Vec<Value> = server
        .pages("/api/v1/alerts/history?limit=2", 2)
        .await
        .concat();
    let mine: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r["agent"] == "e-2")
        .map(|r| {
            (
                r["from_state"].as_str().unwrap().into(),
                r["to_state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let firing = mine.iter().position(|(_, to)| to == "firing");
    let resolved = mine.iter().position(|(_, to)| to == "resolved");
    assert!(
        resolved < firing,
        "newest first, resolved after firing: {mine:?}"
    );
    let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "no row twice: {seqs:?}"
    );
    // Each row says what the alert watches and means.
    let row = &rows[0];
    assert_eq!(
        (row["metric"].as_str(), row["threshold"].as_f64()),
        (Some("queue_size"), Some(100.0)),
        "{row}"
    );
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .starts_with("queue_size above 100 on e-"),
        "{row}"
    );
    // The alerts themselves page oldest first, following the Link header.
    let alerts: Vec<u64> = server
        .pages("/api/v1/alerts?limit=1", 1)
        .await
        .concat()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert!(alerts.len() == 2 && alerts[0] < alerts[1], "{alerts:?}");
    let (_, only) = server.get("/api/v1/alerts/history?agent=e-1").await;
    assert!(
        only.as_array().unwrap().iter().all(|r| r["agent"] == "e-1"),
        "{only}"
    );
    let (status, body) = server.get("/api/v1/alerts/history?limit=0").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "limit", "{body}");
}
