//! The risk gate: scores each proposal, applies what its class allows, holds the rest for
//! one or two approvers until they decide or the approval expires.

use actix::{Context, Handler};

use super::apply::Effectors;
use super::{AUTO, Actuator, ActuatorError, Propose};
use crate::analytics::risk::{RiskAssessment, RiskInput, assess};
use crate::clock;
use crate::domain::{Action, ActionState, AgentStatus, Change, Proposal};
use crate::policy::{Automation, RiskMode};

/// Who the log names for what policy decides.
pub(super) const POLICY: &str = "policy";

/// Whether two changes of a pool are alike: same kind and target, same direction.
fn alike(a: &Change, b: &Change) -> bool {
    match (a, b) {
        (Change::Scale { from: f1, to: t1 }, Change::Scale { from: f2, to: t2 }) => {
            (t1 > f1) == (t2 > f2)
        }
        (Change::Restart { agent: a1 }, Change::Restart { agent: a2 }) => a1 == a2,
        (Change::AdjustThreshold { rule: r1, .. }, Change::AdjustThreshold { rule: r2, .. }) => {
            r1 == r2
        }
        (Change::Redistribute { .. }, Change::Redistribute { .. }) => true,
        _ => false,
    }
}

/// Refuses an automatic action on `pool` while it cools down after the last one (finished
/// at `last_finished_ms`) or when `applied_last_hour` reached the hourly cap.
fn pace(
    pool: &str,
    last_finished_ms: Option<i64>,
    applied_last_hour: usize,
    automation: &Automation,
    now: i64,
) -> Result<(), ActuatorError> {
    if let Some(last) = last_finished_ms {
        let left = last + automation.cooldown_secs as i64 * 1000 - now;
        if left > 0 {
            return Err(ActuatorError::CoolingDown {
                pool: pool.to_string(),
                secs: (left + 999) / 1000,
            });
        }
    }
    if applied_last_hour >= automation.max_actions_per_hour as usize {
        return Err(ActuatorError::RateLimited {
            pool: pool.to_string(),
            max: automation.max_actions_per_hour,
        });
    }
    Ok(())
}

impl Actuator {
    /// Refuses an automatic proposal that policy holds back: paused, cooling down, over the
    /// hourly cap, a like one waiting for approval or recently refused by people.
    fn check_automatic(
        &self,
        proposal: &Proposal,
        automation: &Automation,
        now: i64,
    ) -> Result<(), ActuatorError> {
        let pool = &proposal.pool;
        if self.store.paused()?.is_some() {
            return Err(ActuatorError::Paused);
        }
        let last = self.activity.get(pool).and_then(|a| a.last_finished_ms);
        let hour_ago = now - 3_600_000;
        let applied = self.store.count_entered(pool, None, "applying", hour_ago)?;
        pace(pool, last, applied, automation, now)?;
        let hold_ms = automation.refusal_hold_secs as i64 * 1000;
        for other in self
            .store
            .actions_in(&["pending_approval", "rejected", "expired"])?
        {
            if other.pool != *pool || !alike(&other.change, &proposal.change) {
                continue;
            }
            if other.state == ActionState::PendingApproval {
                return Err(ActuatorError::AwaitingApproval {
                    pool: pool.clone(),
                    id: other.id,
                });
            }
            if now - other.updated_ms < hold_ms {
                return Err(ActuatorError::RecentlyRefused {
                    id: other.id,
                    state: other.state.as_str().to_string(),
                    secs: automation.refusal_hold_secs,
                });
            }
        }
        Ok(())
    }

