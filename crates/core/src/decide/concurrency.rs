//! Rate-limit-aware decisions for AI agent pools. When a pool's model provider refuses calls
//! for its rate limit, more agents make more refused calls: the pool must not scale out on
//! the latency or load that throttling causes. Instead its concurrency (the tasks or model
//! calls each agent runs at once) comes down, multiplicatively, by the share refused
//! (between one and a half of it, as TCP's congestion control backs off), and goes back up
//! one at a time once the provider has stopped refusing for `recover_secs`.

use std::collections::HashMap;

use crate::domain::evidence::{Evidence, ThrottledEvidence};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::ConcurrencyPolicy;

/// How sure a throttling decision is: the provider said so, call by call.
const CONFIDENCE: f64 = 0.9;

/// What a pool's agents report of the provider's rate limit now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    /// Calls or tasks refused for the rate limit, per second, all agents.
    pub rate_limited_per_s: f64,
    /// Calls (or, without call counts, tasks ended) per second, all agents.
    pub attempts_per_s: f64,
}

impl Throttling {
    /// The throttling the pool's `agents` report (offline ones left out); `None` when none
    /// reports rate-limited errors.
    pub fn of(agents: &[&AgentView]) -> Option<Throttling> {
        let reporting: Vec<&AgentView> = agents
            .iter()
            .copied()
            .filter(|a| a.status != AgentStatus::Offline)
            .filter(|a| a.metrics.contains_key(metric::RATE_LIMITED_PER_S))
            .collect();
        if reporting.is_empty() {
            return None;
        }
        let sum =
            |name: &str| -> f64 { reporting.iter().filter_map(|a| a.metrics.get(name)).sum() };
        let calls = reporting
            .iter()
            .any(|a| a.metrics.contains_key(metric::MODEL_CALLS_PER_S));
        Some(Throttling {
            rate_limited_per_s: sum(metric::RATE_LIMITED_PER_S),
            attempts_per_s: if calls {
                sum(metric::MODEL_CALLS_PER_S)
            } else {
                sum(metric::THROUGHPUT_PER_S)
            },
        })
    }

    /// The refused share of attempts, percent (100 when refusals come with no attempts
    /// counted).
    pub fn percent(&self) -> f64 {
        if self.rate_limited_per_s <= 0.0 {
            0.0
        } else if self.attempts_per_s <= 0.0 {
            100.0
        } else {
            (100.0 * self.rate_limited_per_s / self.attempts_per_s).min(100.0)
        }
    }

    /// Whether the refused share is at least `threshold_percent`.
    pub fn throttled(&self, threshold_percent: f64) -> bool {
        self.rate_limited_per_s > 0.0 && self.percent() >= threshold_percent
    }
}

/// When each pool was last throttled and last had its concurrency raised: the memory the
/// optimizer keeps between ticks.
#[derive(Debug, Default)]
pub struct ThrottleWatch {
    pools: HashMap<String, PoolWatch>,
}

#[derive(Debug, Clone, Copy)]
struct PoolWatch {
    /// The last time the pool was throttled, or when it was first seen.
    quiet_since_ms: i64,
    /// The last raise proposed.
    raised_ms: Option<i64>,
}

impl ThrottleWatch {
    /// Notes `pool`'s throttling at `now_ms`; answers whether it is throttled at
    /// `threshold_percent`.
    pub fn observe(
        &mut self,
        pool: &str,
        throttling: Option<&Throttling>,
        threshold_percent: f64,
        now_ms: i64,
    ) -> bool {
        let throttled = throttling.is_some_and(|t| t.throttled(threshold_percent));
        let watch = self.pools.entry(pool.to_string()).or_insert(PoolWatch {
            quiet_since_ms: now_ms,
            raised_ms: None,
        });
        if throttled {
            watch.quiet_since_ms = now_ms;
        }
        throttled
    }

    /// The concurrency change for `pool`, running at `current` under `policy`: lower while
    /// throttled, raise by one after `recover_secs` quiet (and as long after the last raise).
    pub fn plan(
        &mut self,
        pool: &str,
        policy: &ConcurrencyPolicy,
        current: u32,
        throttling: Option<&Throttling>,
        now_ms: i64,
    ) -> Option<Proposal> {
        let throttled = self.observe(pool, throttling, policy.throttle_percent, now_ms);
        let watch = self.pools.get_mut(pool)?;
        let (rate_limited_per_s, attempts_per_s) =
            throttling.map_or((0.0, 0.0), |t| (t.rate_limited_per_s, t.attempts_per_s));
        let evidence = |quiet_secs: Option<i64>, percent: f64| {
            Evidence::Throttled(ThrottledEvidence {
                rate_limited_per_s,
                attempts_per_s,
                throttled_percent: percent,
                quiet_secs,
                throttle_percent: policy.throttle_percent,
                anomalies: None,
            })
        };
        if throttled {
            let percent = throttling.map_or(0.0, Throttling::percent);
            let to = lowered(current, percent, policy.min);
            if to >= current {
                return None;
            }
            return Some(Proposal {
                pool: pool.to_string(),
                change: Change::AdjustConcurrency { from: current, to },
                reason: format!(
                    "the model provider refuses {percent:.0}% of calls for its rate limit \
                     ({rate_limited_per_s:.2}/s of {attempts_per_s:.2}/s): fewer calls at once, \
                     not more agents"
                ),
                evidence: evidence(None, percent),
                confidence: CONFIDENCE,
                expected_effect: format!(
                    "{to} tasks at once per agent (was {current}): fewer refused calls"
                ),
            });
        }
        let target = current.max(policy.min);
        let since = watch
            .quiet_since_ms
            .max(watch.raised_ms.unwrap_or(i64::MIN));
        let quiet_ms = now_ms - watch.quiet_since_ms;
        if target >= policy.max || now_ms - since < policy.recover_secs as i64 * 1000 {
            return None;
        }
        watch.raised_ms = Some(now_ms);
        let to = target + 1;
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::AdjustConcurrency { from: current, to },
            reason: format!(
                "no calls refused for the rate limit in {} s: one more at once, towards {}",
                quiet_ms / 1000,
                policy.max
            ),
            evidence: evidence(
                Some(quiet_ms / 1000),
                throttling.map_or(0.0, Throttling::percent),
            ),
            confidence: CONFIDENCE,
            expected_effect: format!("{to} tasks at once per agent (was {current})"),
        })
    }
}

