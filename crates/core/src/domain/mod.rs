//! Domain types shared by every layer: agents, samples and actions.
//!
//! These are plain data. Wire shapes (JSON, SQLite rows) convert from and to them at the edges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod alert;
pub mod evidence;
pub mod fleet;
pub mod genai;
pub mod names;
pub mod pool;
pub mod time;

/// Well-known metric names produced by the collector and the task tracker.
pub mod metric {
    /// Process CPU use of an agent, percent of one core.
    pub const CPU_PERCENT: &str = "cpu_percent";
    /// Resident memory of an agent process, bytes.
    pub const MEMORY_BYTES: &str = "memory_bytes";
    /// Resident memory of an agent process, percent of host memory.
    pub const MEMORY_PERCENT: &str = "memory_percent";
    /// Mean time an agent took to answer recent requests (or tasks, start to end),
    /// milliseconds.
    pub const RESPONSE_TIME_MS: &str = "response_time_ms";
    /// Share of an agent's recent requests (or tasks) that failed, percent (0 to 100).
    pub const ERROR_RATE: &str = "error_rate";
    /// Requests or connections an agent is serving now.
    pub const ACTIVE_CONNECTIONS: &str = "active_connections";
    /// Host-wide CPU use, percent of all cores.
    pub const SYSTEM_CPU_PERCENT: &str = "system_cpu_percent";
    /// Host memory in use, percent.
    pub const SYSTEM_MEMORY_PERCENT: &str = "system_memory_percent";
    /// Host disk reads, bytes per second.
    pub const SYSTEM_DISK_READ_BPS: &str = "system_disk_read_bytes_per_s";
    /// Host disk writes, bytes per second.
    pub const SYSTEM_DISK_WRITE_BPS: &str = "system_disk_write_bytes_per_s";
    /// Host network receive, bytes per second.
    pub const SYSTEM_NET_RX_BPS: &str = "system_net_rx_bytes_per_s";
    /// Host network transmit, bytes per second.
    pub const SYSTEM_NET_TX_BPS: &str = "system_net_tx_bytes_per_s";
    /// 95th percentile of the task response time, milliseconds (five tasks or more).
    pub const RESPONSE_TIME_P95_MS: &str = "response_time_p95_ms";
    /// Tasks ended (succeeded, failed or timed out) per second.
    pub const THROUGHPUT_PER_S: &str = "throughput_per_s";
    /// Tasks that succeeded, percent of those ended.
    pub const SUCCESS_RATE: &str = "success_rate";
    /// Tasks running now.
    pub const ACTIVE_TASKS: &str = "active_tasks";
    /// Tasks waiting to run now.
    pub const QUEUE_SIZE: &str = "queue_size";
    /// Model input (prompt) tokens per second.
    pub const TOKENS_IN_PER_S: &str = "tokens_in_per_s";
    /// Model output (completion) tokens per second.
    pub const TOKENS_OUT_PER_S: &str = "tokens_out_per_s";
    /// What the agent's model tokens cost, money per hour at the rate of the last interval.
    pub const COST_PER_HOUR: &str = "cost_per_hour";
    /// Mean model cost of the tasks ended in the last interval.
    pub const COST_PER_TASK: &str = "cost_per_task";
    /// Model calls per second.
    pub const MODEL_CALLS_PER_S: &str = "model_calls_per_s";
    /// Mean duration of a model call, milliseconds.
    pub const MODEL_LATENCY_MS: &str = "model_latency_ms";
    /// Calls or tasks refused by the model provider's rate limit, per second.
    pub const RATE_LIMITED_PER_S: &str = "errors_rate_limited_per_s";
    /// Calls or tasks that timed out, per second.
    pub const TIMEOUTS_PER_S: &str = "errors_timeout_per_s";
    /// Calls or tasks that failed for another reason, per second.
    pub const OTHER_ERRORS_PER_S: &str = "errors_other_per_s";
}

