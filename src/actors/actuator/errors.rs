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
    /// Automation is paused: nothing applies by itself.
    #[error("automation is paused")]
    Paused,
    /// The pool's cooldown after its last action has not run out.
    #[error("pool {pool} is cooling down for {secs} s more")]
    CoolingDown {
        /// The pool.
        pool: String,
        /// Seconds left.
        secs: i64,
    },
    /// The pool had its policy's most actions this hour.
    #[error("pool {pool} had {max} actions in the last hour, the policy's cap")]
    RateLimited {
        /// The pool.
        pool: String,
        /// The cap.
        max: u32,
    },
    /// A similar action already waits for approval.
    #[error("action {id} of the same kind on pool {pool} is waiting for approval")]
    AwaitingApproval {
        /// The pool.
        pool: String,
        /// The waiting action.
        id: i64,
    },
    /// People refused (or let expire) the same change recently.
    #[error("the same change was {state} as action {id} less than {secs} s ago")]
    RecentlyRefused {
        /// The refused action.
        id: i64,
        /// `rejected` or `expired`.
        state: String,
        /// How long such a refusal holds.
        secs: u64,
    },
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
    /// The controller is stopping.
    #[error("the controller is shutting down")]
    ShuttingDown,
    /// The log could not be written, so nothing was applied.
    #[error("cannot write the action log")]
    Store(#[from] StoreError),
}

impl From<crate::decide::gate::Hold> for ActuatorError {
    fn from(hold: crate::decide::gate::Hold) -> Self {
        use crate::decide::gate::Hold;
        match hold {
            Hold::CoolingDown { pool, secs } => ActuatorError::CoolingDown { pool, secs },
            Hold::RateLimited { pool, max } => ActuatorError::RateLimited { pool, max },
            Hold::AwaitingApproval { pool, id } => ActuatorError::AwaitingApproval { pool, id },
            Hold::RecentlyRefused { id, state, secs } => ActuatorError::RecentlyRefused {
                id,
                state: state.as_str().to_string(),
                secs,
            },
        }
    }
}
