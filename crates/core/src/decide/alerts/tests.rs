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

/// The indexes agree with the alerts they index.
fn assert_indexed(book: &AlertBook) {
    assert_eq!(book.ids.len(), book.alerts.len());
    for (key, (rule, view)) in &book.alerts {
        assert_eq!(book.ids.get(&view.id), Some(key));
        assert!(book.by_agent[&key.1].contains(&key.0));
        let pending = book.pending.contains(&(due_ms(rule, view), key.clone()));
        assert_eq!(pending, view.state == AlertState::Pending, "{view:?}");
    }
    let indexed: usize = book.by_agent.values().map(|rules| rules.len()).sum();
    assert_eq!(indexed, book.alerts.len());
    assert_eq!(
        book.pending.len(),
        book.entries()
            .filter(|(_, v)| v.state == AlertState::Pending)
            .count()
    );
}

/// What a page must hold: the filter applied to every alert, in id order.
fn naive_page(book: &AlertBook, filter: &AlertFilter, limit: usize) -> (Vec<u64>, bool) {
    let mut ids: Vec<u64> = book
        .entries()
        .map(|(_, v)| v)
        .filter(|v| filter.takes(v))
        .map(|v| v.id)
        .collect();
    ids.sort_unstable();
    let more = ids.len() > limit;
    ids.truncate(limit);
    (ids, more)
}

#[test]
fn pages_walk_in_id_order_by_agent_state_and_cursor() {
    let mut book = AlertBook::new(0);
    for (i, agent) in ["a", "b", "c", "a", "b"].iter().enumerate() {
        let name = format!("r{i}");
        book.raise(&name, AlertLevel::Warning, agent, "p", 1.0, 1_000);
    }
    book.clear("r1", "b", 2_000);
    let all = |after, limit| {
        let filter = AlertFilter {
            after,
            ..AlertFilter::default()
        };
        let (page, more) = book.page(&filter, limit);
        (page.iter().map(|v| v.id).collect::<Vec<_>>(), more)
    };
    assert_eq!(all(None, 2), (vec![1, 2], true));
    assert_eq!(all(Some(2), 2), (vec![3, 4], true));
    assert_eq!(all(Some(4), 2), (vec![5], false));
    let of_b = AlertFilter {
        agent: Some("b".into()),
        state: Some(AlertState::Firing),
        ..AlertFilter::default()
    };
    let (page, more) = book.page(&of_b, 10);
    assert_eq!(
        (page.iter().map(|v| v.id).collect::<Vec<_>>(), more),
        (vec![5], false)
    );
    let counts = book.counts();
    assert_eq!(counts.total, 5);
    assert_eq!(counts.firing_by_level.get(&AlertLevel::Warning), Some(&4));
}

#[test]
fn a_resolved_alert_is_forgotten_once_and_its_successor_is_kept() {
    let mut book = AlertBook::new(0);
    book.raise("down", AlertLevel::Critical, "w-1", "p", 1.0, 1_000);
    book.clear("down", "w-1", 2_000);
    // It fires again: the new alert replaces the resolved one under the same key.
    book.raise("down", AlertLevel::Critical, "w-1", "p", 1.0, 3_000);
    assert_eq!(book.forget_resolved(2_000 + RESOLVED_KEPT_MS), 0);
    assert_eq!(book.len(), 1);
    book.clear("down", "w-1", 4_000);
    assert_eq!(book.forget_resolved(4_000 + RESOLVED_KEPT_MS - 1), 0);
    assert_eq!(book.forget_resolved(4_000 + RESOLVED_KEPT_MS), 1);
    assert!(book.is_empty());
    assert_indexed(&book);
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Step {
    Cross { rule: u8, agent: u8, breached: bool },
    Raise { rule: u8, agent: u8 },
    Clear { rule: u8, agent: u8 },
    Forget { agent: u8 },
    Evaluate,
    Later { secs: u16 },
}

fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let step = prop_oneof![
        (0u8..3, 0u8..4, any::<bool>()).prop_map(|(rule, agent, breached)| Step::Cross {
            rule,
            agent,
            breached
        }),
        (0u8..3, 0u8..4).prop_map(|(rule, agent)| Step::Raise { rule, agent }),
        (0u8..3, 0u8..4).prop_map(|(rule, agent)| Step::Clear { rule, agent }),
        (0u8..4).prop_map(|agent| Step::Forget { agent }),
        Just(Step::Evaluate),
        (0u16..900).prop_map(|secs| Step::Later { secs }),
    ];
    proptest::collection::vec(step, 1..80)
}

proptest::proptest! {
    #[test]
    fn the_indexes_agree_with_the_alerts_whatever_happens(steps in steps()) {
        let mut book = AlertBook::new(0);
        let mut now = 1_000i64;
        for step in steps {
            let agent = |a: u8| format!("w-{a}");
            match step {
                Step::Cross { rule: r, agent: a, breached } => {
                    let mut hot = rule(u64::from(r) * 5, u64::from(r % 2) * 10, u64::from(r) * 20);
                    hot.name = format!("hot{r}");
                    let name = agent(a);
                    let crossing = Crossing {
                        rule: hot, agent: &name, pool: "w", value: 60.0, ts_ms: now, breached,
                    };
                    book.crossed(crossing, now);
                }
                Step::Raise { rule: r, agent: a } => {
                    book.raise(&format!("down{r}"), AlertLevel::Critical, &agent(a), "w", 1.0, now);
                }
                Step::Clear { rule: r, agent: a } => {
                    book.clear(&format!("down{r}"), &agent(a), now);
                }
                Step::Forget { agent: a } => {
                    book.forget(&agent(a), now);
                }
                Step::Evaluate => {
                    book.evaluate(now);
                    book.forget_resolved(now);
                }
                Step::Later { secs } => now += i64::from(secs) * 1000,
            }
            assert_indexed(&book);
            for filter in [
                AlertFilter::default(),
                AlertFilter { agent: Some("w-1".into()), ..AlertFilter::default() },
                AlertFilter { state: Some(AlertState::Pending), after: Some(3), ..AlertFilter::default() },
            ] {
                let (page, more) = book.page(&filter, 3);
                let ids: Vec<u64> = page.iter().map(|v| v.id).collect();
                proptest::prop_assert_eq!((ids, more), naive_page(&book, &filter, 3));
            }
        }
    }
}
