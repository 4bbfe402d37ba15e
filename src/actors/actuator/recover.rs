//! Crash recovery: actions a previous run left `applying`, `verifying` or `rolling_back` are
//! compared with what the driver (and the policy overlay) reports now and completed, failed
//! or rolled back, never applied twice; actions left `proposed` were never gated and are
//! superseded. `plan` decides; the actor carries the decision out and logs how.

use std::collections::BTreeMap;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::Actuator;
use super::apply::{Effectors, apply, undo};
use super::verify::Baseline;
use crate::clock;
use crate::domain::{Action, ActionState, Change};
use crate::drivers::DriverAgent;
use crate::policy::threshold;
use crate::store::{Store, StoreError};

/// How the log names recovery.
const RECOVERY: &str = "recovery";

/// What the driver and the policy show now, for one interrupted action.
#[derive(Debug, Clone, Default)]
struct Found {
    /// The pool's size as the driver reports it, or why it cannot.
    size: Option<Result<usize, String>>,
    /// The driver's agents (none for a remote driver).
    agents: Vec<DriverAgent>,
    /// Whether an orchestrator owns the agents (then `agents` says nothing).
    remote: bool,
    /// The driver's kind, for the log.
    driver: &'static str,
    /// The action's rule's threshold in the policy in force.
    threshold: Option<f64>,
    /// The pool's load weights held now (absent agents weigh 1).
    weights: BTreeMap<String, f64>,
}

/// What becomes of one interrupted action.
#[derive(Debug, Clone, PartialEq)]
enum Recovery {
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
fn plan(action: &Action, found: &Found) -> Recovery {
    let why = |what: String| format!("recovered after a restart: {what}");
    let weights_are = |weights: &BTreeMap<String, f64>| {
        weights
            .iter()
            .all(|(agent, w)| (found.weights.get(agent).copied().unwrap_or(1.0) - w).abs() <= 1e-9)
    };
    let rolling_back = action.state == ActionState::RollingBack;
    match (&action.change, &found.size) {
        (Change::Scale { .. }, Some(Err(_)) | None) => {
            let error = match &found.size {
                Some(Err(error)) => error.clone(),
                _ => "no answer".to_string(),
            };
            Recovery::Settle(
                ActionState::Failed,
                why(format!("the driver cannot report the pool: {error}")),
            )
        }
        (Change::Scale { from, to }, Some(Ok(size))) => {
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
                            clock::rfc3339(a.handle.started_ms)
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

/// Moves actions left `proposed` (recorded, never gated) to `superseded`: the optimizer
/// decides again from what it sees now. Returns how many.
fn supersede_proposed(store: &Store) -> Result<usize, StoreError> {
    let proposed = store.actions_in(&["proposed"])?;
    for action in &proposed {
        store.transition(
            action.id,
            ActionState::Superseded,
            "superseded after a restart: it was recorded but never gated; the optimizer \
             decides again from what it sees now",
            RECOVERY,
        )?;
    }
    Ok(proposed.len())
}

impl Actuator {
    /// Resolves every action a previous run left in flight; each pool stays busy until its
    /// action is resolved.
    pub(super) fn recover(&mut self, ctx: &mut Context<Self>) {
        match supersede_proposed(&self.store) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(message = "Superseded proposals left by a crash.", n),
            Err(error) => tracing::error!(message = "Cannot supersede proposals.", %error),
        }
        let interrupted = match self
            .store
            .actions_in(&["applying", "verifying", "rolling_back"])
        {
            Ok(actions) => actions,
            Err(error) => {
                tracing::error!(message = "Cannot read interrupted actions.", %error);
                return;
            }
        };
        for action in interrupted {
            tracing::warn!(
                message = "Recovering an interrupted action.",
                action = action.id,
                state = action.state.as_str()
            );
            let Ok(effectors) = self.effectors(&action.pool) else {
                let reason = "recovered after a restart: the pool is no longer in the policy";
                self.log_recovery(&action, ActionState::Failed, reason);
                continue;
            };
            self.begin(&action.pool, action.id);
            let driver = effectors.pool.driver.clone();
            let mut found = Found {
                remote: driver.remote(),
                driver: driver.kind(),
                weights: effectors
                    .pool
                    .weights
                    .lock()
                    .map(|w| w.clone())
                    .unwrap_or_default(),
                ..Found::default()
            };
            if let Change::AdjustThreshold { rule, .. } = &action.change {
                found.threshold = threshold(&self.policy.current().policy, rule);
            }
            ctx.spawn(
                async move {
                    if matches!(action.change, Change::Scale { .. }) {
                        found.size = Some(driver.size().await.map_err(|e| e.to_string()));
                    }
                    found.agents = driver.list();
                    (action, found)
                }
                .into_actor(self)
                .map(move |(action, found), actuator, ctx| {
                    let recovery = plan(&action, &found);
                    actuator.carry_out(action, recovery, effectors, ctx);
                }),
            );
        }
    }

    fn log_recovery(&mut self, action: &Action, state: ActionState, reason: &str) {
        if let Err(error) = self.store.transition(action.id, state, reason, RECOVERY) {
            tracing::error!(message = "Log write failed.", action = action.id, %error);
        }
    }

    /// Carries out what `plan` decided for `action`.
    fn carry_out(
        &mut self,
        action: Action,
        recovery: Recovery,
        effectors: Effectors,
        ctx: &mut Context<Self>,
    ) {
        let (id, pool) = (action.id, action.pool.clone());
        let (change, why, undoing) = match recovery {
            Recovery::Reverify(why) => return self.reverify(&action, &why),
            Recovery::Settle(state, why) => {
                self.finish(&pool);
                return self.log_recovery(&action, state, &why);
            }
            Recovery::Restore(change, why) => (change, why, false),
            Recovery::Undo(why) => (action.change.clone(), why, true),
        };
        ctx.spawn(
            async move {
                if undoing {
                    undo(&effectors, id, &change, RECOVERY).await
                } else {
                    apply(&effectors, id, &change, RECOVERY).await
                }
            }
            .into_actor(self)
            .map(move |result, actuator, _ctx| {
                actuator.finish(&pool);
                let (state, reason) = match result {
                    Ok(done) => (ActionState::RolledBack, format!("{why}; restored: {done}")),
                    Err(error) => (
                        ActionState::Failed,
                        format!("{why}; restoring failed: {error}"),
                    ),
                };
                actuator.log_recovery(&action, state, &reason);
            }),
        );
    }

    /// Verifies again, against the baseline kept before the crash, a change found in place.
    fn reverify(&mut self, action: &Action, why: &str) {
        let before: Baseline = self
            .store
            .verification(action.id)
            .ok()
            .flatten()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default();
        tracing::info!(message = "Recovered action in place.", action = action.id, %why);
        self.begin_verification(action.id, &action.pool, before, why);
    }
}

#[cfg(test)]
mod tests;
