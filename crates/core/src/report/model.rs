//! What a report says: every section as plain data, serialized with units in the field names
//! (`_ms`, `_secs`, `_percent`, `_per_s`, `_per_hour`) and listed in [`Report::units`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Period;

/// A time span, epoch milliseconds, end excluded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    /// Start, epoch milliseconds.
    pub since_ms: i64,
    /// End (excluded), epoch milliseconds.
    pub until_ms: i64,
}

/// The key figures of a pool, an agent or the fleet over one window; `None` where no agent
/// reported the metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Kpis {
    /// Minutes with samples, percent of those plus the minutes an availability alert
    /// (`agent_offline`, ...) fired.
    pub availability_percent: Option<f64>,
    /// Median of the per-minute response time, weighted by samples.
    pub response_time_p50_ms: Option<f64>,
    /// 95th percentile of the per-minute response time.
    pub response_time_p95_ms: Option<f64>,
    /// 99th percentile of the per-minute response time.
    pub response_time_p99_ms: Option<f64>,
    /// Mean error rate (`error_rate`, weighted by samples).
    pub error_rate_percent: Option<f64>,
    /// Mean tasks per second (the sum over agents of their `throughput_per_s`).
    pub throughput_per_s: Option<f64>,
    /// Mean CPU per agent (`cpu_percent`, percent of one core).
    pub utilisation_percent: Option<f64>,
    /// Agent-minutes with samples, in hours.
    pub agent_hours: f64,
    /// Input and output model tokens used (from `tokens_in_per_s` and `tokens_out_per_s`).
    pub model_tokens: Option<f64>,
    /// Money spent on models, in the report's `currency` (from `cost_per_hour`).
    pub model_cost: Option<f64>,
    /// That money over the tasks completed (from `throughput_per_s`).
    pub model_cost_per_task: Option<f64>,
}

/// One pool's figures beside the previous window's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolKpis {
    /// Pool name; `fleet` for the whole fleet.
    pub pool: String,
    /// Agents that reported in the window.
    pub agents: usize,
    /// This window.
    pub current: Kpis,
    /// The window before, of the same length.
    pub previous: Kpis,
    /// Alerts that fired.
    pub alerts_fired: u32,
}

/// One agent's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentKpis {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// This window.
    pub kpis: Kpis,
    /// Alerts that fired on it.
    pub alerts_fired: u32,
}

/// One host metric over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostMetric {
    /// Metric name (its unit is in the name).
    pub metric: String,
    /// Mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
    /// Largest minute p95, when there is one.
    pub p95: Option<f64>,
}

/// How one alert rule behaved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleAlerts {
    /// Rule name.
    pub rule: String,
    /// Its level.
    pub level: String,
    /// Times it fired.
    pub fired: u32,
    /// Times it resolved.
    pub resolved: u32,
    /// Of those, resolved with no action applied to its pool while it fired.
    pub resolved_alone: u32,
    /// Median seconds from firing to resolved.
    pub median_firing_secs: Option<f64>,
}

/// A silence in force at the end of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SilenceLine {
    /// Its id.
    pub id: i64,
    /// Its matchers, as `name=value` (`=~` for a regex).
    pub matchers: String,
    /// Its end, epoch milliseconds.
    pub ends_ms: i64,
    /// Why.
    pub comment: String,
    /// Who made it.
    pub created_by: String,
}

/// The alerts section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertSection {
    /// Alerts that fired.
    pub fired: u32,
    /// Fired, by level.
    pub by_level: BTreeMap<String, u32>,
    /// Per rule, the noisiest first.
    pub by_rule: Vec<RuleAlerts>,
    /// Mean seconds from an alert's first breach (pending) to firing.
    pub mean_time_to_detect_secs: Option<f64>,
    /// Mean seconds from firing to resolved.
    pub mean_time_to_resolve_secs: Option<f64>,
    /// Alerts still firing at the end of the window.
    pub still_firing: u32,
    /// Silences in force at the end of the window.
    pub silences: Vec<SilenceLine>,
}

/// One action that moved in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionLine {
    /// Action id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its pool.
    pub pool: String,
    /// Its agent, when it targets one.
    pub agent: Option<String>,
    /// What it changed, in words.
    pub change: String,
    /// The last state it reached in the window.
    pub outcome: String,
    /// Who proposed it: `auto` or a user.
    pub actor: String,
    /// When it was proposed (or first seen in the window), epoch milliseconds.
    pub ts_ms: i64,
}

/// The actions section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionSection {
    /// Transitions into each state in the window (`applied`, `rolled_back`, `rejected`, ...).
    pub by_state: BTreeMap<String, u32>,
    /// Approvals decided (approved, rejected or expired).
    pub approvals_decided: u32,
    /// Mean seconds an action waited for approval.
    pub mean_approval_wait_secs: Option<f64>,
    /// Longest such wait, seconds.
    pub max_approval_wait_secs: Option<f64>,
    /// Agent-hours added by applied scale-outs, until undone or the window's end.
    pub agent_hours_added: f64,
    /// Agent-hours saved by applied scale-ins, likewise.
    pub agent_hours_saved: f64,
    /// Each action, oldest first.
    pub actions: Vec<ActionLine>,
}

