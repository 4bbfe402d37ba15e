//! Failed actions and their retries: per pool and target, the failures in a row, when the
//! last one was, and whether retrying can help. A failure that retrying can help backs off
//! exponentially; one it cannot help holds the target until the pool or policy changes.
//! Failures never use the hourly cap that real changes need.

use std::collections::HashMap;

use crate::domain::Change;

/// The first backoff after a failure, milliseconds; it doubles with each failure in a row.
pub const BACKOFF_BASE_MS: i64 = 10_000;
/// The longest backoff, milliseconds.
pub const BACKOFF_MAX_MS: i64 = 15 * 60_000;

/// Why a change is held because like changes failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryHold {
    /// A like change failed `failures` times in a row; the next try waits.
    #[error("{target} on pool {pool} failed {failures} time(s) in a row: next try in {secs} s")]
    BackingOff {
        /// The pool.
        pool: String,
        /// What the change aims at, e.g. `restart worker-3`.
        target: String,
        /// Failures in a row.
        failures: u32,
        /// Seconds left, rounded up.
        secs: i64,
    },
    /// A like change failed for a reason retrying cannot fix, and nothing changed since.
    #[error(
        "{target} on pool {pool} failed ({reason}); not tried again until the pool or policy changes"
    )]
    UntilChange {
        /// The pool.
        pool: String,
        /// What the change aims at.
        target: String,
        /// Why it failed.
        reason: String,
    },
}

/// What a change aims at: like changes share it (a scale's direction, a restart's agent, a
/// threshold's rule).
pub fn target(change: &Change) -> String {
    match change {
        Change::Scale { from, to } if to > from => "scale up".into(),
        Change::Scale { .. } => "scale down".into(),
        Change::Restart { agent } => format!("restart {agent}"),
        Change::AdjustThreshold { rule, .. } => format!("adjust_threshold {rule}"),
        Change::Redistribute { .. } => "redistribute".into(),
        Change::AdjustConcurrency { from, to } if to > from => "raise concurrency".into(),
        Change::AdjustConcurrency { .. } => "lower concurrency".into(),
        Change::SwitchModel { agent, .. } => format!("switch_model {agent}"),
    }
}

#[derive(Debug, Clone)]
struct Failure {
    in_a_row: u32,
    last_ms: i64,
    /// Why, when retrying cannot help.
    permanent: Option<String>,
    /// The pool and policy as they were when it failed.
    world: u64,
}

/// Failures per pool and target.
#[derive(Debug, Default, Clone)]
pub struct FailureBook {
    failures: HashMap<(String, String), Failure>,
}

impl FailureBook {
    /// Records that `change` on `pool` failed at `now_ms`; `permanent` says why when retrying
    /// cannot help; `world` fingerprints the pool and policy as they are now.
    pub fn failed(
        &mut self,
        pool: &str,
        change: &Change,
        permanent: Option<String>,
        world: u64,
        now_ms: i64,
    ) {
        let entry = self
            .failures
            .entry((pool.to_string(), target(change)))
            .or_insert(Failure {
                in_a_row: 0,
                last_ms: now_ms,
                permanent: None,
                world,
            });
        entry.in_a_row += 1;
        entry.last_ms = now_ms;
        entry.permanent = permanent;
        entry.world = world;
    }

    /// Records that `change` on `pool` succeeded: its failures are forgotten.
    pub fn succeeded(&mut self, pool: &str, change: &Change) {
        self.failures.remove(&(pool.to_string(), target(change)));
    }

    /// Holds `change` on `pool` while like changes back off, or failed for good in the same
    /// `world`.
    pub fn hold(
        &self,
        pool: &str,
        change: &Change,
        world: u64,
        now_ms: i64,
    ) -> Result<(), RetryHold> {
        let target = target(change);
        let Some(failure) = self.failures.get(&(pool.to_string(), target.clone())) else {
            return Ok(());
        };
        if let Some(reason) = &failure.permanent
            && failure.world == world
        {
            return Err(RetryHold::UntilChange {
                pool: pool.to_string(),
                target,
                reason: reason.clone(),
            });
        }
        let wait = backoff_ms(failure.in_a_row);
        let left = failure.last_ms + wait - now_ms;
        if left > 0 {
            return Err(RetryHold::BackingOff {
                pool: pool.to_string(),
                target,
                failures: failure.in_a_row,
                secs: (left + 999) / 1000,
            });
        }
        Ok(())
    }
}

