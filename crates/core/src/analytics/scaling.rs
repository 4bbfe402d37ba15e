//! Horizontal scaling math in the manner of Kubernetes' Horizontal Pod Autoscaler.
//!
//! The rule and its defaults follow
//! <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>:
//! `desired = ceil(current × observed / target)`, no change while the ratio is within the
//! tolerance, scale-down stabilised over a window, and scale-up limited per period to
//! `max(2 × current, current + 4)`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The knobs of one pool's scaler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingConfig {
    /// Fewest agents.
    pub min_agents: usize,
    /// Most agents.
    pub max_agents: usize,
    /// Target value of the metric per agent.
    pub target: f64,
    /// No change while `|observed / target − 1| ≤ tolerance`.
    pub tolerance: f64,
    /// Scale-down goes only to the highest recommendation of this window, milliseconds.
    pub scale_down_window_ms: i64,
    /// How fast the pool may grow.
    pub scale_up: RateLimit,
    /// How fast the pool may shrink.
    pub scale_down: RateLimit,
}

/// A rate policy in the manner of the HPA's `behavior`: within any `period_ms` the pool may
/// change by `percent` of its size or by `agents`, whichever allows more.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RateLimit {
    /// Percent of the size at the start of the period.
    pub percent: f64,
    /// Agents.
    pub agents: usize,
    /// The period, milliseconds.
    pub period_ms: i64,
}

impl RateLimit {
    /// Kubernetes' default scale-up: +100% or +4 pods per 15 s.
    pub const HPA_UP: RateLimit = RateLimit {
        percent: 100.0,
        agents: 4,
        period_ms: 15_000,
    };
    /// Kubernetes' default scale-down: −100% per 15 s (no limit).
    pub const HPA_DOWN: RateLimit = RateLimit {
        percent: 100.0,
        agents: 0,
        period_ms: 15_000,
    };

    /// The limit a policy's rate sets.
    pub fn of(rate: &crate::policy::ScaleRate) -> RateLimit {
        RateLimit {
            percent: rate.percent,
            agents: rate.agents,
            period_ms: rate.period_secs as i64 * 1000,
        }
    }

    /// The most agents a pool that had `base` at the start of the period may grow to.
    pub fn highest(&self, base: usize) -> usize {
        let by_percent = (base as f64 * (1.0 + self.percent / 100.0)).ceil() as usize;
        by_percent.max(base + self.agents)
    }

    /// The fewest agents a pool that had `base` at the start of the period may shrink to.
    pub fn lowest(&self, base: usize) -> usize {
        let by_percent = (base as f64 * (1.0 - self.percent / 100.0))
            .floor()
            .max(0.0) as usize;
        by_percent.min(base.saturating_sub(self.agents))
    }
}

/// Every step of one scaling decision, kept as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScalingDecision {
    /// Agents counted now.
    pub current: usize,
    /// Observed metric value per agent.
    pub observed: f64,
    /// `observed / target`.
    pub ratio: f64,
    /// The raw HPA recommendation before stabilization and limits.
    pub raw_desired: usize,
    /// After the scale-down stabilization window.
    pub stabilized: usize,
    /// After rate limits and the min/max clamp: what to scale to.
    pub desired: usize,
    /// For a scale-down: when the latest recommendation above `desired` was made, epoch
    /// milliseconds; the stabilization window counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_higher_ms: Option<i64>,
}

/// The raw HPA recommendation: no change within tolerance, else `ceil(current × ratio)`.
pub fn raw_desired(current: usize, observed: f64, target: f64, tolerance: f64) -> usize {
    if current == 0 || target <= 0.0 || !observed.is_finite() {
        return current;
    }
    let ratio = observed / target;
    if (ratio - 1.0).abs() <= tolerance {
        return current;
    }
    (current as f64 * ratio).ceil() as usize
}

