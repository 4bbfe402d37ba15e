//! What becomes of an action a restart of the controller interrupted, decided from what the
//! driver and the policy show now: verify it again, settle it, restore the pool, or finish
//! its rollback.

use std::collections::BTreeMap;

use crate::domain::{Action, ActionState, Change, DriverAgent};

/// The pool's size as the driver reported it after the restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PoolSize {
    /// Not asked (only a scaling action needs it), or no answer.
    #[default]
    NotAsked,
    /// The driver's count.
    Reported(usize),
    /// Why the driver could not tell.
    Failed(String),
}

/// What the driver and the policy show now, for one interrupted action.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The pool's size as the driver reports it, or why it cannot.
    pub size: PoolSize,
    /// The driver's agents (none for a remote driver).
    pub agents: Vec<DriverAgent>,
    /// Whether an orchestrator owns the agents (then `agents` says nothing).
    pub remote: bool,
    /// The driver's kind, for the log.
    pub driver: &'static str,
    /// The action's rule's threshold in the policy in force.
    pub threshold: Option<f64>,
    /// The pool's load weights held now (absent agents weigh 1).
    pub weights: BTreeMap<String, f64>,
}

/// What becomes of one interrupted action.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// The change is in place: verify it again.
    Reverify(String),
    /// Nothing to do to the fleet: the action ends in this state, for this reason.
    Settle(ActionState, String),
    /// Apply this change to bring the pool back to where the action began.
    Restore(Change, String),
    /// Finish undoing the action (the undo is idempotent for this kind).
    Undo(String),
}

/// Decides what became of `action` from what was `found`.
pub fn plan(action: &Action, found: &Found) -> Recovery {
    let why = |what: String| format!("recovered after a restart: {what}");
    let weights_are = |weights: &BTreeMap<String, f64>| {
        weights
            .iter()
            .all(|(agent, w)| (found.weights.get(agent).copied().unwrap_or(1.0) - w).abs() <= 1e-9)
    };
    let rolling_back = action.state == ActionState::RollingBack;
    match (&action.change, &found.size) {
        (Change::Scale { .. }, PoolSize::Failed(error)) => Recovery::Settle(
            ActionState::Failed,
            why(format!("the driver cannot report the pool: {error}")),
        ),
        (Change::Scale { .. }, PoolSize::NotAsked) => Recovery::Settle(
            ActionState::Failed,
            why("the driver cannot report the pool: no answer".to_string()),
        ),
        (Change::Scale { from, to }, PoolSize::Reported(size)) => {
            let size = *size;
            if size == *from && rolling_back {
                Recovery::Settle(
                    ActionState::RolledBack,
                    why(format!(
                        "the driver reports {size} agents, where it began: the rollback had \
                         completed"
                    )),
                )
            } else if size == *from {
                Recovery::Settle(
                    ActionState::Failed,
                    why(format!(
                        "the driver reports {size} agents: it never took effect; not retried"
                    )),
                )
            } else if size == *to && !rolling_back {
                Recovery::Reverify(why(format!(
                    "the driver reports {size} agents, as intended"
                )))
            } else {
                // Part done or part undone (or the agents went with the controller): back
                // to where it began.
                let what = if rolling_back {
                    format!("the rollback was interrupted at {size} agents; back to {from}")
                } else {
                    format!("the driver reports {size} agents, neither {from} nor {to}")
                };
                Recovery::Restore(
                    Change::Scale {
                        from: size,
                        to: *from,
                    },
                    why(what),
                )
            }
        }
        (Change::AdjustThreshold { rule, from, to }, _) => {
            let now = found.threshold;
            match (rolling_back, now) {
                (true, Some(now)) if now == *from => Recovery::Settle(
                    ActionState::RolledBack,
                    why(format!(
                        "{rule} is back to {from}: the rollback had completed"
                    )),
                ),
                (true, _) => Recovery::Undo(why(format!(
                    "{rule} is {now:?}, not yet back to {from}: finishing the rollback"
                ))),
                (false, Some(now)) if now == *to => {
                    Recovery::Reverify(why(format!("{rule} is {to} in the policy overlay")))
                }
                (false, _) => Recovery::Settle(
                    ActionState::Failed,
                    why(format!("{rule} is {now:?}: it never took effect")),
                ),
            }
        }
        (Change::Redistribute { from, to }, _) => {
            if rolling_back && weights_are(from) {
                Recovery::Settle(
                    ActionState::RolledBack,
                    why(
                        "the load weights are back to what they were: the rollback had \
                         completed"
                            .to_string(),
                    ),
                )
            } else if rolling_back {
                Recovery::Undo(why(
                    "the load weights are not back yet: setting them back (idempotent)".into(),
                ))
            } else if weights_are(to) {
                Recovery::Reverify(why("the load weights are as intended".to_string()))
            } else {
                // Weights live in the controller's memory and go with it; not repeated.
                Recovery::Settle(
                    ActionState::Failed,
                    why(
                        "the load weights are not the ones intended (they do not survive a \
                         restart); not repeated, so it is never applied twice"
                            .to_string(),
                    ),
                )
            }
        }
        (Change::AdjustConcurrency { from, to }, _) => {
            // The limit set lives in the controller's memory and the agents'; a local agent
            // dies with the controller and starts again at the policy's normal.
            if rolling_back {
                Recovery::Settle(
                    ActionState::RolledBack,
                    why(format!(
                        "the concurrency set ({to}) does not survive a restart: the agents \
                         start again at their normal concurrency, not {to}; counted as undone \
                         (back towards {from})"
                    )),
                )
            } else {
                Recovery::Settle(
                    ActionState::Failed,
                    why(format!(
                        "the concurrency set ({to}) does not survive a restart; not repeated, so \
                         it is never applied twice"
                    )),
                )
            }
        }
        (Change::SwitchModel { agent, from, to }, _) => {
            // Which model an agent calls lives in the controller's memory and the agent's; a
            // local agent dies with the controller and starts again on the pool's model.
            if rolling_back {
                Recovery::Settle(
                    ActionState::RolledBack,
                    why(format!(
                        "{agent}'s model ({to}) is not kept over a restart: agents start again \
                         on their pool's model; counted as undone (back towards {from})"
                    )),
                )
            } else {
                Recovery::Settle(
                    ActionState::Failed,
                    why(format!(
                        "{agent}'s model ({to}) is not kept over a restart; not repeated, so \
                         it is never applied twice"
                    )),
                )
            }
        }
        (Change::Restart { agent }, _) => {
            let reason = if rolling_back {
                "a restart has no inverse: nothing to roll back".to_string()
            } else if found.remote {
                format!(
                    "the {} driver cannot tell whether {agent} restarted; not repeated, so it \
                     is never applied twice",
                    found.driver
                )
            } else {
                match found.agents.iter().find(|a| &a.handle.id == agent) {
                    Some(a) if a.running && a.handle.started_ms >= action.created_ms => {
                        return Recovery::Reverify(why(format!(
                            "{agent} runs an incarnation started at {}, after the action: \
                             the restart took place",
                            crate::domain::time::rfc3339(a.handle.started_ms)
                        )));
                    }
                    Some(a) if a.running => format!(
                        "{agent} still runs the incarnation from before the action: it never \
                         took effect; not repeated"
                    ),
                    _ => format!(
                        "{agent} is not running under the driver (its process went with the \
                         controller); not repeated, the optimizer refills the pool"
                    ),
                }
            };
            Recovery::Settle(ActionState::Failed, why(reason))
        }
    }
}

#[cfg(test)]
mod tests;
