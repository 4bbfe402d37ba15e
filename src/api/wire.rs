//! The API's wire types: what each route answers, built from the controller's own types by
//! `From`. Renaming a field inside the controller cannot change the API: the compiler sends
//! the change here, and `tests/e2e/responses.rs` checks every route's shape. Value types that
//! are their own documented JSON (a change, its evidence, a risk assessment, states and
//! levels) are carried as they are.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::actors::fleet::AgentView;
use crate::actors::optimizer::Recommendation;
use crate::analytics::risk::RiskAssessment;
use crate::domain::alert::{AlertState, AlertView};
use crate::domain::evidence::Evidence;
use crate::domain::{Action, ActionKind, ActionState, AgentStatus, Approval, Change, Pause};
use crate::policy::AlertLevel;
use crate::store::LogEntry;

/// One agent in full: the body of `GET /api/v1/agents/{id}` (the list answers
/// [`AgentSummaryOut`]).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AgentOut<'a> {
    id: &'a str,
    pool: &'a str,
    status: AgentStatus,
    pid: Option<u32>,
    endpoint: Option<&'a str>,
    started_ms: i64,
    last_sample_ms: i64,
    metrics: &'a BTreeMap<String, f64>,
    cpu_smoothed: Option<f64>,
    anomaly_scores: &'a BTreeMap<String, f64>,
    actor_restarts: u32,
}

impl<'a> From<&'a AgentView> for AgentOut<'a> {
    fn from(agent: &'a AgentView) -> Self {
        AgentOut {
            id: &agent.id,
            pool: &agent.pool,
            status: agent.status,
            pid: agent.pid,
            endpoint: agent.endpoint.as_deref(),
            started_ms: agent.started_ms,
            last_sample_ms: agent.last_sample_ms,
            metrics: &agent.metrics,
            cpu_smoothed: agent.cpu_smoothed,
            anomaly_scores: &agent.anomaly_scores,
            actor_restarts: agent.actor_restarts,
        }
    }
}

/// One agent in a page of `GET /api/v1/agents`: what a list shows (the rest is at
/// `GET /api/v1/agents/{id}`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AgentSummaryOut<'a> {
    pub(super) id: &'a str,
    pool: &'a str,
    status: AgentStatus,
    pid: Option<u32>,
    endpoint: Option<&'a str>,
    last_sample_ms: i64,
    cpu_percent: Option<f64>,
    memory_percent: Option<f64>,
    response_time_ms: Option<f64>,
    error_rate: Option<f64>,
    /// The highest of its anomaly scores.
    anomaly_score: Option<f64>,
}

impl<'a> From<&'a AgentView> for AgentSummaryOut<'a> {
    fn from(agent: &'a AgentView) -> Self {
        use crate::domain::metric;
        let latest = |name: &str| agent.metrics.get(name).copied();
        AgentSummaryOut {
            id: &agent.id,
            pool: &agent.pool,
            status: agent.status,
            pid: agent.pid,
            endpoint: agent.endpoint.as_deref(),
            last_sample_ms: agent.last_sample_ms,
            cpu_percent: latest(metric::CPU_PERCENT),
            memory_percent: latest(metric::MEMORY_PERCENT),
            response_time_ms: latest(metric::RESPONSE_TIME_MS),
            error_rate: latest(metric::ERROR_RATE),
            anomaly_score: agent.anomaly_scores.values().copied().reduce(f64::max),
        }
    }
}

/// One action: `GET /api/v1/actions[/{id}]` and what proposing, deciding and rolling back
/// answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ActionOut<'a> {
    id: i64,
    kind: ActionKind,
    pool: &'a str,
    agent: Option<&'a str>,
    state: ActionState,
    change: &'a Change,
    inverse: Option<&'a Change>,
    reason: &'a str,
    evidence: &'a Evidence,
    expected_effect: &'a str,
    created_ms: i64,
    updated_ms: i64,
    risk: Option<&'a RiskAssessment>,
    expires_ms: Option<i64>,
    approvals: Vec<ApprovalOut<'a>>,
}

/// One approval of an action.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ApprovalOut<'a> {
    by: &'a str,
    at_ms: i64,
}

impl<'a> From<&'a Approval> for ApprovalOut<'a> {
    fn from(approval: &'a Approval) -> Self {
        ApprovalOut {
            by: &approval.by,
            at_ms: approval.at_ms,
        }
    }
}

impl<'a> From<&'a Action> for ActionOut<'a> {
    fn from(action: &'a Action) -> Self {
        ActionOut {
            id: action.id,
            kind: action.kind,
            pool: &action.pool,
            agent: action.agent.as_deref(),
            state: action.state,
            change: &action.change,
            inverse: action.inverse.as_ref(),
            reason: &action.reason,
            evidence: &action.evidence,
            expected_effect: &action.expected_effect,
            created_ms: action.created_ms,
            updated_ms: action.updated_ms,
            risk: action.risk.as_ref(),
            expires_ms: action.expires_ms,
            approvals: action.approvals.iter().map(ApprovalOut::from).collect(),
        }
    }
}

/// One recommendation: `GET /api/v1/recommendations`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RecommendationOut<'a> {
    pool: &'a str,
    kind: &'a str,
    change: &'a Change,
    reason: &'a str,
    evidence: &'a Evidence,
    auto_apply: bool,
    status: &'a str,
    at_ms: i64,
}

