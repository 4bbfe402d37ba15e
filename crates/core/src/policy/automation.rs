//! What the controller may do by itself: risk classes and their modes, the risk factors,
//! rate limits, and how an applied action is verified.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

impl RiskMode {
    /// How many distinct approvers the mode needs before an action applies.
    pub fn approvals(self) -> usize {
        match self {
            RiskMode::TwoPerson => 2,
            _ => 1,
        }
    }
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
    /// Seconds during which the optimizer does not propose again a change like one people
    /// rejected or let expire.
    #[serde(default = "default_refusal_hold_secs")]
    pub refusal_hold_secs: u64,
    /// Seconds after it was applied during which an action may be rolled back by hand.
    #[serde(default = "default_rollback_window_secs")]
    pub rollback_window_secs: u64,
    /// How an applied action is checked before it is kept.
    #[serde(default)]
    pub verification: Verification,
    /// How the risk score of an action is made.
    #[serde(default)]
    pub risk: RiskPolicy,
    /// When the optimizer restarts or unloads one agent.
    #[serde(default)]
    pub agent_rules: AgentRules,
    /// When the optimizer proposes raising a threshold that fires without trouble, or lowering
    /// one that misses a degradation.
    #[serde(default)]
    pub threshold_tuning: ThresholdTuning,
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
const fn default_refusal_hold_secs() -> u64 {
    600
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
            refusal_hold_secs: default_refusal_hold_secs(),
            rollback_window_secs: default_rollback_window_secs(),
            verification: Verification::default(),
            risk: RiskPolicy::default(),
            agent_rules: AgentRules::default(),
            threshold_tuning: ThresholdTuning::default(),
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
    /// After a change that takes capacity away or moves load, no agent may run above this,
    /// percent of one core.
    #[serde(default = "default_max_cpu_percent")]
    #[schemars(range(min = 1))]
    pub max_cpu_percent: f64,
    /// Failed checks tolerated: one more and the action is rolled back.
    #[serde(default = "default_failure_limit")]
    pub failure_limit: u32,
}

const fn default_verification_window_secs() -> u64 {
    10
}
const fn default_max_p95_latency_ratio() -> f64 {
    1.1
}
const fn default_max_error_rate() -> f64 {
    5.0
}
const fn default_max_cpu_percent() -> f64 {
    90.0
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
            max_cpu_percent: default_max_cpu_percent(),
            failure_limit: default_failure_limit(),
        }
    }
}

/// The factors of the risk score (each 0..1, times its weight, summed and capped at 1) and
/// the bounds of the classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicy {
    /// The score each kind of action starts from.
    #[serde(default)]
    pub kind: KindRisk,
    /// Weight of the share of the pool's agents the action disrupts.
    #[serde(default = "default_blast_radius_weight")]
    #[schemars(range(min = 0, max = 1))]
    pub blast_radius: f64,
    /// Weight of the size of the change relative to what it changes.
    #[serde(default = "default_size_weight")]
    #[schemars(range(min = 0, max = 1))]
    pub size: f64,
    /// Weight of the evidence's lack of confidence.
    #[serde(default = "default_confidence_weight")]
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f64,
    /// Weight of a similar action (same pool and kind) rolled back recently.
    #[serde(default = "default_history_weight")]
    #[schemars(range(min = 0, max = 1))]
    pub history: f64,
    /// How far back a rollback counts, seconds.
    #[serde(default = "default_history_secs")]
    pub history_secs: u64,
    /// Scores below this are `low`.
    #[serde(default = "default_low_below")]
    #[schemars(range(min = 0, max = 1))]
    pub low_below: f64,
    /// Scores below this (and not low) are `medium`.
    #[serde(default = "default_medium_below")]
    #[schemars(range(min = 0, max = 1))]
    pub medium_below: f64,
    /// Scores below this (and not medium) are `high`; the rest are `critical`.
    #[serde(default = "default_high_below")]
    #[schemars(range(min = 0, max = 1))]
    pub high_below: f64,
}

/// The score each kind of action starts from, 0..1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindRisk {
    /// Scaling a pool.
    #[serde(default = "default_scale_risk")]
    pub scale: f64,
    /// Moving load between agents.
    #[serde(default = "default_redistribute_risk")]
    pub redistribute: f64,
    /// Restarting an agent (it has no inverse).
    #[serde(default = "default_restart_risk")]
    pub restart: f64,
    /// Changing an alert threshold.
    #[serde(default = "default_adjust_threshold_risk")]
    pub adjust_threshold: f64,
    /// Changing how many tasks each agent of a pool runs at once.
    #[serde(default = "default_adjust_concurrency_risk")]
    pub adjust_concurrency: f64,
    /// Moving one agent to an equivalent model.
    #[serde(default = "default_switch_model_risk")]
    pub switch_model: f64,
}

const fn default_blast_radius_weight() -> f64 {
    0.3
}
const fn default_size_weight() -> f64 {
    0.2
}
const fn default_confidence_weight() -> f64 {
    0.3
}
const fn default_history_weight() -> f64 {
    0.3
}
const fn default_history_secs() -> u64 {
    3600
}
const fn default_low_below() -> f64 {
    0.5
}
const fn default_medium_below() -> f64 {
    0.7
}
const fn default_high_below() -> f64 {
    0.9
}
const fn default_scale_risk() -> f64 {
    0.05
}
const fn default_redistribute_risk() -> f64 {
    0.15
}
const fn default_restart_risk() -> f64 {
    0.4
}
const fn default_adjust_threshold_risk() -> f64 {
    0.2
}
const fn default_adjust_concurrency_risk() -> f64 {
    0.1
}
const fn default_switch_model_risk() -> f64 {
    0.1
}

