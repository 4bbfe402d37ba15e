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

/// The HPA's state: its recent recommendations and when it runs next.
#[derive(Debug, Clone)]
pub struct Hpa {
    recommendations: VecDeque<(i64, usize)>,
    next_sync_ms: Option<i64>,
    min_agents: usize,
    max_agents: usize,
}

impl Hpa {
    /// An HPA with no history, keeping the pool between `min_agents` and `max_agents`.
    pub fn new(min_agents: usize, max_agents: usize) -> Self {
        Hpa {
            recommendations: VecDeque::new(),
            next_sync_ms: None,
            min_agents,
            max_agents: max_agents.max(min_agents),
        }
    }

    /// One run of the controller at `at_ms`.
    fn sync(&mut self, at_ms: i64, demand: f64, current: usize) -> usize {
        let recommendation = if current == 0 {
            // No ratio from zero replicas: what the demand needs at the target.
            (demand / TARGET).ceil().max(0.0) as usize
        } else {
            let ratio = (demand / current as f64) / TARGET;
            if (ratio - 1.0).abs() <= TOLERANCE {
                current
            } else {
                (current as f64 * ratio).ceil() as usize
            }
        };
        self.recommendations.push_back((at_ms, recommendation));
        // Recommendations strictly within the last 300 s, this one included.
        while let Some(&(at, _)) = self.recommendations.front() {
            if at <= at_ms - SCALE_DOWN_WINDOW_MS {
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
        desired
            .min((2 * current).max(current + 4))
            .clamp(self.min_agents, self.max_agents)
    }
}

impl Strategy for Hpa {
    fn name(&self) -> &'static str {
        "hpa"
    }

    fn decide(&mut self, observation: &Observation) -> usize {
        let now = observation.now_ms;
        let mut current = observation.current;
        // The controller runs every 15 s from the first tick, whatever the tick length; the
        // runs due by this tick happen at its end, on what it observed.
        let mut at = *self.next_sync_ms.get_or_insert(now);
        while at <= now {
            current = self.sync(at, observation.demand, current);
            at += SYNC_PERIOD_MS;
        }
        self.next_sync_ms = Some(at);
        current
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
        let mut hpa = Hpa::new(1, 100);
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
        let mut hpa = Hpa::new(1, 100);
        assert_eq!(hpa.decide(&observe(0, 7.0, 10)), 10);
        // Demand halves: the raw recommendation is 5, but 10 was recommended 15 s ago.
        assert_eq!(hpa.decide(&observe(15_000, 3.5, 10)), 10);
        assert_eq!(hpa.decide(&observe(285_000, 3.5, 10)), 10);
        // At 300 s the recommendation made at 0 has left the window.
        assert_eq!(hpa.decide(&observe(300_000, 3.5, 10)), 5);
    }

    #[test]
    fn runs_every_15_s_whatever_the_tick() {
        let mut hpa = Hpa::new(1, 100);
        assert_eq!(hpa.decide(&observe(0, 13.0, 10)), 19);
        // A 10 s tick: nothing runs at 10 s; the run due at 15 s happens at the 20 s tick.
        assert_eq!(hpa.decide(&observe(10_000, 40.0, 19)), 19);
        assert_eq!(hpa.decide(&observe(20_000, 26.0, 19)), 38);
        // A 30 s gap: the runs due at 30 s and 45 s both happen, each limited to doubling.
        assert_eq!(hpa.decide(&observe(45_000, 200.0, 10)), 40);
    }

    #[test]
    fn an_empty_pool_starts_what_the_demand_needs_and_is_clamped() {
        let mut hpa = Hpa::new(0, 100);
        assert_eq!(hpa.decide(&observe(0, 2.0, 0)), 3, "ceil(2 / 0.7)");
        let mut hpa = Hpa::new(0, 100);
        assert_eq!(hpa.decide(&observe(0, 20.0, 0)), 4, "at most 0 + 4 per run");
        let mut hpa = Hpa::new(2, 5);
        assert_eq!(hpa.decide(&observe(0, 0.0, 3)), 2, "min");
        assert_eq!(hpa.decide(&observe(15_000, 50.0, 2)), 5, "max");
    }
}
