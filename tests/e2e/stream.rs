use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::gate::{agents_up, with_people};
use crate::util::{Server, wait_for};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const POLICY: &str = "[global]\nsampling_interval_secs = 1\n\
    [pools.web]\nmin_agents = 1\nmax_agents = 3\ndrain_ms = 0\n\
    [automation.verification]\nwindow_secs = 0\n\
    [pools.external]\ndriver = { type = \"none\" }\nmax_agents = 10000\n";

fn ws_url(server: &Server, query: &str) -> String {
    format!(
        "{}/api/v1/stream?{query}",
        server.url.replacen("http", "ws", 1)
    )
}

/// Opens the stream with `query`, authenticated by `token` in the header when given.
async fn open(server: &Server, query: &str, token: Option<&str>) -> Result<Socket, String> {
    let mut request = ws_url(server, query).into_client_request().unwrap();
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.headers_mut().insert("Authorization", value);
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
        .map_err(|error| error.to_string())
}

/// The next JSON message, within `secs` seconds.
async fn next(socket: &mut Socket, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a message in time")
            .expect("the stream open")
            .expect("a good frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Reads until `pick` finds what it looks for, within `secs` seconds.
async fn until<T>(socket: &mut Socket, secs: u64, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next(socket, left.as_secs().max(1)).await;
        if let Some(found) = pick(&event) {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "not found in time");
    }
}

#[tokio::test]
async fn a_snapshot_then_every_transition_of_an_action_live() {
    let server = Server::start(POLICY);
    agents_up(&server, 1).await;
    let mut socket = open(
        &server,
        "topics=actions,fleet&pool=web",
        Some(&server.token),
    )
    .await
    .unwrap();
    let snapshot = next(&mut socket, 5).await;
    assert_eq!(snapshot["topic"], "snapshot", "{snapshot}");
    assert_eq!(
        snapshot["agents"].as_array().unwrap().len(),
        1,
        "{snapshot}"
    );
    assert_eq!(snapshot["role"], "admin");

    let grow = json!({"pool": "web", "change": {"type": "scale", "to": 2}});
    let (status, action) = server.post_json("/api/v1/actions", &grow).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    let mut seen = Vec::new();
    let mut joined = false;
    until(&mut socket, 30, |event| {
        match event["topic"].as_str() {
            Some("actions") if event["entry"]["action_id"] == id => {
                seen.push(event["entry"]["to_state"].as_str().unwrap().to_string());
            }
            Some("fleet") if event["event"] == "joined" => joined = true,
            _ => {}
        }
        (joined && seen.last().map(String::as_str) == Some("applied")).then_some(())
    })
    .await;
    assert_eq!(seen, ["proposed", "applying", "applied"], "{seen:?}");
}

#[tokio::test]
async fn tickets_are_single_use_carry_the_role_and_filters_hold() {
    let secrets = tempfile::tempdir().unwrap();
    let extra = "[pools.external]\ndriver = { type = \"none\" }\n";
    let server = Server::start(&with_people(secrets.path(), extra));
    // No token, a bad topic: refused before any upgrade.
    assert!(open(&server, "", None).await.unwrap_err().contains("401"));
    let refused = open(&server, "topics=nope", Some(&server.token)).await;
    assert!(refused.unwrap_err().contains("400"));

    let (status, ticket) = server
        .post_json_as("/api/v1/stream/ticket", &json!(null), "vera-secret")
        .await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(ticket["role"], "viewer");
    let query = format!(
        "topics=samples&agent=edge-2&ticket={}",
        ticket["ticket"].as_str().unwrap()
    );
    let mut socket = open(&server, &query, None).await.unwrap();
    let snapshot = next(&mut socket, 5).await;
    assert_eq!(snapshot["role"], "viewer", "{snapshot}");
    assert!(
        open(&server, &query, None)
            .await
            .unwrap_err()
            .contains("401"),
        "single use"
    );

    // Only edge-2's samples come, though edge-1 reports too.
    for value in [1.0, 2.0, 3.0] {
        let batch = json!([
            {"agent": "edge-1", "metric": "queue_size", "value": value, "labels": {"pool": "external"}},
            {"agent": "edge-2", "metric": "queue_size", "value": value, "labels": {"pool": "external"}},
        ]);
        let (status, body) = server.post_json("/api/v1/samples", &batch).await;
        assert_eq!(status, 200, "{body}");
    }
    let event = next(&mut socket, 10).await;
    assert_eq!(event["topic"], "samples", "{event}");
    let ids: Vec<&str> = event["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["edge-2"], "{event}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_the_reason_and_dropped() {
    let server = Server::start(POLICY);
    let mut slow = open(&server, "topics=samples", Some(&server.token))
        .await
        .unwrap();
    // 4,000 agents: a samples message of about 2 MB a second, and the client reads nothing.
    let url = format!("{}/api/v1/samples", server.url);
    let token = server.token.clone();
    let load = tokio::spawn(async move {
        let client = crate::util::client();
        for round in 0.. {
            let batch: Vec<Value> = (0..4000)
                .map(|n| {
                    json!({"agent": format!("load-{n}"), "metric": "queue_size",
                                "value": round, "labels": {"pool": "external"}})
                })
                .collect();
            if client
                .post(&url)
                .bearer_auth(&token)
                .json(&batch)
                .send()
                .await
                .is_err()
            {
                break;
            }
        }
    });
    wait_for(
        "the slow client dropped",
        Duration::from_secs(90),
        || async {
            let log = server.log_text();
            log.contains("Stream client fell behind").then_some(())
        },
    )
    .await;
    load.abort();
    // Reading now, the client finds what was queued, then the close frame with the reason.
    let reason = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = slow.next().await {
            match frame {
                Ok(Message::Close(Some(close))) => return close.reason.to_string(),
                Ok(_) => continue,
                Err(error) => return format!("error: {error}"),
            }
        }
        "ended without a close frame".to_string()
    })
    .await
    .expect("the stream ends in time");
    assert!(reason.contains("fell behind"), "{reason}");
}