/// One observation of one metric of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sample {
    /// Agent id the sample belongs to.
    pub agent: String,
    /// Metric name, e.g. `cpu_percent`.
    pub metric: String,
    /// Epoch milliseconds.
    pub ts_ms: i64,
    /// The observed value.
    pub value: f64,
}

/// The health of an agent as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Registered, not yet reporting.
    Starting,
    /// Reporting and doing work.
    Active,
    /// Reporting, with little to do.
    Idle,
    /// Reporting, saturated.
    Busy,
    /// Reporting errors.
    Error,
    /// Not heard from within the heartbeat timeout.
    Offline,
}

/// What a driver reports about an agent it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentHandle {
    /// Stable agent id, unique in the fleet.
    pub id: String,
    /// Pool the agent belongs to.
    pub pool: String,
    /// OS process id, when the driver runs a local process.
    pub pid: Option<u32>,
    /// Base URL the agent serves, e.g. `http://127.0.0.1:40123`.
    pub endpoint: Option<String>,
    /// Epoch milliseconds when this incarnation started.
    pub started_ms: i64,
}

/// An agent as the driver sees it right now.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverAgent {
    /// What the agent is.
    pub handle: AgentHandle,
    /// Whether its process (or instance) is still running.
    pub running: bool,
}

/// Automation paused by a person: who, and since when (RFC 3339). Stored as
/// `{"paused": true, "by", "since"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pause {
    /// Always true: a stored pause is one in force.
    pub paused: bool,
    /// Who paused it.
    pub by: String,
    /// When, RFC 3339.
    pub since: String,
}

/// The kinds of optimization the controller can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Change the number of agents in a pool.
    Scale,
    /// Change the load weights of a pool's agents.
    Redistribute,
    /// Restart (or replace) one agent.
    Restart,
    /// Change an alert threshold.
    AdjustThreshold,
    /// Change how many tasks (model calls) each agent of a pool runs at once.
    AdjustConcurrency,
    /// Move one agent to a model the policy lists as equivalent to the one it calls.
    SwitchModel,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [ActionKind; 6] = [
        ActionKind::Scale,
        ActionKind::Redistribute,
        ActionKind::Restart,
        ActionKind::AdjustThreshold,
        ActionKind::AdjustConcurrency,
        ActionKind::SwitchModel,
    ];

    /// The snake_case name used in the log and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Scale => "scale",
            ActionKind::Redistribute => "redistribute",
            ActionKind::Restart => "restart",
            ActionKind::AdjustThreshold => "adjust_threshold",
            ActionKind::AdjustConcurrency => "adjust_concurrency",
            ActionKind::SwitchModel => "switch_model",
        }
    }
}

/// The lifecycle states of an action, as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Decided by the optimizer, not yet gated.
    Proposed,
    /// Waiting for a human.
    PendingApproval,
    /// Cleared to apply.
    Approved,
    /// The driver is changing the fleet.
    Applying,
    /// Applied; success conditions are being checked.
    Verifying,
    /// Done and kept.
    Applied,
    /// Being undone: its inverse is being applied.
    RollingBack,
    /// Refused by a human.
    Rejected,
    /// Never approved in time.
    Expired,
    /// The driver could not apply it.
    Failed,
    /// Undone.
    RolledBack,
    /// Made stale by what happened before it could apply.
    Superseded,
}

/// A name that is not one of an enum's snake_case names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    /// What was being named: `action state`, `action kind`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

/// The one of `all` whose name is `name`.
fn named<T: Copy>(
    all: &[T],
    as_str: fn(T) -> &'static str,
    what: &'static str,
    name: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|item| as_str(*item) == name)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_string(),
        })
}

impl std::str::FromStr for ActionState {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        named(&Self::ALL, Self::as_str, "action state", name)
    }
}

