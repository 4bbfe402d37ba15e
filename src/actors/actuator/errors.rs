//! Why the actuator refuses a request.

use crate::store::StoreError;

/// Errors the actuator answers a request with.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    /// No such pool in the policy.
    #[error("no pool named {0}")]
    UnknownPool(String),
    /// The pool has no driver: it is monitored, never actuated.
    #[error("pool {0} is observe-only (driver none): swarmpilot does not run its agents")]
    ObserveOnly(String),
    /// Another action is being applied to the pool.
    #[error("pool {pool} is busy with action {action}")]
    Busy {
        /// The pool.
        pool: String,
        /// The action in flight.
        action: i64,
    },
    /// The proposal was based on a fleet that has changed since.
    #[error("proposal for pool {pool} is stale: it has {actual} agents, not {expected}")]
    Stale {
        /// The pool.
        pool: String,
        /// Agents the proposal assumed.
        expected: usize,
        /// Agents the driver reports.
        actual: usize,
    },
    /// The pool's remote driver has not reported its size yet: a scale would be a guess.
    #[error("pool {0} is of unknown size: its driver has not reported one yet")]
    SizeUnknown(String),
    /// The threshold the proposal would change is not what it assumed.
    #[error("proposal for rule {rule} is stale: its threshold is {actual:?}, not {expected}")]
    StaleThreshold {
        /// The rule.
        rule: String,
        /// The threshold the proposal assumed.
        expected: f64,
        /// The threshold in force (none if the rule does not exist).
        actual: Option<f64>,
    },
    /// The weights the proposal would change are not what it assumed.
    #[error("proposal for pool {pool} is stale: its load weights have changed")]
    StaleWeights {
        /// The pool.
        pool: String,
    },
    /// The concurrency the proposal would change is not what it assumed.
    #[error("proposal for pool {pool} is stale: its concurrency is {actual}, not {expected}")]
    StaleConcurrency {
        /// The pool.
        pool: String,
        /// What the proposal assumed.
        expected: u32,
        /// What it is.
        actual: u32,
    },
    /// The model the proposal would move an agent off is not the one the agent calls, or the
    /// one it would move it to is not among the pool's.
    #[error("proposal for agent {agent} is stale: {why}")]
    StaleModel {
        /// The agent.
        agent: String,
        /// What differs.
        why: String,
    },
    /// Automation is paused: nothing applies by itself.
    #[error("automation is paused")]
    Paused,
    /// Policy holds an automatic proposal back (cooldown, hourly cap, a like action waiting
    /// for people or refused by them).
    #[error(transparent)]
    Held(#[from] crate::decide::gate::Hold),
    /// The action is not waiting for approval.
    #[error("action {id} is {state}, not pending_approval")]
    NotPending {
        /// The action.
        id: i64,
        /// Its state.
        state: String,
    },
    /// The approval came too late.
    #[error("action {0} expired before it was approved")]
    Expired(i64),
    /// The same person approved twice.
    #[error("{by} has already approved action {id}; it needs a second, different approver")]
    AlreadyApproved {
        /// The action.
        id: i64,
        /// The approver.
        by: String,
    },
    /// No action has this id.
    #[error("no action with id {0}")]
    NoSuchAction(i64),
    /// The action cannot be rolled back.
    #[error("action {id} cannot be rolled back: {reason}")]
    NotRollbackable {
        /// The action.
        id: i64,
        /// Why not.
        reason: String,
    },
    /// Like changes failed; the next try waits, or waits for the pool or policy to change.
    #[error(transparent)]
    Retry(#[from] crate::decide::retry::RetryHold),
    /// The agent is not one the pool's driver runs: it is never a restart target.
    #[error(
        "agent {agent} is not run by the driver of pool {pool}: it was deregistered, not restarted"
    )]
    NotManaged {
        /// The agent.
        agent: String,
        /// The pool.
        pool: String,
    },
    /// The store refused a write: actuation is stopped until writes work again.
    #[error("actuation is stopped: {0}")]
    Halted(String),
    /// The controller is stopping.
    #[error("the controller is shutting down")]
    ShuttingDown,
    /// The log could not be written, so nothing was applied.
    #[error("cannot write the action log")]
    Store(#[from] StoreError),
}
