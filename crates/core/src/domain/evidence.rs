//! The evidence of a proposal: the numbers behind each kind of decision, one variant per
//! kind of reason. The gate, the API and the log read fields, never JSON paths.
//!
//! On the wire each variant is the JSON object of its fields (no tag), as it always was; a
//! stored row is read back into the one variant whose fields it has exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analytics::anomaly::ChannelScores;
use crate::analytics::forecast::Model;
use crate::analytics::planner::Plan;
use crate::analytics::scaling::ScalingDecision;
use crate::domain::AgentStatus;
use crate::domain::alert::AlertView;
use crate::policy::AlertLevel;

/// Why a proposal was made, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Evidence {
    /// The pool's planner sized the pool.
    Scale(ScaleEvidence),
    /// A critical CPU alert asked for a scale-out at once.
    AlertScaleOut(AlertScaleOutEvidence),
    /// An agent went offline and is replaced.
    Offline(OfflineEvidence),
    /// An agent's memory grows steadily.
    Leak(LeakEvidence),
    /// An agent's error rate stayed high while its pool's did not.
    ErrorBurst(ErrorBurstEvidence),
    /// An agent was anomalous while the rest of its pool was not.
    Anomalous(AnomalousEvidence),
    /// An agent runs hot against its pool's mean.
    Hot(HotEvidence),
    /// A rule fires on the pool's normal peak.
    NoisyRule(NoisyRuleEvidence),
    /// A rule stayed quiet through a degradation.
    MissedDegradation(MissedDegradationEvidence),
    /// A pool's model provider refuses calls for its rate limit, or stopped refusing them.
    Throttled(ThrottledEvidence),
    /// A pool's model cost per completed task rose while its throughput did not.
    CostPerTask(CostPerTaskEvidence),
    /// The model some of a pool's agents call is throttled while an equivalent one is not.
    ModelThrottled(ModelThrottledEvidence),
    /// A person asked for it over the API.
    Requested(RequestedEvidence),
    /// No evidence (a row written before evidence was kept, or a test).
    Empty(EmptyEvidence),
}

/// What the pool's planner decided and on what load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleEvidence {
    /// The HPA decision, when the planner made one (not when the bounds alone did).
    pub decision: Option<ScalingDecision>,
    /// The plan behind it.
    pub plan: Option<Plan>,
    /// Each agent's CPU reading, percent (none while offline or unread).
    pub agent_cpu_percent: BTreeMap<String, Option<f64>>,
    /// The forecaster's model and forecast.
    pub forecast: ForecastNote,
    /// The CPU target, when the pool scales on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu_percent: Option<f64>,
    /// The pool input, when the pool scales on one (`scale_on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_on: Option<InputReading>,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
    /// Set when the scale-out would take the pool's model cost past its budget: then it
    /// waits for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<BudgetBreach>,
}

/// The forecaster behind a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForecastNote {
    /// The model that forecast best recently.
    pub model: Model,
    /// The season found, in intervals (0 for none).
    pub season: usize,
    /// The forecast itself, in the pool's load unit.
    #[serde(flatten)]
    pub load: ForecastLoad,
}

/// A pool's load forecast, named by its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ForecastLoad {
    /// Summed agent CPU, percent.
    #[serde(rename = "pool_load_percent")]
    CpuPercent(Option<Vec<f64>>),
    /// The pool input's unit.
    #[serde(rename = "pool_load")]
    Input(Option<Vec<f64>>),
}

/// A pool input as the optimizer saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InputReading {
    /// The input's name.
    pub input: String,
    /// Its value, when fresh.
    pub value: Option<f64>,
    /// The PromQL query that reads it.
    pub query: Option<String>,
    /// How much of it one agent should carry.
    pub target_per_agent: f64,
    /// When it was last read, epoch milliseconds.
    pub read_ms: Option<i64>,
    /// Why there is no value, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// A critical CPU alert and the pool's CPU when it asked for a scale-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertScaleOutEvidence {
    /// The alert.
    pub alert: AlertView,
    /// The agents' CPU readings, percent.
    pub agent_cpu_percent: Vec<f64>,
    /// The pool's CPU target.
    pub target_cpu_percent: f64,
    /// Set when the scale-out would take the pool's model cost past its budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_budget: Option<BudgetBreach>,
}

