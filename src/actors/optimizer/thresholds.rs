//! Threshold tuning: a rule that keeps firing while its pool shows no sign of trouble is
//! noise. The optimizer proposes raising it just above the pool's observed peak over the
//! time it fired, never to or past the rule of the next level for the same metric.

use std::collections::{HashMap, VecDeque};

use crate::actors::alert::{AlertState, AlertView};
use crate::actors::fleet::AgentView;
use crate::actors::messages::AnomalyObserved;
use crate::domain::{AgentStatus, Change, Proposal};
use crate::policy::{AlertRule, ThresholdTuning};

/// The recent peaks of the metrics that pools' threshold rules watch.
#[derive(Debug, Default)]
pub struct ThresholdWatcher {
    /// (pool, metric) → (epoch ms, highest value across the pool's agents), oldest first.
    peaks: HashMap<(String, String), VecDeque<(i64, f64)>>,
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
    /// Folds in the pool's agents as seen on this tick, for every metric a rule watches.
    pub fn observe(
        &mut self,
        pool: &str,
        agents: &[&AgentView],
        rules: &[AlertRule],
        tuning: &ThresholdTuning,
        now_ms: i64,
    ) {
        let keep_ms = tuning.noisy_after_secs as i64 * 1000;
        for rule in rules {
            let peak = agents
                .iter()
                .filter_map(|a| a.metrics.get(&rule.metric).copied())
                .filter(|v| v.is_finite())
                .max_by(f64::total_cmp);
            let series = self
                .peaks
                .entry((pool.to_string(), rule.metric.clone()))
                .or_default();
            if let Some(peak) = peak
                && series.back().is_none_or(|&(at, _)| at < now_ms)
            {
                series.push_back((now_ms, peak));
            }
            while series.front().is_some_and(|&(at, _)| now_ms - at > keep_ms) {
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
        anomalies: &[&AnomalyObserved],
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
            let series = self.peaks.get(&(pool.to_string(), rule.metric.clone()))?;
            let covered = series
                .front()
                .is_some_and(|&(at, _)| now_ms - at >= window_ms * 4 / 5);
            if !covered {
                continue;
            }
            let peak = series.iter().map(|&(_, v)| v).max_by(f64::total_cmp)?;
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
                evidence: serde_json::json!({
                    "rule": rule.name,
                    "metric": rule.metric,
                    "level": rule.level,
                    "firing_agents": firing.iter().map(|a| &a.agent).collect::<Vec<_>>(),
                    "fired_secs": fired_secs,
                    "observed_peak": peak,
                    "window_secs": tuning.noisy_after_secs,
                    "headroom": tuning.headroom,
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
mod tests {

    use super::*;
    use crate::policy::AlertLevel;

    fn agent(id: &str, memory: f64) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.metrics.insert("memory_percent".into(), memory);
        view
    }

    fn rule(name: &str, above: f64, level: AlertLevel) -> AlertRule {
        AlertRule {
            name: name.into(),
            metric: "memory_percent".into(),
            above,
            for_secs: 0,
            keep_firing_for_secs: 0,
            clear_below: None,
            cooldown_secs: 0,
            level,
            pool: Some("p".into()),
        }
    }

    fn firing(rule: &str, fired_ms: i64) -> AlertView {
        AlertView {
            id: 1,
            acked: None,
            silenced_by: Vec::new(),
            rule: rule.into(),
            agent: "a".into(),
            pool: "p".into(),
            level: AlertLevel::Warning,
            state: AlertState::Firing,
            value: 1.3,
            since_ms: fired_ms,
            fired_ms: Some(fired_ms),
            resolved_ms: None,
        }
    }

    #[test]
    fn a_rule_firing_on_a_quiet_pool_is_raised_above_its_peak_and_below_the_next_level() {
        let tuning = ThresholdTuning {
            noisy_after_secs: 60,
            headroom: 1.1,
        };
        let rules = [
            rule("mem_warn", 1.0, AlertLevel::Warning),
            rule("mem_crit", 90.0, AlertLevel::Critical),
        ];
        let mut watcher = ThresholdWatcher::default();
        for tick in 0..=30 {
            let (a, b) = (agent("a", 1.2 + (tick % 3) as f64 * 0.1), agent("b", 1.1));
            watcher.observe("p", &[&a, &b], &rules, &tuning, tick * 2000);
        }
        let (a, b) = (agent("a", 1.3), agent("b", 1.1));
        let alerts = [firing("mem_warn", 0)];
        let proposal = watcher
            .noisy("p", &[&a, &b], &rules, &alerts, &[], &tuning, 60_000)
            .unwrap();
        // Peak 1.4 × 1.1 = 1.54, rounded up to two digits.
        assert_eq!(
            proposal.change,
            Change::AdjustThreshold {
                rule: "mem_warn".into(),
                from: 1.0,
                to: 1.6
            }
        );
        // Not yet noisy for long enough, or an agent in trouble: nothing.
        assert!(
            watcher
                .noisy(
                    "p",
                    &[&a, &b],
                    &rules,
                    &[firing("mem_warn", 30_000)],
                    &[],
                    &tuning,
                    60_000
                )
                .is_none()
        );
        let mut down = agent("b", 1.1);
        down.status = AgentStatus::Offline;
        assert!(
            watcher
                .noisy("p", &[&a, &down], &rules, &alerts, &[], &tuning, 60_000)
                .is_none()
        );
        // The next level caps it.
        let close = [
            rule("mem_warn", 1.0, AlertLevel::Warning),
            rule("mem_crit", 1.2, AlertLevel::Critical),
        ];
        let capped = watcher
            .noisy("p", &[&a, &b], &close, &alerts, &[], &tuning, 60_000)
            .unwrap();
        assert_eq!(
            capped.change,
            Change::AdjustThreshold {
                rule: "mem_warn".into(),
                from: 1.0,
                to: 1.1
            }
        );
        assert_eq!(round_up(37.3), 38.0);
        assert!((round_up(0.0153) - 0.016).abs() < 1e-12);
    }
}