impl<'a> From<&'a Recommendation> for RecommendationOut<'a> {
    fn from(recommendation: &'a Recommendation) -> Self {
        RecommendationOut {
            pool: &recommendation.pool,
            kind: recommendation.kind,
            change: &recommendation.change,
            reason: &recommendation.reason,
            evidence: &recommendation.evidence,
            auto_apply: recommendation.auto_apply,
            status: &recommendation.status,
            at_ms: recommendation.at_ms,
        }
    }
}

/// One row of the action log: `GET /api/v1/log`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LogEntryOut<'a> {
    seq: i64,
    ts_ms: i64,
    time: &'a str,
    action_id: i64,
    kind: ActionKind,
    pool: &'a str,
    agent: Option<&'a str>,
    from_state: Option<ActionState>,
    to_state: ActionState,
    reason: &'a str,
    actor: &'a str,
    change: &'a Change,
    inverse: Option<&'a Change>,
}

impl<'a> From<&'a LogEntry> for LogEntryOut<'a> {
    fn from(entry: &'a LogEntry) -> Self {
        LogEntryOut {
            seq: entry.seq,
            ts_ms: entry.ts_ms,
            time: &entry.time,
            action_id: entry.action_id,
            kind: entry.kind,
            pool: &entry.pool,
            agent: entry.agent.as_deref(),
            from_state: entry.from_state,
            to_state: entry.to_state,
            reason: &entry.reason,
            actor: &entry.actor,
            change: &entry.change,
            inverse: entry.inverse.as_ref(),
        }
    }
}

/// One alert: `GET /api/v1/alerts` and what acknowledging answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertOut<'a> {
    id: u64,
    rule: &'a str,
    agent: &'a str,
    pool: &'a str,
    level: AlertLevel,
    state: AlertState,
    metric: &'a str,
    threshold: Option<f64>,
    message: &'a str,
    value: f64,
    since_ms: i64,
    fired_ms: Option<i64>,
    resolved_ms: Option<i64>,
    acked: Option<(&'a str, i64)>,
    silenced_by: &'a [i64],
}

impl<'a> From<&'a AlertView> for AlertOut<'a> {
    fn from(alert: &'a AlertView) -> Self {
        AlertOut {
            id: alert.id,
            rule: &alert.rule,
            agent: &alert.agent,
            pool: &alert.pool,
            level: alert.level,
            state: alert.state,
            metric: &alert.metric,
            threshold: alert.threshold,
            message: &alert.message,
            value: alert.value,
            since_ms: alert.since_ms,
            fired_ms: alert.fired_ms,
            resolved_ms: alert.resolved_ms,
            acked: alert.acked.as_ref().map(|(by, at)| (by.as_str(), *at)),
            silenced_by: &alert.silenced_by,
        }
    }
}

/// Whether automation is paused: `GET /api/v1/automation`, and what pausing and resuming
/// answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AutomationOut<'a> {
    paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    /// Present while actuation is stopped because the store refused a write.
    #[serde(skip_serializing_if = "Option::is_none")]
    halted: Option<HaltedOut>,
}

/// Why actuation stopped: what the store refused, and since when (RFC 3339).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HaltedOut {
    reason: String,
    since: String,
}

impl HaltedOut {
    /// The wire form of `halted`.
    pub fn new(halted: &crate::actors::actuator::Halted) -> Self {
        HaltedOut {
            reason: halted.reason.clone(),
            since: crate::clock::rfc3339(halted.since_ms),
        }
    }
}

impl<'a> AutomationOut<'a> {
    /// The pause in force (or none), with the policy's dry-run flag when asked for.
    pub fn new(pause: Option<&'a Pause>, dry_run: Option<bool>) -> Self {
        AutomationOut {
            paused: pause.is_some(),
            by: pause.map(|p| p.by.as_str()),
            since: pause.map(|p| p.since.as_str()),
            dry_run,
            halted: None,
        }
    }

    /// Also says why actuation is stopped, when it is.
    pub fn with_halt(mut self, halted: Option<&crate::actors::actuator::Halted>) -> Self {
        self.halted = halted.map(HaltedOut::new);
        self
    }

    /// Automation resumed by `by`.
    pub fn resumed(by: &'a str) -> Self {
        AutomationOut {
            paused: false,
            by: Some(by),
            since: None,
            dry_run: None,
            halted: None,
        }
    }
}

/// Every item of `items` as its wire type.
pub fn all<'a, T, W: From<&'a T>>(items: &'a [T]) -> Vec<W> {
    items.iter().map(W::from).collect()
}

/// One row of the alert history: `GET /api/v1/alerts/history`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertHistoryOut<'a> {
    seq: i64,
    ts_ms: i64,
    time: &'a str,
    rule: &'a str,
    agent: &'a str,
    pool: &'a str,
    level: &'a str,
    from_state: &'a str,
    to_state: &'a str,
    value: f64,
    metric: &'a str,
    threshold: Option<f64>,
    message: &'a str,
}

impl<'a> From<&'a crate::store::AlertHistoryRow> for AlertHistoryOut<'a> {
    fn from(row: &'a crate::store::AlertHistoryRow) -> Self {
        AlertHistoryOut {
            seq: row.seq,
            ts_ms: row.ts_ms,
            time: &row.time,
            rule: &row.rule,
            agent: &row.agent,
            pool: &row.pool,
            level: &row.level,
            from_state: &row.from_state,
            to_state: &row.to_state,
            value: row.value,
            metric: &row.metric,
            threshold: row.threshold,
            message: &row.message,
        }
    }
}