/// A scale-out that would spend more than the pool's budget allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBreach {
    /// What the pool's models cost an hour now.
    pub cost_per_hour_now: f64,
    /// What they would cost an hour after it, at the same cost per agent.
    pub cost_per_hour_after: f64,
    /// What the budget allows an hour.
    pub allowed_per_hour: f64,
}

/// An offline agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineEvidence {
    /// The agent.
    pub agent: String,
    /// Its process id, when a local process.
    pub pid: Option<u32>,
    /// When its last sample arrived, epoch milliseconds.
    pub last_sample_ms: i64,
    /// Its status (offline).
    pub status: AgentStatus,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A steady rise: megabytes a minute and how well a line fits (R², 0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Growth {
    /// Megabytes a minute.
    pub mb_per_min: f64,
    /// Goodness of the straight-line fit.
    pub r2: f64,
    /// Seconds of samples behind it.
    pub secs: f64,
}

/// The policy's leak rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeakRule {
    /// Growth above this is a leak, MB a minute.
    pub leak_mb_per_min: f64,
    /// Over this long, seconds.
    pub leak_window_secs: u64,
}

/// A pool's model provider throttling it (or no longer), and the concurrency it ran at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottledEvidence {
    /// Calls or tasks refused for the provider's rate limit, per second, all agents.
    pub rate_limited_per_s: f64,
    /// Calls or tasks tried, per second, all agents.
    pub attempts_per_s: f64,
    /// The refused share of them, percent.
    pub throttled_percent: f64,
    /// How long the pool has gone without throttling, seconds (when raising again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_secs: Option<i64>,
    /// The share at or above which the pool counts as throttled, percent.
    pub throttle_percent: f64,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// What a model's provider refuses of the calls of the pool's agents on that model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelLoad {
    /// Agents calling it.
    pub agents: usize,
    /// Calls (or tasks) refused for the rate limit, per second.
    pub rate_limited_per_s: f64,
    /// Calls (or tasks) tried, per second.
    pub attempts_per_s: f64,
    /// The refused share, percent.
    pub throttled_percent: f64,
}

/// The pool's models, as equivalent as the policy lists them, and what each is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelThrottledEvidence {
    /// By model name.
    pub models: BTreeMap<String, ModelLoad>,
    /// The share at or above which a model counts as throttled, percent.
    pub throttle_percent: f64,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A leaking agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakEvidence {
    /// The agent.
    pub agent: String,
    /// Its status.
    pub status: AgentStatus,
    /// Its resident memory now, bytes.
    pub memory_bytes: Option<f64>,
    /// The growth found.
    pub growth: Growth,
    /// The rule it broke.
    pub rule: LeakRule,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// The policy's error-burst rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBurstRule {
    /// An error rate above this, percent...
    pub error_burst_percent: f64,
    /// ...for this long, seconds.
    pub error_burst_secs: u64,
}

/// An agent failing while its pool does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBurstEvidence {
    /// The agent.
    pub agent: String,
    /// Its status.
    pub status: AgentStatus,
    /// Its error rate now, percent.
    pub error_rate: f64,
    /// Its highest error rate in the burst, percent.
    pub peak_error_rate: f64,
    /// How long the burst has lasted, seconds.
    pub burst_secs: i64,
    /// The other agents' error rates, percent.
    pub pool_error_rates: BTreeMap<String, f64>,
    /// The rule it broke.
    pub rule: ErrorBurstRule,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// An agent whose detectors fired while its pool's did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalousEvidence {
    /// The agent.
    pub agent: String,
    /// Its status.
    pub status: AgentStatus,
    /// The anomalies seen (the agent's, then the pool's recent ones once attached).
    pub anomalies: Vec<AnomalyNote>,
}

