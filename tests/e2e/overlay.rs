use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, wait_for};

const POOLS: &str =
    "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 1\nmax_agents = 3\n";
const RULES: &str =
    "[[alerts]]\nname = \"cpu_probe\"\nmetric = \"cpu_percent\"\nabove = 1000\npool = \"web\"\n";

async fn one_agent(server: &Server) {
    wait_for("one agent", Duration::from_secs(20), || async {
        (server.agents().await.len() == 1).then_some(())
    })
    .await;
}

async fn request(server: &Server, body: Value) -> Value {
    let (status, action) = server.post_json("/api/v1/actions", &body).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    wait_for(
        "the action to be applied and verified",
        Duration::from_secs(40),
        || async {
            let (_, action) = server.get(&format!("/api/v1/actions/{id}")).await;
            (action["state"] == "applied").then_some(action)
        },
    )
    .await
}

fn transitions(log: &[Value], id: i64) -> Vec<(String, String)> {
    log.iter()
        .rev()
        .filter(|row| row["action_id"] == id)
        .map(|row| {
            (
                row["to_state"].as_str().unwrap().to_string(),
                row["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_threshold_overlay_survives_a_restart_and_disappears_on_rollback() {
    let mut server = Server::start_dir(&[("10-pools.toml", POOLS), ("20-rules.toml", RULES)]);
    one_agent(&server).await;
    let rules_file = server.policies_dir().join("20-rules.toml");

    let change = json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "cpu_probe", "to": 500}});
    let action = request(&server, change).await;
    let id = action["id"].as_i64().unwrap();
    assert_eq!(
        action["change"],
        json!({"type": "adjust_threshold", "rule": "cpu_probe", "from": 1000.0, "to": 500.0})
    );

    let (_, status) = server.get("/api/v1/policies").await;
    assert_eq!(status["policy"]["alerts"][0]["above"], 500.0);
    assert_eq!(
        status["overlay"][0]["action_id"], id,
        "provenance: {status}"
    );
    assert_eq!(status["overlay"][0]["previous"], 1000.0);
    assert_eq!(
        std::fs::read_to_string(&rules_file).unwrap(),
        RULES,
        "operator's file untouched"
    );

    server.restart();
    one_agent(&server).await;
    let (_, status) = server.get("/api/v1/policies").await;
    assert_eq!(
        status["policy"]["alerts"][0]["above"], 500.0,
        "overlay survives a restart"
    );
    assert_eq!(status["overlay"][0]["action_id"], id);

    let (code, rolled) = server
        .post_json(&format!("/api/v1/actions/{id}/rollback"), &json!(null))
        .await;
    assert_eq!(code, 200, "{rolled}");
    assert_eq!(rolled["state"], "rolled_back");
    let (_, status) = server.get("/api/v1/policies").await;
    assert_eq!(status["policy"]["alerts"][0]["above"], 1000.0);
    assert_eq!(status["overlay"], json!([]));
    assert!(
        status["history"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+above = 1000.0")
    );

    let log = server.log().await;
    // The admin is an approver, so their request counts as the approval it needs.
    let expected: Vec<(String, String)> = [
        ("proposed", "admin"),
        ("approved", "admin"),
        ("applying", "auto"),
        ("verifying", "auto"),
        ("applied", "auto"),
        ("rolling_back", "admin"),
        ("rolled_back", "admin"),
    ]
    .iter()
    .map(|(s, a)| (s.to_string(), a.to_string()))
    .collect();
    assert_eq!(transitions(&log, id), expected);

    let (code, again) = server
        .post_json(&format!("/api/v1/actions/{id}/rollback"), &json!(null))
        .await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
}

#[tokio::test]
async fn a_manual_scale_is_rolled_back_through_rest() {
    let server = Server::start_dir(&[("10-pools.toml", POOLS)]);
    one_agent(&server).await;
    let action = request(
        &server,
        json!({"pool": "web", "change": {"type": "scale", "to": 2}, "reason": "more capacity"}),
    )
    .await;
    let id = action["id"].as_i64().unwrap();
    assert_eq!(
        action["inverse"],
        json!({"type": "scale", "from": 2, "to": 1})
    );
    assert_eq!(server.agents().await.len(), 2);

    let (code, rolled) = server
        .post_json(&format!("/api/v1/actions/{id}/rollback"), &json!(null))
        .await;
    assert_eq!(code, 200, "{rolled}");
    assert_eq!(server.agents().await.len(), 1, "previous size restored");

    let (code, error) = server
        .post_json(
            "/api/v1/actions",
            &json!({"pool": "web", "change": {"type": "scale", "to": 9}}),
        )
        .await;
    assert_eq!(
        (code, error["error"]["field"].as_str()),
        (400, Some("change.to"))
    );
    let (code, error) = server
        .post_json("/api/v1/actions", &json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "nope", "to": 1}}))
        .await;
    assert_eq!(
        (code, error["error"]["field"].as_str()),
        (400, Some("change.rule"))
    );
}