/// The wait after `in_a_row` failures in a row: the base, doubled per further failure, capped.
pub fn backoff_ms(in_a_row: u32) -> i64 {
    let doublings = in_a_row.saturating_sub(1).min(20);
    (BACKOFF_BASE_MS << doublings).min(BACKOFF_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(agent: &str) -> Change {
        Change::Restart {
            agent: agent.into(),
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let waits: Vec<i64> = (1..=9).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 900, 900].map(|s| s * 1000)
        );
        assert_eq!(backoff_ms(u32::MAX), BACKOFF_MAX_MS);
    }

    #[test]
    fn holds_follow_failures_per_target_and_world() {
        let up = Change::Scale { from: 1, to: 2 };
        let down = Change::Scale { from: 2, to: 1 };
        // (what happened before, the change asked now, the world now, ms later, held?)
        type Step = (&'static str, Change, u64, i64, Option<&'static str>);
        type History = Vec<(Change, Option<&'static str>)>;
        let cases: Vec<(History, Step)> = vec![
            (vec![], ("nothing failed", restart("w-1"), 0, 0, None)),
            (
                vec![(restart("w-1"), None)],
                (
                    "one failure, within the base",
                    restart("w-1"),
                    0,
                    9_000,
                    Some("backing"),
                ),
            ),
            (
                vec![(restart("w-1"), None)],
                (
                    "one failure, after the base",
                    restart("w-1"),
                    0,
                    10_000,
                    None,
                ),
            ),
            (
                vec![(restart("w-1"), None)],
                ("another target", restart("w-2"), 0, 0, None),
            ),
            (
                vec![(restart("w-1"), None), (restart("w-1"), None)],
                (
                    "two in a row wait twice as long",
                    restart("w-1"),
                    0,
                    19_000,
                    Some("backing"),
                ),
            ),
            (
                vec![(up.clone(), None)],
                (
                    "a scale up does not hold a scale down",
                    down.clone(),
                    0,
                    0,
                    None,
                ),
            ),
            (
                vec![(restart("ghost"), Some("no agent ghost in this pool"))],
                (
                    "permanent, same world, much later",
                    restart("ghost"),
                    0,
                    3_600_000,
                    Some("until"),
                ),
            ),
            (
                vec![(restart("ghost"), Some("no agent ghost in this pool"))],
                (
                    "permanent, the world changed, backoff over",
                    restart("ghost"),
                    1,
                    10_000,
                    None,
                ),
            ),
            (
                vec![(restart("ghost"), Some("no agent ghost in this pool"))],
                (
                    "permanent, the world changed, still backing off",
                    restart("ghost"),
                    1,
                    1_000,
                    Some("backing"),
                ),
            ),
        ];
        for (history, (what, change, world, later, expected)) in cases {
            let mut book = FailureBook::default();
            for (failed, permanent) in history {
                book.failed("p", &failed, permanent.map(str::to_string), 0, 0);
            }
            let held = book.hold("p", &change, world, later);
            let kind = match &held {
                Ok(()) => None,
                Err(RetryHold::BackingOff { .. }) => Some("backing"),
                Err(RetryHold::UntilChange { .. }) => Some("until"),
            };
            assert_eq!(kind, expected, "{what}: {held:?}");
        }
    }

    #[test]
    fn a_success_forgets_the_failures_of_its_target() {
        let mut book = FailureBook::default();
        book.failed("p", &restart("w-1"), Some("gone".into()), 0, 0);
        book.succeeded("p", &restart("w-1"));
        assert_eq!(book.hold("p", &restart("w-1"), 0, 0), Ok(()));
    }
}
