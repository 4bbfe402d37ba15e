//! Alerts as data: the state of one alert and how the API, the history and the evidence of proposals
//! show it.

use serde::{Deserialize, Serialize};

use crate::policy::AlertLevel;

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Breached, waiting for its `for` duration.
    Pending,
    /// Breached for long enough.
    Firing,
    /// Was firing, no longer breached.
    Resolved,
}

impl AlertState {
    /// The snake_case name used in the API and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertView {
    /// Unique while the controller runs.
    pub id: u64,
    /// Rule name.
    pub rule: String,
    /// Agent it is about.
    pub agent: String,
    /// Agent's pool.
    pub pool: String,
    /// Severity.
    pub level: AlertLevel,
    /// Current state.
    pub state: AlertState,
    /// The metric its rule watches (`availability` for liveness alerts); empty in alerts
    /// stored before it was recorded (evidence of older actions).
    #[serde(default)]
    pub metric: String,
    /// The value above which its rule breaches; none for anomaly and availability alerts.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// What it means, in a sentence (empty in alerts stored before it was recorded).
    #[serde(default)]
    pub message: String,
    /// Value that last changed the state.
    pub value: f64,
    /// When the breach began, epoch milliseconds.
    pub since_ms: i64,
    /// When it started firing, if it did.
    pub fired_ms: Option<i64>,
    /// When it resolved, if it did.
    pub resolved_ms: Option<i64>,
    /// Who acknowledged it, and when (epoch milliseconds).
    pub acked: Option<(String, i64)>,
    /// The silences that mute it now.
    pub silenced_by: Vec<i64>,
}