/// `current` lowered for a refused share of `percent`: by that share, at least one and at
/// most half, never below `min`.
fn lowered(current: u32, percent: f64, min: u32) -> u32 {
    if current <= 1 {
        return current.max(min);
    }
    let by_share = (current as f64 * (1.0 - percent / 100.0)).floor() as u32;
    let half = current.div_ceil(2);
    by_share.clamp(half, current.saturating_sub(1)).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, metrics: &[(&str, f64)]) -> AgentView {
        let mut view = AgentView::blank(id, "coders");
        view.metrics = metrics.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        view
    }

    fn policy() -> ConcurrencyPolicy {
        ConcurrencyPolicy {
            max: 8,
            min: 2,
            throttle_percent: 5.0,
            recover_secs: 60,
        }
    }

    #[test]
    fn throttling_is_the_refused_share_of_calls_or_tasks() {
        let a = agent(
            "a",
            &[
                (metric::RATE_LIMITED_PER_S, 1.0),
                (metric::MODEL_CALLS_PER_S, 4.0),
            ],
        );
        let b = agent(
            "b",
            &[
                (metric::RATE_LIMITED_PER_S, 0.0),
                (metric::MODEL_CALLS_PER_S, 4.0),
            ],
        );
        let both = Throttling::of(&[&a, &b]).unwrap();
        assert_eq!(both.percent(), 12.5);
        assert!(both.throttled(5.0) && !both.throttled(20.0));
        let tasks = agent(
            "t",
            &[
                (metric::RATE_LIMITED_PER_S, 1.0),
                (metric::THROUGHPUT_PER_S, 2.0),
            ],
        );
        assert_eq!(Throttling::of(&[&tasks]).unwrap().percent(), 50.0);
        assert_eq!(
            Throttling::of(&[&agent("c", &[(metric::CPU_PERCENT, 9.0)])]),
            None
        );
    }

    #[test]
    fn lowering_backs_off_by_the_share_within_one_and_a_half() {
        assert_eq!(lowered(8, 10.0, 1), 7);
        assert_eq!(lowered(8, 1.0, 1), 7, "at least one");
        assert_eq!(lowered(8, 90.0, 1), 4, "at most half");
        assert_eq!(lowered(3, 90.0, 2), 2, "never below min");
        assert_eq!(lowered(2, 50.0, 2), 2);
        assert_eq!(lowered(1, 90.0, 1), 1, "one is the floor of any pool");
        assert_eq!(lowered(0, 90.0, 1), 1);
    }

    #[test]
    fn throttled_pools_come_down_and_quiet_ones_go_back_up_one_at_a_time() {
        let mut watch = ThrottleWatch::default();
        let policy = policy();
        let throttled = Throttling {
            rate_limited_per_s: 3.0,
            attempts_per_s: 10.0,
        };
        let down = watch
            .plan("coders", &policy, 8, Some(&throttled), 0)
            .unwrap();
        assert_eq!(down.change, Change::AdjustConcurrency { from: 8, to: 5 });
        assert!(matches!(down.evidence, Evidence::Throttled(ref e) if e.throttled_percent == 30.0));
        let quiet = Throttling {
            rate_limited_per_s: 0.0,
            attempts_per_s: 10.0,
        };
        assert_eq!(
            watch.plan("coders", &policy, 5, Some(&quiet), 59_000),
            None,
            "too soon"
        );
        let up = watch
            .plan("coders", &policy, 5, Some(&quiet), 60_000)
            .unwrap();
        assert_eq!(up.change, Change::AdjustConcurrency { from: 5, to: 6 });
        assert_eq!(
            watch.plan("coders", &policy, 6, Some(&quiet), 61_000),
            None,
            "one at a time"
        );
        let again = watch
            .plan("coders", &policy, 6, Some(&quiet), 120_000)
            .unwrap();
        assert_eq!(again.change, Change::AdjustConcurrency { from: 6, to: 7 });
        assert_eq!(
            watch.plan("coders", &policy, 8, None, 500_000),
            None,
            "back at max"
        );
        // At the floor, nothing lower to propose.
        assert_eq!(
            watch.plan("coders", &policy, 2, Some(&throttled), 600_000),
            None
        );
    }
}
