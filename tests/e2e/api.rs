use std::time::Duration;

use crate::util::{Server, wait_for};

const POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.web]
min_agents = 1
max_agents = 2
"#;

#[tokio::test]
async fn endpoints_require_the_token_and_answer_json_errors() {
    let server = Server::start(POLICY);
    let (status, body) = server.get_as("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, body) = server.get_as("/api/v1/agents", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["field"], "Authorization");
    let (status, _) = server.get_as("/api/v1/agents", Some("wrong")).await;
    assert_eq!(status, 401);

    let (status, body) = server.get("/api/v1/log?since=yesterday").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "since");
    let (status, body) = server.get("/api/v1/actions/abc").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("id")));
    let (status, _) = server.get("/api/v1/actions/999").await;
    assert_eq!(status, 404);
    let (status, body) = server.get("/api/v1/nothing-here").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn pools_agents_actions_and_log_describe_the_fleet() {
    let server = Server::start(POLICY);
    let agents = wait_for(
        "the pool to reach min_agents",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            (agents.len() == 1 && agents[0]["metrics"]["cpu_percent"].is_number()).then_some(agents)
        },
    )
    .await;
    let agent = &agents[0];
    assert_eq!(agent["pool"], "web");
    assert!(
        agent["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(agent["metrics"]["memory_bytes"].as_f64().unwrap() > 0.0);

    let (status, detail) = server
        .get(&format!("/api/v1/agents/{}", agent["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert!(!detail["cpu_series"].as_array().unwrap().is_empty());
    let score = detail["anomaly_scores"]["cpu_percent"]
        .as_f64()
        .expect("cpu is watched");
    assert!((0.0..=1.0).contains(&score));

    let (_, pools) = server.get("/api/v1/pools").await;
    assert_eq!(pools[0]["name"], "web");
    assert_eq!(pools[0]["agents"], 1);
    assert_eq!(
        (
            pools[0]["min_agents"].as_u64(),
            pools[0]["max_agents"].as_u64()
        ),
        (Some(1), Some(2))
    );

    let (_, actions) = server.get("/api/v1/actions").await;
    assert_eq!(actions[0]["kind"], "scale");
    assert_eq!(actions[0]["state"], "applied");
    assert_eq!(
        actions[0]["change"],
        serde_json::json!({"type": "scale", "from": 0, "to": 1})
    );
    assert_eq!(
        actions[0]["inverse"],
        serde_json::json!({"type": "scale", "from": 1, "to": 0})
    );

    let log = server.log().await;
    let transitions: Vec<&str> = log
        .iter()
        .rev()
        .map(|row| row["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["proposed", "applying", "applied"]);
    assert!(
        log.iter()
            .all(|row| row["actor"] == "auto" && row["pool"] == "web")
    );
    let (_, filtered) = server.get("/api/v1/log?pool=other").await;
    assert_eq!(filtered, serde_json::json!([]));
}

#[tokio::test]
async fn tokens_configured_in_policy_carry_their_roles() {
    let secrets = tempfile::tempdir().unwrap();
    let viewer_file = secrets.path().join("vera.token");
    std::fs::write(&viewer_file, "vera-secret\n").unwrap();
    let policy = format!(
        "{POLICY}[[global.tokens]]\nname = \"vera\"\nrole = \"viewer\"\ntoken_file = \"{}\"\n",
        viewer_file.display()
    );
    let server = Server::start(&policy);
    let (status, _) = server.get_as("/api/v1/pools", Some("vera-secret")).await;
    assert_eq!(status, 200);
    let empty = serde_json::json!(null);
    let (status, body) = server
        .post_json_as("/api/v1/policies/reload", &empty, "vera-secret")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(body["error"]["field"], "Authorization");
    let scale = serde_json::json!({"pool": "web", "change": {"type": "scale", "to": 2}});
    let (status, _) = server
        .post_json_as("/api/v1/actions", &scale, "vera-secret")
        .await;
    assert_eq!(status, 403);
    let (status, _) = server.post_json("/api/v1/policies/reload", &empty).await;
    assert_eq!(status, 200, "the admin may");
}

#[tokio::test]
async fn recommendations_include_what_policy_does_not_let_apply() {
    let policy = "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 2\nmax_agents = 3\n\
                  [automation]\nauto_apply = [\"restart\"]\n";
    let server = Server::start(policy);
    let recommendation = wait_for("a recommendation", Duration::from_secs(10), || async {
        let (_, list) = server.get("/api/v1/recommendations").await;
        list.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(recommendation["pool"], "web");
    assert_eq!(recommendation["kind"], "scale");
    assert_eq!(
        recommendation["change"],
        serde_json::json!({"type": "scale", "from": 0, "to": 2})
    );
    assert_eq!(recommendation["auto_apply"], false);
    let status = recommendation["status"].as_str().unwrap();
    assert!(
        status.contains("auto_apply does not include scale"),
        "{status}"
    );
    assert!(
        recommendation["reason"]
            .as_str()
            .unwrap()
            .contains("below min_agents")
    );
    assert!(server.agents().await.is_empty(), "not applied");
    // The gate holds a kind policy does not let apply by itself for a person's approval.
    let (_, actions) = server.get("/api/v1/actions").await;
    assert_eq!(actions.as_array().unwrap().len(), 1, "{actions}");
    assert_eq!(actions[0]["state"], "pending_approval");
    assert_eq!(actions[0]["risk"]["class"], "low");
    assert_eq!(actions[0]["risk"]["mode"], "approval");
}