/// A metric's fitted trend in one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trend {
    /// Pool name.
    pub pool: String,
    /// Metric name (its unit is in the name).
    pub metric: String,
    /// Steps fitted.
    pub points: usize,
    /// Mean over the window.
    pub mean: f64,
    /// Least-squares slope, metric units per hour.
    pub slope_per_hour: f64,
    /// Lower end of its 95% confidence interval.
    pub slope_ci95_low: f64,
    /// Upper end of its 95% confidence interval.
    pub slope_ci95_high: f64,
    /// The interval excludes zero.
    pub significant: bool,
    /// The fitted line at the window's end.
    pub fitted_end: f64,
    /// The nearest threshold above it, from the alert rules on this metric and pool.
    pub threshold: Option<f64>,
    /// The rule with that threshold.
    pub rule: Option<String>,
    /// Hours until the fitted line crosses the threshold, when it rises significantly and
    /// crosses within the next period.
    pub crosses_in_hours: Option<f64>,
}

/// A pool that ran out of room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SaturatedPool {
    /// Pool name.
    pub pool: String,
    /// Its mean CPU per agent.
    pub utilisation_percent: f64,
    /// Its target CPU.
    pub target_cpu_percent: f64,
    /// Share of steps it ran at `max_agents`, percent.
    pub at_max_percent: f64,
}

/// An agent singled out on one figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentFigure {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// Its value (response time p95 in ms, or error rate in percent).
    pub value: f64,
    /// The median of its pool's agents.
    pub pool_median: f64,
}

/// The bottlenecks section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bottlenecks {
    /// Pools with high CPU, or long at their maximum with high CPU.
    pub saturated_pools: Vec<SaturatedPool>,
    /// The slowest agents by response time p95, slowest first (at most five).
    pub slowest_agents: Vec<AgentFigure>,
    /// Agents whose error rate stands out from their pool (robust z-score over 3.5).
    pub error_outliers: Vec<AgentFigure>,
}

/// Something the operator could change, with its expected effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Opportunity {
    /// `lower_min_agents`, `raise_max_agents` or `quiet_rule`.
    pub kind: String,
    /// The pool it is about.
    pub pool: Option<String>,
    /// The rule it is about.
    pub rule: Option<String>,
    /// What to change, in words.
    pub advice: String,
    /// Agent-hours a period it would save.
    pub agent_hours_saved: Option<f64>,
    /// Alerts a period it would avoid.
    pub alerts_avoided: Option<u32>,
}

/// One step of a pool's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChartPoint {
    /// Start of the step, epoch milliseconds.
    pub ts_ms: i64,
    /// Mean agents reporting in the step.
    pub agents: f64,
    /// Mean CPU per agent.
    pub utilisation_percent: Option<f64>,
    /// Mean response time.
    pub response_time_ms: Option<f64>,
    /// Mean error rate.
    pub error_rate_percent: Option<f64>,
}

/// A pool's series over the window, for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolChart {
    /// Pool name.
    pub pool: String,
    /// Width of a step, milliseconds.
    pub step_ms: i64,
    /// Its `min_agents` and `max_agents`, when the policy names the pool.
    pub min_agents: Option<usize>,
    /// Its `max_agents`.
    pub max_agents: Option<usize>,
    /// The steps with data, oldest first.
    pub points: Vec<ChartPoint>,
}

/// A report over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Which period.
    pub period: Period,
    /// The window reported on.
    pub window: Window,
    /// The window before, of the same length, for comparison.
    pub previous: Window,
    /// When it was built, epoch milliseconds.
    pub generated_ms: i64,
    /// Only this pool, when asked.
    pub pool: Option<String>,
    /// The currency of `model_cost` figures.
    pub currency: String,
    /// A few sentences from the numbers below.
    pub summary: Vec<String>,
    /// The fleet first, then each pool, the worst availability first.
    pub kpis: Vec<PoolKpis>,
    /// Every agent, the worst first (availability, then error rate, then response time).
    pub agents: Vec<AgentKpis>,
    /// Host resources (the `host` agent's system metrics).
    pub host: Vec<HostMetric>,
    /// Alerts.
    pub alerts: AlertSection,
    /// Actions.
    pub actions: ActionSection,
    /// Trends per pool and metric.
    pub trends: Vec<Trend>,
    /// Bottlenecks.
    pub bottlenecks: Bottlenecks,
    /// Optimization opportunities.
    pub opportunities: Vec<Opportunity>,
    /// Each pool's series, for charts.
    pub charts: Vec<PoolChart>,
    /// The unit of each field suffix.
    pub units: BTreeMap<String, String>,
}
