//! Cost and token budgets of a pool, and their burn-rate alerts, in the manner of the Google
//! SRE workbook's multiwindow, multi-burn-rate alerting. A budget is a rate (money an hour or
//! a day, tokens a second); the burn rate over a window is what was spent in it over what the
//! budget allows for it. An alert fires when both a long window (the spending is significant)
//! and a short one, a twelfth as long (it is still going on), burn at its rate or faster, and
//! resolves as soon as either falls below: the short window makes the reset fast.
//!
//! - `*_burn_fast` (critical): twice the budget's pace over the last hour and five minutes;
//!   a day's budget would be gone in twelve hours.
//! - `*_burn_slow` (warning): the budget's pace or more over the last six hours and thirty
//!   minutes; the budget will not last its period.
//!
//! Windows start when the pool's spending is first recorded: until a long window is full, its
//! burn is over the time seen, but never less than its short window (so a new pool spending
//! at three times its budget alerts within minutes, not after six hours).

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::domain::Change;
use crate::domain::evidence::BudgetBreach;
use crate::policy::{AlertLevel, BudgetPolicy};

/// One tier of burn-rate alerting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    /// The alert's suffix: `fast` or `slow`.
    pub suffix: &'static str,
    /// How bad.
    pub level: AlertLevel,
    /// The burn rate at or above which it fires.
    pub burn: f64,
    /// The long window, milliseconds.
    pub long_ms: i64,
    /// The short window, milliseconds (a twelfth of the long one).
    pub short_ms: i64,
}

/// The two tiers.
pub const TIERS: [Tier; 2] = [
    Tier {
        suffix: "fast",
        level: AlertLevel::Critical,
        burn: 2.0,
        long_ms: 3_600_000,
        short_ms: 300_000,
    },
    Tier {
        suffix: "slow",
        level: AlertLevel::Warning,
        burn: 1.0,
        long_ms: 6 * 3_600_000,
        short_ms: 1_800_000,
    },
];

/// The alerts, by what is budgeted and tier.
pub const COST_BURN_FAST: &str = "cost_burn_fast";
/// See [`COST_BURN_FAST`].
pub const COST_BURN_SLOW: &str = "cost_burn_slow";
/// See [`COST_BURN_FAST`].
pub const TOKEN_BURN_FAST: &str = "token_burn_fast";
/// See [`COST_BURN_FAST`].
pub const TOKEN_BURN_SLOW: &str = "token_burn_slow";

const MINUTE_MS: i64 = 60_000;

/// A burn-rate alert that starts or stops firing.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnChange {
    /// The pool.
    pub pool: String,
    /// The alert (`cost_burn_fast`, ...).
    pub alert: &'static str,
    /// How bad.
    pub level: AlertLevel,
    /// Fires (true) or resolves.
    pub firing: bool,
    /// The burn rate over the long window.
    pub burn_long: f64,
    /// The burn rate over the short window.
    pub burn_short: f64,
}

/// What each pool spent, minute by minute over the longest window, and which burn alerts
/// fire.
#[derive(Debug, Default)]
pub struct BudgetLedger {
    pools: HashMap<String, Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    first_ms: Option<i64>,
    /// When rates were last recorded.
    last_ms: Option<i64>,
    /// (minute start, money, tokens), oldest first.
    minutes: VecDeque<(i64, f64, f64)>,
    firing: BTreeSet<&'static str>,
}

impl BudgetLedger {
    /// Adds what `pool` spends at `money_per_sec` and `tokens_per_sec` since its rates were
    /// last recorded (at most a minute of it: a longer gap is not guessed at).
    pub fn record_rates(
        &mut self,
        pool: &str,
        money_per_sec: f64,
        tokens_per_sec: f64,
        now_ms: i64,
    ) {
        let ledger = self.pools.entry(pool.to_string()).or_default();
        let last = ledger.last_ms.replace(now_ms);
        let seconds = last.map_or(0.0, |last| {
            (now_ms - last).clamp(0, MINUTE_MS) as f64 / 1000.0
        });
        self.record(
            pool,
            money_per_sec * seconds,
            tokens_per_sec * seconds,
            now_ms,
        );
    }

