//! The policy model, continued: profiles, alert rules and routes, notification channels and
//! automation rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How serious an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Seconds a firing alert keeps firing after the value falls back (Prometheus'
    /// `keep_firing_for`).
    #[serde(default)]
    pub keep_firing_for_secs: u64,
    /// Hysteresis: once breached, the rule clears only when the value falls to this or
    /// below; default `above`.
    #[serde(default)]
    pub clear_below: Option<f64>,
    /// Seconds after the alert resolves before it may fire again (a breach meanwhile waits
    /// as pending).
    #[serde(default)]
    pub cooldown_secs: u64,
}

const fn default_level() -> AlertLevel {
    AlertLevel::Warning
}

/// Thresholds of one metric at each level; a value above a level's threshold breaches it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelThresholds {
    /// Informational threshold.
    #[serde(default)]
    pub info: Option<f64>,
    /// Warning threshold.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Critical threshold.
    #[serde(default)]
    pub critical: Option<f64>,
    /// Emergency threshold.
    #[serde(default)]
    pub emergency: Option<f64>,
}

impl LevelThresholds {
    /// The levels that are set, lowest first.
    pub fn levels(&self) -> Vec<(AlertLevel, f64)> {
        [
            (AlertLevel::Info, self.info),
            (AlertLevel::Warning, self.warning),
            (AlertLevel::Critical, self.critical),
            (AlertLevel::Emergency, self.emergency),
        ]
        .into_iter()
        .filter_map(|(level, value)| value.map(|v| (level, v)))
        .collect()
    }
}

/// The thresholds and limits of one agent type (ProductOwner, Architect, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What this agent type is, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Most agents of this type in a pool.
    #[serde(default)]
    pub max_agents: Option<usize>,
    /// Seconds a threshold must be breached before its alert fires; default from
    /// `[alert_defaults]`.
    #[serde(default)]
    pub for_secs: Option<u64>,
    /// Seconds a firing alert keeps firing after the value falls back; default from
    /// `[alert_defaults]`.
    #[serde(default)]
    pub keep_firing_for_secs: Option<u64>,
    /// Percent below a threshold the value must fall to clear it; default from
    /// `[alert_defaults]`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub hysteresis_percent: Option<f64>,
    /// Seconds after an alert resolves before it may fire again; default from
    /// `[alert_defaults]`.
    #[serde(default)]
    pub cooldown_secs: Option<u64>,
    /// Per-metric thresholds, e.g. `cpu_percent`, `response_time_ms`, `error_rate`
    /// (percent), `communication_latency_ms`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, LevelThresholds>,
}

/// Which alerts go to which channels, and how they are grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Label values an alert must have (`level`, `pool`, `rule`, `agent`); empty matches all.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// Channels that receive the matching alerts.
    pub channels: Vec<String>,
    /// Labels whose values form one notification group.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// Seconds to wait for more alerts before the first notification of a group.
    #[serde(default = "default_group_wait_secs")]
    pub group_wait_secs: u64,
    /// Seconds between notifications about new alerts of a group.
    #[serde(default = "default_group_interval_secs")]
    pub group_interval_secs: u64,
    /// Seconds before a still-firing group is notified again.
    #[serde(default = "default_repeat_interval_secs")]
    pub repeat_interval_secs: u64,
}

fn default_group_by() -> Vec<String> {
    vec!["pool".to_string(), "rule".to_string()]
}
const fn default_group_wait_secs() -> u64 {
    5
}
const fn default_group_interval_secs() -> u64 {
    60
}
const fn default_repeat_interval_secs() -> u64 {
    4 * 3600
}

/// A notification channel. Secrets are named by environment variable or file, never inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// The controller's own log.
    Console,
    /// A generic JSON webhook.
    Webhook {
        /// Environment variable holding the URL.
        #[serde(default)]
        url_env: Option<String>,
        /// File holding the URL.
        #[serde(default)]
        url_file: Option<String>,
    },
    /// A Slack incoming webhook.
    Slack {
        /// Environment variable holding the webhook URL.
        #[serde(default)]
        url_env: Option<String>,
        /// File holding the webhook URL.
        #[serde(default)]
        url_file: Option<String>,
    },
    /// Email over SMTP.
    Email {
        /// SMTP server host.
        smtp_host: String,
        /// SMTP server port.
        #[serde(default = "default_smtp_port")]
        smtp_port: u16,
        /// Sender address.
        from: String,
        /// Recipient addresses.
        to: Vec<String>,
        /// SMTP user, if the server wants one.
        #[serde(default)]
        username: Option<String>,
        /// Environment variable holding the SMTP password.
        #[serde(default)]
        password_env: Option<String>,
        /// File holding the SMTP password.
        #[serde(default)]
        password_file: Option<String>,
    },
    /// An Alertmanager, through its `POST /api/v2/alerts`.
    Alertmanager {
        /// Base URL, e.g. `http://127.0.0.1:9093`.
        url: String,
    },
}

const fn default_smtp_port() -> u16 {
    587
}

/// Which agent metrics the anomaly detector watches, and when it speaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyPolicy {
    /// Metrics with a detector on every agent (each costs about 6 KB per agent).
    #[serde(default = "default_anomaly_metrics")]
    pub metrics: Vec<String>,
    /// A score at or above this is an anomaly observation sent to alerts and the optimizer.
    #[serde(default = "default_anomaly_report_above")]
    #[schemars(range(min = 0, max = 1))]
    pub report_above: f64,
    /// Seconds a new series (a new agent, or any agent after a restart) only teaches its
    /// detector what is usual before it scores anything: a starting worker is no anomaly.
    #[serde(default = "default_anomaly_warm_up_secs")]
    pub warm_up_secs: u64,
    /// Seconds between saves of each agent's trained models to `DATA_DIR/models/`.
    #[serde(default = "default_model_save_secs")]
    pub save_models_every_secs: u64,
}

fn default_anomaly_metrics() -> Vec<String> {
    [
        "cpu_percent",
        "memory_percent",
        "response_time_ms",
        "error_rate",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}
const fn default_anomaly_report_above() -> f64 {
    0.5
}
const fn default_anomaly_warm_up_secs() -> u64 {
    300
}
const fn default_model_save_secs() -> u64 {
    300
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy {
            metrics: default_anomaly_metrics(),
            report_above: default_anomaly_report_above(),
            warm_up_secs: default_anomaly_warm_up_secs(),
            save_models_every_secs: default_model_save_secs(),
        }
    }
}