    /// Scores a proposal from the pool as the fleet and the log show it now.
    fn assess(
        &self,
        proposal: &Proposal,
        effectors: &Effectors,
        automation: &Automation,
        now: i64,
    ) -> Result<RiskAssessment, ActuatorError> {
        let members = effectors.pool.driver.list();
        let pool_size = effectors.pool.known_size().unwrap_or(members.len());
        let disrupted = match &proposal.change {
            Change::Scale { from, to } => from.saturating_sub(*to),
            // A rollout restart replaces every pod of the workload.
            Change::Restart { .. } if effectors.pool.driver.restarts_whole_pool() => pool_size,
            // An agent that is already down loses nothing by a restart.
            Change::Restart { agent } => {
                let offline = proposal.evidence.agent_status() == Some(AgentStatus::Offline)
                    || members.iter().any(|m| &m.handle.id == agent && !m.running);
                usize::from(!offline)
            }
            Change::Redistribute { from, to } => to
                .iter()
                .filter(|(agent, w)| (from.get(*agent).copied().unwrap_or(1.0) - **w).abs() > 1e-9)
                .count(),
            Change::AdjustThreshold { .. } => 0,
        };
        let since = now - automation.risk.history_secs as i64 * 1000;
        let kind = proposal.change.kind().as_str();
        let recent_rollbacks =
            self.store
                .count_entered(&proposal.pool, Some(kind), "rolled_back", since)?;
        let input = RiskInput {
            change: &proposal.change,
            pool_size: pool_size.max(disrupted),
            disrupted,
            confidence: proposal.confidence.clamp(0.0, 1.0),
            recent_rollbacks,
        };
        let mut assessment = assess(&input, automation);
        if assessment.mode == RiskMode::Auto && !automation.auto_apply.iter().any(|k| k == kind) {
            assessment.mode = RiskMode::Approval;
        }
        Ok(assessment)
    }

    /// Tells people an action waits for them, through the channels routes give
    /// `rule=approval_pending` (the console when none).
    fn announce_pending(&self, action: &Action) {
        let title = format!(
            "swarmpilot: action {} ({} on pool {}) waits for approval",
            action.id,
            action.kind.as_str(),
            action.pool
        );
        let text = format!(
            "{}\nrisk {}; expires {}\napprove: swarmpilot actions approve {} --url {}\nreject: swarmpilot actions reject {} --url {}",
            action.reason,
            // Announced once gated, so the assessment is there.
            action
                .risk
                .as_ref()
                .map_or_else(|| "-".to_string(), ToString::to_string),
            action
                .expires_ms
                .map_or_else(|| "never".to_string(), clock::rfc3339),
            action.id,
            self.api_url(),
            action.id,
            self.api_url(),
        );
        self.notify(action, "approval_pending", title, text);
        tracing::warn!(
            message = "Action waits for approval.",
            action = action.id,
            pool = %action.pool,
            kind = action.kind.as_str(),
            risk = %action.risk.as_ref().map_or_else(|| "-".to_string(), ToString::to_string),
            approve_with = %format!("swarmpilot actions approve {}", action.id),
        );
    }
}

