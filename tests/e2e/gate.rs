use std::time::Duration;

use serde_json::{Value, json};
use swarmpilot::demo::load::{LoadConfig, LoadGenerator};

use crate::util::{Receiver, Server, alive, pids, wait_for};

/// A policy with a viewer, an operator and two approvers (tokens in files), plus `extra`.
pub(crate) fn with_people(dir: &std::path::Path, extra: &str) -> String {
    let mut policy = String::from(
        "[global]\nsampling_interval_secs = 1\nheartbeat_timeout_secs = 4\n\
         [pools.web]\nmin_agents = 2\nmax_agents = 3\ndrain_ms = 200\n\
         [automation.verification]\nwindow_secs = 3\n",
    );
    for (name, role) in [
        ("vera", "viewer"),
        ("otto", "operator"),
        ("ann", "approver"),
        ("abe", "approver"),
    ] {
        let file = dir.join(format!("{name}.token"));
        std::fs::write(&file, format!("{name}-secret\n")).unwrap();
        policy.push_str(&format!(
            "[[global.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_file = \"{}\"\n",
            file.display()
        ));
    }
    policy.push_str(extra);
    policy
}

pub(crate) async fn agents_up(server: &Server, n: usize) -> Vec<Value> {
    wait_for("the pool filled", Duration::from_secs(30), || async {
        let agents = server.agents().await;
        let ready = agents.iter().filter(|a| a["status"] != "starting").count();
        (agents.len() == n && ready == n).then_some(agents)
    })
    .await
}

pub(crate) async fn state_of(server: &Server, id: i64) -> Value {
    server.get(&format!("/api/v1/actions/{id}")).await.1
}

pub(crate) async fn wait_state(server: &Server, id: i64, state: &str, secs: u64) -> Value {
    wait_for(
        &format!("action {id} {state}"),
        Duration::from_secs(secs),
        || async {
            let action = state_of(server, id).await;
            (action["state"] == state).then_some(action)
        },
    )
    .await
}

/// Waits until action `id` has ended (applied, rolled back or failed); answers it.
pub(crate) async fn settled(server: &Server, id: i64, secs: u64) -> Value {
    wait_for("the action settled", Duration::from_secs(secs), || async {
        let action = state_of(server, id).await;
        matches!(
            action["state"].as_str(),
            Some("applied" | "rolled_back" | "failed")
        )
        .then_some(action)
    })
    .await
}

/// Asks for pool `web` to have `to` agents, as the admin; answers the action's id.
pub(crate) async fn scale_web(server: &Server, to: usize) -> i64 {
    let grow = json!({"pool": "web", "change": {"type": "scale", "to": to}});
    let (status, action) = server.post_json("/api/v1/actions", &grow).await;
    assert_eq!(status, 202, "{action}");
    action["id"].as_i64().unwrap()
}