/// The most a pool may grow in one decision: Kubernetes' default scale-up policy.
pub fn scale_up_limit(current: usize) -> usize {
    RateLimit::HPA_UP.highest(current)
}

/// A per-pool scaler that remembers recent recommendations for stabilization.
#[derive(Debug, Clone)]
pub struct Scaler {
    config: ScalingConfig,
    history: VecDeque<(i64, usize)>,
    /// Recommendations that left the window less than a window ago, to say when the last
    /// higher one was made.
    forgotten: VecDeque<(i64, usize)>,
    /// The pool's size at each decision, for the rate limits' periods.
    sizes: VecDeque<(i64, usize)>,
}

impl Scaler {
    /// A scaler with no history.
    pub fn new(config: ScalingConfig) -> Self {
        Scaler {
            config,
            history: VecDeque::new(),
            forgotten: VecDeque::new(),
            sizes: VecDeque::new(),
        }
    }

    /// Replaces the configuration, keeping the history.
    pub fn set_config(&mut self, config: ScalingConfig) {
        self.config = config;
    }

    /// Records `size` as the recommendation at `now_ms` when none could be computed (the pool
    /// is changing and its readings are not yet fresh), so a scale-in still waits out the
    /// whole window after a change.
    pub fn hold(&mut self, now_ms: i64, size: usize) {
        self.history.push_back((now_ms, size));
        self.sizes.push_back((now_ms, size));
    }

