//! The everyday reads (`swarmpilot status`, `agents`, `alerts`, `silences`, `log`) against a
//! running server, and what each says when the server is down or refuses the token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Run, Server, swarmpilot, wait_for};

/// One bundled worker in `web`; pushed agents in the observe-only `edge`; a critical rule on
/// their queue.
const POLICY: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 120

[pools.web]
min_agents = 1
max_agents = 2

[pools.edge]
min_agents = 0
driver = { type = "none" }

[alert_defaults]
enabled = false

[[alerts]]
name = "queue_deep"
metric = "queue_size"
above = 100
for_secs = 0
level = "critical"
pool = "edge"
"#;

/// Runs `swarmpilot ARGS` against `url` with `token`.
async fn cli(url: &str, token: &str, args: &[&str]) -> Run {
    let all: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--url", url, "--token", token])
        .collect();
    swarmpilot(&all, &[]).await
}

/// `text` with every run of spaces squeezed to one (columns are padded).
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn push(server: &Server, agent: &str, queue: f64) {
    let body = json!([{"agent": agent, "metric": "queue_size", "value": queue,
                        "labels": {"pool": "edge"}}]);
    let (status, reply) = server.post_json("/api/v1/samples", &body).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn status_agents_alerts_silences_and_log_read_the_running_controller() {
    let server = Server::start(POLICY);
    let run = |args: &'static [&'static str]| cli(&server.url, &server.token, args);
    push(&server, "e-1", 150.0).await;
    push(&server, "e-2", 10.0).await;
    wait_for(
        "the critical alert firing",
        Duration::from_secs(20),
        || async {
            let (_, alerts) = server.get("/api/v1/alerts?state=firing").await;
            (alerts.as_array()?.len() == 1).then_some(())
        },
    )
    .await;
    wait_for("the worker up", Duration::from_secs(30), || async {
        let (_, agents) = server.get("/api/v1/agents?pool=web&status=active").await;
        (!agents.as_array()?.is_empty()).then_some(())
    })
    .await;

    let status = run(&["status"]).await;
    assert_eq!(
        status.code, 3,
        "a critical alert fires: {}{}",
        status.stdout, status.stderr
    );
    let text = squeezed(&status.stdout);
    for line in [
        "automation on",
        "agents: 3 (3 active)",
        "POOL DRIVER AGENTS READY MIN MAX MEAN CPU IN FLIGHT",
        "edge none 2 2 0",
        "firing: 1 critical",
        "approvals: none waiting",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }

    let agents = squeezed(&run(&["agents", "--pool", "edge"]).await.stdout);
    assert!(agents.starts_with("AGENT POOL STATUS CPU % MEM % RESP MS ERR % ANOMALY LAST SAMPLE"));
    assert!(
        agents.contains("e-1 edge active") && agents.contains("e-2 edge"),
        "{agents}"
    );
    assert!(!agents.contains("web-"), "{agents}");
    let listed: Value = serde_json::from_str(&run(&["agents", "--json"]).await.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");

    let one = squeezed(&run(&["agents", "e-1"]).await.stdout);
    for part in [
        "e-1 pool edge",
        "queue_size 150.00",
        "alerts:",
        "queue_deep e-1 150.00 100.00",
    ] {
        assert!(one.contains(part), "{part:?} not in:\n{one}");
    }

    let alerts = squeezed(&run(&["alerts", "--state", "firing"]).await.stdout);
    assert!(
        alerts.contains("critical firing queue_deep e-1 150.00 100.00")
            && alerts.contains("queue_size above 100 on e-1"),
        "{alerts}"
    );
    assert_eq!(
        squeezed(&run(&["alerts", "--agent", "e-2"]).await.stdout),
        "no alerts"
    );

    let silence = json!({"matchers": [{"name": "agent", "value": "e-1"}],
                         "ends_at": swarmpilot::clock::rfc3339(swarmpilot::clock::now_ms() + 3_600_000),
                         "comment": "known queue"});
    let (code, body) = server.post_json("/api/v1/silences", &silence).await;
    assert_eq!(code, 201, "{body}");
    let silences = squeezed(&run(&["silences"]).await.stdout);
    assert!(
        silences.contains("active agent=e-1 in ") && silences.ends_with("known queue"),
        "{silences}"
    );

    // Raising the threshold is an action: it lands in the log and the alert resolves.
    // (A driver pool carries the action: the observe-only one takes none.)
    let raise = json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "queue_deep", "to": 1000}});
    let (code, action) = server.post_json("/api/v1/actions", &raise).await;
    assert_eq!(code, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    // The next sample is judged on the new threshold.
    wait_for("the alert resolved", Duration::from_secs(30), || async {
        push(&server, "e-1", 150.0).await;
        let (_, alerts) = server.get("/api/v1/alerts?state=firing").await;
        alerts.as_array()?.is_empty().then_some(())
    })
    .await;
    crate::gate::wait_state(&server, id, "applied", 40).await;
    let log = squeezed(&run(&["log", "--kind", "adjust_threshold"]).await.stdout);
    assert!(
        log.contains(&format!("#{id} adjust_threshold web")),
        "{log}"
    );
    assert!(log.contains("verifying → applied"), "{log}");
    let two: Value =
        serde_json::from_str(&run(&["log", "--limit", "2", "--json"]).await.stdout).unwrap();
    assert_eq!(two.as_array().unwrap().len(), 2, "{two}");

    let calm = run(&["status"]).await;
    assert_eq!(calm.code, 0, "nothing critical fires now: {}", calm.stdout);

    // Exports: the whole log as CSV, the alert history as JSON.
    let log_csv = run(&["export", "--what", "log"]).await;
    assert_eq!(log_csv.code, 0, "{}", log_csv.stderr);
    let lines: Vec<&str> = log_csv.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "seq,time,action_id,kind,pool,agent,from_state,to_state,actor,reason"
    );
    let all_rows = server.log().await.len();
    assert_eq!(lines.len() - 1, all_rows, "{}", log_csv.stdout);
    assert_eq!(log_csv.stderr, format!("{all_rows} rows exported\n"));
    let history = run(&["export", "--what", "alerts", "--format", "json"]).await;
    let history: Value = serde_json::from_str(&history.stdout).unwrap();
    let fired = history
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "queue_deep" && r["to_state"] == "firing" && r["value"] == 150.0);
    assert!(fired, "{history}");
    let bad = run(&["export", "--what", "log", "--since", "yesterday"]).await;
    assert_eq!(bad.code, 2, "a usage error: {}", bad.stderr);
    assert!(
        bad.stderr
            .contains("neither RFC 3339 nor epoch milliseconds"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn export_writes_each_agents_rollups_of_a_window_as_csv() {
    let server = Server::start(POLICY);
    // Three whole past minutes of one agent, then a sample of this minute to close them.
    let now = swarmpilot::clock::now_ms();
    let base = now / 60_000 * 60_000 - 180_000;
    let mut batch: Vec<Value> = (0..3)
        .flat_map(|m| {
            (0..2).map(move |i| {
                json!({"agent": "e-9", "metric": "queue_size", "value": (10 * m + i) as f64,
                       "timestamp": base + m * 60_000 + i * 10_000, "labels": {"pool": "edge"}})
            })
        })
        .collect();
    batch.push(
        json!({"agent": "e-9", "metric": "queue_size", "value": 0.0, "labels": {"pool": "edge"}}),
    );
    let (status, reply) = server
        .post_json("/api/v1/samples", &Value::Array(batch))
        .await;
    assert_eq!(status, 200, "{reply}");
    let series = format!("/api/v1/agents/e-9/series/queue_size?since={base}&until={now}");
    wait_for(
        "three minutes of rollups",
        Duration::from_secs(20),
        || async {
            let (_, body) = server.get(&series).await;
            (body["points"].as_array()?.len() == 3).then_some(())
        },
    )
    .await;
    // `agents ID` sets each metric beside its baseline: the stored minutes of the last hour.
    let one = cli(&server.url, &server.token, &["agents", "e-9", "--json"]).await;
    let one: Value = serde_json::from_str(&one.stdout).unwrap();
    let baseline = &one["baselines"]["queue_size"];
    assert_eq!(
        (
            &baseline["mean"],
            &baseline["min"],
            &baseline["max"],
            &baseline["samples"]
        ),
        (&json!(10.5), &json!(0.0), &json!(21.0), &json!(6.0)),
        "{one}"
    );
    let text = cli(&server.url, &server.token, &["agents", "e-9"])
        .await
        .stdout;
    assert!(
        squeezed(&text).contains("queue_size 0.00 10.50 0.00..21.00"),
        "{text}"
    );

    let since = base.to_string();
    let export = cli(
        &server.url,
        &server.token,
        &["export", "--what", "metrics", "--since", &since],
    )
    .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let lines: Vec<&str> = export.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "agent,pool,metric,time,ts_ms,count,min,max,mean,p95"
    );
    let mine: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|cells| cells[0] == "e-9")
        .collect();
    assert_eq!(mine.len(), 3, "{}", export.stdout);
    // Minute 1 held 10 and 11.
    let second = &mine[1];
    assert_eq!(
        (
            second[1], second[2], second[4], second[5], second[6], second[7], second[8]
        ),
        (
            "edge",
            "queue_size",
            (base + 60_000).to_string().as_str(),
            "2",
            "10.0",
            "11.0",
            "10.5"
        ),
        "{}",
        export.stdout
    );
}

