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
    /// Seconds a threshold must be breached before its alert fires.
    #[serde(default)]
    pub for_secs: u64,
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
    /// Metrics with a detector on every agent (each costs about 70 KB per agent).
    #[serde(default = "default_anomaly_metrics")]
    pub metrics: Vec<String>,
    /// A score at or above this is an anomaly observation sent to alerts and the optimizer.
    #[serde(default = "default_anomaly_report_above")]
    #[schemars(range(min = 0, max = 1))]
    pub report_above: f64,
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
const fn default_model_save_secs() -> u64 {
    300
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy {
            metrics: default_anomaly_metrics(),
            report_above: default_anomaly_report_above(),
            save_models_every_secs: default_model_save_secs(),
        }
    }
}

/// What a risk class lets the controller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskMode {
    /// Apply without asking.
    Auto,
    /// Wait for one approver.
    Approval,
    /// Wait for two distinct approvers.
    TwoPerson,
    /// Never apply.
    Forbidden,
}

/// What the controller may do by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    /// Propose and log, never apply.
    #[serde(default)]
    pub dry_run: bool,
    /// Action kinds that may apply without approval when their risk class allows it.
    #[serde(default = "default_auto_apply")]
    pub auto_apply: Vec<String>,
    /// Mode of each risk class (`low`, `medium`, `high`, `critical`).
    #[serde(default = "default_risk_classes")]
    pub risk_classes: BTreeMap<String, RiskMode>,
    /// Seconds a pending approval waits before it expires.
    #[serde(default = "default_approval_expiry_secs")]
    #[schemars(range(min = 1))]
    pub approval_expiry_secs: u64,
    /// Most actions applied per pool per hour.
    #[serde(default = "default_max_actions_per_hour")]
    pub max_actions_per_hour: u32,
    /// Seconds after an action before the next one on the same pool.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Seconds after it was applied during which an action may be rolled back by hand.
    #[serde(default = "default_rollback_window_secs")]
    pub rollback_window_secs: u64,
    /// How an applied action is checked before it is kept.
    #[serde(default)]
    pub verification: Verification,
}

fn default_auto_apply() -> Vec<String> {
    vec!["scale".to_string(), "restart".to_string()]
}
fn default_risk_classes() -> BTreeMap<String, RiskMode> {
    [
        ("low", RiskMode::Auto),
        ("medium", RiskMode::Approval),
        ("high", RiskMode::TwoPerson),
        ("critical", RiskMode::Forbidden),
    ]
    .into_iter()
    .map(|(class, mode)| (class.to_string(), mode))
    .collect()
}
const fn default_approval_expiry_secs() -> u64 {
    15 * 60
}
const fn default_max_actions_per_hour() -> u32 {
    60
}
const fn default_rollback_window_secs() -> u64 {
    3600
}

impl Default for Automation {
    fn default() -> Self {
        Automation {
            dry_run: false,
            auto_apply: default_auto_apply(),
            risk_classes: default_risk_classes(),
            approval_expiry_secs: default_approval_expiry_secs(),
            max_actions_per_hour: default_max_actions_per_hour(),
            cooldown_secs: 0,
            rollback_window_secs: default_rollback_window_secs(),
            verification: Verification::default(),
        }
    }
}

/// Success conditions checked after an action is applied, in the manner of Argo's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Seconds the conditions are watched.
    #[serde(default = "default_verification_window_secs")]
    pub window_secs: u64,
    /// p95 latency may be at most this multiple of what it was before.
    #[serde(default = "default_max_p95_latency_ratio")]
    #[schemars(range(min = 1))]
    pub max_p95_latency_ratio: f64,
    /// Error rate must stay below this, percent.
    #[serde(default = "default_max_error_rate")]
    #[schemars(range(min = 0, max = 100))]
    pub max_error_rate: f64,
    /// Failed checks tolerated before the action is rolled back.
    #[serde(default = "default_failure_limit")]
    pub failure_limit: u32,
}

const fn default_verification_window_secs() -> u64 {
    30
}
const fn default_max_p95_latency_ratio() -> f64 {
    1.1
}
const fn default_max_error_rate() -> f64 {
    5.0
}
const fn default_failure_limit() -> u32 {
    2
}

impl Default for Verification {
    fn default() -> Self {
        Verification {
            window_secs: default_verification_window_secs(),
            max_p95_latency_ratio: default_max_p95_latency_ratio(),
            max_error_rate: default_max_error_rate(),
            failure_limit: default_failure_limit(),
        }
    }
}
