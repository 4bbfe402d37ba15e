//! The http driver against a real actix-web server on a loopback port.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::drivers::fake::{FakeServer, Reply};

fn driver(server: &FakeServer, retries: u32, timeout: Duration) -> HttpDriver {
    HttpDriver::new(HttpConfig {
        pool: "web".into(),
        url: format!("{}/swarm", server.url),
        timeout,
        retries,
        backoff: Duration::from_millis(10),
        token: Some(Secret::new("s3cret")),
    })
    .unwrap()
}

/// An orchestrator that runs whatever size it was last asked for (starting at 2).
fn orchestrator() -> FakeServer {
    let size = std::sync::Mutex::new(2);
    FakeServer::start(move |request, _| {
        let body = request.json();
        let mut size = size.lock().unwrap();
        if let Some(to) = body["to"].as_u64() {
            *size = to;
        }
        match body["action"].as_str() {
            Some("restart") => Reply::json(200, json!({"endpoint": "http://10.0.0.7:8080"})),
            _ => Reply::json(200, json!({"size": *size, "ready": *size})),
        }
    })
}

#[tokio::test]
async fn each_verb_posts_the_documented_body_and_reads_the_state_back() {
    let server = orchestrator();
    let driver = driver(&server, 0, Duration::from_secs(5));
    assert!(driver.remote());

    assert_eq!(driver.size().await.unwrap(), 2);
    assert_eq!(driver.scale_to(3).await.unwrap(), 3);
    let handle = driver.restart("web-2").await.unwrap();
    assert_eq!(
        (handle.id.as_str(), handle.pool.as_str(), handle.pid),
        ("web-2", "web", None)
    );
    assert_eq!(handle.endpoint.as_deref(), Some("http://10.0.0.7:8080"));
    let weights = BTreeMap::from([("web-1".to_string(), 0.75), ("web-2".to_string(), 0.25)]);
    driver.set_weights(&weights).await.unwrap();

    let requests = server.requests();
    let bodies: Vec<_> = requests.iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies,
        [
            json!({"pool": "web", "action": "state"}),
            json!({"pool": "web", "action": "scale", "to": 3}),
            json!({"pool": "web", "action": "restart", "agent": "web-2"}),
            json!({"pool": "web", "action": "set_weights", "weights": {"web-1": 0.75, "web-2": 0.25}}),
        ]
    );
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/swarm")
        );
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.authorization.as_deref(), Some("Bearer s3cret"));
    }
    server.stop().await;
}

#[tokio::test]
async fn the_orchestrator_owns_the_agents() {
    let server = orchestrator();
    let driver = driver(&server, 0, Duration::from_secs(5));
    assert!(matches!(
        driver.start().await,
        Err(DriverError::Unsupported { driver: "http", .. })
    ));
    assert!(matches!(
        driver.stop("web-1").await,
        Err(DriverError::Unsupported { driver: "http", .. })
    ));
    assert!(driver.list().is_empty());
    driver.shutdown().await.unwrap();
    assert!(
        server.requests().is_empty(),
        "shutdown must not scale to zero"
    );
    assert!(!format!("{:?}", driver.config).contains("s3cret"));
    server.stop().await;
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds() {
    let server = FakeServer::start(|_, index| match index {
        0 => Reply::json(500, json!({"error": "leader election"})),
        _ => Reply::json(200, json!({"size": 4})),
    });
    let driver = driver(&server, 3, Duration::from_secs(5));
    assert_eq!(driver.scale_to(4).await.unwrap(), 4);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same request again");
    server.stop().await;
}

#[tokio::test]
async fn a_5xx_that_persists_fails_after_the_retries() {
    let server = FakeServer::start(|_, _| Reply::json(503, json!({"error": "overloaded"})));
    let driver = driver(&server, 2, Duration::from_secs(5));
    let error = driver.scale_to(4).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Refused { status: 503, message, .. } if message.contains("overloaded")),
        "{error}"
    );
    assert_eq!(server.requests().len(), 3, "one try and two retries");
    server.stop().await;
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let server =
        FakeServer::start(|_, _| Reply::json(422, json!({"error": "to is above the quota"})));
    let driver = driver(&server, 3, Duration::from_secs(5));
    let error = driver.scale_to(40).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, DriverError::Refused { status: 422, .. }),
        "{text}"
    );
    assert!(
        text.contains("/swarm answered 422") && text.contains("above the quota"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_request_without_an_answer_times_out_and_is_retried() {
    let server = FakeServer::start(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, json!({"size": 1}))
    });
    let driver = driver(&server, 1, Duration::from_millis(150));
    let started = std::time::Instant::now();
    let error = driver.size().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&error, DriverError::Refused { status: 0, message, .. } if message == "no answer within 150 ms"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn an_answer_without_size_is_an_error() {
    let server = FakeServer::start(|_, _| Reply::json(200, json!({"ok": true})));
    let driver = driver(&server, 3, Duration::from_secs(5));
    let error = driver.scale_to(2).await.unwrap_err().to_string();
    assert!(
        error.contains("the answer to `scale` has no `size`"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn no_server_is_a_transport_error_with_status_0() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = HttpDriver::new(HttpConfig {
        pool: "web".into(),
        url: format!("http://127.0.0.1:{port}/swarm"),
        timeout: Duration::from_secs(2),
        retries: 1,
        backoff: Duration::from_millis(10),
        token: None,
    })
    .unwrap();
    let error = driver.size().await.unwrap_err().to_string();
    assert!(
        error.contains("/swarm did not answer: ") && error.contains("Connection refused"),
        "{error}"
    );
}
