//! The actuator's messages: what other actors and the API ask of it.

use std::collections::BTreeMap;

use actix::Message;

use super::ActuatorError;
use crate::domain::{Action, Proposal};

/// Asks the actuator to apply a proposal on behalf of `actor` (`auto` or a user).
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct Propose {
    /// What to do.
    pub proposal: Proposal,
    /// Who asks.
    pub actor: String,
    /// Whether the asker may approve actions (their request then counts as one approval).
    pub approver: bool,
}

/// An approver's decision on a pending action; answered with the action after it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct Decide {
    /// The action.
    pub id: i64,
    /// Who decides.
    pub by: String,
    /// Approve (true) or reject (false).
    pub approve: bool,
    /// Why, in their words.
    pub comment: Option<String>,
}

/// Asks the actuator to undo an applied (or still verifying) action; answered once undone.
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct RollBack {
    /// The action.
    pub id: i64,
    /// Who asks.
    pub actor: String,
}

/// Pauses (`paused: true`) or resumes automatic applies; answered with the pause state.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<crate::domain::Pause>, ActuatorError>")]
pub struct SetPaused {
    /// Pause or resume.
    pub paused: bool,
    /// Who asks.
    pub by: String,
}

pub use crate::domain::pool::PoolActivity;

/// Asks for every pool's activity.
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, PoolActivity>")]
pub struct GetActivity;

/// Asks for the load weights of every pool's agents (absent agents weigh 1).
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, BTreeMap<String, f64>>")]
pub struct GetWeights;

/// Asks for the model `switch_model` moved each agent to, by pool (absent agents call their
/// pool's own model).
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, BTreeMap<String, String>>")]
pub struct GetModels;

/// Stops taking actions (proposals, approvals, rollbacks); answered with the number of driver
/// calls still running, so shutdown can wait until each action in flight is on record.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct Quiesce;

/// Stops every agent of every pool; answered when they are gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
