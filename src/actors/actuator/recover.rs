//! Crash recovery: actions a previous run left `applying` or `verifying` are compared with
//! what the driver reports now and completed, failed or rolled back, never applied twice.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::Actuator;
use super::apply::{Effectors, apply};
use super::verify::Baseline;
use crate::domain::{Action, ActionState, Change};
use crate::drivers::DriverError;
use crate::policy::threshold;

/// How the log names recovery.
const RECOVERY: &str = "recovery";

impl Actuator {
    /// Resolves every action a previous run left in flight; each pool stays busy until its
    /// action is resolved.
    pub(super) fn recover(&mut self, ctx: &mut Context<Self>) {
        let interrupted = match self.store.actions_in(&["applying", "verifying"]) {
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
            ctx.spawn(
                async move { driver.size().await }
                    .into_actor(self)
                    .map(move |size, actuator, ctx| actuator.resolve(action, size, effectors, ctx)),
            );
        }
    }

    fn log_recovery(&mut self, action: &Action, state: ActionState, reason: &str) {
        if let Err(error) = self.store.transition(action.id, state, reason, RECOVERY) {
            tracing::error!(message = "Log write failed.", action = action.id, %error);
        }
    }

    /// Decides from the size the driver reports (or the policy in force) what became of it.
    fn resolve(
        &mut self,
        action: Action,
        size: Result<usize, DriverError>,
        effectors: Effectors,
        ctx: &mut Context<Self>,
    ) {
        let (id, pool) = (action.id, action.pool.clone());
        let in_place = |what: String| format!("recovered after a restart: {what}");
        match (&action.change, size) {
            (Change::Scale { to, .. }, Ok(size)) if size == *to => {
                let why = in_place(format!("the driver reports {size} agents, as intended"));
                self.reverify(&action, &why);
            }
            (Change::Scale { from, .. }, Ok(size)) if size == *from => {
                let why = in_place(format!(
                    "the driver reports {size} agents: it never took effect; not retried"
                ));
                self.finish(&pool);
                self.log_recovery(&action, ActionState::Failed, &why);
            }
            (Change::Scale { from, to }, Ok(size)) => {
                // Part done (or the agents went with the controller): back to where it began.
                let restore = Change::Scale {
                    from: size,
                    to: *from,
                };
                let why = in_place(format!(
                    "the driver reports {size} agents, neither {from} nor {to}"
                ));
                ctx.spawn(
                    async move { apply(&effectors, id, &restore, RECOVERY).await }
                        .into_actor(self)
                        .map(move |result, actuator, _ctx| {
                            actuator.finish(&pool);
                            let (state, reason) = match result {
                                Ok(done) => {
                                    (ActionState::RolledBack, format!("{why}; restored: {done}"))
                                }
                                Err(error) => (
                                    ActionState::Failed,
                                    format!("{why}; restoring failed: {error}"),
                                ),
                            };
                            actuator.log_recovery(&action, state, &reason);
                        }),
                );
            }
            (Change::Scale { .. }, Err(error)) => {
                self.finish(&pool);
                let why = in_place(format!("the driver cannot report the pool: {error}"));
                self.log_recovery(&action, ActionState::Failed, &why);
            }
            (Change::AdjustThreshold { rule, to, .. }, _) => {
                let now = threshold(&self.policy.current().policy, rule);
                if now == Some(*to) {
                    let why = in_place(format!("{rule} is {to} in the policy overlay"));
                    self.reverify(&action, &why);
                } else {
                    self.finish(&pool);
                    let why = in_place(format!("{rule} is {now:?}: it never took effect"));
                    self.log_recovery(&action, ActionState::Failed, &why);
                }
            }
            (Change::Restart { .. } | Change::Redistribute { .. }, _) => {
                self.finish(&pool);
                let why = in_place(
                    "interrupted before it was known to be done; not repeated, so it is never \
                     applied twice"
                        .to_string(),
                );
                self.log_recovery(&action, ActionState::Failed, &why);
            }
        }
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
