//! `swarmpilot report` and `GET /api/v1/reports/{period}` against a running server: a
//! window of pushed minutes read back in every form, files written with `--output`, and the
//! errors of a bad period, a bad time, a server that is down and a refused token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, client, swarmpilot, wait_for};

const POLICY: &str = r#"
[global]
sampling_interval_secs = 1
heartbeat_timeout_secs = 120

[pools.edge]
min_agents = 0
max_agents = 4
driver = { type = "none" }

[alert_defaults]
enabled = false
"#;

async fn cli(server: &Server, args: &[&str]) -> crate::util::Run {
    let all: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--url", &server.url, "--token", &server.token])
        .collect();
    swarmpilot(&all, &[]).await
}

/// Pushes three whole past minutes of `e-1` (CPU 10m and 10m + 1 in minute m, so minute
/// means 0.5, 10.5 and 20.5; throughput 4 then 6), and a sample now to close them; waits
/// until the three are stored. Answers the first minute's start.
async fn three_minutes(server: &Server) -> i64 {
    let now = swarmpilot::clock::now_ms();
    let base = now / 60_000 * 60_000 - 180_000;
    let mut batch: Vec<Value> = Vec::new();
    for m in 0..3i64 {
        for i in 0..2i64 {
            let ts = base + m * 60_000 + i * 10_000;
            for (metric, value) in [
                ("cpu_percent", (10 * m + i) as f64),
                ("throughput_per_s", (4 + 2 * i) as f64),
            ] {
                batch.push(json!({"agent": "e-1", "metric": metric, "value": value,
                                  "timestamp": ts, "labels": {"pool": "edge"}}));
            }
        }
    }
    batch.push(
        json!({"agent": "e-1", "metric": "cpu_percent", "value": 0.0,
                      "labels": {"pool": "edge"}}),
    );
    let (status, reply) = server
        .post_json("/api/v1/samples", &Value::Array(batch))
        .await;
    assert_eq!(status, 200, "{reply}");
    let series = format!("/api/v1/agents/e-1/series/throughput_per_s?since={base}&until={now}");
    wait_for("three minutes stored", Duration::from_secs(20), || async {
        let (_, body) = server.get(&series).await;
        (body["points"].as_array()?.len() == 3).then_some(())
    })
    .await;
    base
}

#[tokio::test]
async fn a_report_of_pushed_minutes_reads_back_in_every_form() {
    let server = Server::start(POLICY);
    let base = three_minutes(&server).await;
    let (since, until) = (base.to_string(), (base + 180_000).to_string());
    let window = ["--period", "hourly", "--since", &since, "--until", &until];

    let json = cli(
        &server,
        &[&["report", "--format", "json"][..], &window].concat(),
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["window"]["since_ms"], base);
    let edge = &report["kpis"][1];
    assert_eq!(edge["pool"], "edge");
    assert_eq!(edge["current"]["agent_hours"], 0.05);
    assert_eq!(edge["current"]["availability_percent"], 100.0);
    assert_eq!(edge["current"]["utilisation_percent"], 10.5);
    assert_eq!(edge["current"]["throughput_per_s"], 5.0);
    // The CPU trend: 0.5, 10.5, 20.5 at the minutes' middles: 600 an hour, exactly.
    let trend = report["trends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["metric"] == "cpu_percent")
        .unwrap();
    assert!((trend["slope_per_hour"].as_f64().unwrap() - 600.0).abs() < 1e-6);

    let text = cli(&server, &[&["report"][..], &window].concat()).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("swarmpilot hourly report\n"),
        "{}",
        text.stdout
    );
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("utilisation_percent"))
        .unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        ["utilisation_percent", "10.5", "10.5"],
        "fleet, then edge"
    );

    // HTML into a file, CSV into a directory (one file per table).
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let html = cli(
        &server,
        &[
            &[
                "report",
                "--format",
                "html",
                "--output",
                page.to_str().unwrap(),
            ][..],
            &window,
        ]
        .concat(),
    )
    .await;
    assert_eq!(html.code, 0, "{}", html.stderr);
    assert!(html.stderr.contains("wrote "), "{}", html.stderr);
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains("<svg") && page.contains("<td>10.5</td>"));
    let tables = format!("{}/tables/", dir.path().display());
    let csv = cli(
        &server,
        &[
            &["report", "--format", "csv", "--output", &tables][..],
            &window,
        ]
        .concat(),
    )
    .await;
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let kpis = std::fs::read_to_string(dir.path().join("tables/kpis.csv")).unwrap();
    assert!(
        kpis.starts_with("pool,agents,availability_percent,"),
        "{kpis}"
    );
    assert!(kpis.lines().any(|l| l.starts_with("edge,1,100,")), "{kpis}");

    // The API serves the page itself, locked down: nothing it could load.
    let response = client()
        .get(format!("{}/api/v1/reports/final?format=html", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with("<!doctype html>")
    );
}

#[tokio::test]
async fn a_bad_report_request_is_told_what_is_wrong() {
    let server = Server::start(POLICY);
    let (status, body) = server.get("/api/v1/reports/yearly").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("period")),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/reports/daily?since=yesterday").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("since")),
        "{body}"
    );
    let (status, body) = server
        .get("/api/v1/reports/daily?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z")
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("since")),
        "{body}"
    );
    let (status, body) = server
        .get("/api/v1/reports/daily?until=9223372036854775807")
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("until")),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/reports/daily?format=pdf").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("format")),
        "{body}"
    );

    let bad = cli(&server, &["report", "--period", "yearly"]).await;
    assert_eq!(bad.code, 2, "clap refuses it: {}", bad.stderr);
    let bad = cli(&server, &["report", "--since", "soon"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("since"), "{}", bad.stderr);
}