    /// The sizes the pool had within `period_ms` before `now_ms` (and now).
    fn sizes_within(&self, now_ms: i64, period_ms: i64) -> impl Iterator<Item = usize> + '_ {
        self.sizes
            .iter()
            .filter(move |&&(at, _)| now_ms - at < period_ms)
            .map(|&(_, size)| size)
    }

    /// Decides how many agents the pool should have at `now_ms`.
    pub fn decide(&mut self, now_ms: i64, current: usize, observed: f64) -> ScalingDecision {
        let config = self.config;
        let raw = raw_desired(current, observed, config.target, config.tolerance);
        self.history.push_back((now_ms, raw));
        while let Some(&(at, size)) = self.history.front() {
            if now_ms - at > config.scale_down_window_ms {
                self.history.pop_front();
                self.forgotten.push_back((at, size));
            } else {
                break;
            }
        }
        while self
            .forgotten
            .front()
            .is_some_and(|&(at, _)| now_ms - at > 2 * config.scale_down_window_ms)
        {
            self.forgotten.pop_front();
        }
        let stabilized = if raw < current {
            // Scale down only as far as the highest recommendation in the window allows.
            let highest = self.history.iter().map(|&(_, d)| d).max().unwrap_or(raw);
            highest.min(current)
        } else {
            raw
        };
        self.sizes.push_back((now_ms, current));
        let keep = config.scale_up.period_ms.max(config.scale_down.period_ms);
        while self
            .sizes
            .front()
            .is_some_and(|&(at, _)| now_ms - at >= keep)
        {
            self.sizes.pop_front();
        }
        // The period starts from the smallest (growing) or largest (shrinking) size it saw.
        let up_base = self
            .sizes_within(now_ms, config.scale_up.period_ms)
            .min()
            .unwrap_or(current);
        let down_base = self
            .sizes_within(now_ms, config.scale_down.period_ms)
            .max()
            .unwrap_or(current);
        let limited = stabilized
            .min(config.scale_up.highest(up_base).max(current))
            .max(config.scale_down.lowest(down_base).min(current));
        let desired = limited.clamp(config.min_agents, config.max_agents.max(config.min_agents));
        let last_higher_ms = (desired < current)
            .then(|| {
                self.forgotten
                    .iter()
                    .chain(&self.history)
                    .filter(|&&(_, size)| size > desired)
                    .map(|&(at, _)| at)
                    .max()
            })
            .flatten();
        ScalingDecision {
            current,
            observed,
            ratio: if config.target > 0.0 {
                observed / config.target
            } else {
                f64::NAN
            },
            raw_desired: raw,
            stabilized,
            desired,
            last_higher_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScalingConfig {
        ScalingConfig {
            min_agents: 2,
            max_agents: 8,
            target: 30.0,
            tolerance: 0.1,
            scale_down_window_ms: 15_000,
            scale_up: RateLimit::HPA_UP,
            scale_down: RateLimit::HPA_DOWN,
        }
    }

    #[test]
    fn raw_recommendation_follows_hpa_rule() {
        // (current, observed, expected)
        let table = [
            (2, 60.0, 4),
            (2, 31.0, 2), // within tolerance
            (2, 32.9, 2), // ratio 1.097: within tolerance
            (2, 34.0, 3), // ratio 1.133
            (4, 10.0, 2), // 4 × 1/3 = 1.33 -> 2
            (0, 90.0, 0), // nothing to scale from
        ];
        for (current, observed, expected) in table {
            assert_eq!(
                raw_desired(current, observed, 30.0, 0.1),
                expected,
                "current {current} observed {observed}"
            );
        }
    }

    #[test]
    fn scale_up_is_immediate_and_limited() {
        let mut scaler = Scaler::new(ScalingConfig {
            max_agents: 100,
            ..config()
        });
        let decision = scaler.decide(0, 2, 300.0);
        assert_eq!(decision.raw_desired, 20);
        assert_eq!(decision.desired, 6, "limited to current + 4");
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let mut scaler = Scaler::new(config());
        assert_eq!(scaler.decide(0, 4, 30.0).desired, 4);
        // Load falls: the recommendation drops, but the window still remembers 4.
        assert_eq!(scaler.decide(5_000, 4, 10.0).desired, 4);
        assert_eq!(scaler.decide(14_000, 4, 10.0).desired, 4);
        // 16 s after the last recommendation of 4, the window has forgotten it, and the
        // decision says when that recommendation was made.
        let later = scaler.decide(16_000, 4, 10.0);
        assert_eq!(later.raw_desired, 2);
        assert_eq!(later.desired, 2);
        assert_eq!(later.last_higher_ms, Some(0));
    }

    #[test]
    fn result_is_clamped_to_min_and_max() {
        let mut scaler = Scaler::new(config());
        assert_eq!(scaler.decide(0, 8, 90.0).desired, 8);
        let mut scaler = Scaler::new(ScalingConfig {
            scale_down_window_ms: 0,
            scale_up: RateLimit::HPA_UP,
            scale_down: RateLimit::HPA_DOWN,
            ..config()
        });
        assert_eq!(scaler.decide(0, 3, 1.0).desired, 2);
    }

    #[test]
    fn rate_policies_count_from_the_start_of_their_period() {
        let mut scaler = Scaler::new(ScalingConfig {
            max_agents: 100,
            scale_up: RateLimit {
                percent: 100.0,
                agents: 4,
                period_ms: 60_000,
            },
            scale_down: RateLimit {
                percent: 50.0,
                agents: 0,
                period_ms: 60_000,
            },
            scale_down_window_ms: 0,
            ..config()
        });
        // Far over target: +4 beats +100% from 2.
        assert_eq!(scaler.decide(0, 2, 1000.0).desired, 6);
        // Within the minute the pool that started it at 2 may not pass 6.
        assert_eq!(scaler.decide(2_000, 6, 1000.0).desired, 6);
        assert_eq!(scaler.decide(58_000, 6, 1000.0).desired, 6);
        // A minute on, it counts from 6: +100% wins.
        assert_eq!(scaler.decide(62_000, 6, 1000.0).desired, 12);
        // Shrinking: at most half of the largest size the minute saw.
        assert_eq!(scaler.decide(200_000, 12, 1.0).desired, 6);
        assert_eq!(scaler.decide(202_000, 6, 1.0).desired, 6);
        assert_eq!(scaler.decide(263_000, 6, 1.0).desired, 3);
    }
}
