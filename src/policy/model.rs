//! The policy model: every field documented, every default a `const fn`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The effective policy: global settings, pools and alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Settings that apply to the whole controller.
    #[serde(default)]
    pub global: Global,
    /// Pools of interchangeable agents, by name.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolPolicy>,
    /// Threshold alert rules.
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
}

/// Settings that apply to the whole controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// How often the collector samples hosts and agents, seconds (1-10).
    #[serde(default = "default_sampling_interval_secs")]
    pub sampling_interval_secs: u64,
    /// An agent not heard from for this long is offline, seconds.
    #[serde(default = "default_heartbeat_timeout_secs")]
    pub heartbeat_timeout_secs: u64,
    /// Samples kept in memory per agent and metric.
    #[serde(default = "default_ring_buffer_size")]
    pub ring_buffer_size: usize,
}

const fn default_sampling_interval_secs() -> u64 {
    2
}
const fn default_heartbeat_timeout_secs() -> u64 {
    6
}
const fn default_ring_buffer_size() -> usize {
    1000
}

impl Default for Global {
    fn default() -> Self {
        Global {
            sampling_interval_secs: default_sampling_interval_secs(),
            heartbeat_timeout_secs: default_heartbeat_timeout_secs(),
            ring_buffer_size: default_ring_buffer_size(),
        }
    }
}

/// A pool of interchangeable agents and how to scale it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolPolicy {
    /// How the pool's agents are started, stopped and restarted.
    #[serde(default)]
    pub driver: DriverConfig,
    /// Fewest agents the pool may have.
    #[serde(default = "default_min_agents")]
    pub min_agents: usize,
    /// Most agents the pool may have.
    #[serde(default = "default_max_agents")]
    pub max_agents: usize,
    /// Mean agent CPU the scaler aims for, percent of one core.
    #[serde(default = "default_target_cpu_percent")]
    pub target_cpu_percent: f64,
    /// No scaling while observed/target is within 1 ± tolerance.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// A scale-in goes only to the highest recommendation of this many seconds.
    #[serde(default = "default_scale_down_stabilization_secs")]
    pub scale_down_stabilization_secs: u64,
    /// Seconds a new agent may take to become ready.
    #[serde(default = "default_startup_secs")]
    pub startup_secs: u64,
    /// Milliseconds a removed agent keeps serving (while clients notice) before it stops.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
}

const fn default_min_agents() -> usize {
    1
}
const fn default_max_agents() -> usize {
    10
}
const fn default_target_cpu_percent() -> f64 {
    50.0
}
const fn default_tolerance() -> f64 {
    0.1
}
const fn default_scale_down_stabilization_secs() -> u64 {
    300
}
const fn default_startup_secs() -> u64 {
    10
}
const fn default_drain_ms() -> u64 {
    1000
}

/// How a pool's agents are run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriverConfig {
    /// Local OS processes on free loopback ports.
    Process {
        /// The command and its arguments; `{port}`, `{pool}` and `{agent}` are substituted.
        /// Empty means the bundled worker, `swarmpilot agent`.
        #[serde(default)]
        command: Vec<String>,
    },
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig::Process {
            command: Vec::new(),
        }
    }
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// For the record.
    Info,
    /// Look soon.
    Warning,
    /// Look now.
    Critical,
    /// Everything is on fire.
    Emergency,
}

impl AlertLevel {
    /// The snake_case name used in the API and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Info => "info",
            AlertLevel::Warning => "warning",
            AlertLevel::Critical => "critical",
            AlertLevel::Emergency => "emergency",
        }
    }
}

/// A threshold rule on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique rule name, e.g. `cpu_high`.
    pub name: String,
    /// Metric the rule watches.
    pub metric: String,
    /// The rule breaches while the value is above this.
    pub above: f64,
    /// Seconds the breach must last before the alert fires.
    #[serde(default)]
    pub for_secs: u64,
    /// Severity.
    #[serde(default = "default_level")]
    pub level: AlertLevel,
    /// Only agents of this pool; all pools when absent.
    #[serde(default)]
    pub pool: Option<String>,
}

const fn default_level() -> AlertLevel {
    AlertLevel::Warning
}

impl Policy {
    /// The policy of one pool, if it exists.
    pub fn pool(&self, name: &str) -> Option<&PoolPolicy> {
        self.pools.get(name)
    }

    /// Rules that apply to agents of `pool`.
    pub fn rules_for_pool<'a>(&'a self, pool: &'a str) -> impl Iterator<Item = &'a AlertRule> {
        self.alerts
            .iter()
            .filter(move |rule| rule.pool.as_deref().is_none_or(|p| p == pool))
    }
}
