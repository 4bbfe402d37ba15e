//! A recorded scenario on a driven clock, through the real store, checked in every format
//! against figures computed by hand.

use std::time::Duration;

use super::*;
use crate::analytics::rollup::MinuteSummary;
use crate::clock::Clock;
use crate::domain::evidence::Evidence;
use crate::domain::{ActionState, Change, Proposal};
use crate::store::{AlertTransition, RollupRow};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
const MIN: i64 = 60_000;

fn minute(agent: &str, pool: &str, metric: &str, m: i64, mean: f64) -> RollupRow {
    RollupRow {
        agent: agent.into(),
        pool: pool.into(),
        metric: metric.into(),
        summary: MinuteSummary {
            minute_ms: T0 + m * MIN,
            min: mean - 1.0,
            max: mean + 1.0,
            mean,
            count: 30,
            p95: Some(mean + 1.0),
        },
    }
}

/// w-1 (pool web) reports all hour: CPU 40, errors 2%, 5 tasks/s, response 100 and 300 ms
/// in turn. w-2 reports the first half hour (CPU 80, 200 ms, no errors, 5 tasks/s), then
/// goes offline. The host reports 25% CPU. A scale-out waits 2 min for approval and applies
/// at 00:35. Returns the store, the clock (at 01:00) and the policy.
fn recorded(dir: &Path) -> (Store, Clock, PolicyHandle) {
    let clock = Clock::manual(T0);
    let store = Store::open(dir).unwrap().with_clock(clock.clone());
    let mut rows = Vec::new();
    for m in 0..60 {
        rows.push(minute("w-1", "web", "cpu_percent", m, 40.0));
        rows.push(minute("w-1", "web", "error_rate", m, 2.0));
        rows.push(minute("w-1", "web", "throughput_per_s", m, 5.0));
        let response = if m % 2 == 0 { 100.0 } else { 300.0 };
        rows.push(minute("w-1", "web", "response_time_ms", m, response));
        rows.push(minute("host", "", "system_cpu_percent", m, 25.0));
        if m < 30 {
            rows.push(minute("w-2", "web", "cpu_percent", m, 80.0));
            rows.push(minute("w-2", "web", "error_rate", m, 0.0));
            rows.push(minute("w-2", "web", "throughput_per_s", m, 5.0));
            rows.push(minute("w-2", "web", "response_time_ms", m, 200.0));
        }
    }
    store.write_rollups(&rows).unwrap();
    store
        .record_alert(&AlertTransition {
            ts_ms: T0 + 30 * MIN,
            rule: "agent_offline",
            agent: "w-2",
            pool: "web",
            level: "critical",
            from_state: "pending",
            to_state: "firing",
            value: 1.0,
            metric: "availability",
            threshold: None,
            message: "agent offline on w-2",
        })
        .unwrap();
    clock.advance(Duration::from_secs(31 * 60));
    let proposal = Proposal {
        pool: "web".into(),
        change: Change::Scale { from: 2, to: 3 },
        reason: "w-2 offline".into(),
        evidence: Evidence::empty(),
        confidence: 1.0,
        expected_effect: String::new(),
    };
    let action = store.insert_action(&proposal, "auto").unwrap();
    store
        .transition(action.id, ActionState::PendingApproval, "high risk", "auto")
        .unwrap();
    clock.advance(Duration::from_secs(120));
    store
        .transition(action.id, ActionState::Approved, "ok", "alice")
        .unwrap();
    store
        .transition(action.id, ActionState::Applying, "apply", "auto")
        .unwrap();
    clock.advance(Duration::from_secs(120));
    store
        .transition(action.id, ActionState::Applied, "verified", "auto")
        .unwrap();
    clock.advance(Duration::from_secs(25 * 60));
    assert_eq!(clock.now_ms(), T0 + 60 * MIN);
    let policy = PolicyHandle::new(
        crate::policy::load_str(
            "t.toml",
            r#"
[pools.web]
min_agents = 2
max_agents = 4
target_cpu_percent = 50
[pools.web.driver]
type = "none"
"#,
        )
        .unwrap(),
    );
    (store, clock, policy)
}

