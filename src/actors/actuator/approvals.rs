//! Approvals: people's decisions on pending actions, expiry, and applying approved actions
//! once their pool is idle, after re-checking that they still fit.

use actix::{Context, Handler};

use super::gate::POLICY;
use super::{AUTO, Actuator, ActuatorError, Decide};
use crate::clock;
use crate::domain::{Action, ActionState, Change};

/// Why a scale from `from` to `to` agents no longer fits a pool whose mean agent CPU is now
/// `mean`: a scale-out below the target band, a scale-in above it.
fn load_moved(from: usize, to: usize, mean: f64, target: f64, tolerance: f64) -> Option<String> {
    if to > from && mean < target * (1.0 - tolerance) {
        Some(format!(
            "the load fell: mean agent CPU {mean:.0}% is below the target {target:.0}%"
        ))
    } else if to < from && mean > target * (1.0 + tolerance) {
        Some(format!(
            "the load rose: mean agent CPU {mean:.0}% is above the target {target:.0}%"
        ))
    } else {
        None
    }
}

impl Actuator {
    /// Moves every pending action whose approval ran out to `expired`.
    pub(super) fn expire_pending(&mut self) {
        let now = self.clock.now_ms();
        let pending = match self.store.actions_in(&[ActionState::PendingApproval]) {
            Ok(pending) => pending,
            Err(error) => {
                tracing::error!(message = "Cannot read pending actions.", %error);
                return;
            }
        };
        for action in pending {
            if action.expires_ms.is_some_and(|at| at <= now) {
                let reason = format!(
                    "not approved by {} ({} approval(s) of {} needed)",
                    clock::rfc3339(action.expires_ms.unwrap_or(now)),
                    action.approvals.len(),
                    action.approvals_needed(),
                );
                match self.record(action.id, ActionState::Expired, &reason, POLICY) {
                    Ok(expired) => {
                        tracing::warn!(message = "Approval expired.", action = action.id);
                        let title = format!(
                            "swarmpilot: action {} ({} on pool {}) expired unapproved",
                            action.id,
                            action.kind.as_str(),
                            action.pool
                        );
                        self.notify(&expired, "approval_expired", title, reason);
                    }
                    Err(error) => {
                        tracing::error!(message = "Expiry not recorded.", %error);
                        return;
                    }
                }
            }
        }
    }

    /// Why a scale that waited for people no longer fits the load, if it does not: a
    /// scale-out when the pool's mean CPU has fallen below its target band, a scale-in when
    /// it has risen above.
    fn load_moved(&self, action: &Action) -> Option<String> {
        let Change::Scale { from, to } = action.change else {
            return None;
        };
        let current = self.policy.current();
        let pool = current.policy.pool(&action.pool)?;
        if pool.scale_on.is_some() {
            // The pool scales on an input, not CPU: its agents' CPU says nothing about
            // whether the scale still fits, and the optimizer re-plans on the input anyway.
            return None;
        }
        let snapshot = self.last_fleet.as_ref()?;
        let cpu: Vec<f64> = snapshot
            .agents
            .iter()
            .filter(|a| a.pool == action.pool)
            .filter_map(|a| a.cpu_smoothed)
            .collect();
        let mean = crate::analytics::stats::mean(&cpu)?;
        load_moved(from, to, mean, pool.target_cpu_percent, pool.tolerance)
    }

    /// Applies approved actions whose pool is idle; a stale one is superseded instead.
    pub(super) fn start_approved(&mut self, ctx: &mut Context<Self>) {
        let Ok(approved) = self.store.actions_in(&[ActionState::Approved]) else {
            return;
        };
        for action in approved {
            if let Err(error) = self.apply_approved(action, ctx) {
                tracing::warn!(message = "Approved action not applied.", %error);
            }
        }
    }

    fn apply_approved(
        &mut self,
        action: Action,
        ctx: &mut Context<Self>,
    ) -> Result<Option<Action>, ActuatorError> {
        let Ok(effectors) = self.idle_pool(&action.pool) else {
            return Ok(None);
        };
        let stale = match self.check_fresh(&action.pool, &effectors, &action.change) {
            // Approved, and not stale: applied once the driver has said the pool's size.
            Err(ActuatorError::SizeUnknown(_)) => return Ok(None),
            Err(stale) => Some(stale.to_string()),
            Ok(()) => self.load_moved(&action),
        };
        if let Some(stale) = stale {
            let reason = format!("re-checked before applying: {stale}");
            let action = self.record(action.id, ActionState::Superseded, &reason, AUTO)?;
            return Ok(Some(action));
        }
        let why = format!(
            "approved by {}",
            action
                .approvals
                .iter()
                .map(|a| a.by.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        self.start_apply(action, effectors, &why, ctx).map(Some)
    }
}

impl Handler<Decide> for Actuator {
    type Result = Result<Action, ActuatorError>;

    fn handle(&mut self, msg: Decide, ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        self.check_running()?;
        self.decide(msg, ctx)
            .map_err(|error| self.halt_on("a decision", error))
    }
}

impl Actuator {
    fn decide(&mut self, msg: Decide, ctx: &mut Context<Self>) -> Result<Action, ActuatorError> {
        let Decide {
            id,
            by,
            approve,
            comment,
        } = msg;
        let action = self
            .store
            .action(id)?
            .ok_or(ActuatorError::NoSuchAction(id))?;
        if action.state != ActionState::PendingApproval {
            return Err(ActuatorError::NotPending {
                id,
                state: action.state.as_str().to_string(),
            });
        }
        if action
            .expires_ms
            .is_some_and(|at| at <= self.clock.now_ms())
        {
            self.expire_pending();
            return Err(ActuatorError::Expired(id));
        }
        let comment = comment.map(|c| format!(": {c}")).unwrap_or_default();
        if !approve {
            let reason = format!("rejected by {by}{comment}");
            return self.record(id, ActionState::Rejected, &reason, &by);
        }
        if !self.store.add_approval(id, &by)? {
            return Err(ActuatorError::AlreadyApproved { id, by });
        }
        let needed = action.approvals_needed();
        let count = action.approvals.len() + 1;
        if count < needed {
            let reason = format!("approved by {by} ({count} of {needed}){comment}");
            return self.record(id, ActionState::PendingApproval, &reason, &by);
        }
        let reason = format!("approved by {by} ({count} of {needed}){comment}");
        self.record(id, ActionState::Approved, &reason, &by)?;
        let action = self
            .store
            .action(id)?
            .ok_or(ActuatorError::NoSuchAction(id))?;
        // Applied now if the pool is idle, else on the tick after its action finishes.
        Ok(self.apply_approved(action.clone(), ctx)?.unwrap_or(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_scale_is_stale_once_the_load_has_moved_past_the_target_band() {
        assert!(load_moved(2, 4, 20.0, 50.0, 0.1).unwrap().contains("fell"));
        assert_eq!(
            load_moved(2, 4, 47.0, 50.0, 0.1),
            None,
            "within the band it still fits"
        );
        assert!(load_moved(4, 2, 60.0, 50.0, 0.1).unwrap().contains("rose"));
        assert_eq!(load_moved(4, 2, 10.0, 50.0, 0.1), None);
    }
}
