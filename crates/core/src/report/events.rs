//! The alerts and actions sections, from the alert history and the action log.

use std::collections::{BTreeMap, HashMap};

use super::HOUR_MS;
use super::advice::median;
use super::build::{AlertInput, LogInput};
use super::model::{ActionLine, ActionSection, AlertSection, RuleAlerts, SilenceLine, Window};
use crate::domain::Change;

/// Counts, detection and resolution times, and which alerts resolved with no action applied
/// to their pool while they fired.
pub(super) fn alerts(
    window: Window,
    end_ms: i64,
    alerts: &[AlertInput],
    log: &[LogInput],
    silences: Vec<SilenceLine>,
) -> AlertSection {
    let applied: Vec<(&str, i64)> = log
        .iter()
        .filter(|r| r.to_state == "applied")
        .map(|r| (r.pool.as_str(), r.ts_ms))
        .collect();
    let mut section = AlertSection {
        silences,
        ..AlertSection::default()
    };
    let mut rules: BTreeMap<String, (RuleAlerts, Vec<f64>)> = BTreeMap::new();
    let mut pending: HashMap<(&str, &str), i64> = HashMap::new();
    let mut firing: HashMap<(&str, &str), i64> = HashMap::new();
    let (mut detect, mut resolve) = (Vec::new(), Vec::new());
    for alert in alerts {
        let key = (alert.rule.as_str(), alert.agent.as_str());
        let inside = window.contains(alert.ts_ms);
        match alert.to_state.as_str() {
            "pending" => {
                pending.insert(key, alert.ts_ms);
            }
            "firing" => {
                let started = pending.remove(&key);
                firing.insert(key, alert.ts_ms);
                if !inside {
                    continue;
                }
                section.fired += 1;
                *section.by_level.entry(alert.level.clone()).or_default() += 1;
                rule_entry(&mut rules, alert).0.fired += 1;
                if let Some(started) = started {
                    detect.push((alert.ts_ms - started) as f64 / 1000.0);
                }
            }
            "resolved" => {
                pending.remove(&key);
                let Some(fired) = firing.remove(&key) else {
                    continue;
                };
                if !inside {
                    continue;
                }
                let secs = (alert.ts_ms - fired) as f64 / 1000.0;
                resolve.push(secs);
                let alone = !applied
                    .iter()
                    .any(|&(pool, ts)| pool == alert.pool && (fired..=alert.ts_ms).contains(&ts));
                let (rule, durations) = rule_entry(&mut rules, alert);
                rule.resolved += 1;
                rule.resolved_alone += u32::from(alone);
                durations.push(secs);
            }
            _ => {}
        }
    }
    section.still_firing = firing
        .values()
        .filter(|&&ts| ts < end_ms && ts < window.until_ms)
        .count() as u32;
    section.mean_time_to_detect_secs = mean(&detect);
    section.mean_time_to_resolve_secs = mean(&resolve);
    let mut by_rule: Vec<RuleAlerts> = rules
        .into_values()
        .map(|(mut rule, mut durations)| {
            rule.median_firing_secs = median(&mut durations);
            rule
        })
        .filter(|r| r.fired > 0 || r.resolved > 0)
        .collect();
    by_rule.sort_by(|a, b| b.fired.cmp(&a.fired).then_with(|| a.rule.cmp(&b.rule)));
    section.by_rule = by_rule;
    section
}

fn rule_entry<'a>(
    rules: &'a mut BTreeMap<String, (RuleAlerts, Vec<f64>)>,
    alert: &AlertInput,
) -> &'a mut (RuleAlerts, Vec<f64>) {
    rules.entry(alert.rule.clone()).or_insert_with(|| {
        (
            RuleAlerts {
                rule: alert.rule.clone(),
                level: alert.level.clone(),
                fired: 0,
                resolved: 0,
                resolved_alone: 0,
                median_firing_secs: None,
            },
            Vec::new(),
        )
    })
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Transitions by state, approval waits, what each action changed, and the agent-hours that
/// applied scaling added or saved until rolled back or the window's end.
pub(super) fn actions(window: Window, end_ms: i64, log: &[LogInput]) -> ActionSection {
    let mut section = ActionSection::default();
    let mut waiting: HashMap<i64, i64> = HashMap::new();
    let mut waits = Vec::new();
    let mut lines: BTreeMap<i64, ActionLine> = BTreeMap::new();
    // Applied scale actions per pool: (when, agents added, action id).
    let mut scales: BTreeMap<&str, Vec<(i64, i64, i64)>> = BTreeMap::new();
    let mut undone: HashMap<i64, i64> = HashMap::new();
    for row in log {
        match row.to_state.as_str() {
            "pending_approval" => {
                waiting.insert(row.action_id, row.ts_ms);
            }
            "approved" | "rejected" | "expired" => {
                if let Some(since) = waiting.remove(&row.action_id)
                    && window.contains(row.ts_ms)
                {
                    waits.push((row.ts_ms - since) as f64 / 1000.0);
                }
            }
            _ => {}
        }
        if !window.contains(row.ts_ms) {
            continue;
        }
        *section.by_state.entry(row.to_state.clone()).or_default() += 1;
        match (&row.change, row.to_state.as_str()) {
            (Change::Scale { from, to }, "applied") => scales
                .entry(row.pool.as_str())
                .or_default()
                .push((row.ts_ms, *to as i64 - *from as i64, row.action_id)),
            (Change::Scale { .. }, "rolled_back") => {
                undone.insert(row.action_id, row.ts_ms);
            }
            _ => {}
        }
        let line = lines.entry(row.action_id).or_insert_with(|| ActionLine {
            id: row.action_id,
            kind: row.kind.clone(),
            pool: row.pool.clone(),
            agent: row.agent.clone(),
            change: describe(&row.change),
            outcome: row.to_state.clone(),
            actor: row.actor.clone(),
            ts_ms: row.ts_ms,
        });
        line.outcome = row.to_state.clone();
    }
    section.approvals_decided = waits.len() as u32;
    section.mean_approval_wait_secs = mean(&waits);
    section.max_approval_wait_secs = waits.iter().copied().reduce(f64::max);
    // Each change holds until it is rolled back or the window ends: their sum over time is
    // the pool's size less its size before the first.
    let end = end_ms.min(window.until_ms);
    for applied in scales.values() {
        for &(ts, delta, id) in applied {
            let stop = undone.get(&id).map_or(end, |&u| u.min(end));
            let hours = (stop - ts).max(0) as f64 / HOUR_MS as f64 * delta.abs() as f64;
            if delta > 0 {
                section.agent_hours_added += hours;
            } else {
                section.agent_hours_saved += hours;
            }
        }
    }
    section.actions = lines.into_values().collect();
    section
}

/// A change in words.
pub fn describe(change: &Change) -> String {
    match change {
        Change::Scale { from, to } => format!("scale {from} → {to} agents"),
        Change::Restart { agent } => format!("restart {agent}"),
        Change::Redistribute { to, .. } => {
            let weights: Vec<String> = to.iter().map(|(a, w)| format!("{a} {w:.2}")).collect();
            format!("weights {}", weights.join(", "))
        }
        Change::AdjustThreshold { rule, from, to } => format!("{rule} threshold {from} → {to}"),
        Change::AdjustConcurrency { from, to } => format!("concurrency {from} → {to}"),
        Change::SwitchModel { agent, from, to } => format!("{agent} model {from} → {to}"),
    }
}