impl Handler<Propose> for Actuator {
    type Result = Result<Action, ActuatorError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let Propose {
            proposal,
            actor,
            approver,
        } = msg;
        let effectors = self.effectors(&proposal.pool)?;
        let current = self.policy.current();
        let automation = &current.policy.automation;
        let now = self.clock.now_ms();
        let automatic = actor == AUTO;
        if automatic {
            self.check_automatic(&proposal, automation, now)?;
        }
        if let Some(action) = self.in_flight(&proposal.pool) {
            return Err(ActuatorError::Busy {
                pool: proposal.pool.clone(),
                action,
            });
        }
        // Re-check against what the driver and policy show now: a stale proposal is not applied.
        self.check_fresh(&proposal.pool, &effectors, &proposal.change)?;
        let assessment = self.assess(&proposal, &effectors, automation, now)?;
        let action = self.store.insert_action(&proposal, &actor)?;
        // The row above carries the inverse: the rollback plan is on disk before any change.
        let mode = assessment.mode;
        let expires = matches!(mode, RiskMode::Approval | RiskMode::TwoPerson)
            .then(|| now + automation.approval_expiry_secs as i64 * 1000);
        self.store.set_risk(action.id, &assessment, expires)?;
        let summary = format!("risk {:.2} ({})", assessment.score, assessment.class);
        let id = action.id;
        if automatic && automation.dry_run {
            let reason = format!("dry run (automation.dry_run): {summary}, {mode:?}; not applied");
            return Ok(self
                .store
                .transition(id, ActionState::Superseded, &reason, POLICY)?);
        }
        match mode {
            RiskMode::Forbidden => {
                let reason = format!("{summary}: policy forbids class {}", assessment.class);
                Ok(self
                    .store
                    .transition(id, ActionState::Rejected, &reason, POLICY)?)
            }
            RiskMode::Auto => {
                let why = if automatic {
                    format!("{summary}: policy applies it automatically")
                } else {
                    format!("{summary}: requested by {actor}")
                };
                self.start_apply(action, effectors, &why, ctx)
            }
            RiskMode::Approval | RiskMode::TwoPerson => {
                if approver && !automatic {
                    self.store.add_approval(id, &actor)?;
                }
                let needed = mode.approvals();
                let action = self
                    .store
                    .action(id)?
                    .ok_or(ActuatorError::NoSuchAction(id))?;
                if action.approvals.len() >= needed {
                    let why = format!("{summary}: requested by {actor}, an approver");
                    self.store
                        .transition(id, ActionState::Approved, &why, &actor)?;
                    let action = self
                        .store
                        .action(id)?
                        .ok_or(ActuatorError::NoSuchAction(id))?;
                    return self.start_apply(action, effectors, &why, ctx);
                }
                let reason = format!(
                    "{summary}: waits for {} approver(s) ({} so far) until {}",
                    needed,
                    action.approvals.len(),
                    clock::rfc3339(expires.unwrap_or(now)),
                );
                let action =
                    self.store
                        .transition(id, ActionState::PendingApproval, &reason, POLICY)?;
                self.announce_pending(&action);
                Ok(action)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_changes_share_kind_target_and_direction() {
        assert!(alike(
            &Change::Scale { from: 2, to: 3 },
            &Change::Scale { from: 2, to: 5 }
        ));
        assert!(!alike(
            &Change::Scale { from: 2, to: 3 },
            &Change::Scale { from: 3, to: 2 }
        ));
    }

    #[test]
    fn cooldown_and_the_hourly_cap_refuse_automatic_applies() {
        let automation = Automation {
            cooldown_secs: 30,
            max_actions_per_hour: 2,
            ..Automation::default()
        };
        let now = 10_000_000;
        // (what, last finished, applied in the last hour, the refusal)
        let table = [
            ("never acted", None, 0, None),
            ("cooled down", Some(now - 30_000), 1, None),
            (
                "cooling down",
                Some(now - 18_500),
                0,
                Some("pool web is cooling down for 12 s more"),
            ),
            (
                "at the cap",
                Some(now - 60_000),
                2,
                Some("pool web had 2 actions in the last hour, the policy's cap"),
            ),
        ];
        for (what, last, applied, refusal) in table {
            let verdict = pace("web", last, applied, &automation, now);
            assert_eq!(
                verdict.as_ref().err().map(ToString::to_string).as_deref(),
                refusal,
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_hourly_cap_counts_actions_that_entered_applying_in_the_last_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let automation = Automation {
            max_actions_per_hour: 2,
            ..Automation::default()
        };
        let proposal = Proposal {
            pool: "web".into(),
            change: Change::Scale { from: 2, to: 3 },
            reason: "load".into(),
            evidence: crate::domain::evidence::Evidence::empty(),
            confidence: 1.0,
            expected_effect: String::new(),
        };
        let count = || {
            let hour_ago = clock::now_ms() - 3_600_000;
            store
                .count_entered("web", None, "applying", hour_ago)
                .unwrap()
        };
        for n in 1..=2 {
            let action = store.insert_action(&proposal, AUTO).unwrap();
            assert!(pace("web", None, count(), &automation, clock::now_ms()).is_ok());
            store
                .transition(action.id, ActionState::Applying, "go", AUTO)
                .unwrap();
            assert_eq!(count(), n);
        }
        // A rejected one never entered applying and does not count.
        let rejected = store.insert_action(&proposal, AUTO).unwrap();
        store
            .transition(rejected.id, ActionState::Rejected, "no", POLICY)
            .unwrap();
        let refused = pace("web", None, count(), &automation, clock::now_ms());
        assert!(
            matches!(refused, Err(ActuatorError::RateLimited { max: 2, .. })),
            "{refused:?}"
        );
        assert!(pace("db", None, 0, &automation, clock::now_ms()).is_ok());
    }
}