/// An agent running hot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HotEvidence {
    /// The agent.
    pub agent: String,
    /// Its CPU, percent.
    pub cpu_percent: f64,
    /// The pool's mean CPU, percent.
    pub pool_mean_cpu_percent: f64,
    /// The weight it is cut to.
    pub weight_cut_to: f64,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A rule that fires on the pool's normal peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoisyRuleEvidence {
    /// The rule.
    pub rule: String,
    /// Its metric.
    pub metric: String,
    /// Its level.
    pub level: AlertLevel,
    /// The agents it fires on.
    pub firing_agents: Vec<String>,
    /// How long it has fired, seconds.
    pub fired_secs: i64,
    /// The pool's peak of the metric meanwhile.
    pub observed_peak: f64,
    /// The window looked at, seconds.
    pub window_secs: u64,
    /// The headroom put above the peak.
    pub headroom: f64,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A rule that stayed quiet through a degradation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MissedDegradationEvidence {
    /// The rule.
    pub rule: String,
    /// Its metric.
    pub metric: String,
    /// Its level.
    pub level: AlertLevel,
    /// The signals of the degradation.
    pub degradation: Vec<String>,
    /// How long the pool has been degraded, seconds.
    pub degraded_secs: i64,
    /// The healthy baseline: p95 of the pool's peaks.
    pub baseline_p95: f64,
    /// Readings behind the baseline.
    pub baseline_readings: usize,
    /// The baseline's window, seconds.
    pub baseline_secs: u64,
    /// How far above the baseline counts.
    pub margin: f64,
    /// The metric's median while degraded.
    pub degraded_median: f64,
    /// Its highest value while degraded.
    pub degraded_max: f64,
    /// Readings while degraded.
    pub degraded_readings: usize,
    /// The next lower level's threshold, if one.
    pub lower_level_above: Option<f64>,
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A pool paying more per completed task for no more work: the recent window against the
/// baseline before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostPerTaskEvidence {
    /// Mean model cost of a completed task in the baseline window.
    pub baseline_cost_per_task: f64,
    /// The same in the recent window.
    pub recent_cost_per_task: f64,
    /// Tasks completed a second in the baseline window, all agents.
    pub baseline_throughput_per_s: f64,
    /// The same in the recent window.
    pub recent_throughput_per_s: f64,
    /// The windows, seconds: recent, then baseline before it.
    pub windows_secs: (u64, u64),
    /// The pool's recent anomalies, once the optimizer attached them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<AnomalyNote>>,
}

/// A person's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedEvidence {
    /// The token name of who asked.
    pub requested_by: String,
}

/// No evidence: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyEvidence {}

/// One anomaly observation, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnomalyNote {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// The metric.
    pub metric: String,
    /// The value that scored.
    pub value: f64,
    /// The anomaly score, in [0, 1].
    pub score: f64,
    /// What each detector channel said.
    pub channels: ChannelScores,
    /// When, epoch milliseconds.
    pub ts_ms: i64,
}

// === impl Evidence ===

impl Evidence {
    /// No evidence.
    pub fn empty() -> Self {
        Evidence::Empty(EmptyEvidence {})
    }

    /// The status of the agent the evidence is about, when it names one.
    pub fn agent_status(&self) -> Option<AgentStatus> {
        match self {
            Evidence::Offline(e) => Some(e.status),
            Evidence::Leak(e) => Some(e.status),
            Evidence::ErrorBurst(e) => Some(e.status),
            Evidence::Anomalous(e) => Some(e.status),
            _ => None,
        }
    }

    /// The budget a scale-out would break, if it would.
    pub fn over_budget(&self) -> Option<&BudgetBreach> {
        match self {
            Evidence::Scale(e) => e.over_budget.as_ref(),
            Evidence::AlertScaleOut(e) => e.over_budget.as_ref(),
            _ => None,
        }
    }

    /// Notes on a scale-out that it would break the pool's budget.
    pub fn mark_over_budget(&mut self, breach: BudgetBreach) {
        match self {
            Evidence::Scale(e) => e.over_budget = Some(breach),
            Evidence::AlertScaleOut(e) => e.over_budget = Some(breach),
            _ => {}
        }
    }

