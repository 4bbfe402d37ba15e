//! A rule that misses a degradation: the pool has been degraded for `missed_after_secs`
//! while the rule stayed quiet, and the metric it watches rose well above its healthy
//! baseline meanwhile. The proposal lowers the rule to the baseline (the 95th percentile of
//! the pool's peaks over `baseline_secs` of healthy ticks before the degradation) times
//! `margin`, never to or below the rule of the next lower level for the same metric, and
//! only when the new threshold would have caught most of the degradation.

use super::{Reading, ThresholdWatcher, round_up};
use crate::analytics::stats::quantile;
use crate::domain::alert::{AlertState, AlertView};
use crate::domain::evidence::{Evidence, MissedDegradationEvidence};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::{AlertRule, ThresholdTuning};

/// Healthy readings a baseline needs, at least.
const MIN_BASELINE_READINGS: usize = 5;

/// Why the pool is degraded now, one reason per agent in trouble; empty when it is not:
/// agents in status error, or reporting an error rate above `max_error_rate` (percent).
pub fn degradation(agents: &[&AgentView], max_error_rate: f64) -> Vec<String> {
    let mut reasons = Vec::new();
    for agent in agents {
        if agent.status == AgentStatus::Error {
            reasons.push(format!("agent {} is in error", agent.id));
        } else if let Some(&rate) = agent.metrics.get(metric::ERROR_RATE)
            && rate > max_error_rate
        {
            reasons.push(format!(
                "agent {} has an error rate of {rate:.1}% (above {max_error_rate}%)",
                agent.id
            ));
        }
    }
    reasons
}

impl ThresholdWatcher {
    /// A proposal to lower the first rule of the pool that has stayed quiet through the
    /// degradation going on now (`signals`, from `degradation`), if one has.
    pub fn missed(
        &self,
        pool: &str,
        rules: &[AlertRule],
        alerts: &[AlertView],
        signals: &[String],
        tuning: &ThresholdTuning,
        now_ms: i64,
    ) -> Option<Proposal> {
        if tuning.missed_after_secs == 0 || signals.is_empty() {
            return None;
        }
        let missed_ms = tuning.missed_after_secs as i64 * 1000;
        for rule in rules {
            let quiet = !alerts.iter().any(|a| {
                a.rule == rule.name
                    && a.pool == pool
                    && matches!(a.state, AlertState::Pending | AlertState::Firing)
            });
            if !quiet {
                continue;
            }
            let Some(series) = self.ticks.get(&(pool.to_string(), rule.metric.clone())) else {
                continue;
            };
            // The degradation going on: the degraded readings at the end of the series.
            let run = series.iter().rev().take_while(|r| r.degraded).count();
            let degraded: Vec<&Reading> = series.iter().skip(series.len() - run).collect();
            let Some(start) = degraded.first().map(|r| r.at) else {
                continue;
            };
            if now_ms - start < missed_ms {
                continue;
            }
            let values: Vec<f64> = degraded.iter().map(|r| r.peak).collect();
            let baseline_from = start - tuning.baseline_secs as i64 * 1000;
            let healthy: Vec<f64> = series
                .iter()
                .filter(|r| !r.degraded && r.at >= baseline_from && r.at < start)
                .map(|r| r.peak)
                .collect();
            if healthy.len() < MIN_BASELINE_READINGS {
                continue;
            }
            let (Some(baseline), Some(typical), Some(highest)) = (
                quantile(&healthy, 0.95),
                quantile(&values, 0.5),
                values.iter().copied().max_by(f64::total_cmp),
            ) else {
                continue;
            };
            let mut to = round_up(baseline * tuning.margin);
            // Stay above the next lower level's rule on the same metric, if there is one.
            let lower = rules
                .iter()
                .filter(|r| r.metric == rule.metric && r.level < rule.level)
                .map(|r| r.above)
                .max_by(f64::total_cmp);
            if let Some(lower) = lower
                && to <= lower
            {
                to = (lower + rule.above) / 2.0;
            }
            // Lowering helps only if the rule would then see most of the degradation.
            if to >= rule.above || to >= typical || highest >= rule.above {
                continue;
            }
            let caught = values.iter().filter(|&&v| v > to).count();
            let degraded_secs = (now_ms - start) / 1000;
            return Some(Proposal {
                pool: pool.to_string(),
                change: Change::AdjustThreshold {
                    rule: rule.name.clone(),
                    from: rule.above,
                    to,
                },
                reason: format!(
                    "rule {} stayed quiet through {degraded_secs} s of degradation ({}); the \
                     pool's {} rose to {typical:.3} (median) from a healthy {baseline:.3} (p95)",
                    rule.name,
                    signals.join("; "),
                    rule.metric
                ),
                evidence: Evidence::MissedDegradation(MissedDegradationEvidence {
                    rule: rule.name.clone(),
                    metric: rule.metric.clone(),
                    level: rule.level,
                    degradation: signals.to_vec(),
                    degraded_secs,
                    baseline_p95: baseline,
                    baseline_readings: healthy.len(),
                    baseline_secs: tuning.baseline_secs,
                    margin: tuning.margin,
                    degraded_median: typical,
                    degraded_max: highest,
                    degraded_readings: values.len(),
                    lower_level_above: lower,
                    anomalies: None,
                }),
                // The rule's metric moved with the trouble, but need not have caused it.
                confidence: 0.6,
                expected_effect: format!(
                    "rule {} fires above {to} instead of {}: on {caught} of the {} readings of \
                     this degradation, and not on the pool's healthy baseline",
                    rule.name,
                    rule.above,
                    values.len()
                ),
            });
        }
        None
    }
}