fn hourly(store: &Store, clock: &Clock, policy: &PolicyHandle) -> Report {
    let request = ReportRequest {
        period: Period::Hourly,
        since_ms: None,
        until_ms: None,
        pool: None,
    };
    build(store, policy, &request, clock.now_ms(), T0).unwrap()
}

#[test]
fn the_figures_are_the_hand_computed_ones_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, policy) = recorded(dir.path());
    let report = hourly(&store, &clock, &policy);
    assert_eq!(
        report.window,
        Window {
            since_ms: T0,
            until_ms: T0 + 60 * MIN
        }
    );

    // JSON: up 60 + 30 minutes, down 30 (offline from 00:30 to the end): 75%.
    let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
    let web = &json["kpis"][1];
    assert_eq!(web["pool"], "web");
    assert_eq!(web["current"]["availability_percent"], 75.0);
    assert_eq!(web["current"]["agent_hours"], 1.5);
    // CPU (40·60 + 80·30) / 90 minutes of equal counts; errors (2·60) / 90.
    let cpu = web["current"]["utilisation_percent"].as_f64().unwrap();
    assert!((cpu - 4800.0 / 90.0).abs() < 1e-9, "{cpu}");
    let errors = web["current"]["error_rate_percent"].as_f64().unwrap();
    assert!((errors - 120.0 / 90.0).abs() < 1e-9);
    // Throughput: 10 tasks/s while both report, 5 after.
    assert_eq!(web["current"]["throughput_per_s"], 7.5);
    // Response minutes: 30 at 100, 30 at 300 (w-1), 30 at 200 (w-2): p50 200, p95 300.
    let p50 = web["current"]["response_time_p50_ms"].as_f64().unwrap();
    let p95 = web["current"]["response_time_p95_ms"].as_f64().unwrap();
    assert_eq!((p50, p95), (200.0, 300.0));
    assert_eq!(json["agents"][0]["agent"], "w-2");
    assert_eq!(json["agents"][0]["kpis"]["availability_percent"], 50.0);
    assert_eq!(json["host"][0]["mean"], 25.0);
    assert_eq!(json["alerts"]["fired"], 1);
    assert_eq!(json["alerts"]["still_firing"], 1);
    // The approval waited 2 min; the scale-out added one agent for the last 25 min.
    assert_eq!(json["actions"]["mean_approval_wait_secs"], 120.0);
    let added = json["actions"]["agent_hours_added"].as_f64().unwrap();
    assert!((added - 25.0 / 60.0).abs() < 1e-9);
    assert_eq!(
        json["actions"]["actions"][0]["change"],
        "scale 2 → 3 agents"
    );
    assert_eq!(json["units"]["_percent"], "percent");

    // Text: the key figures as `current (previous)`, one column per pool.
    let text = render(&report, Format::Text);
    assert!(
        text.starts_with("swarmpilot hourly report\n2026-12-01T00:00:00"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("availability_percent"))
        .unwrap();
    // No previous period had availability, so its brackets are left out.
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells, ["availability_percent", "75", "75"]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("agent_hours "))
        .unwrap();
    assert!(line.contains("1.5 (0)"), "{line}");
    assert!(text.contains("1 alert fired (1 critical)"), "{text}");

    // CSV: one block per table, each row led by its table's name.
    let csv = render(&report, Format::Csv);
    let kpis_header = csv
        .lines()
        .find(|l| l.starts_with("table,pool,agents"))
        .unwrap();
    let column = kpis_header
        .split(',')
        .position(|c| c == "availability_percent")
        .unwrap();
    let web_row = csv.lines().find(|l| l.starts_with("kpis,web,")).unwrap();
    assert_eq!(web_row.split(',').nth(column), Some("75"));
    assert!(
        csv.lines()
            .any(|l| l.starts_with("action_totals,1,120,120,0.42,0")),
        "{csv}"
    );

    // HTML: the same figures, charts inline, nothing fetched.
    let html = render(&report, Format::Html);
    assert!(html.contains("<td>75</td>"));
    assert!(
        html.matches("<svg").count() >= 3,
        "pool size, CPU and response time charts"
    );
    assert!(!html.contains("src=") && !html.contains("<link"));
}

