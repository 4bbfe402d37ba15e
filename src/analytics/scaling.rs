//! Horizontal scaling math in the manner of Kubernetes' Horizontal Pod Autoscaler.
//!
//! The rule and its defaults follow
//! <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>:
//! `desired = ceil(current × observed / target)`, no change while the ratio is within the
//! tolerance, scale-down stabilised over a window, and scale-up limited per period to
//! `max(2 × current, current + 4)`.

use std::collections::VecDeque;

use serde::Serialize;

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
}

/// Every step of one scaling decision, kept as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
    (2 * current).max(current + 4)
}

/// A per-pool scaler that remembers recent recommendations for stabilization.
#[derive(Debug, Clone)]
pub struct Scaler {
    config: ScalingConfig,
    history: VecDeque<(i64, usize)>,
}

impl Scaler {
    /// A scaler with no history.
    pub fn new(config: ScalingConfig) -> Self {
        Scaler {
            config,
            history: VecDeque::new(),
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
    }

    /// Decides how many agents the pool should have at `now_ms`.
    pub fn decide(&mut self, now_ms: i64, current: usize, observed: f64) -> ScalingDecision {
        let config = self.config;
        let raw = raw_desired(current, observed, config.target, config.tolerance);
        self.history.push_back((now_ms, raw));
        while let Some(&(at, _)) = self.history.front() {
            if now_ms - at > config.scale_down_window_ms {
                self.history.pop_front();
            } else {
                break;
            }
        }
        let stabilized = if raw < current {
            // Scale down only as far as the highest recommendation in the window allows.
            let highest = self.history.iter().map(|&(_, d)| d).max().unwrap_or(raw);
            highest.min(current)
        } else {
            raw
        };
        let limited = stabilized.min(scale_up_limit(current));
        let desired = limited.clamp(config.min_agents, config.max_agents.max(config.min_agents));
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
        // 16 s after the last recommendation of 4, the window has forgotten it.
        let later = scaler.decide(16_000, 4, 10.0);
        assert_eq!(later.raw_desired, 2);
        assert_eq!(later.desired, 2);
    }

    #[test]
    fn result_is_clamped_to_min_and_max() {
        let mut scaler = Scaler::new(config());
        assert_eq!(scaler.decide(0, 8, 90.0).desired, 8);
        let mut scaler = Scaler::new(ScalingConfig {
            scale_down_window_ms: 0,
            ..config()
        });
        assert_eq!(scaler.decide(0, 3, 1.0).desired, 2);
    }
}
