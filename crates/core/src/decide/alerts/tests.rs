//! The alert state machine on explicit times.

use super::*;

fn rule(for_secs: u64, keep_firing_for_secs: u64, cooldown_secs: u64) -> AlertRule {
    AlertRule {
        name: "hot".into(),
        metric: "cpu_percent".into(),
        above: 50.0,
        for_secs,
        level: AlertLevel::Critical,
        pool: Some("w".into()),
        keep_firing_for_secs,
        clear_below: None,
        cooldown_secs,
    }
}

fn cross(rule: AlertRule, value: f64, ts_ms: i64, breached: bool) -> Crossing<'static> {
    Crossing {
        rule,
        agent: "w-1",
        pool: "w",
        value,
        ts_ms,
        breached,
    }
}

fn states(changes: &[Transition]) -> Vec<(Option<AlertState>, AlertState)> {
    changes.iter().map(|t| (t.from, t.alert.state)).collect()
}

#[test]
fn a_breach_fires_after_for_and_a_dip_inside_keep_firing_for_changes_nothing() {
    let mut book = AlertBook::new(0);
    let opened = book.crossed(cross(rule(5, 10, 0), 60.0, 1_000, true), 1_000);
    assert_eq!(states(&opened), [(None, AlertState::Pending)]);
    assert!(book.evaluate(5_999).is_empty(), "not before `for`");
    assert_eq!(
        states(&book.evaluate(6_000)),
        [(Some(AlertState::Pending), AlertState::Firing)]
    );
    // Falls back at 7 s, breaches again at 12 s: still firing, never resolved.
    assert!(
        book.crossed(cross(rule(5, 10, 0), 40.0, 7_000, false), 7_000)
            .is_empty()
    );
    assert!(book.evaluate(16_999).is_empty());
    assert!(
        book.crossed(cross(rule(5, 10, 0), 60.0, 12_000, true), 12_000)
            .is_empty()
    );
    assert!(book.evaluate(30_000).is_empty(), "it never stopped firing");
    // Falls back for good at 31 s: resolves exactly 10 s later.
    assert!(
        book.crossed(cross(rule(5, 10, 0), 40.0, 31_000, false), 31_000)
            .is_empty()
    );
    assert!(book.evaluate(40_999).is_empty());
    assert_eq!(
        states(&book.evaluate(41_000)),
        [(Some(AlertState::Firing), AlertState::Resolved)]
    );
}

#[test]
fn a_cooldown_holds_a_new_breach_pending_until_it_ends() {
    let mut book = AlertBook::new(0);
    book.crossed(cross(rule(0, 0, 30), 60.0, 0, true), 0);
    book.evaluate(0);
    book.crossed(cross(rule(0, 0, 30), 40.0, 1_000, false), 1_000);
    book.crossed(cross(rule(0, 0, 30), 60.0, 2_000, true), 2_000);
    assert!(book.evaluate(30_999).is_empty(), "cooling down until 31 s");
    assert_eq!(
        states(&book.evaluate(31_000)),
        [(Some(AlertState::Pending), AlertState::Firing)]
    );
}

#[test]
fn availability_alerts_fire_at_once_once_and_a_forgotten_agent_resolves() {
    let mut book = AlertBook::new(7);
    let raised = book.raise(
        "agent_offline",
        AlertLevel::Critical,
        "w-1",
        "w",
        9.0,
        5_000,
    );
    assert_eq!(
        states(&raised),
        [
            (None, AlertState::Pending),
            (Some(AlertState::Pending), AlertState::Firing)
        ]
    );
    assert_eq!(raised[1].alert.id, 8);
    assert!(
        book.raise(
            "agent_offline",
            AlertLevel::Critical,
            "w-1",
            "w",
            9.0,
            6_000
        )
        .is_empty()
    );
    let forgotten = book.forget("w-1", 7_000);
    assert_eq!(
        states(&forgotten),
        [(Some(AlertState::Firing), AlertState::Resolved)]
    );
    book.forget_resolved(7_000 + RESOLVED_KEPT_MS);
    assert!(book.is_empty());
}

#[test]
fn every_alert_says_what_it_watches_and_means() {
    let mut book = AlertBook::new(0);
    let opened = book.crossed(cross(rule(30, 0, 0), 61.5, 1_000, true), 1_000);
    let alert = &opened[0].alert;
    assert_eq!(alert.metric, "cpu_percent");
    assert_eq!(alert.threshold, Some(50.0));
    assert_eq!(alert.message, "cpu_percent above 50 for 30 s on w-1");
    let note = AnomalyNote {
        agent: "w-2".into(),
        pool: "w".into(),
        metric: "memory_percent".into(),
        value: 81.0,
        score: 0.93,
        channels: Default::default(),
        ts_ms: 2_000,
    };
    let fired = book.anomalous(&note, 2_000);
    assert_eq!(fired[0].alert.metric, "memory_percent");
    assert_eq!(fired[0].alert.threshold, None);
    assert!(
        fired[0]
            .alert
            .message
            .contains("unusual memory_percent on w-2")
    );
    let offline = book.raise(
        "agent_offline",
        AlertLevel::Critical,
        "w-3",
        "w",
        0.0,
        3_000,
    );
    assert_eq!(offline[0].alert.message, "agent offline on w-3");
    assert_eq!(offline[0].alert.threshold, None);
}
