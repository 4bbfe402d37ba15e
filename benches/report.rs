//! A daily report over 1,000 agents (issue 20's target: under 2 s), built from a real store:
//! 24 hours of per-minute rollups of six metrics for each agent in four pools (8.6 million
//! minutes, the hours beside them), 2,000 alert transitions and 50 actions. Measures
//! `reports::build` (reading the store and computing every section) and rendering the HTML
//! form with its charts. Run: `cargo bench --bench report` (`AGENTS=N` for another fleet).
//! Under `cargo test` it runs once on 20 agents, to prove it works.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use swarmpilot::analytics::rollup::MinuteSummary;
use swarmpilot::clock::Clock;
use swarmpilot::domain::{ActionState, Change, Proposal, evidence::Evidence};
use swarmpilot::policy::PolicyHandle;
use swarmpilot::report::Period;
use swarmpilot::reports::{Format, ReportRequest, build, render};
use swarmpilot::store::{AlertTransition, RollupRow, Store};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
const POOLS: [&str; 4] = ["web", "batch", "search", "chat"];
const METRICS: [&str; 6] = [
    "cpu_percent",
    "memory_percent",
    "response_time_ms",
    "error_rate",
    "throughput_per_s",
    "active_tasks",
];

fn fleet_size() -> usize {
    let benching = std::env::args().any(|a| a == "--bench");
    std::env::var("AGENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 1000 } else { 20 })
}

/// Fills a store with a day of the fleet's history; answers it with the clock at the day's end.
fn recorded(dir: &std::path::Path, agents: usize) -> Store {
    let clock = Clock::manual(T0);
    let store = Store::open(dir).unwrap().with_clock(clock.clone());
    let started = Instant::now();
    let mut rows = Vec::with_capacity(60 * METRICS.len());
    for a in 0..agents {
        let (agent, pool) = (format!("agent-{a}"), POOLS[a % POOLS.len()]);
        for hour in 0..24 {
            rows.clear();
            for m in 0..60 {
                let minute = hour * 60 + m;
                // A daily wave, a per-agent offset and a little noise from a hash.
                let wave = (minute as f64 / 1440.0 * std::f64::consts::TAU).sin();
                let jitter = ((a as i64 * 7919 + minute * 104_729) % 100) as f64 / 100.0;
                for (k, metric) in METRICS.iter().enumerate() {
                    let mean = match k {
                        0 => 40.0 + 20.0 * wave + 5.0 * jitter,
                        1 => 30.0 + minute as f64 / 1440.0 * 5.0,
                        2 => 80.0 + 30.0 * wave + 20.0 * jitter,
                        3 => jitter * if a % 97 == 0 { 8.0 } else { 0.5 },
                        4 => 10.0 + 5.0 * wave,
                        _ => 3.0 + 2.0 * jitter,
                    };
                    rows.push(RollupRow {
                        agent: agent.clone(),
                        pool: pool.into(),
                        metric: (*metric).into(),
                        summary: MinuteSummary {
                            minute_ms: T0 + minute * MINUTE,
                            min: mean * 0.9,
                            max: mean * 1.1,
                            mean,
                            count: 30,
                            p95: Some(mean * 1.08),
                        },
                    });
                }
            }
            store.write_rollups(&rows).unwrap();
        }
        if a % 100 == 99 {
            eprintln!(
                "  {} of {agents} agents written ({:.0?})",
                a + 1,
                started.elapsed()
            );
        }
    }
    for i in 0..1000i64 {
        let agent = format!("agent-{}", (i * 37) as usize % agents);
        let pool = POOLS[(i * 37) as usize % agents % POOLS.len()];
        for (offset, from, to) in [(0, "pending", "firing"), (7, "firing", "resolved")] {
            store
                .record_alert(&AlertTransition {
                    ts_ms: T0 + (i * 86 + offset) * MINUTE / 60,
                    rule: "agent_cpu_high",
                    agent: &agent,
                    pool,
                    level: "warning",
                    from_state: from,
                    to_state: to,
                    value: 65.0,
                    metric: "cpu_percent",
                    threshold: Some(60.0),
                    message: "cpu high",
                })
                .unwrap();
        }
    }
    for i in 0..50i64 {
        clock.advance(Duration::from_millis((DAY / 50) as u64));
        let proposal = Proposal {
            pool: POOLS[i as usize % POOLS.len()].into(),
            change: Change::Scale {
                from: 10,
                to: 11 + (i % 3) as usize,
            },
            reason: "load".into(),
            evidence: Evidence::empty(),
            confidence: 1.0,
            expected_effect: String::new(),
        };
        let action = store.insert_action(&proposal, "auto").unwrap();
        for state in [
            ActionState::Applying,
            ActionState::Verifying,
            ActionState::Applied,
        ] {
            store.transition(action.id, state, "bench", "auto").unwrap();
        }
    }
    eprintln!("  history written in {:.1?}", started.elapsed());
    store
}

fn daily_report(c: &mut Criterion) {
    let agents = fleet_size();
    let dir = tempfile::tempdir().unwrap();
    eprintln!("writing a day of {agents} agents");
    let store = recorded(dir.path(), agents);
    let mut policy = String::new();
    for pool in POOLS {
        policy += &format!(
            "[pools.{pool}]\nmin_agents = 2\nmax_agents = 400\ndriver = {{ type = \"none\" }}\n"
        );
    }
    let policy = PolicyHandle::new(swarmpilot::policy::load_str("bench.toml", &policy).unwrap());
    let request = ReportRequest {
        period: Period::Daily,
        since_ms: None,
        until_ms: None,
        pool: None,
    };
    let now = T0 + DAY;
    let report = build(&store, &policy, &request, now, T0).unwrap();
    assert_eq!(report.agents.len(), agents);
    let mut group = c.benchmark_group(format!("daily_report_{agents}_agents"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build", |b| {
        b.iter(|| build(&store, &policy, &request, now, T0).unwrap())
    });
    group.bench_function("render_html", |b| b.iter(|| render(&report, Format::Html)));
    group.finish();
}

criterion_group!(benches, daily_report);
criterion_main!(benches);