impl std::str::FromStr for ActionKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        named(&Self::ALL, Self::as_str, "action kind", name)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ActionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ActionState {
    /// Every state, in lifecycle order.
    pub const ALL: [ActionState; 12] = [
        ActionState::Proposed,
        ActionState::PendingApproval,
        ActionState::Approved,
        ActionState::Applying,
        ActionState::Verifying,
        ActionState::Applied,
        ActionState::RollingBack,
        ActionState::Rejected,
        ActionState::Expired,
        ActionState::Failed,
        ActionState::RolledBack,
        ActionState::Superseded,
    ];

    /// The states in which a driver may be changing the pool: what recovery reconciles.
    pub const IN_FLIGHT: [ActionState; 3] = [
        ActionState::Applying,
        ActionState::Verifying,
        ActionState::RollingBack,
    ];

    /// The names of every state, as the API and the log spell them.
    pub fn names() -> [&'static str; 12] {
        Self::ALL.map(Self::as_str)
    }

    /// The snake_case name used in the log and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Proposed => "proposed",
            ActionState::PendingApproval => "pending_approval",
            ActionState::Approved => "approved",
            ActionState::Applying => "applying",
            ActionState::Verifying => "verifying",
            ActionState::Applied => "applied",
            ActionState::RollingBack => "rolling_back",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Failed => "failed",
            ActionState::RolledBack => "rolled_back",
            ActionState::Superseded => "superseded",
        }
    }
}

/// The concrete change an action makes, and by symmetry the change that undoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Set the pool to `to` agents (it had `from`).
    Scale {
        /// Agents before.
        from: usize,
        /// Agents after.
        to: usize,
    },
    /// Restart one agent in place.
    Restart {
        /// The agent to restart.
        agent: String,
    },
    /// Set the load weights of the pool's agents (agent id to share, summing to 1).
    Redistribute {
        /// Weights before.
        from: BTreeMap<String, f64>,
        /// Weights after.
        to: BTreeMap<String, f64>,
    },
    /// Set an alert rule's threshold (through the policy overlay).
    AdjustThreshold {
        /// The rule: an `[[alerts]]` name or a profile rule `<profile>_<metric>_<level>`.
        rule: String,
        /// Threshold before.
        from: f64,
        /// Threshold after.
        to: f64,
    },
    /// Set how many tasks each agent of the pool runs at once.
    AdjustConcurrency {
        /// Limit before.
        from: u32,
        /// Limit after.
        to: u32,
    },
    /// Move one agent from one model to an equivalent one (names of the pool's `model` or
    /// `equivalent_models`).
    SwitchModel {
        /// The agent.
        agent: String,
        /// Model before.
        from: String,
        /// Model after.
        to: String,
    },
}

impl Change {
    /// The action kind this change belongs to.
    pub fn kind(&self) -> ActionKind {
        match self {
            Change::Scale { .. } => ActionKind::Scale,
            Change::Restart { .. } => ActionKind::Restart,
            Change::Redistribute { .. } => ActionKind::Redistribute,
            Change::AdjustThreshold { .. } => ActionKind::AdjustThreshold,
            Change::AdjustConcurrency { .. } => ActionKind::AdjustConcurrency,
            Change::SwitchModel { .. } => ActionKind::SwitchModel,
        }
    }

    /// The change that would undo this one, when there is one.
    pub fn inverse(&self) -> Option<Change> {
        match self {
            Change::Scale { from, to } => Some(Change::Scale {
                from: *to,
                to: *from,
            }),
            // A restart cannot be undone; its inverse is nothing.
            Change::Restart { .. } => None,
            Change::Redistribute { from, to } => Some(Change::Redistribute {
                from: to.clone(),
                to: from.clone(),
            }),
            Change::AdjustThreshold { rule, from, to } => Some(Change::AdjustThreshold {
                rule: rule.clone(),
                from: *to,
                to: *from,
            }),
            Change::AdjustConcurrency { from, to } => Some(Change::AdjustConcurrency {
                from: *to,
                to: *from,
            }),
            Change::SwitchModel { agent, from, to } => Some(Change::SwitchModel {
                agent: agent.clone(),
                from: to.clone(),
                to: from.clone(),
            }),
        }
    }

