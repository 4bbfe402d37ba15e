//! Kubernetes' Horizontal Pod Autoscaler with its default settings, as the replay's baseline,
//! on the request-rate metric with a target of 0.7 agent capacities per agent.
//!
//! Each step follows the Kubernetes documentation:
//! - the rule `desiredReplicas = ceil[currentReplicas × (currentMetricValue /
//!   desiredMetricValue)]` and the tolerance of 0.1 within which nothing changes:
//!   <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>
//! - the sync period of 15 s (`--horizontal-pod-autoscaler-sync-period`):
//!   <https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/>
//! - the default behavior: scale-down stabilized over the highest recommendation of the last
//!   300 s; scale-up by at most `max(100%, 4 pods)` per 15 s, without stabilization:
//!   <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior>
//!
//! Agents still starting count in `current`, as pods without metrics do for a request-rate
//! metric whose value is the pool's total divided by its replica count.

use std::collections::VecDeque;

use super::{Observation, Strategy};

/// Target requests per agent, in agent capacities.
pub const TARGET: f64 = 0.7;
/// No change while `|ratio − 1|` is at most this.
pub const TOLERANCE: f64 = 0.1;
/// The controller's sync period, milliseconds.
pub const SYNC_PERIOD_MS: i64 = 15_000;
/// The scale-down stabilization window, milliseconds.
pub const SCALE_DOWN_WINDOW_MS: i64 = 300_000;

/// The HPA's state: its recent recommendations and when it last ran.
#[derive(Debug, Clone, Default)]
pub struct Hpa {
    recommendations: VecDeque<(i64, usize)>,
    last_sync_ms: Option<i64>,
}

impl Hpa {
    /// An HPA with no history.
    pub fn new() -> Self {
        Hpa::default()
    }
}

impl Strategy for Hpa {
    fn name(&self) -> &'static str {
        "hpa"
    }

    fn decide(&mut self, observation: &Observation) -> usize {
        let now = observation.now_ms;
        let current = observation.current;
        // The controller runs once per sync period, whatever the tick.
        if self
            .last_sync_ms
            .is_some_and(|last| now - last < SYNC_PERIOD_MS)
        {
            return current;
        }
        self.last_sync_ms = Some(now);
        if current == 0 {
            // The HPA does not scale from zero; the min clamp brings the pool back.
            return current;
        }
        let ratio = (observation.demand / current as f64) / TARGET;
        let recommendation = if (ratio - 1.0).abs() <= TOLERANCE {
            current
        } else {
            (current as f64 * ratio).ceil() as usize
        };
        self.recommendations.push_back((now, recommendation));
        // Recommendations strictly within the last 300 s, this one included.
        while let Some(&(at, _)) = self.recommendations.front() {
            if at <= now - SCALE_DOWN_WINDOW_MS {
                self.recommendations.pop_front();
            } else {
                break;
            }
        }
        let desired = if recommendation < current {
            let highest = self.recommendations.iter().map(|&(_, r)| r).max();
            highest.unwrap_or(recommendation).min(current)
        } else {
            recommendation
        };
        desired.min((2 * current).max(current + 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(now_ms: i64, demand: f64, current: usize) -> Observation {
        Observation {
            now_ms,
            demand,
            cpu_percent: 0.0,
            current,
            ready: current,
            observed_startup_ms: None,
        }
    }

    #[test]
    fn follows_the_documented_rule_and_tolerance() {
        let mut hpa = Hpa::new();
        // 10 agents, 7.6 demand: ratio 1.086, within tolerance.
        assert_eq!(hpa.decide(&observe(0, 7.6, 10)), 10);
        // 10 agents, 8.5 demand: ratio 1.214, ceil(12.14) = 13.
        assert_eq!(hpa.decide(&observe(15_000, 8.5, 10)), 13);
        // Scale-up is limited to max(2 × current, current + 4).
        assert_eq!(hpa.decide(&observe(30_000, 50.0, 2)), 6);
        assert_eq!(hpa.decide(&observe(45_000, 500.0, 10)), 20);
    }

    #[test]
    fn scale_down_waits_for_the_highest_recommendation_of_300_s() {
        let mut hpa = Hpa::new();
        assert_eq!(hpa.decide(&observe(0, 7.0, 10)), 10);
        // Demand halves: the raw recommendation is 5, but 10 was recommended 15 s ago.
        assert_eq!(hpa.decide(&observe(15_000, 3.5, 10)), 10);
        assert_eq!(hpa.decide(&observe(285_000, 3.5, 10)), 10);
        // At 300 s the recommendation made at 0 has left the window.
        assert_eq!(hpa.decide(&observe(300_000, 3.5, 10)), 5);
    }

    #[test]
    fn runs_once_per_sync_period() {
        let mut hpa = Hpa::new();
        assert_eq!(hpa.decide(&observe(0, 13.0, 10)), 19);
        // Five seconds later (a 5 s tick) nothing runs, whatever the demand.
        assert_eq!(hpa.decide(&observe(5_000, 40.0, 19)), 19);
        assert_eq!(hpa.decide(&observe(15_000, 26.0, 19)), 38);
    }
}
