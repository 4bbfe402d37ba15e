//! What the gate refuses: a busy pool, an approved action the pool outgrew while it waited,
//! a forbidden class, rollbacks by the wrong role or after the rollback window.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, rows, state_of, wait_state, with_people};
use crate::util::{Server, wait_for};

/// Approves action `id` as the holder of `token`, with `body` (a comment or null).
async fn approve(server: &Server, id: i64, body: Value, token: &str) -> (u16, Value) {
    server
        .post_json_as(&format!("/api/v1/actions/{id}/approve"), &body, token)
        .await
}

/// Approves the scale from 0 that fills the pool at start, which these policies hold for an
/// approver too, and waits for the agents.
async fn fill_by_approval(server: &Server) -> Vec<Value> {
    let id = wait_for("the fill waiting", Duration::from_secs(15), || async {
        let (_, pending) = server.get("/api/v1/actions?status=pending_approval").await;
        pending.as_array()?.first()?["id"].as_i64()
    })
    .await;
    let (status, body) = approve(server, id, json!(null), "ann-secret").await;
    assert_eq!(status, 200, "{body}");
    wait_state(server, id, "applied", 30).await;
    agents_up(server, 2).await
}

fn scale_to(n: usize) -> Value {
    json!({"pool": "web", "change": {"type": "scale", "to": n}})
}

#[tokio::test]
async fn an_approved_scale_the_pool_outgrew_is_superseded_and_a_busy_pool_refuses() {
    let secrets = tempfile::tempdir().unwrap();
    // Every class waits for an approver, so two scales can wait side by side.
    let extra = "[automation.risk_classes]\nlow = \"approval\"\nmedium = \"approval\"\n";
    let server = Server::start(&with_people(secrets.path(), extra));
    fill_by_approval(&server).await;
    let (_, before) = server.get("/api/v1/actions").await;
    let before = before.as_array().unwrap().len();

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, action) = server
            .post_json_as("/api/v1/actions", &scale_to(3), "otto-secret")
            .await;
        assert_eq!(status, 202, "{action}");
        assert_eq!(action["state"], "pending_approval", "{action}");
        assert_eq!(
            action["change"],
            json!({"type": "scale", "from": 2, "to": 3})
        );
        ids.push(action["id"].as_i64().unwrap());
    }
    let (first, second) = (ids[0], ids[1]);

    let (status, body) = approve(&server, first, json!(null), "ann-secret").await;
    assert_eq!(status, 200, "{body}");
    // While the first is applied and verified, the pool takes no other action.
    let agent = server.agents().await[0]["id"].as_str().unwrap().to_string();
    let restart = json!({"pool": "web", "change": {"type": "restart", "agent": agent}});
    let (status, body) = server
        .post_json_as("/api/v1/actions", &restart, "otto-secret")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(message, format!("pool web is busy with action {first}"));
    let (_, actions) = server.get("/api/v1/actions").await;
    assert_eq!(
        actions.as_array().unwrap().len(),
        before + 2,
        "nothing recorded"
    );

    wait_state(&server, first, "applied", 30).await;
    assert_eq!(agents_up(&server, 3).await.len(), 3);

    // The second assumed two agents; the pool has three now, so it is not applied.
    let (status, body) = approve(&server, second, json!({"comment": "go"}), "abe-secret").await;
    assert_eq!(status, 200, "{body}");
    let superseded = wait_state(&server, second, "superseded", 10).await;
    assert_eq!(superseded["approvals"][0]["by"], "abe");
    let log = server.log().await;
    assert_eq!(
        rows(&log, second),
        ["proposed", "pending_approval", "approved", "superseded"]
    );
    let row = log
        .iter()
        .find(|r| r["action_id"] == second && r["to_state"] == "superseded")
        .unwrap();
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.contains("re-checked before applying") && reason.contains("it has 3 agents, not 2"),
        "{reason}"
    );
    // No action is applying in the pool: nothing is starting a fourth agent.
    wait_for("the pool idle", Duration::from_secs(10), || async {
        let (_, pools) = server.get("/api/v1/pools").await;
        let web = pools.as_array()?.iter().find(|p| p["name"] == "web")?;
        web.get("action_in_flight")?.is_null().then_some(())
    })
    .await;
    assert_eq!(server.agents().await.len(), 3, "no fourth agent");
}