    /// The one agent the change targets, if it targets one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Change::Restart { agent } | Change::SwitchModel { agent, .. } => Some(agent),
            Change::Scale { .. }
            | Change::AdjustThreshold { .. }
            | Change::Redistribute { .. }
            | Change::AdjustConcurrency { .. } => None,
        }
    }
}

/// What the optimizer asks the actuator to do, with the reason and evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Proposal {
    /// Pool the change applies to.
    pub pool: String,
    /// The change itself.
    pub change: Change,
    /// One sentence a person can read.
    pub reason: String,
    /// The numbers behind the decision.
    pub evidence: evidence::Evidence,
    /// How sure the evidence is, 0..1 (1 for a person's request); part of the risk score.
    #[serde(default = "full_confidence")]
    pub confidence: f64,
    /// What the change should do, in a sentence (verification checks it did no harm).
    #[serde(default)]
    pub expected_effect: String,
}

fn full_confidence() -> f64 {
    1.0
}

/// An action as stored: a proposal with its id, state and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Action {
    /// Unique, increasing id.
    pub id: i64,
    /// Kind of the change.
    pub kind: ActionKind,
    /// Pool the change applies to.
    pub pool: String,
    /// Agent the change targets, if one.
    pub agent: Option<String>,
    /// Current lifecycle state.
    pub state: ActionState,
    /// The change.
    pub change: Change,
    /// The change that undoes it, written before it is applied.
    pub inverse: Option<Change>,
    /// Why it was proposed.
    pub reason: String,
    /// The numbers behind the decision.
    pub evidence: evidence::Evidence,
    /// What the change should do.
    #[serde(default)]
    pub expected_effect: String,
    /// Epoch milliseconds of the proposal.
    pub created_ms: i64,
    /// Epoch milliseconds of the last transition.
    pub updated_ms: i64,
    /// The risk assessment of the gate (score, class, mode, factors), once gated.
    #[serde(default)]
    pub risk: Option<crate::analytics::risk::RiskAssessment>,
    /// When a pending approval expires, epoch milliseconds.
    #[serde(default)]
    pub expires_ms: Option<i64>,
    /// Who has approved it so far.
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

impl Action {
    /// Approvals the mode its risk assessment recorded needs (one when it has none yet).
    pub fn approvals_needed(&self) -> usize {
        self.risk
            .as_ref()
            .map_or(crate::policy::RiskMode::Approval, |risk| risk.mode)
            .approvals()
    }
}

/// One person's approval of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    /// The approver's name (from their token).
    pub by: String,
    /// Epoch milliseconds.
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_kinds_read_back_their_names_and_refuse_others() {
        for state in ActionState::ALL {
            assert_eq!(state.as_str().parse::<ActionState>(), Ok(state));
        }
        for kind in ActionKind::ALL {
            assert_eq!(kind.to_string().parse::<ActionKind>(), Ok(kind));
        }
        let unknown = "done".parse::<ActionState>().unwrap_err();
        assert_eq!(unknown.to_string(), "unknown action state `done`");
    }

    #[test]
    fn scale_inverse_swaps_counts() {
        let change = Change::Scale { from: 2, to: 5 };
        assert_eq!(change.inverse(), Some(Change::Scale { from: 5, to: 2 }));
        assert_eq!(change.kind(), ActionKind::Scale);
    }

    #[test]
    fn change_serializes_with_type_tag() {
        let json = serde_json::to_value(Change::Restart {
            agent: "w-1".into(),
        })
        .unwrap();
        assert_eq!(json, serde_json::json!({"type": "restart", "agent": "w-1"}));
    }
}
