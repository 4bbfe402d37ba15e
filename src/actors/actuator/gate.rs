//! The risk gate: scores each proposal, applies what its class allows, holds the rest for
//! one or two approvers until they decide or the approval expires.

use actix::{Context, Handler};

use super::apply::Effectors;
use super::{AUTO, Actuator, ActuatorError, Propose};
use crate::actors::alert::AGENT_NOT_MANAGED;
use crate::analytics::risk::{RiskAssessment, RiskInput, assess};
use crate::clock;
use crate::decide::gate::{disrupted, held_for_people, pace, restores_minimum, under_policy};
use crate::domain::DriverAgent;
use crate::domain::{Action, ActionState, AgentStatus, Change, Proposal};
use crate::policy::{Automation, RiskMode};

/// Who the log names for what policy decides.
pub(super) const POLICY: &str = "policy";

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
        // Failed like changes back off, or wait for the pool or policy to change.
        self.failures
            .hold(pool, &proposal.change, self.world(pool), now)?;
        // Replacing capacity below the minimum is never held back by other actions.
        if !self.restores_minimum(proposal) {
            let last = self.activity.get(pool).and_then(|a| a.last_finished_ms);
            let hour_ago = now - 3_600_000;
            let applied = self.store.count_changes(pool, hour_ago)?;
            pace(pool, last, applied, automation, now)?;
        }
        let others = self.store.actions_in(&[
            ActionState::PendingApproval,
            ActionState::Rejected,
            ActionState::Expired,
        ])?;
        held_for_people(pool, &proposal.change, &others, automation, now)?;
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
        // An agent that is already down loses nothing by a restart.
        let down = restarts_a_down_agent(proposal, &members);
        // A rollout restart replaces every pod of the workload.
        let whole_pool = effectors.pool.driver.restarts_whole_pool();
        let disrupted = disrupted(&proposal.change, pool_size, whole_pool, down);
        let since = now - automation.risk.history_secs as i64 * 1000;
        let kind = proposal.change.kind().as_str();
        let recent_rollbacks = self.store.count_entered(
            &proposal.pool,
            Some(proposal.change.kind()),
            ActionState::RolledBack,
            since,
        )?;
        let input = RiskInput {
            change: &proposal.change,
            pool_size: pool_size.max(disrupted),
            disrupted,
            confidence: proposal.confidence.clamp(0.0, 1.0),
            recent_rollbacks,
        };
        Ok(under_policy(assess(&input, automation), automation, kind))
    }

    /// Whether `proposal` replaces capacity the pool lacks below its `min_agents`.
    fn restores_minimum(&self, proposal: &Proposal) -> bool {
        let Some(pool) = self.pools.get(&proposal.pool) else {
            return false;
        };
        let current = self.policy.current();
        let min = current
            .policy
            .pool(&proposal.pool)
            .map_or(0, |p| p.min_agents);
        let members = pool.driver.list();
        let running = if pool.driver.remote() {
            pool.known_size().unwrap_or(0)
        } else {
            members.iter().filter(|m| m.running).count()
        };
        let down = restarts_a_down_agent(proposal, &members);
        restores_minimum(&proposal.change, running, min, down)
    }

    /// Refuses a restart of an agent the pool's (local) driver does not run: the agent is
    /// deregistered, with a log line and `agent_not_managed`, instead.
    fn check_managed(
        &mut self,
        proposal: &Proposal,
        effectors: &Effectors,
        ctx: &mut Context<Self>,
    ) -> Result<(), ActuatorError> {
        let Change::Restart { agent } = &proposal.change else {
            return Ok(());
        };
        let driver = &effectors.pool.driver;
        // While the pool is busy (a restart of this very agent, between its stop and its
        // start) the driver may not list it: the busy pool refuses the proposal instead.
        if driver.remote()
            || self.in_flight(&proposal.pool).is_some()
            || driver.list().iter().any(|m| &m.handle.id == agent)
        {
            return Ok(());
        }
        // Deregistered once: if it comes back, it stays until the pool or policy changes.
        let (world, now) = (self.world(&proposal.pool), self.clock.now_ms());
        self.failures
            .hold(&proposal.pool, &proposal.change, world, now)?;
        tracing::warn!(
            message = "Agent not run by its pool's driver deregistered, not restarted.",
            %agent,
            pool = %proposal.pool,
        );
        self.raise(AGENT_NOT_MANAGED, agent, &proposal.pool, ctx);
        let refusal = ActuatorError::NotManaged {
            agent: agent.clone(),
            pool: proposal.pool.clone(),
        };
        // Should it come back (allowed, or declared), it is not proposed again until the
        // pool or policy changes, so it is not deregistered over and over.
        self.failures.failed(
            &proposal.pool,
            &proposal.change,
            Some(refusal.to_string()),
            world,
            now,
        );
        Err(refusal)
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

/// Whether `proposal` restarts an agent that is already down (offline, or not running as its
/// driver sees it).
fn restarts_a_down_agent(proposal: &Proposal, members: &[DriverAgent]) -> bool {
    match &proposal.change {
        Change::Restart { agent } => {
            proposal.evidence.agent_status() == Some(AgentStatus::Offline)
                || members.iter().any(|m| &m.handle.id == agent && !m.running)
        }
        _ => false,
    }
}

impl Handler<Propose> for Actuator {
    type Result = Result<Action, ActuatorError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        self.propose(msg, ctx)
            .map_err(|error| self.halt_on("a proposal", error))
    }
}

impl Actuator {
    fn propose(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Result<Action, ActuatorError> {
        let Propose {
            proposal,
            actor,
            approver,
        } = msg;
        let effectors = self.effectors(&proposal.pool)?;
        self.check_managed(&proposal, &effectors, ctx)?;
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
        let mut assessment = self.assess(&proposal, &effectors, automation, now)?;
        // A scale-out past the pool's model budget is a person's call.
        if automatic
            && assessment.mode == RiskMode::Auto
            && proposal.evidence.over_budget().is_some()
        {
            assessment.mode = RiskMode::Approval;
        }
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
            return self.record(id, ActionState::Superseded, &reason, POLICY);
        }
        match mode {
            RiskMode::Forbidden => {
                let reason = format!("{summary}: policy forbids class {}", assessment.class);
                self.record(id, ActionState::Rejected, &reason, POLICY)
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
                    self.record(id, ActionState::Approved, &why, &actor)?;
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
                let action = self.record(id, ActionState::PendingApproval, &reason, POLICY)?;
                self.announce_pending(&action);
                Ok(action)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::gate::Hold;

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
                .count_entered("web", None, ActionState::Applying, hour_ago)
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
            matches!(refused, Err(Hold::RateLimited { max: 2, .. })),
            "{refused:?}"
        );
        assert!(pace("db", None, 0, &automation, clock::now_ms()).is_ok());
    }
}