/// The states action `id` went through, oldest first.
pub(crate) fn rows(log: &[Value], id: i64) -> Vec<String> {
    log.iter()
        .rev()
        .filter(|row| row["action_id"] == id)
        .map(|row| row["to_state"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_restart_waits_for_an_approver_and_a_viewer_cannot_approve() {
    let secrets = tempfile::tempdir().unwrap();
    // Approvers hear about waiting actions through a webhook whose URL is in a file.
    let receiver = Receiver::start();
    let url_file = secrets.path().join("hook.url");
    std::fs::write(&url_file, &receiver.url).unwrap();
    let channel = format!(
        "[channels.approvers]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nmatchers = {{ rule = \"approval_pending\" }}\nchannels = [\"approvers\"]\n",
        url_file.display()
    );
    let server = Server::start(&with_people(secrets.path(), &channel));
    let agents = agents_up(&server, 2).await;
    let agent = agents[0]["id"].as_str().unwrap().to_string();
    let old_pid = agents[0]["pid"].as_u64().unwrap();

    let restart = json!({"pool": "web", "change": {"type": "restart", "agent": agent}});
    let (status, action) = server
        .post_json_as("/api/v1/actions", &restart, "otto-secret")
        .await;
    assert_eq!(status, 202, "{action}");
    assert_eq!(action["state"], "pending_approval", "{action}");
    let id = action["id"].as_i64().unwrap();
    assert_eq!(action["risk"]["class"], "medium");
    assert_eq!(action["risk"]["mode"], "approval");
    assert!(action["expires_ms"].as_i64().unwrap() > swarmpilot::clock::now_ms() + 14 * 60_000);

    let (_, pending) = server.get("/api/v1/actions?status=pending_approval").await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let message = wait_for(
        "the approvers' webhook",
        Duration::from_secs(10),
        || async { receiver.bodies().into_iter().next() },
    )
    .await;
    assert_eq!(message["labels"]["rule"], "approval_pending");
    assert_eq!(message["details"]["id"], id);
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("swarmpilot actions approve {id}")),
        "{text}"
    );
    let counts = wait_for("the delivery counted", Duration::from_secs(5), || async {
        let (_, counts) = server.get("/api/v1/notifications").await;
        (counts["approvers"]["sent"] == 1).then_some(counts)
    })
    .await;
    assert!(
        !counts.to_string().contains(&receiver.url),
        "the URL is a secret"
    );
    let approve = format!("/api/v1/actions/{id}/approve");
    for (token, who) in [("vera-secret", "viewer"), ("otto-secret", "operator")] {
        let (status, body) = server.post_json_as(&approve, &json!(null), token).await;
        assert_eq!(status, 403, "a {who} may not approve: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    assert_eq!(state_of(&server, id).await["state"], "pending_approval");
    // A body that does not read is refused, not taken for no comment; so is text a store or
    // a terminal would choke on. Each names the field.
    for bad in [
        json!(5),
        json!("leak\u{0}confirmed"),
        json!("leak \u{1b}[31mconfirmed"),
    ] {
        let (status, body) = server
            .post_json_as(&approve, &json!({"comment": bad}), "ann-secret")
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("comment")),
            "{body}"
        );
    }
    assert_eq!(state_of(&server, id).await["state"], "pending_approval");
    let (status, body) = server
        .post_json_as(
            &approve,
            &json!({"comment": "leak confirmed\n\tby the heap profile"}),
            "ann-secret",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let done = wait_state(&server, id, "applied", 30).await;
    assert_eq!(done["approvals"][0]["by"], "ann");
    let restarted = server.agents().await;
    let new_pid = restarted
        .iter()
        .find(|a| a["id"] == agent.as_str())
        .and_then(|a| a["pid"].as_u64())
        .unwrap();
    assert_ne!(new_pid, old_pid, "a new incarnation");
    let log = server.log().await;
    assert_eq!(
        rows(&log, id),
        [
            "proposed",
            "pending_approval",
            "approved",
            "applying",
            // The restart's steps: stopped, then started and checked.
            "applying",
            "applying",
            "verifying",
            "applied"
        ]
    );
    let approved = log
        .iter()
        .find(|r| r["action_id"] == id && r["to_state"] == "approved")
        .unwrap();
    assert_eq!(approved["actor"], "ann");
    assert!(
        approved["reason"]
            .as_str()
            .unwrap()
            .contains("leak confirmed\n\tby the heap profile")
    );
}

#[tokio::test]
async fn two_person_actions_need_two_different_approvers_and_expired_ones_never_apply() {
    let secrets = tempfile::tempdir().unwrap();
    let extra = "[automation]\napproval_expiry_secs = 3\n\
                 [automation.risk_classes]\nlow = \"auto\"\nmedium = \"two_person\"\n";
    let server = Server::start(&with_people(secrets.path(), extra));
    let agents = agents_up(&server, 2).await;
    let ask = |agent: &str| json!({"pool": "web", "change": {"type": "restart", "agent": agent}});

    // Left alone, the approval expires and nothing is applied, even if approved late.
    let (_, first) = server
        .post_json_as(
            "/api/v1/actions",
            &ask(agents[0]["id"].as_str().unwrap()),
            "otto-secret",
        )
        .await;
    let first_id = first["id"].as_i64().unwrap();
    let expired = wait_state(&server, first_id, "expired", 15).await;
    assert!(expired["approvals"].as_array().unwrap().is_empty());
    let (status, body) = server
        .post_json_as(
            &format!("/api/v1/actions/{first_id}/approve"),
            &json!(null),
            "ann-secret",
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Two people: the same approver twice is refused; a second one applies it.
    let (_, second) = server
        .post_json_as(
            "/api/v1/actions",
            &ask(agents[1]["id"].as_str().unwrap()),
            "otto-secret",
        )
        .await;
    let id = second["id"].as_i64().unwrap();
    assert_eq!(second["risk"]["mode"], "two_person");
    let approve = format!("/api/v1/actions/{id}/approve");
    let (status, _) = server
        .post_json_as(&approve, &json!(null), "ann-secret")
        .await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&server, id).await["state"], "pending_approval");
    let (status, body) = server
        .post_json_as(&approve, &json!(null), "ann-secret")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_approved"))
    );
    let (status, _) = server
        .post_json_as(&approve, &json!(null), "abe-secret")
        .await;
    assert_eq!(status, 200);
    let done = wait_state(&server, id, "applied", 30).await;
    let by: Vec<&str> = done["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["ann", "abe"]);
    // The late approval was refused at once (409) and expired is final; the actuator has
    // since applied the second action, so had the first been applied its rows would show.
    assert_eq!(
        rows(&server.log().await, first_id),
        ["proposed", "pending_approval", "expired"],
        "never applied"
    );

    // A rejection is final.
    let (_, third) = server
        .post_json_as(
            "/api/v1/actions",
            &ask(agents[0]["id"].as_str().unwrap()),
            "otto-secret",
        )
        .await;
    let third_id = third["id"].as_i64().unwrap();
    let reject = format!("/api/v1/actions/{third_id}/reject");
    let (status, rejected) = server
        .post_json_as(&reject, &json!(null), "abe-secret")
        .await;
    assert_eq!(
        (status, rejected["state"].as_str()),
        (200, Some("rejected"))
    );
}

#[tokio::test]
async fn a_scale_in_that_overloads_the_pool_is_rolled_back_by_its_verification() {
    let secrets = tempfile::tempdir().unwrap();
    // A high target so the optimizer leaves the pool alone; verification wants < 50% CPU.
    let policy = with_people(secrets.path(), "")
        .replace(
            "max_agents = 3\n",
            "max_agents = 3\ntarget_cpu_percent = 95\ntolerance = 0.9\n",
        )
        .replace("min_agents = 2", "min_agents = 1")
        .replace(
            "window_secs = 3\n",
            "window_secs = 20\nmax_cpu_percent = 50\nfailure_limit = 2\n",
        );
    let server = Server::start(&policy);
    agents_up(&server, 1).await;
    let grow = json!({"pool": "web", "change": {"type": "scale", "to": 3}});
    let (status, action) = server.post_json("/api/v1/actions", &grow).await;
    assert_eq!(status, 202, "{action}");
    wait_state(&server, action["id"].as_i64().unwrap(), "applied", 40).await;
    let three = agents_up(&server, 3).await;

    // 40 tasks/s of 20 ms CPU: 80% of a core, about 27% on each of three agents.
    let load = LoadGenerator::start(LoadConfig {
        api: server.url.clone(),
        token: server.token.clone(),
        pool: "web".into(),
        cpu_ms: 20.0,
    });
    load.set_rate("high", 40.0);
    // Idle agents sit near 0%; the smoothed CPU passes 15% after two samples of the load.
    wait_for("the load on the pool", Duration::from_secs(30), || async {
        let (_, pools) = server.get("/api/v1/pools").await;
        let web = pools.as_array()?.iter().find(|p| p["name"] == "web")?;
        (web["mean_cpu_percent"].as_f64()? > 15.0).then_some(())
    })
    .await;
    let garbled =
        json!({"pool": "web", "change": {"type": "scale", "to": 1}, "reason": "save\u{7}money"});
    let (status, body) = server.post_json("/api/v1/actions", &garbled).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("reason")),
        "{body}"
    );
    let shrink =
        json!({"pool": "web", "change": {"type": "scale", "to": 1}, "reason": "save money"});
    let (status, action) = server.post_json("/api/v1/actions", &shrink).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    let undone = wait_state(&server, id, "rolled_back", 60).await;
    load.stop();
    let log = server.log().await;
    assert_eq!(
        rows(&log, id),
        [
            "proposed",
            "applying",
            "verifying",
            "rolling_back",
            "rolled_back"
        ],
        "{undone}"
    );
    let reason = log
        .iter()
        .find(|r| r["action_id"] == id && r["to_state"] == "rolled_back")
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("verification failed") && reason.contains("CPU"),
        "{reason}"
    );
    let back = agents_up(&server, 3).await;
    assert!(pids(&back).iter().all(|&pid| alive(pid)));
    assert_eq!(three.len(), back.len());
    // The rollback counts against the next similar action's risk.
    let (_, again) = server.post_json("/api/v1/actions", &shrink).await;
    let factor = again["risk"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "recent_rollbacks")
        .cloned()
        .unwrap();
    assert_eq!(factor["value"], 1.0, "{again}");
}

