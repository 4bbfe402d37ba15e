//! Paying more for the same work: when a pool's model cost per completed task rises while
//! its throughput does not, the extra agents (or the extra calls they make, retrying and
//! waiting on each other) cost money for nothing, and one agent fewer is proposed. The
//! recent window ([`RECENT_MS`]) is compared with the baseline before it ([`BASELINE_MS`]),
//! each a throughput-weighted mean, so that quiet minutes weigh nothing.

use std::collections::{HashMap, VecDeque};

use crate::domain::evidence::{CostPerTaskEvidence, Evidence};
use crate::domain::{Change, Proposal};

/// The recent window, milliseconds.
pub const RECENT_MS: i64 = 5 * 60_000;
/// The baseline window before it, milliseconds.
pub const BASELINE_MS: i64 = 30 * 60_000;
/// The rise in cost per task that counts, as a ratio.
pub const COST_RISE: f64 = 1.25;
/// The most throughput may have grown for the rise to count, as a ratio.
pub const THROUGHPUT_GROWTH: f64 = 1.05;
/// How sure the proposal is: a trend over minutes, not a fault.
const CONFIDENCE: f64 = 0.7;

/// What each pool's agents reported, tick by tick, over the baseline and recent windows.
#[derive(Debug, Default)]
pub struct CostWatch {
    pools: HashMap<String, VecDeque<Reading>>,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    at_ms: i64,
    cost_per_task: f64,
    throughput_per_s: f64,
}

/// A window's throughput-weighted cost per task and mean throughput, and how much of the
/// window it covers, milliseconds.
struct Summary {
    cost_per_task: f64,
    throughput_per_s: f64,
    covered_ms: i64,
}

impl CostWatch {
    /// Notes `pool`'s cost per task and throughput at `now_ms` (no cost per task: no task
    /// ended, nothing to note).
    pub fn observe(
        &mut self,
        pool: &str,
        cost_per_task: Option<f64>,
        throughput_per_s: f64,
        now_ms: i64,
    ) {
        let readings = self.pools.entry(pool.to_string()).or_default();
        if let Some(cost_per_task) = cost_per_task.filter(|c| c.is_finite() && *c >= 0.0) {
            readings.push_back(Reading {
                at_ms: now_ms,
                cost_per_task,
                throughput_per_s: throughput_per_s.max(0.0),
            });
        }
        while readings
            .front()
            .is_some_and(|r| r.at_ms < now_ms - RECENT_MS - BASELINE_MS)
        {
            readings.pop_front();
        }
    }

    /// One agent fewer for `pool` of `agents` (at least `min_agents`), when its cost per task
    /// rose by [`COST_RISE`] while its throughput grew less than [`THROUGHPUT_GROWTH`], both
    /// windows well covered (half of each at least). Proposing starts the pool's history
    /// afresh: the next proposal needs a new baseline, after the change.
    pub fn propose(
        &mut self,
        pool: &str,
        agents: usize,
        min_agents: usize,
        now_ms: i64,
    ) -> Option<Proposal> {
        if agents <= min_agents.max(1) {
            return None;
        }
        let readings = self.pools.get(pool)?;
        let recent = summary(readings, now_ms - RECENT_MS, now_ms)?;
        let baseline = summary(
            readings,
            now_ms - RECENT_MS - BASELINE_MS,
            now_ms - RECENT_MS,
        )?;
        if recent.covered_ms < RECENT_MS / 2 || baseline.covered_ms < BASELINE_MS / 2 {
            return None;
        }
        let rose = recent.cost_per_task >= baseline.cost_per_task * COST_RISE;
        let flat = recent.throughput_per_s <= baseline.throughput_per_s * THROUGHPUT_GROWTH;
        if !(rose && flat && baseline.cost_per_task > 0.0) {
            return None;
        }
        let to = agents - 1;
        self.pools.remove(pool);
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::Scale { from: agents, to },
            reason: format!(
                "model cost per completed task rose from {:.4} to {:.4} while throughput stayed \
                 at {:.2}/s (was {:.2}/s): one agent fewer",
                baseline.cost_per_task,
                recent.cost_per_task,
                recent.throughput_per_s,
                baseline.throughput_per_s
            ),
            evidence: Evidence::CostPerTask(CostPerTaskEvidence {
                baseline_cost_per_task: baseline.cost_per_task,
                recent_cost_per_task: recent.cost_per_task,
                baseline_throughput_per_s: baseline.throughput_per_s,
                recent_throughput_per_s: recent.throughput_per_s,
                windows_secs: ((RECENT_MS / 1000) as u64, (BASELINE_MS / 1000) as u64),
                anomalies: None,
            }),
            confidence: CONFIDENCE,
            expected_effect: format!("{to} agents: the same throughput at a lower cost per task"),
        })
    }
}