#[tokio::test]
async fn forbidden_classes_are_rejected_and_rollbacks_need_an_approver_within_the_window() {
    let secrets = tempfile::tempdir().unwrap();
    // Nothing applies by itself (so no automatic scale-in undoes the scale-out below), but an
    // approver's own request counts as her approval.
    let extra = "[automation]\nrollback_window_secs = 6\nauto_apply = []\n\
                 [automation.risk_classes]\nmedium = \"forbidden\"\n";
    let server = Server::start(&with_people(secrets.path(), extra));
    let agents = fill_by_approval(&server).await;

    // A restart is classed medium, which this policy forbids: rejected by policy at once.
    let agent = agents[0]["id"].as_str().unwrap();
    let restart = json!({"pool": "web", "change": {"type": "restart", "agent": agent}});
    let (status, action) = server
        .post_json_as("/api/v1/actions", &restart, "ann-secret")
        .await;
    assert_eq!(status, 202, "{action}");
    assert_eq!(action["state"], "rejected", "{action}");
    assert_eq!(action["risk"]["mode"], "forbidden");
    let id = action["id"].as_i64().unwrap();
    let log = server.log().await;
    assert_eq!(rows(&log, id), ["proposed", "rejected"]);
    let reason = log[0]["reason"].as_str().unwrap();
    assert!(reason.contains("policy forbids class medium"), "{reason}");
    assert_eq!(log[0]["actor"], "policy");
    let (status, body) = approve(&server, id, json!(null), "abe-secret").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    assert_eq!(agents_up(&server, 2).await[0]["pid"], agents[0]["pid"]);

    // A scale applies; only an approver may roll it back, and only for a while.
    let (status, action) = server
        .post_json_as("/api/v1/actions", &scale_to(3), "ann-secret")
        .await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    let applied = wait_state(&server, id, "applied", 30).await;
    let applied_ms = applied["updated_ms"].as_i64().unwrap();
    let rollback = format!("/api/v1/actions/{id}/rollback");
    for (token, who) in [("vera-secret", "viewer"), ("otto-secret", "operator")] {
        let (status, body) = server.post_json_as(&rollback, &json!(null), token).await;
        assert_eq!(status, 403, "a {who} may not roll back: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    for (path, who) in [
        ("pause", "viewer"),
        ("resume", "viewer"),
        ("resume", "approver"),
    ] {
        let token = if who == "viewer" {
            "vera-secret"
        } else {
            "ann-secret"
        };
        let (status, _) = server
            .post_json_as(&format!("/api/v1/automation/{path}"), &json!(null), token)
            .await;
        assert_eq!(status, 403, "a {who} may not {path}");
    }
    // The server refuses once its clock (this host's) is more than the window past the apply.
    wait_for(
        "the rollback window over",
        Duration::from_secs(15),
        || async { (swarmpilot::clock::now_ms() - applied_ms > 6_000).then_some(()) },
    )
    .await;
    let (status, body) = server
        .post_json_as(&rollback, &json!(null), "ann-secret")
        .await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("applied more than 6 s ago"), "{message}");
    assert_eq!(state_of(&server, id).await["state"], "applied");
    assert_eq!(server.agents().await.len(), 3, "still scaled out");
}

#[tokio::test]
async fn a_rollback_below_min_agents_or_of_a_pool_that_moved_on_is_refused_with_the_reason() {
    let policy = |min: usize| {
        format!(
            "[global]\nsampling_interval_secs = 1\n\
             [pools.web]\nmin_agents = {min}\nmax_agents = 3\ndrain_ms = 0\n\
             [automation.verification]\nwindow_secs = 0\n"
        )
    };
    let server = Server::start(&policy(1));
    agents_up(&server, 1).await;
    let (status, grow) = server.post_json("/api/v1/actions", &scale_to(3)).await;
    assert_eq!(status, 202, "{grow}");
    let id = grow["id"].as_i64().unwrap();
    wait_state(&server, id, "applied", 30).await;
    agents_up(&server, 3).await;
    let rollback = format!("/api/v1/actions/{id}/rollback");

    // The policy now wants three at least: undoing would leave one.
    with_min(&server, policy(3), 3).await;
    let (status, body) = server.post_json(&rollback, &json!(null)).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("below its min_agents 3"), "{message}");

    // Back to one; the pool moves on, to two at our request or to one by the optimizer's
    // own scale-in of the idle pool, whichever starts first: either way the rollback's
    // starting point is gone.
    with_min(&server, policy(1), 1).await;
    let (status, shrink) = server.post_json("/api/v1/actions", &scale_to(2)).await;
    let ours = status == 202;
    let moving = match status {
        202 => shrink["id"].as_i64().unwrap(),
        409 => {
            let message = shrink["error"]["message"].as_str().unwrap();
            assert!(message.contains("busy with action"), "{message}");
            message.rsplit(' ').next().unwrap().parse().unwrap()
        }
        _ => panic!("{status}: {shrink}"),
    };
    wait_state(&server, moving, "applied", 30).await;
    let (status, body) = server.post_json(&rollback, &json!(null)).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("stale"), "{message}");
    assert_eq!(state_of(&server, id).await["state"], "applied");
    if ours {
        agents_up(&server, 2).await;
    }
}

/// Rewrites the policy file to `text` and waits until `min_agents` of `web` is `min`.
async fn with_min(server: &Server, text: String, min: usize) {
    std::fs::write(server.policies_dir().join("test.toml"), text).unwrap();
    wait_for(
        "the new policy in force",
        Duration::from_secs(10),
        || async {
            let (_, policies) = server.get("/api/v1/policies").await;
            (policies["policy"]["pools"]["web"]["min_agents"] == min).then_some(())
        },
    )
    .await;
}
