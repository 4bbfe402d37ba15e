//! Threshold tuning: raising noisy rules, lowering rules that miss a degradation.

use super::*;
use crate::policy::AlertLevel;

fn agent(id: &str, memory: f64) -> AgentView {
    let mut view = AgentView::blank(id, "p");
    view.metrics.insert("memory_percent".into(), memory);
    view
}

fn rule(name: &str, above: f64, level: AlertLevel) -> AlertRule {
    AlertRule {
        name: name.into(),
        metric: "memory_percent".into(),
        above,
        for_secs: 0,
        keep_firing_for_secs: 0,
        clear_below: None,
        cooldown_secs: 0,
        level,
        pool: Some("p".into()),
    }
}

fn firing(rule: &str, fired_ms: i64) -> AlertView {
    AlertView {
        id: 1,
        acked: None,
        silenced_by: Vec::new(),
        rule: rule.into(),
        agent: "a".into(),
        pool: "p".into(),
        metric: "m".into(),
        threshold: Some(1.0),
        message: String::new(),
        level: AlertLevel::Warning,
        state: AlertState::Firing,
        value: 1.3,
        since_ms: fired_ms,
        fired_ms: Some(fired_ms),
        resolved_ms: None,
    }
}

#[test]
fn a_rule_firing_on_a_quiet_pool_is_raised_above_its_peak_and_below_the_next_level() {
    let tuning = ThresholdTuning {
        noisy_after_secs: 60,
        headroom: 1.1,
        ..ThresholdTuning::default()
    };
    let rules = [
        rule("mem_warn", 1.0, AlertLevel::Warning),
        rule("mem_crit", 90.0, AlertLevel::Critical),
    ];
    let mut watcher = ThresholdWatcher::default();
    for tick in 0..=30 {
        let (a, b) = (agent("a", 1.2 + (tick % 3) as f64 * 0.1), agent("b", 1.1));
        watcher.observe("p", &[&a, &b], &rules, &tuning, false, tick * 2000);
    }
    let (a, b) = (agent("a", 1.3), agent("b", 1.1));
    let alerts = [firing("mem_warn", 0)];
    let proposal = watcher
        .noisy("p", &[&a, &b], &rules, &alerts, &[], &tuning, 60_000)
        .unwrap();
    // Peak 1.4 × 1.1 = 1.54, rounded up to two digits.
    assert_eq!(
        proposal.change,
        Change::AdjustThreshold {
            rule: "mem_warn".into(),
            from: 1.0,
            to: 1.6
        }
    );
    // Not yet noisy for long enough, or an agent in trouble: nothing.
    assert!(
        watcher
            .noisy(
                "p",
                &[&a, &b],
                &rules,
                &[firing("mem_warn", 30_000)],
                &[],
                &tuning,
                60_000
            )
            .is_none()
    );
    let mut down = agent("b", 1.1);
    down.status = AgentStatus::Offline;
    assert!(
        watcher
            .noisy("p", &[&a, &down], &rules, &alerts, &[], &tuning, 60_000)
            .is_none()
    );
    // The next level caps it.
    let close = [
        rule("mem_warn", 1.0, AlertLevel::Warning),
        rule("mem_crit", 1.2, AlertLevel::Critical),
    ];
    let capped = watcher
        .noisy("p", &[&a, &b], &close, &alerts, &[], &tuning, 60_000)
        .unwrap();
    assert_eq!(
        capped.change,
        Change::AdjustThreshold {
            rule: "mem_warn".into(),
            from: 1.0,
            to: 1.1
        }
    );
    assert_eq!(round_up(37.3), 38.0);
    assert!((round_up(0.0153) - 0.016).abs() < 1e-12);
}

/// One pool's story for the missed-degradation branch: a minute of healthy memory readings
/// (40, 41, 42 %), then `degraded_secs` of `degraded_value` % while agent a reports
/// `error_rate` %; what is proposed for the rule `mem_warn` at the end, if anything.
struct Missed {
    rules: &'static [(&'static str, f64, AlertLevel)],
    degraded_value: f64,
    degraded_secs: i64,
    error_rate: f64,
    firing: bool,
}

fn check_missed(case: &Missed) -> Option<Proposal> {
    let tuning = ThresholdTuning {
        missed_after_secs: 20,
        baseline_secs: 60,
        margin: 1.2,
        ..ThresholdTuning::default()
    };
    let rules: Vec<AlertRule> = case
        .rules
        .iter()
        .map(|&(name, above, level)| rule(name, above, level))
        .collect();
    let mut watcher = ThresholdWatcher::default();
    let mut at = 0;
    let mut signals = Vec::new();
    for tick in 0..=30 {
        let agents = (agent("a", 40.0 + (tick % 3) as f64), agent("b", 39.0));
        at = tick * 2000;
        watcher.observe("p", &[&agents.0, &agents.1], &rules, &tuning, false, at);
    }
    for _ in 0..case.degraded_secs / 2 {
        at += 2000;
        let mut agents = (agent("a", case.degraded_value), agent("b", 39.0));
        agents
            .0
            .metrics
            .insert("error_rate".into(), case.error_rate);
        signals = degradation(&[&agents.0, &agents.1], 5.0);
        let degraded = !signals.is_empty();
        watcher.observe("p", &[&agents.0, &agents.1], &rules, &tuning, degraded, at);
    }
    let alerts: Vec<AlertView> = if case.firing {
        vec![firing("mem_warn", at - 4000)]
    } else {
        Vec::new()
    };
    watcher.missed("p", &rules, &alerts, &signals, &tuning, at)
}