    /// Attaches the pool's recent anomalies (for the anomalous-agent kind, they replace the
    /// agent's own). Kinds the optimizer does not make are left alone.
    pub fn attach_anomalies(&mut self, recent: Vec<AnomalyNote>) {
        let slot = match self {
            Evidence::Scale(e) => &mut e.anomalies,
            Evidence::Offline(e) => &mut e.anomalies,
            Evidence::Leak(e) => &mut e.anomalies,
            Evidence::ErrorBurst(e) => &mut e.anomalies,
            Evidence::Hot(e) => &mut e.anomalies,
            Evidence::NoisyRule(e) => &mut e.anomalies,
            Evidence::MissedDegradation(e) => &mut e.anomalies,
            Evidence::Throttled(e) => &mut e.anomalies,
            Evidence::CostPerTask(e) => &mut e.anomalies,
            Evidence::ModelThrottled(e) => &mut e.anomalies,
            Evidence::Anomalous(e) => {
                e.anomalies = recent;
                return;
            }
            Evidence::AlertScaleOut(_) | Evidence::Requested(_) | Evidence::Empty(_) => return,
        };
        *slot = Some(recent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(evidence: Evidence, json: &str) {
        let written = serde_json::to_string(&evidence).unwrap();
        assert_eq!(written, json);
        let read: Evidence = serde_json::from_str(json).unwrap();
        assert_eq!(read, evidence, "{json} read back as another kind");
    }

    #[test]
    fn each_kind_is_its_fields_and_reads_back_as_itself() {
        check(
            Evidence::Requested(RequestedEvidence {
                requested_by: "olga".into(),
            }),
            r#"{"requested_by":"olga"}"#,
        );
        check(Evidence::empty(), "{}");
        let mut offline = Evidence::Offline(OfflineEvidence {
            agent: "w-1".into(),
            pid: Some(42),
            last_sample_ms: 1_000,
            status: AgentStatus::Offline,
            anomalies: None,
        });
        check(
            offline.clone(),
            r#"{"agent":"w-1","pid":42,"last_sample_ms":1000,"status":"offline"}"#,
        );
        offline.attach_anomalies(Vec::new());
        check(
            offline.clone(),
            r#"{"agent":"w-1","pid":42,"last_sample_ms":1000,"status":"offline","anomalies":[]}"#,
        );
        assert_eq!(offline.agent_status(), Some(AgentStatus::Offline));
        let anomalous = Evidence::Anomalous(AnomalousEvidence {
            agent: "w-1".into(),
            status: AgentStatus::Active,
            anomalies: Vec::new(),
        });
        check(
            anomalous,
            r#"{"agent":"w-1","status":"active","anomalies":[]}"#,
        );
        check(
            Evidence::Hot(HotEvidence {
                agent: "w-2".into(),
                cpu_percent: 90.0,
                pool_mean_cpu_percent: 30.0,
                weight_cut_to: 0.5,
                anomalies: None,
            }),
            r#"{"agent":"w-2","cpu_percent":90.0,"pool_mean_cpu_percent":30.0,"weight_cut_to":0.5}"#,
        );
    }

    #[test]
    fn a_scale_names_its_forecast_by_unit() {
        let scale = Evidence::Scale(ScaleEvidence {
            decision: None,
            plan: None,
            agent_cpu_percent: BTreeMap::from([("a".to_string(), Some(50.0))]),
            forecast: ForecastNote {
                model: Model::DampedHolt,
                season: 0,
                load: ForecastLoad::CpuPercent(None),
            },
            target_cpu_percent: Some(60.0),
            scale_on: None,
            anomalies: None,
            over_budget: None,
        });
        let json = serde_json::to_value(&scale).unwrap();
        assert!(json["forecast"]["pool_load_percent"].is_null(), "{json}");
        assert!(json["forecast"].get("pool_load").is_none());
        assert_eq!(json["target_cpu_percent"], 60.0);
        let read: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(read, scale);
    }
}

#[cfg(test)]
mod stored {
    use super::*;

    #[test]
    fn an_alert_scale_out_stored_before_alerts_said_what_they_mean_still_reads() {
        let old = r#"{"alert":{"id":3,"rule":"cpu_critical","agent":"w-1","pool":"w",
            "level":"critical","state":"firing","value":97.0,"since_ms":1000,
            "fired_ms":2000,"resolved_ms":null,"acked":null,"silenced_by":[]},
            "agent_cpu_percent":[97.0],"target_cpu_percent":50.0}"#;
        let read: Evidence = serde_json::from_str(old).unwrap();
        let Evidence::AlertScaleOut(evidence) = read else {
            panic!("read as another kind: {read:?}");
        };
        assert_eq!(evidence.alert.rule, "cpu_critical");
        assert_eq!(
            (evidence.alert.metric.as_str(), evidence.alert.threshold),
            ("", None)
        );
    }
}