#[tokio::test]
async fn pause_stops_automatic_applies_until_resumed() {
    let secrets = tempfile::tempdir().unwrap();
    let mut server = Server::start(&with_people(secrets.path(), ""));
    let agents = agents_up(&server, 2).await;
    let (status, _) = server
        .post_json_as("/api/v1/automation/pause", &json!(null), "ann-secret")
        .await;
    assert_eq!(status, 403, "only an admin pauses");
    let (status, paused) = server
        .post_json("/api/v1/automation/pause", &json!(null))
        .await;
    assert_eq!((status, paused["paused"].as_bool()), (200, Some(true)));

    // A dead worker would be replaced at once; paused, it is only recommended.
    let victim = agents[0]["pid"].as_u64().unwrap() as i32;
    // SAFETY: killing a worker process this test's server started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let recommended_ms = wait_for(
        "the restart recommended",
        Duration::from_secs(20),
        || async {
            let (_, list) = server.get("/api/v1/recommendations").await;
            let first = list.as_array()?.first()?.clone();
            if first["kind"] != "restart" {
                return None;
            }
            first["at_ms"].as_i64()
        },
    )
    .await;
    // Each optimizer tick rewrites at_ms: two more ticks recommended it and were refused.
    wait_for(
        "two more ticks recommending the restart",
        Duration::from_secs(15),
        || async {
            let (_, list) = server.get("/api/v1/recommendations").await;
            let first = list.as_array()?.first()?.clone();
            let later = first["at_ms"].as_i64()? >= recommended_ms + 2000;
            (first["kind"] == "restart" && later).then_some(())
        },
    )
    .await;
    let (_, actions) = server.get("/api/v1/actions").await;
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "restart"),
        "nothing applied while paused: {actions}"
    );
    // The pause survives a restart of the controller.
    server.restart();
    let (_, state) = server.get("/api/v1/automation").await;
    assert_eq!(state["paused"], true, "{state}");
    let (status, _) = server
        .post_json("/api/v1/automation/resume", &json!(null))
        .await;
    assert_eq!(status, 200);
    agents_up(&server, 2).await;
}

