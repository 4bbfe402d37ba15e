//! Burn-rate alerts on a driven clock: they fire when both windows burn, and resolve fast.

use super::*;

const TICK_MS: i64 = 2_000;

/// Spends at `per_hour` money and `tokens_per_s` for `minutes` from `from_ms`, a tick at a
/// time, evaluating after each; answers the changes with their times.
fn run(
    ledger: &mut BudgetLedger,
    budget: &BudgetPolicy,
    (per_hour, tokens_per_s): (f64, f64),
    from_ms: i64,
    minutes: i64,
) -> Vec<(i64, BurnChange)> {
    let mut changes = Vec::new();
    let mut now = from_ms;
    while now < from_ms + minutes * 60_000 {
        now += TICK_MS;
        let seconds = TICK_MS as f64 / 1000.0;
        ledger.record(
            "coders",
            per_hour / 3600.0 * seconds,
            tokens_per_s * seconds,
            now,
        );
        for change in ledger.evaluate("coders", budget, now) {
            changes.push((now, change));
        }
    }
    changes
}

#[test]
fn a_fast_burn_fires_within_minutes_and_resolves_minutes_after_it_stops() {
    let budget = BudgetPolicy {
        cost_per_hour: Some(1.0),
        cost_per_day: None,
        tokens_per_sec: None,
    };
    let mut ledger = BudgetLedger::default();
    // Three times the budget's pace for 20 minutes.
    let fired = run(&mut ledger, &budget, (3.0, 0.0), 0, 20);
    let fast: Vec<&(i64, BurnChange)> = fired
        .iter()
        .filter(|(_, c)| c.alert == COST_BURN_FAST)
        .collect();
    assert_eq!(fast.len(), 1, "{fired:?}");
    let (at, change) = fast[0];
    assert!(change.firing && change.level == AlertLevel::Critical);
    // Twice the pace over the first five minutes takes two thirds of them.
    assert!((190_000..=210_000).contains(at), "fired at {at} ms");
    // The slow tier (the budget's pace over six hours and thirty minutes) fires too.
    assert!(
        fired
            .iter()
            .any(|(_, c)| c.alert == COST_BURN_SLOW && c.firing)
    );
    // Back within budget (half its pace): the short window clears the fast alert within
    // five minutes, though the hour still holds the burst.
    let later = run(&mut ledger, &budget, (0.5, 0.0), 20 * 60_000, 10);
    let resolved = later
        .iter()
        .find(|(_, c)| c.alert == COST_BURN_FAST && !c.firing)
        .expect("the fast burn resolves");
    assert!(resolved.0 <= 25 * 60_000, "resolved at {} ms", resolved.0);
    assert!(
        resolved.1.burn_long >= 2.0,
        "the long window alone keeps nothing firing"
    );
}

#[test]
fn spending_within_budget_never_fires_and_tokens_have_their_own_alerts() {
    let budget = BudgetPolicy {
        cost_per_hour: Some(10.0),
        cost_per_day: Some(48.0),
        tokens_per_sec: Some(100.0),
    };
    // The daily budget is the stricter: 2 an hour.
    assert!((budget.money_per_sec().unwrap() - 2.0 / 3600.0).abs() < 1e-12);
    let mut ledger = BudgetLedger::default();
    assert!(run(&mut ledger, &budget, (1.9, 90.0), 0, 60).is_empty());
    let tokens = run(&mut ledger, &budget, (1.9, 500.0), 60 * 60_000, 10);
    assert!(
        tokens.iter().all(|(_, c)| c.alert.starts_with("token_")),
        "{tokens:?}"
    );
    // Five times the token budget for ten minutes after an hour within it: the hour's mean
    // stays under twice the budget (no fast burn), the slow tier fires.
    assert!(
        tokens
            .iter()
            .any(|(_, c)| c.alert == TOKEN_BURN_SLOW && c.firing),
        "{tokens:?}"
    );
    assert!(
        !tokens.iter().any(|(_, c)| c.alert == TOKEN_BURN_FAST),
        "{tokens:?}"
    );
    // Nothing recorded for another pool: nothing to say.
    assert!(ledger.evaluate("other", &budget, 0).is_empty());
}

#[test]
fn a_scale_out_past_the_budget_is_a_breach() {
    let budget = BudgetPolicy {
        cost_per_hour: Some(3.0),
        ..BudgetPolicy::default()
    };
    let up = Change::Scale { from: 2, to: 4 };
    let breach = scale_out_breach(&up, 2.0, &budget).unwrap();
    assert_eq!(
        (breach.cost_per_hour_after, breach.allowed_per_hour),
        (4.0, 3.0)
    );
    assert_eq!(
        scale_out_breach(&up, 1.4, &budget),
        None,
        "2.8 an hour fits"
    );
    assert_eq!(
        scale_out_breach(&Change::Scale { from: 4, to: 2 }, 9.0, &budget),
        None
    );
    assert_eq!(
        scale_out_breach(&up, 9.0, &BudgetPolicy::default()),
        None,
        "no budget"
    );
}

#[test]
fn rates_are_spent_over_the_time_since_they_were_last_recorded() {
    let mut ledger = BudgetLedger::default();
    ledger.record_rates("p", 1.0, 10.0, 0);
    assert_eq!(
        ledger.spent("p", 60_000, 0),
        (0.0, 0.0),
        "the first reading starts the clock"
    );
    ledger.record_rates("p", 1.0, 10.0, 2_000);
    ledger.record_rates("p", 1.0, 10.0, 2_500);
    assert_eq!(ledger.spent("p", 60_000, 2_500), (2.5, 25.0));
    // A gap of ten minutes counts one minute, not ten.
    ledger.record_rates("p", 1.0, 0.0, 602_500);
    assert_eq!(ledger.spent("p", 3_600_000, 602_500).0, 62.5);
}