/// The readings in `(from_ms, until_ms]`.
fn summary(readings: &VecDeque<Reading>, from_ms: i64, until_ms: i64) -> Option<Summary> {
    let inside: Vec<&Reading> = readings
        .iter()
        .filter(|r| r.at_ms > from_ms && r.at_ms <= until_ms)
        .collect();
    let first = inside.first()?;
    let last = inside.last()?;
    let weight: f64 = inside.iter().map(|r| r.throughput_per_s).sum();
    if weight <= 0.0 {
        return None;
    }
    let cost = inside
        .iter()
        .map(|r| r.cost_per_task * r.throughput_per_s)
        .sum::<f64>()
        / weight;
    Some(Summary {
        cost_per_task: cost,
        throughput_per_s: weight / inside.len() as f64,
        covered_ms: last.at_ms - first.at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a tick every 2 s from `from_ms` for `minutes`.
    fn feed(watch: &mut CostWatch, cost: f64, throughput: f64, from_ms: i64, minutes: i64) -> i64 {
        let mut now = from_ms;
        while now < from_ms + minutes * 60_000 {
            now += 2_000;
            watch.observe("coders", Some(cost), throughput, now);
        }
        now
    }

    #[test]
    fn a_dearer_task_for_the_same_work_proposes_one_agent_fewer() {
        let mut watch = CostWatch::default();
        let now = feed(&mut watch, 0.010, 2.0, 0, 30);
        let now = feed(&mut watch, 0.014, 2.0, now, 5);
        let proposal = watch.propose("coders", 4, 1, now).expect("a scale-in");
        assert_eq!(proposal.change, Change::Scale { from: 4, to: 3 });
        let Evidence::CostPerTask(evidence) = &proposal.evidence else {
            panic!("{:?}", proposal.evidence);
        };
        assert!(
            (evidence.baseline_cost_per_task - 0.010).abs() < 1e-9,
            "{evidence:?}"
        );
        assert!(evidence.recent_cost_per_task > 0.0135, "{evidence:?}");
        // Once proposed, a new baseline is needed.
        assert!(watch.propose("coders", 3, 1, now).is_none());
        // At the pool's minimum, nothing.
        let mut small = CostWatch::default();
        let now = feed(&mut small, 0.010, 2.0, 0, 30);
        let now = feed(&mut small, 0.014, 2.0, now, 5);
        assert!(small.propose("coders", 1, 1, now).is_none());
    }

    #[test]
    fn more_work_or_too_little_history_proposes_nothing() {
        let mut grows = CostWatch::default();
        let now = feed(&mut grows, 0.010, 2.0, 0, 30);
        let now = feed(&mut grows, 0.014, 3.0, now, 5);
        assert!(
            grows.propose("coders", 4, 1, now).is_none(),
            "the tasks got bigger and more"
        );
        let mut young = CostWatch::default();
        let now = feed(&mut young, 0.010, 2.0, 0, 10);
        let now = feed(&mut young, 0.020, 2.0, now, 5);
        assert!(
            young.propose("coders", 4, 1, now).is_none(),
            "ten minutes of baseline"
        );
        let mut steady = CostWatch::default();
        let now = feed(&mut steady, 0.010, 2.0, 0, 35);
        assert!(steady.propose("coders", 4, 1, now).is_none());
    }
}