#[tokio::test]
async fn a_controller_killed_mid_apply_recovers_without_applying_twice() {
    let secrets = tempfile::tempdir().unwrap();
    // Workers that take two seconds to start, so the kill lands mid-apply.
    let exe = env!("CARGO_BIN_EXE_swarmpilot");
    let command = format!(
        "[pools.web.driver]\ntype = \"process\"\ncommand = [\"sh\", \"-c\", \"sleep 2; exec {exe} agent --listen 127.0.0.1:{{port}} --pool {{pool}}\"]\n"
    );
    let policy = with_people(secrets.path(), &command)
        .replace("min_agents = 2", "min_agents = 1")
        .replace("max_agents = 3", "max_agents = 4\nstartup_secs = 5");
    let mut server = Server::start(&policy);
    agents_up(&server, 1).await;
    let grow = json!({"pool": "web", "change": {"type": "scale", "to": 4}});
    let (status, action) = server.post_json("/api/v1/actions", &grow).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    wait_state(&server, id, "applying", 10).await;
    // The driver starts the three workers one after the other, each taking two seconds, and
    // the fleet lists one once it accepts connections: with two or three agents listed, at
    // least one more start is under way.
    wait_for(
        "a new worker listed, more to come",
        Duration::from_secs(20),
        || async { (2..=3).contains(&server.agents().await.len()).then_some(()) },
    )
    .await;
    assert_eq!(
        state_of(&server, id).await["state"],
        "applying",
        "still mid-apply"
    );

    server.crash_and_restart();
    let settled = settled(&server, id, 40).await;
    let log = server.log().await;
    let mine: Vec<&Value> = log.iter().filter(|r| r["action_id"] == id).collect();
    let applying = mine.iter().filter(|r| r["to_state"] == "applying").count();
    assert_eq!(applying, 1, "applied once: {mine:?}");
    let last = mine[0];
    assert_eq!(last["actor"], "recovery", "{settled}");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("recovered after a restart")
    );
    // No other action re-did the scale-out after the restart.
    let (_, actions) = server.get("/api/v1/actions").await;
    let grows = actions
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["change"]["type"] == "scale" && a["change"]["to"] == 4)
        .count();
    assert_eq!(grows, 1, "{actions}");
    agents_up(&server, 1).await;
}

