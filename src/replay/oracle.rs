//! The perfect-foresight limit: a scaler that knows the whole trace. An agent started at
//! tick t serves from t + start-up, so at t the pool needs the most agents that demand will
//! need at any tick in [t, t + start-up]: `ceil(demand / 0.85)`, at least `min_agents`. That
//! schedule has no violation after the first start-up and the fewest agent-seconds, so it
//! is the yardstick the other strategies are measured against.

use std::collections::VecDeque;

use super::{Observation, ReplayConfig, SLO_UTILIZATION, Strategy, Trace};

/// The perfect-foresight schedule of one trace.
#[derive(Debug, Clone)]
pub struct Oracle {
    start_ms: i64,
    tick_ms: i64,
    /// Agents to have at each tick.
    schedule: Vec<usize>,
}

impl Oracle {
    /// The schedule for `trace` under `config`: a sliding maximum of each tick's need over
    /// the start-up window ahead of it.
    pub fn new(trace: &Trace, config: &ReplayConfig) -> Self {
        let tick_ms = config.tick_secs.max(1) as i64 * 1000;
        let start_ms = trace.start_ms();
        let ticks = ((trace.end_ms() - start_ms) / tick_ms + 1) as usize;
        let need: Vec<usize> = (0..ticks)
            .map(|i| {
                let demand = trace.demand_at(start_ms + i as i64 * tick_ms, config.peak_agents);
                ((demand / SLO_UTILIZATION).ceil().max(0.0) as usize).max(config.min_agents)
            })
            .collect();
        // Ticks an agent started now takes to serve (a start-up shorter than a tick still
        // counts the next one).
        let ahead = (config.startup_secs * 1000).div_ceil(tick_ms as u64) as usize;
        Oracle {
            start_ms,
            tick_ms,
            schedule: sliding_max(&need, ahead),
        }
    }
}

/// For each `i`, the largest of `values[i..=i + ahead]` (the window shortens at the end);
/// a monotonic queue, so linear in the length whatever the window.
fn sliding_max(values: &[usize], ahead: usize) -> Vec<usize> {
    let mut out = vec![0; values.len()];
    // Indices whose values decrease from front to back: the front is the window's maximum.
    let mut queue: VecDeque<usize> = VecDeque::new();
    for i in (0..values.len()).rev() {
        while queue.back().is_some_and(|&j| values[j] <= values[i]) {
            queue.pop_back();
        }
        queue.push_back(i);
        while queue.front().is_some_and(|&j| j > i + ahead) {
            queue.pop_front();
        }
        out[i] = values[queue[0]];
    }
    out
}

impl Strategy for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn decide(&mut self, observation: &Observation) -> usize {
        let index = ((observation.now_ms - self.start_ms) / self.tick_ms).max(0) as usize;
        self.schedule
            .get(index)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(observation.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::simulate;

    #[test]
    fn the_sliding_maximum_looks_ahead_over_the_window() {
        let values = [1, 3, 2, 5, 1, 1, 4, 0];
        assert_eq!(sliding_max(&values, 0), values.to_vec());
        assert_eq!(sliding_max(&values, 2), vec![3, 5, 5, 5, 4, 4, 4, 0]);
        // Against the plain definition, on a longer series.
        let long: Vec<usize> = (0..200).map(|i| (i * 7919 % 31) as usize).collect();
        for ahead in [1, 4, 13] {
            let plain: Vec<usize> = (0..long.len())
                .map(|i| {
                    *long[i..=(i + ahead).min(long.len() - 1)]
                        .iter()
                        .max()
                        .unwrap()
                })
                .collect();
            assert_eq!(sliding_max(&long, ahead), plain, "ahead {ahead}");
        }
    }

    #[test]
    fn the_oracle_never_violates_after_the_first_start_up_and_no_schedule_is_cheaper() {
        // A day by the minute of a square wave with spikes: demand between 2 and 16 agents.
        let times: Vec<i64> = (0..1440).map(|m| m * 60_000).collect();
        let values: Vec<f64> = (0..1440)
            .map(|m| {
                let level = if (m / 90) % 2 == 0 { 2.0 } else { 15.0 };
                level + if m % 37 == 0 { 1.0 } else { 0.0 }
            })
            .collect();
        let trace = Trace::new("square".into(), times, values).unwrap();
        let config = ReplayConfig {
            peak_agents: 16.0,
            ..ReplayConfig::default()
        };
        let mut oracle = Oracle::new(&trace, &config);
        let (outcome, ticks) = simulate(&trace, &config, &mut oracle, &mut |_, _| {});
        let first_startup = trace.start_ms() + config.startup_secs as i64 * 1000;
        for tick in ticks.iter().filter(|t| t.ms > first_startup) {
            assert!(
                tick.demand <= tick.ready as f64 * SLO_UTILIZATION + 1e-9,
                "violation at {}: demand {} with {} ready",
                tick.ms,
                tick.demand,
                tick.ready
            );
        }
        // Any tick with fewer agents than the schedule would leave a later tick short: the
        // schedule never holds more than the window's need.
        assert!(outcome.slo_violation_seconds <= config.startup_secs);
        let needed: u64 = ticks
            .iter()
            .map(|t| ((t.demand / SLO_UTILIZATION).ceil() as u64).max(1) * config.tick_secs)
            .sum();
        assert!(outcome.agent_seconds >= needed);
    }
}
