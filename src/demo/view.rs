//! Drawing the demo: the live view printed once a second and the closing summary.

use std::fmt::Write as _;

use crate::actors::alert::{AlertState, AlertView};
use crate::actors::fleet::FleetSnapshot;
use crate::demo::load::LoadStats;
use crate::domain::{Action, Change};

/// Width of the CPU bars, characters.
const BAR_WIDTH: usize = 20;

/// A horizontal bar for `percent` of `full`.
pub fn bar(percent: f64, full: f64) -> String {
    let filled = ((percent / full).clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR_WIDTH - filled))
}

/// A short description of an action's change.
pub fn describe(action: &Action) -> String {
    match &action.change {
        Change::Scale { from, to } => format!("scale {} {from}→{to}", action.pool),
        Change::Restart { agent } => format!("restart {agent}"),
        Change::Redistribute { to, .. } => {
            format!("redistribute {} ({} weights)", action.pool, to.len())
        }
        Change::AdjustThreshold { rule, from, to } => format!("threshold {rule} {from}→{to}"),
        Change::AdjustConcurrency { from, to } => {
            format!("concurrency {} {from}→{to}", action.pool)
        }
        Change::SwitchModel { agent, from, to } => format!("model {agent} {from}→{to}"),
    }
}

/// Everything the live view shows at one instant.
pub struct Frame<'a> {
    /// Seconds since the demo began.
    pub elapsed_secs: u64,
    /// Load generator statistics.
    pub load: &'a LoadStats,
    /// The fleet.
    pub fleet: &'a FleetSnapshot,
    /// Current alerts.
    pub alerts: &'a [AlertView],
    /// Latest actions, newest first.
    pub actions: &'a [Action],
}

impl Frame<'_> {
    /// The full multi-line view, for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.headline());
        for agent in self.fleet.agents.iter() {
            let cpu = agent.cpu_smoothed.unwrap_or(0.0);
            let memory_mb = agent.metrics.get("memory_bytes").copied().unwrap_or(0.0) / 1e6;
            let status = serde_json::to_value(agent.status).ok();
            let status = status.as_ref().and_then(|s| s.as_str()).unwrap_or("?");
            let _ = writeln!(
                out,
                "  {:<12} {:<8} {} {:>5.1}% cpu {:>6.1} MB",
                agent.id,
                status,
                bar(cpu, 100.0),
                cpu,
                memory_mb
            );
        }
        if let Some(models) = self.models() {
            let _ = writeln!(out, "{models}");
        }
        let firing: Vec<String> = self.firing();
        let _ = writeln!(
            out,
            "  alerts firing: {}",
            if firing.is_empty() {
                "none".to_string()
            } else {
                firing.join(", ")
            }
        );
        for action in self.actions.iter().take(3) {
            let _ = writeln!(
                out,
                "  action #{:<3} {:<20} {:<11} {}",
                action.id,
                describe(action),
                action.state.as_str(),
                action.reason
            );
        }
        out
    }

    /// One line, for logs and pipes.
    pub fn headline(&self) -> String {
        let cpus: Vec<f64> = self
            .fleet
            .agents
            .iter()
            .filter_map(|a| a.cpu_smoothed)
            .collect();
        let mean_cpu = crate::analytics::stats::mean(&cpus).unwrap_or(0.0);
        let p95 = self
            .load
            .p95_ms()
            .map_or("   -".to_string(), |p| format!("{p:>4.0}"));
        let last = self.actions.first().map_or(String::new(), |a| {
            format!(" | last #{} {} {}", a.id, describe(a), a.state.as_str())
        });
        format!(
            "[{:>3}s] load {:<4} {:>3.0} tasks/s | agents {} | mean cpu {:>4.1}% | p95 {} ms | ok {} failed {} | alerts {}{}",
            self.elapsed_secs,
            self.load.phase,
            self.load.rate,
            self.fleet.agents.len(),
            mean_cpu,
            p95,
            self.load.ok,
            self.load.failed,
            self.firing().len(),
            last
        )
    }

    /// The workers' model use, when they report any: tokens a second and the share of calls
    /// the provider refused.
    fn models(&self) -> Option<String> {
        use crate::domain::metric;
        let agents = &self.fleet.agents;
        if !agents
            .iter()
            .any(|a| a.metrics.contains_key(metric::MODEL_CALLS_PER_S))
        {
            return None;
        }
        let sum = |name: &str| -> f64 { agents.iter().filter_map(|a| a.metrics.get(name)).sum() };
        let calls = sum(metric::MODEL_CALLS_PER_S);
        let refused = sum(metric::RATE_LIMITED_PER_S);
        let share = if calls > 0.0 {
            100.0 * refused / calls
        } else {
            0.0
        };
        Some(format!(
            "  models: {:>5.0} tokens/s in {:>5.0} out | {:>4.1} calls/s, {:>3.0}% refused (429)",
            sum(metric::TOKENS_IN_PER_S),
            sum(metric::TOKENS_OUT_PER_S),
            calls,
            share
        ))
    }

    fn firing(&self) -> Vec<String> {
        self.alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| format!("{} on {}", a.rule, a.agent))
            .collect()
    }
}

/// Threshold and availability alerts that fired or resolved since `seen` was last updated,
/// as event lines (anomaly alerts stay in the frame's alert line: they are many and short).
pub fn alert_events(
    alerts: &[AlertView],
    seen: &mut std::collections::HashMap<u64, AlertState>,
) -> Vec<String> {
    let mut events = Vec::new();
    for alert in alerts.iter().rev() {
        if alert.rule.starts_with("anomaly_") || alert.state == AlertState::Pending {
            continue;
        }
        if seen.insert(alert.id, alert.state) == Some(alert.state) {
            continue;
        }
        events.push(match alert.state {
            AlertState::Firing => format!(
                "alert {} {} on {} (value {:.1})",
                alert.level.as_str(),
                alert.rule,
                alert.agent,
                alert.value
            ),
            _ => format!("alert {} on {} resolved", alert.rule, alert.agent),
        });
    }
    events
}

/// The closing summary: every action, then the scaling verdict.
pub fn summary(actions: &[Action], started_ms: i64) -> String {
    let mut out = String::from("\nActions taken (oldest first):\n");
    if actions.is_empty() {
        out.push_str("  none\n");
    }
    for action in actions.iter().rev() {
        let _ = writeln!(
            out,
            "  #{:<3} +{:>3}s {:<20} {:<10} {}",
            action.id,
            (action.created_ms - started_ms).max(0) / 1000,
            describe(action),
            action.state.as_str(),
            action.reason
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(0.0, 100.0), "░".repeat(20));
        assert_eq!(
            bar(50.0, 100.0),
            format!("{}{}", "█".repeat(10), "░".repeat(10))
        );
        assert_eq!(bar(250.0, 100.0), "█".repeat(20));
    }
}