    /// Adds what `pool` spent (`cost` money, `tokens` tokens) in the interval ending at
    /// `now_ms`.
    pub fn record(&mut self, pool: &str, cost: f64, tokens: f64, now_ms: i64) {
        let ledger = self.pools.entry(pool.to_string()).or_default();
        ledger.first_ms.get_or_insert(now_ms);
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        match ledger.minutes.back_mut() {
            Some((at, money, used)) if *at == minute => {
                *money += cost.max(0.0);
                *used += tokens.max(0.0);
            }
            _ => ledger
                .minutes
                .push_back((minute, cost.max(0.0), tokens.max(0.0))),
        }
        let oldest = now_ms - TIERS.iter().map(|t| t.long_ms).max().unwrap_or(0) - MINUTE_MS;
        while ledger
            .minutes
            .front()
            .is_some_and(|(at, _, _)| *at < oldest)
        {
            ledger.minutes.pop_front();
        }
    }

    /// The burn alerts of `pool` under `budget` that start or stop firing at `now_ms`.
    pub fn evaluate(&mut self, pool: &str, budget: &BudgetPolicy, now_ms: i64) -> Vec<BurnChange> {
        let Some(ledger) = self.pools.get_mut(pool) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        let budgets = [
            (budget.money_per_sec(), [COST_BURN_FAST, COST_BURN_SLOW], 1),
            (budget.tokens_per_sec, [TOKEN_BURN_FAST, TOKEN_BURN_SLOW], 2),
        ];
        for (allowed_per_sec, names, column) in budgets {
            for (tier, alert) in TIERS.iter().zip(names) {
                let (burn_long, burn_short) = match allowed_per_sec {
                    Some(allowed) if allowed > 0.0 => (
                        ledger.burn(column, allowed, tier.long_ms, tier.short_ms, now_ms),
                        ledger.burn(column, allowed, tier.short_ms, tier.short_ms, now_ms),
                    ),
                    _ => (0.0, 0.0),
                };
                let firing = burn_long >= tier.burn && burn_short >= tier.burn;
                let was = ledger.firing.contains(alert);
                if firing != was {
                    if firing {
                        ledger.firing.insert(alert);
                    } else {
                        ledger.firing.remove(alert);
                    }
                    changes.push(BurnChange {
                        pool: pool.to_string(),
                        alert,
                        level: tier.level,
                        firing,
                        burn_long,
                        burn_short,
                    });
                }
            }
        }
        changes
    }

    /// What `pool` spent over the last `window_ms`, in money and tokens.
    pub fn spent(&self, pool: &str, window_ms: i64, now_ms: i64) -> (f64, f64) {
        self.pools.get(pool).map_or((0.0, 0.0), |ledger| {
            (
                ledger.sum(1, window_ms, now_ms),
                ledger.sum(2, window_ms, now_ms),
            )
        })
    }
}

impl Ledger {
    fn sum(&self, column: usize, window_ms: i64, now_ms: i64) -> f64 {
        let since = now_ms - window_ms;
        self.minutes
            .iter()
            .filter(|(at, _, _)| at + MINUTE_MS > since)
            .map(|&(_, money, tokens)| if column == 1 { money } else { tokens })
            .sum()
    }

    /// Spent over the window (or the time seen, when shorter, but never less than `least_ms`)
    /// against what `allowed_per_sec` allows for it.
    fn burn(
        &self,
        column: usize,
        allowed_per_sec: f64,
        window_ms: i64,
        least_ms: i64,
        now_ms: i64,
    ) -> f64 {
        let seen_ms = now_ms - self.first_ms.unwrap_or(now_ms);
        let span_ms = window_ms.min(seen_ms.max(least_ms));
        self.sum(column, window_ms, now_ms) / (allowed_per_sec * span_ms as f64 / 1000.0)
    }
}

/// Whether `change`, a scale-out of a pool whose models cost `cost_per_hour_now`, would take
/// that cost past `budget` (at the same cost per agent).
pub fn scale_out_breach(
    change: &Change,
    cost_per_hour_now: f64,
    budget: &BudgetPolicy,
) -> Option<BudgetBreach> {
    let Change::Scale { from, to } = *change else {
        return None;
    };
    let allowed_per_hour = budget.money_per_sec()? * 3600.0;
    if to <= from || from == 0 {
        return None;
    }
    let after = cost_per_hour_now * to as f64 / from as f64;
    (after > allowed_per_hour).then_some(BudgetBreach {
        cost_per_hour_now,
        cost_per_hour_after: after,
        allowed_per_hour,
    })
}

#[cfg(test)]
mod tests;
