//! Crash recovery: actions a previous run left `applying`, `verifying` or `rolling_back` are
//! compared with what the driver (and the policy overlay) reports now and completed, failed
//! or rolled back, never applied twice; actions left `proposed` were never gated and are
//! superseded. `plan` decides; the actor carries the decision out and logs how.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::Actuator;
use super::apply::{Effectors, apply, undo};
use super::verify::Baseline;
use crate::decide::recover::{Found, PoolSize, Recovery, plan};
use crate::domain::{Action, ActionState, Change};
use crate::policy::threshold;
use crate::store::{Store, StoreError};

/// How the log names recovery.
const RECOVERY: &str = "recovery";

/// Moves actions left `proposed` (recorded, never gated) to `superseded`: the optimizer
/// decides again from what it sees now. Returns how many.
fn supersede_proposed(store: &Store) -> Result<usize, StoreError> {
    let proposed = store.actions_in(&[ActionState::Proposed])?;
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
            Err(error) => {
                self.halt_on("superseding proposals", error.into());
                return;
            }
        }
        let interrupted = match self.store.actions_in(&ActionState::IN_FLIGHT) {
            Ok(actions) => actions,
            Err(error) => {
                // Halted: the next probe that also reads them reconciles.
                self.halt_on("reading interrupted actions", error.into());
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
            // A driver call like any other: no reconcile starts while it runs.
            self.calls += 1;
            ctx.spawn(
                async move {
                    if matches!(action.change, Change::Scale { .. }) {
                        found.size = match driver.size().await {
                            Ok(size) => PoolSize::Reported(size),
                            Err(error) => PoolSize::Failed(error.to_string()),
                        };
                    }
                    found.agents = driver.list();
                    (action, found)
                }
                .into_actor(self)
                .map(move |(action, found), actuator, ctx| {
                    let _span = actuator.span.clone().entered();
                    actuator.calls -= 1;
                    // Halted meanwhile: the next reconcile plans afresh.
                    if actuator.check_running().is_err() {
                        return;
                    }
                    let recovery = plan(&action, &found);
                    actuator.carry_out(action, recovery, effectors, ctx);
                }),
            );
        }
    }

    /// Records how an interrupted action ended; the pool is free once it is on record.
    fn log_recovery(&mut self, action: &Action, state: ActionState, reason: &str) {
        match self.record(action.id, state, reason, RECOVERY) {
            Ok(_) => self.finish(&action.pool),
            Err(error) => {
                tracing::error!(message = "Recovery not recorded.", action = action.id, %error)
            }
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
        let id = action.id;
        let (change, why, undoing) = match recovery {
            Recovery::Reverify(why) => return self.reverify(&action, &why),
            Recovery::Settle(state, why) => return self.log_recovery(&action, state, &why),
            Recovery::Restore(change, why) => (change, why, false),
            Recovery::Undo(why) => (action.change.clone(), why, true),
        };
        self.calls += 1;
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
                let _span = actuator.span.clone().entered();
                actuator.calls -= 1;
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