#[test]
fn a_report_after_a_restart_reads_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, policy) = recorded(dir.path());
    let before = hourly(&store, &clock, &policy);
    drop(store);
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(hourly(&reopened, &clock, &policy), before);
}

#[test]
fn a_day_reads_hours_with_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, policy) = recorded(dir.path());
    let request = ReportRequest {
        period: Period::Daily,
        since_ms: None,
        until_ms: None,
        pool: Some("web".into()),
    };
    let report = build(&store, &policy, &request, clock.now_ms(), T0).unwrap();
    assert_eq!(
        report.window.until_ms - report.window.since_ms,
        24 * 3_600_000
    );
    let web = &report.kpis[1].current;
    assert_eq!(web.availability_percent, Some(75.0));
    assert_eq!(web.agent_hours, 1.5);
    assert!(report.host.iter().all(|h| h.mean == 25.0));
    let files = write_files(&report, &dir.path().join("out"), &Format::ALL).unwrap();
    assert_eq!(files.len(), 4);
    assert!(
        files[0].ends_with("out/daily-20261130T0100Z.txt"),
        "{files:?}"
    );
    let tables = write_csv_tables(&report, &dir.path().join("tables")).unwrap();
    assert!(tables.iter().any(|p| p.ends_with("tables/kpis.csv")));
}

#[test]
fn an_empty_window_is_refused() {
    let request = ReportRequest {
        period: Period::Daily,
        since_ms: Some(T0),
        until_ms: Some(T0),
        pool: None,
    };
    assert!(matches!(
        request.window(T0, T0),
        Err(ReportError::EmptyWindow)
    ));
}

#[test]
fn an_agent_keeps_each_hours_pool_and_an_old_outage_counts_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock, policy) = recorded(dir.path());
    // m-1 served pool `old` in the hour before T0 and `web` from T0.
    let rows: Vec<RollupRow> = (-30..30)
        .map(|m| {
            let pool = if m < 0 { "old" } else { "web" };
            minute("m-1", pool, "cpu_percent", m, 10.0)
        })
        .collect();
    store.write_rollups(&rows).unwrap();
    // w-3 went offline two days before and came back at 00:15.
    for (ts_ms, from, to) in [
        (T0 - 2 * 86_400_000, "pending", "firing"),
        (T0 + 15 * MIN, "firing", "resolved"),
    ] {
        store
            .record_alert(&AlertTransition {
                ts_ms,
                rule: "agent_offline",
                agent: "w-3",
                pool: "web",
                level: "critical",
                from_state: from,
                to_state: to,
                value: 1.0,
                metric: "availability",
                threshold: None,
                message: "agent offline on w-3",
            })
            .unwrap();
    }
    let request = ReportRequest {
        period: Period::Hourly,
        since_ms: Some(T0 - 30 * MIN),
        until_ms: Some(T0 + 30 * MIN),
        pool: None,
    };
    let report = build(&store, &policy, &request, clock.now_ms(), T0).unwrap();
    let pool = |name: &str| report.kpis.iter().find(|k| k.pool == name).unwrap();
    assert_eq!(pool("old").current.agent_hours, 0.5);
    let w3 = report.agents.iter().find(|a| a.agent == "w-3").unwrap();
    // Down from the window's start (23:30) to 00:15, and no minute up.
    assert_eq!(w3.kpis.availability_percent, Some(0.0));
    assert_eq!(w3.pool, "web");
}