impl Default for KindRisk {
    fn default() -> Self {
        KindRisk {
            scale: default_scale_risk(),
            redistribute: default_redistribute_risk(),
            restart: default_restart_risk(),
            adjust_threshold: default_adjust_threshold_risk(),
            adjust_concurrency: default_adjust_concurrency_risk(),
            switch_model: default_switch_model_risk(),
        }
    }
}

impl Default for RiskPolicy {
    fn default() -> Self {
        RiskPolicy {
            kind: KindRisk::default(),
            blast_radius: default_blast_radius_weight(),
            size: default_size_weight(),
            confidence: default_confidence_weight(),
            history: default_history_weight(),
            history_secs: default_history_secs(),
            low_below: default_low_below(),
            medium_below: default_medium_below(),
            high_below: default_high_below(),
        }
    }
}

/// When the optimizer proposes restarting one agent or moving load away from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRules {
    /// Resident memory growing at least this fast, megabytes a minute, steadily over
    /// `leak_window_secs`, is a leak: the agent is restarted.
    #[serde(default = "default_leak_mb_per_min")]
    #[schemars(range(min = 0.1))]
    pub leak_mb_per_min: f64,
    /// Seconds of steady growth a leak needs.
    #[serde(default = "default_leak_window_secs")]
    #[schemars(range(min = 5))]
    pub leak_window_secs: u64,
    /// An agent whose CPU stays at least this many times the pool's mean (and above the
    /// pool's target) for `hot_secs` gets less load.
    #[serde(default = "default_hot_ratio")]
    #[schemars(range(min = 1.1))]
    pub hot_ratio: f64,
    /// Seconds an agent must stay hot.
    #[serde(default = "default_hot_secs")]
    pub hot_secs: u64,
    /// An agent with this many anomaly observations within `anomaly_window_secs`, while no
    /// other agent of its pool has any, is restarted (0: never).
    #[serde(default = "default_anomaly_count")]
    pub anomaly_count: usize,
    /// The window of `anomaly_count`, seconds.
    #[serde(default = "default_anomaly_window_secs")]
    pub anomaly_window_secs: u64,
    /// An agent whose error rate stays above this, percent, for `error_burst_secs`, while
    /// the other agents of its pool report rates at or below it, is restarted.
    #[serde(default = "default_error_burst_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub error_burst_percent: f64,
    /// Seconds an error burst must last (0: never restart for errors).
    #[serde(default = "default_error_burst_secs")]
    pub error_burst_secs: u64,
}

const fn default_leak_mb_per_min() -> f64 {
    60.0
}
const fn default_leak_window_secs() -> u64 {
    30
}
const fn default_hot_ratio() -> f64 {
    1.5
}
const fn default_hot_secs() -> u64 {
    20
}
const fn default_anomaly_count() -> usize {
    3
}
const fn default_anomaly_window_secs() -> u64 {
    600
}
const fn default_error_burst_percent() -> f64 {
    10.0
}
const fn default_error_burst_secs() -> u64 {
    30
}

impl Default for AgentRules {
    fn default() -> Self {
        AgentRules {
            leak_mb_per_min: default_leak_mb_per_min(),
            leak_window_secs: default_leak_window_secs(),
            hot_ratio: default_hot_ratio(),
            hot_secs: default_hot_secs(),
            anomaly_count: default_anomaly_count(),
            anomaly_window_secs: default_anomaly_window_secs(),
            error_burst_percent: default_error_burst_percent(),
            error_burst_secs: default_error_burst_secs(),
        }
    }
}

/// When a threshold rule is noise: it has fired this long while its pool showed no trouble
/// (no agent down or in error, no anomaly). The proposal raises it to the pool's peak over
/// that time times `headroom`. And when a rule misses a degradation: its pool has been
/// degraded (an agent in error, or an error rate above the verification's
/// `max_error_rate`) for `missed_after_secs` while the rule stayed quiet; the proposal
/// lowers it to the pool's healthy baseline times `margin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdTuning {
    /// Seconds a rule must fire without trouble (0: never tune).
    #[serde(default = "default_noisy_after_secs")]
    pub noisy_after_secs: u64,
    /// Multiple of the observed peak the new threshold sits at.
    #[serde(default = "default_headroom")]
    #[schemars(range(min = 1, max = 10))]
    pub headroom: f64,
    /// Seconds a degradation must last, unseen by a rule, before the rule is proposed lower
    /// (0: never lower a rule).
    #[serde(default = "default_missed_after_secs")]
    pub missed_after_secs: u64,
    /// Seconds of healthy readings before the degradation that make the baseline (its 95th
    /// percentile).
    #[serde(default = "default_baseline_secs")]
    #[schemars(range(min = 10))]
    pub baseline_secs: u64,
    /// Multiple of the healthy baseline a lowered threshold sits at.
    #[serde(default = "default_margin")]
    #[schemars(range(min = 1, max = 10))]
    pub margin: f64,
}

const fn default_noisy_after_secs() -> u64 {
    1800
}
const fn default_headroom() -> f64 {
    1.1
}
const fn default_missed_after_secs() -> u64 {
    300
}
const fn default_baseline_secs() -> u64 {
    1800
}
const fn default_margin() -> f64 {
    1.2
}

impl Default for ThresholdTuning {
    fn default() -> Self {
        ThresholdTuning {
            noisy_after_secs: default_noisy_after_secs(),
            headroom: default_headroom(),
            missed_after_secs: default_missed_after_secs(),
            baseline_secs: default_baseline_secs(),
            margin: default_margin(),
        }
    }
}
