//! Threshold tuning from the observed baselines. A rule that keeps firing while its pool
//! shows no sign of trouble is noise: the optimizer proposes raising it just above the pool's
//! observed peak over the time it fired, never to or past the rule of the next level for the
//! same metric. A rule that stays quiet through a degradation misses it: `missed.rs`
//! proposes lowering it to just above the pool's healthy baseline.

use std::collections::{HashMap, VecDeque};

use crate::domain::alert::{AlertState, AlertView};
use crate::domain::evidence::{AnomalyNote, Evidence, NoisyRuleEvidence};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal};
use crate::policy::{AlertRule, ThresholdTuning};

mod missed;

pub use missed::degradation;

/// The recent readings of the metrics that pools' threshold rules watch.
#[derive(Debug, Default)]
pub struct ThresholdWatcher {
    /// (pool, metric) → one reading per tick, oldest first.
    ticks: HashMap<(String, String), VecDeque<Reading>>,
}

/// A pool's reading of one metric on one tick.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// Epoch milliseconds.
    at: i64,
    /// The highest value across the pool's agents.
    peak: f64,
    /// Whether the pool was degraded on that tick (see `degradation`).
    degraded: bool,
}

/// Rounds up to two significant digits, so thresholds read like a person set them.
fn round_up(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return value;
    }
    let step = 10f64.powf(value.log10().floor() - 1.0);
    (value / step).ceil() * step
}

impl ThresholdWatcher {
    /// Folds in the pool's agents as seen on this tick, for every metric a rule watches;
    /// `degraded` says whether the pool is degraded now.
    pub fn observe(
        &mut self,
        pool: &str,
        agents: &[&AgentView],
        rules: &[AlertRule],
        tuning: &ThresholdTuning,
        degraded: bool,
        now_ms: i64,
    ) {
        // Long enough for the noisy window, and for a degradation with its baseline before.
        let keep_ms = tuning
            .noisy_after_secs
            .max(tuning.baseline_secs + tuning.missed_after_secs) as i64
            * 1000;
        for rule in rules {
            let peak = agents
                .iter()
                .filter_map(|a| a.metrics.get(&rule.metric).copied())
                .filter(|v| v.is_finite())
                .max_by(f64::total_cmp);
            let series = self
                .ticks
                .entry((pool.to_string(), rule.metric.clone()))
                .or_default();
            if let Some(peak) = peak
                && series.back().is_none_or(|r| r.at < now_ms)
            {
                series.push_back(Reading {
                    at: now_ms,
                    peak,
                    degraded,
                });
            }
            while series.front().is_some_and(|r| now_ms - r.at > keep_ms) {
                series.pop_front();
            }
        }
    }

    /// A proposal to raise the noisiest rule of the pool, if one has fired for the whole
    /// `noisy_after_secs` with no agent down or in error and no anomaly in the pool.
    #[allow(clippy::too_many_arguments)]
    pub fn noisy(
        &self,
        pool: &str,
        agents: &[&AgentView],
        rules: &[AlertRule],
        alerts: &[AlertView],
        anomalies: &[&AnomalyNote],
        tuning: &ThresholdTuning,
        now_ms: i64,
    ) -> Option<Proposal> {
        let window_ms = tuning.noisy_after_secs as i64 * 1000;
        let troubled = agents
            .iter()
            .any(|a| matches!(a.status, AgentStatus::Offline | AgentStatus::Error));
        let anomalous = anomalies.iter().any(|o| now_ms - o.ts_ms < window_ms);
        if tuning.noisy_after_secs == 0 || troubled || anomalous {
            return None;
        }
        for rule in rules {
            let firing: Vec<&AlertView> = alerts
                .iter()
                .filter(|a| a.rule == rule.name && a.pool == pool && a.state == AlertState::Firing)
                .filter(|a| a.fired_ms.is_some_and(|at| now_ms - at >= window_ms))
                .collect();
            if firing.is_empty() {
                continue;
            }
            let Some(series) = self.ticks.get(&(pool.to_string(), rule.metric.clone())) else {
                continue;
            };
            let window: Vec<&Reading> = series
                .iter()
                .filter(|r| now_ms - r.at <= window_ms)
                .collect();
            let covered = window
                .first()
                .is_some_and(|r| now_ms - r.at >= window_ms * 4 / 5);
            if !covered {
                continue;
            }
            let Some(peak) = window.iter().map(|r| r.peak).max_by(f64::total_cmp) else {
                continue;
            };
            let mut to = round_up(peak * tuning.headroom);
            // Stay below the next level's rule on the same metric, if there is one.
            let next = rules
                .iter()
                .filter(|r| r.metric == rule.metric && r.level > rule.level)
                .map(|r| r.above)
                .min_by(f64::total_cmp);
            if let Some(next) = next
                && to >= next
            {
                to = (rule.above + next) / 2.0;
            }
            if to <= rule.above {
                continue;
            }
            let fired_secs = (now_ms - firing.iter().filter_map(|a| a.fired_ms).min()?) / 1000;
            return Some(Proposal {
                pool: pool.to_string(),
                change: Change::AdjustThreshold {
                    rule: rule.name.clone(),
                    from: rule.above,
                    to,
                },
                reason: format!(
                    "rule {} has fired for {fired_secs} s on {} agent(s) with no agent down, in \
                     error or anomalous; the pool's peak {} was {peak:.3}",
                    rule.name,
                    firing.len(),
                    rule.metric
                ),
                evidence: Evidence::NoisyRule(NoisyRuleEvidence {
                    rule: rule.name.clone(),
                    metric: rule.metric.clone(),
                    level: rule.level,
                    firing_agents: firing.iter().map(|a| a.agent.clone()).collect(),
                    fired_secs,
                    observed_peak: peak,
                    window_secs: tuning.noisy_after_secs,
                    headroom: tuning.headroom,
                    anomalies: None,
                }),
                // A quiet pool is good evidence of noise; a person still decides by default.
                confidence: 0.7,
                expected_effect: format!(
                    "rule {} fires above {to} instead of {}: not on the pool's normal peak",
                    rule.name, rule.above
                ),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests;
