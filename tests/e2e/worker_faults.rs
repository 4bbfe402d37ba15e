//! The bundled worker's slow-down fault (`POST /chaos/slow`), with which a test or a demo
//! makes a worker's response time step up; detecting such a step within two minutes is
//! checked on the detector itself (`analytics::anomaly` tests), since a live detector needs
//! its warm-up and history first.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, client, wait_for};

const POLICY: &str = "[pools.worker]\nmin_agents = 1\nmax_agents = 1\n";

async fn task_latency_ms(endpoint: &str) -> f64 {
    let reply: Value = client()
        .post(format!("{endpoint}/work"))
        .json(&json!({ "cpu_ms": 20.0 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["latency_ms"].as_f64().unwrap()
}

#[tokio::test]
async fn a_slowed_worker_takes_three_times_as_long_and_a_bad_factor_is_refused() {
    let server = Server::start(POLICY);
    let agent = wait_for("an agent", Duration::from_secs(30), || async {
        let agents = server.agents().await;
        agents
            .first()
            .filter(|a| a["endpoint"].is_string())
            .cloned()
    })
    .await;
    let endpoint = agent["endpoint"].as_str().unwrap();
    let healthy = task_latency_ms(endpoint).await;
    assert!(healthy >= 20.0, "{healthy}");

    let slow = |factor: f64| {
        client()
            .post(format!("{endpoint}/chaos/slow"))
            .json(&json!({ "factor": factor }))
            .send()
    };
    assert_eq!(slow(3.0).await.unwrap().status(), 200);
    // The task burns 20 ms of CPU (at least 20 ms of wall time), then waits twice as long.
    let slowed = task_latency_ms(endpoint).await;
    assert!(slowed >= 60.0, "{slowed} ms");

    let refused = slow(0.5).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["field"], "factor", "{body}");

    assert_eq!(slow(1.0).await.unwrap().status(), 200);
    let recovered = task_latency_ms(endpoint).await;
    assert!(
        recovered < slowed,
        "{recovered} ms after the fault was lifted"
    );
}