#[test]
fn a_rule_quiet_through_a_degradation_is_lowered_to_its_healthy_baseline() {
    use AlertLevel::{Info, Warning};
    let warn_only: &[(&str, f64, AlertLevel)] = &[("mem_warn", 80.0, Warning)];
    let with_info: &[(&str, f64, AlertLevel)] =
        &[("mem_info", 60.0, Info), ("mem_warn", 80.0, Warning)];
    let base = Missed {
        rules: warn_only,
        degraded_value: 70.0,
        degraded_secs: 30,
        error_rate: 20.0,
        firing: false,
    };
    // (what, case, the threshold proposed for mem_warn)
    let table = [
        // Baseline p95 42 × 1.2 = 50.4, rounded up to two digits.
        (
            "lowered to the baseline times the margin",
            Missed { ..base },
            Some(51.0),
        ),
        (
            "too short a degradation",
            Missed {
                degraded_secs: 10,
                ..base
            },
            None,
        ),
        (
            "no degradation: errors below the limit",
            Missed {
                error_rate: 1.0,
                ..base
            },
            None,
        ),
        (
            "the rule fired: it did not miss it",
            Missed {
                firing: true,
                ..base
            },
            None,
        ),
        (
            "the metric barely moved",
            Missed {
                degraded_value: 45.0,
                ..base
            },
            None,
        ),
        (
            "the metric reached the rule",
            Missed {
                degraded_value: 85.0,
                ..base
            },
            None,
        ),
        // 51 would be below the info rule at 60: halfway between 60 and 80 instead.
        (
            "kept above the lower level",
            Missed {
                rules: with_info,
                degraded_value: 75.0,
                ..base
            },
            Some(70.0),
        ),
        (
            "the lower level's bound misses it too",
            Missed {
                rules: with_info,
                ..base
            },
            None,
        ),
    ];
    for (what, case, expected) in table {
        let proposed = check_missed(&case).map(|p| match p.change {
            Change::AdjustThreshold { rule, from, to } => {
                assert_eq!((rule.as_str(), from), ("mem_warn", 80.0), "{what}");
                to
            }
            other => panic!("{what}: {other:?}"),
        });
        assert_eq!(proposed, expected, "{what}");
    }
}

#[test]
fn a_lowered_threshold_carries_its_baseline_the_degradation_and_its_inverse() {
    let proposal = check_missed(&Missed {
        rules: &[("mem_warn", 80.0, AlertLevel::Warning)],
        degraded_value: 70.0,
        degraded_secs: 30,
        error_rate: 20.0,
        firing: false,
    })
    .unwrap();
    let evidence = &serde_json::to_value(&proposal.evidence).unwrap();
    assert_eq!(evidence["baseline_p95"], 42.0);
    assert_eq!(evidence["degraded_median"], 70.0);
    assert_eq!(evidence["degraded_readings"], 15);
    // The reading at 0 s is 62 s before the degradation: outside the 60 s baseline.
    assert_eq!(evidence["baseline_readings"], 30);
    assert_eq!(
        evidence["degradation"][0],
        "agent a has an error rate of 20.0% (above 5%)"
    );
    assert!(
        proposal.reason.contains("stayed quiet through 28 s"),
        "{}",
        proposal.reason
    );
    assert!(
        proposal
            .expected_effect
            .contains("on 15 of the 15 readings")
    );
    assert_eq!(
        proposal.change.inverse(),
        Some(Change::AdjustThreshold {
            rule: "mem_warn".into(),
            from: 51.0,
            to: 80.0
        })
    );
}

#[test]
fn agents_in_error_or_over_the_error_rate_degrade_their_pool() {
    let mut broken = agent("a", 1.0);
    broken.status = AgentStatus::Error;
    let mut failing = agent("b", 1.0);
    failing.metrics.insert("error_rate".into(), 7.5);
    let mut fine = agent("c", 1.0);
    fine.metrics.insert("error_rate".into(), 5.0);
    assert_eq!(
        degradation(&[&broken, &failing, &fine], 5.0),
        [
            "agent a is in error",
            "agent b has an error rate of 7.5% (above 5%)"
        ]
    );
    assert!(degradation(&[&fine], 5.0).is_empty());
}