#[tokio::test]
async fn a_threshold_that_fires_on_a_quiet_pool_is_proposed_higher_for_approval() {
    let secrets = tempfile::tempdir().unwrap();
    let noisy = "[[alerts]]\nname = \"mem_noise\"\nmetric = \"memory_percent\"\nabove = 0.001\n\
                 pool = \"web\"\n[automation.threshold_tuning]\nnoisy_after_secs = 6\n";
    let server = Server::start(&with_people(secrets.path(), noisy));
    let proposal = wait_for("a threshold proposal", Duration::from_secs(40), || async {
        let (_, actions) = server.get("/api/v1/actions").await;
        actions
            .as_array()?
            .iter()
            // Past `proposed`, which lasts only until the gate has looked at it.
            .find(|a| a["kind"] == "adjust_threshold" && a["state"] != "proposed")
            .cloned()
    })
    .await;
    assert_eq!(proposal["state"], "pending_approval", "{proposal}");
    assert_eq!(proposal["change"]["rule"], "mem_noise");
    let to = proposal["change"]["to"].as_f64().unwrap();
    let peak = proposal["evidence"]["observed_peak"].as_f64().unwrap();
    assert!(to > 0.001 && to >= peak, "{proposal}");
    assert!(
        proposal["reason"]
            .as_str()
            .unwrap()
            .contains("has fired for")
    );
    // Approved, the overlay raises it and the alert stops firing.
    let id = proposal["id"].as_i64().unwrap();
    let approve = format!("/api/v1/actions/{id}/approve");
    let (status, _) = server
        .post_json_as(&approve, &json!(null), "ann-secret")
        .await;
    assert_eq!(status, 200);
    wait_state(&server, id, "applied", 30).await;
    let (_, policies) = server.get("/api/v1/policies").await;
    let entry = &policies["overlay"][0];
    assert_eq!(
        (
            entry["rule"].as_str(),
            entry["above"].as_f64(),
            entry["action_id"].as_i64()
        ),
        (Some("mem_noise"), Some(to), Some(id)),
        "{policies}"
    );
}

/// Pushes `queue_size` and `error_rate` for every agent of the fleet, once.
async fn push_readings(server: &Server, queue_size: f64, error_rate: f64) {
    let agents = server.agents().await;
    let batch: Vec<Value> = agents
        .iter()
        .flat_map(|a| {
            [
                json!({"agent": a["id"], "metric": "queue_size", "value": queue_size}),
                json!({"agent": a["id"], "metric": "error_rate", "value": error_rate}),
            ]
        })
        .collect();
    let (status, reply) = server.post_json("/api/v1/samples", &json!(batch)).await;
    assert!(status < 300, "{reply}");
}

#[tokio::test]
async fn a_threshold_that_misses_a_degradation_is_proposed_lower_for_approval() {
    let secrets = tempfile::tempdir().unwrap();
    let quiet = "[[alerts]]\nname = \"queue_warn\"\nmetric = \"queue_size\"\nabove = 100\n\
                 pool = \"web\"\n[automation.threshold_tuning]\nmissed_after_secs = 4\n\
                 baseline_secs = 10\nmargin = 1.2\n";
    let server = Server::start(&with_people(secrets.path(), quiet));
    agents_up(&server, 2).await;
    // A healthy baseline: queues of 10, no errors, for several optimizer ticks.
    let healthy_until = std::time::Instant::now() + Duration::from_secs(7);
    while std::time::Instant::now() < healthy_until {
        push_readings(&server, 10.0, 0.0).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Then every agent fails a fifth of its requests with queues of 60: queue_warn at 100
    // never sees it.
    let proposal = wait_for("a lower threshold", Duration::from_secs(40), || async {
        push_readings(&server, 60.0, 20.0).await;
        let (_, actions) = server.get("/api/v1/actions").await;
        actions
            .as_array()?
            .iter()
            // Past `proposed`, which lasts only until the gate has looked at it.
            .find(|a| a["kind"] == "adjust_threshold" && a["state"] != "proposed")
            .cloned()
    })
    .await;
    assert_eq!(proposal["state"], "pending_approval", "{proposal}");
    // The baseline's p95 of 10 times the margin of 1.2.
    assert_eq!(
        proposal["change"],
        json!({"type": "adjust_threshold", "rule": "queue_warn", "from": 100.0, "to": 12.0}),
        "{proposal}"
    );
    assert_eq!(
        proposal["inverse"],
        json!({"type": "adjust_threshold", "rule": "queue_warn", "from": 12.0, "to": 100.0})
    );
    assert_eq!(proposal["evidence"]["baseline_p95"], 10.0, "{proposal}");
    assert_eq!(proposal["evidence"]["degraded_median"], 60.0, "{proposal}");
    assert!(
        proposal["reason"]
            .as_str()
            .unwrap()
            .contains("stayed quiet through"),
        "{proposal}"
    );
}
