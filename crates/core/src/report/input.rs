//! What a report is built from: the rows the store hands over, and what the policy says of
//! the pools and rules.

use super::Period;
use super::model::Window;
use crate::domain::Change;

/// One step (a minute or an hour) of one agent's metric, as the store keeps it.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// Agent id.
    pub agent: &'a str,
    /// Its pool then.
    pub pool: &'a str,
    /// Metric name.
    pub metric: &'a str,
    /// Start of the step, epoch milliseconds.
    pub ts_ms: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
    /// Minutes of the step with values.
    pub minutes: u32,
    /// Largest minute p95.
    pub p95: Option<f64>,
}

/// One alert state change from the history.
#[derive(Debug, Clone)]
pub struct AlertInput {
    /// Epoch milliseconds.
    pub ts_ms: i64,
    /// Rule name.
    pub rule: String,
    /// Agent.
    pub agent: String,
    /// Pool.
    pub pool: String,
    /// Level name.
    pub level: String,
    /// State after (`pending`, `firing`, `resolved`, `acknowledged`).
    pub to_state: String,
    /// The metric its rule watches (`availability` for offline and error alerts).
    pub metric: String,
}

/// One action log row.
#[derive(Debug, Clone)]
pub struct LogInput {
    /// Epoch milliseconds.
    pub ts_ms: i64,
    /// Action id.
    pub action_id: i64,
    /// Kind name.
    pub kind: String,
    /// Pool.
    pub pool: String,
    /// Agent, when the action targets one.
    pub agent: Option<String>,
    /// State after.
    pub to_state: String,
    /// Who caused it.
    pub actor: String,
    /// The action's change.
    pub change: Change,
}

/// What the policy says of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Pool name.
    pub name: String,
    /// Fewest agents.
    pub min_agents: usize,
    /// Most agents.
    pub max_agents: usize,
    /// CPU per agent the scaler aims at.
    pub target_cpu_percent: f64,
    /// Relative band around the target.
    pub tolerance: f64,
}

/// A threshold rule of the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    /// Rule name.
    pub name: String,
    /// Metric it watches.
    pub metric: String,
    /// Fires above this.
    pub above: f64,
    /// Only this pool, when set.
    pub pool: Option<String>,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    /// The period named.
    pub period: Period,
    /// The window.
    pub window: Window,
    /// Now, epoch milliseconds: nothing is counted past it.
    pub generated_ms: i64,
    /// Only this pool.
    pub pool: Option<String>,
    /// The policy's pools.
    pub pools: Vec<PoolSettings>,
    /// The policy's threshold rules.
    pub rules: Vec<RuleSettings>,
    /// The currency model prices are in (`[genai] currency`).
    pub currency: String,
}