#[tokio::test]
async fn every_read_says_what_is_wrong_when_the_server_is_down_or_refuses_the_token() {
    let server = Server::start(POLICY);
    // A port nobody listens on: bound, noted, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let verbs: [&[&str]; 7] = [
        &["status"],
        &["report"],
        &["agents"],
        &["alerts"],
        &["silences"],
        &["log"],
        &["export", "--what", "log"],
    ];
    for args in verbs {
        let verb = args[0];
        let down = cli(&dead, "x", args).await;
        assert_eq!(down.code, 1, "{verb}: {}", down.stdout);
        assert!(
            down.stderr
                .starts_with(&format!("error: cannot reach the controller at {dead}: ")),
            "{verb}: {}",
            down.stderr
        );
        let refused = cli(&server.url, "wrong-token", args).await;
        assert_eq!(refused.code, 1, "{verb}: {}", refused.stdout);
        assert!(
            refused.stderr.starts_with("error: 401 unauthorized: "),
            "{verb}: {}",
            refused.stderr
        );
        assert!(
            refused.stdout.is_empty(),
            "{verb} printed: {}",
            refused.stdout
        );
    }
    let missing = cli(&server.url, &server.token, &["agents", "nobody"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .starts_with("error: 404 not found: no agent nobody"),
        "{}",
        missing.stderr
    );
}
