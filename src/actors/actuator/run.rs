//! Running an action: apply through the driver, verify, keep or roll back; and rollback by
//! hand within the policy's window.

use actix::{ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};

use super::apply::{ApplyError, Effectors, apply, undo};
use super::verify::{Baseline, Judge, Verifier, check, check_restart};
use super::{AUTO, Actuator, ActuatorError, RollBack};
use crate::actors::alert::RESTART_ESCALATED;
use crate::actors::fleet::GetFleet;
use crate::domain::{Action, ActionState, Change};

impl Actuator {
    /// Moves an action to `applying` and applies it; verification follows.
    pub(super) fn start_apply(
        &mut self,
        action: Action,
        effectors: Effectors,
        why: &str,
        ctx: &mut Context<Self>,
    ) -> Result<Action, ActuatorError> {
        let action = self.record(action.id, ActionState::Applying, why, AUTO)?;
        self.begin(&action.pool, action.id);
        self.calls += 1;
        let (id, pool, change) = (action.id, action.pool.clone(), action.change.clone());
        let fleet = self.fleet.clone();
        let by = why.to_string();
        ctx.spawn(
            async move {
                let before = fleet.send(GetFleet).await.ok();
                let result = apply(&effectors, id, &change, &by).await;
                (before, result, change)
            }
            .into_actor(self)
            .map(move |(before, result, change), actuator, ctx| {
                let _span = actuator.span.clone().entered();
                actuator.calls -= 1;
                let before = before.map(|s| Baseline::of(&s, &pool)).unwrap_or_default();
                match result {
                    Ok(summary) => {
                        actuator.failures.succeeded(&pool, &change);
                        // A restart step may have found the store refusing writes.
                        actuator.halted_now();
                        actuator.begin_verification(id, &pool, before, &summary);
                    }
                    Err(error) => {
                        tracing::warn!(message = "Action failed.", action = id, %error);
                        actuator.halted_now();
                        actuator.failed(&pool, &change, &error, ctx);
                        actuator.end(id, &pool, ActionState::Failed, &error.to_string(), AUTO);
                    }
                }
            }),
        );
        Ok(action)
    }

    /// Records the end of an action's flight: its last transition, and the pool is free.
    /// Unless the store refuses the write: then the pool stays busy, as the store still
    /// shows the action in flight, until the actuator reconciles.
    fn end(&mut self, id: i64, pool: &str, state: ActionState, reason: &str, actor: &str) {
        self.verifying.remove(&id);
        match self.record(id, state, reason, actor) {
            Ok(_) => {
                self.finish(pool);
                tracing::info!(message = "Action finished.", action = id,
                    state = state.as_str(), %reason);
            }
            Err(error) => {
                tracing::error!(message = "Action end not recorded; the pool stays busy.",
                action = id, %error)
            }
        }
    }

    /// Remembers a failed change, so automatic retries back off or wait for a change; an
    /// escalated restart also raises `restart_escalated`.
    fn failed(&mut self, pool: &str, change: &Change, error: &ApplyError, ctx: &mut Context<Self>) {
        let world = self.world(pool);
        let now = self.clock.now_ms();
        self.failures
            .failed(pool, change, error.permanent(), world, now);
        if let ApplyError::Escalated { agent, .. } = error {
            self.raise(RESTART_ESCALATED, agent, pool, ctx);
        }
    }

    /// Starts the verification window of an applied action (or keeps it at once when the
    /// policy's window is zero).
    pub(super) fn begin_verification(
        &mut self,
        id: i64,
        pool: &str,
        before: Baseline,
        summary: &str,
    ) {
        // Halted meanwhile: nothing is written, the reconcile finds the change in place.
        if self.check_running().is_err() {
            return;
        }
        let conditions = self.policy.current().policy.automation.verification.clone();
        if conditions.window_secs == 0 {
            self.end(id, pool, ActionState::Applied, summary, AUTO);
            return;
        }
        if before.agents.is_empty() {
            let reason = format!("{summary}; kept: no agent ran before it to compare with");
            self.end(id, pool, ActionState::Applied, &reason, AUTO);
            return;
        }
        let whole_pool = self
            .pools
            .get(pool)
            .is_some_and(|p| p.driver.restarts_whole_pool());
        let mut restarted = None;
        let judge = match self.store.action(id) {
            Ok(Some(action)) => match action.change {
                Change::Scale { from, to } if to < from => Judge::Removing,
                Change::Redistribute { .. } => Judge::Removing,
                // One agent restarted is judged on whether it came back (`verify/restart.rs`); a
                // rollout of the whole pool, as any change that moves load.
                Change::Restart { agent } if !whole_pool => {
                    restarted = Some(agent);
                    Judge::Removing
                }
                Change::Restart { .. } => Judge::Removing,
                Change::AdjustConcurrency { from, to } if to < from => Judge::Easing,
                Change::AdjustConcurrency { .. } => Judge::Pacing,
                // The agent's errors and latency were the provider's: judged on its health.
                Change::SwitchModel { .. } => Judge::Easing,
                Change::Scale { .. } | Change::AdjustThreshold { .. } => Judge::Adding,
            },
            _ => Judge::Adding,
        };
        let baseline = serde_json::to_value(&before).unwrap_or_default();
        if let Err(error) = self.store.set_verification(id, &baseline) {
            self.halt_on("a verification baseline", error.into());
            return;
        }
        let reason = format!(
            "{summary}; verifying for {} s (failure limit {})",
            conditions.window_secs, conditions.failure_limit
        );
        // Not recorded: no verification runs, the pool stays busy until reconciled.
        if self
            .record(id, ActionState::Verifying, &reason, AUTO)
            .is_err()
        {
            return;
        }
        let now = self.clock.now_ms();
        let grace_ms = self
            .pools
            .get(pool)
            .map_or(0, |p| p.startup_grace_secs as i64 * 1000);
        let interval_ms = self.policy.sampling_interval().as_millis() as i64;
        let mut until_ms = now + conditions.window_secs as i64 * 1000;
        if restarted.is_some() {
            // At least one check after the restarted agent's grace: one that never serves
            // again fails the restart.
            until_ms = until_ms.max(now + grace_ms + interval_ms);
        }
        self.verifying.insert(
            id,
            Verifier {
                pool: pool.to_string(),
                before,
                until_ms,
                next_ms: now + interval_ms,
                ready_by_ms: now + grace_ms,
                checks: 0,
                failures: Vec::new(),
                running: false,
                judge,
                restarted,
            },
        );
    }

    /// Runs the checks that are due; keeps or rolls back actions whose window decided.
    pub(super) fn check_verifications(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        let due: Vec<i64> = self
            .verifying
            .iter()
            .filter(|(_, v)| !v.running && v.next_ms <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(verifier) = self.verifying.get_mut(&id) else {
                continue;
            };
            verifier.running = true;
            let fleet = self.fleet.clone();
            ctx.spawn(
                fleet
                    .send(GetFleet)
                    .into_actor(self)
                    .map(move |snapshot, actuator, ctx| {
                        let _span = actuator.span.clone().entered();
                        if let Ok(snapshot) = snapshot {
                            actuator.judge(id, &snapshot, ctx);
                        } else if let Some(v) = actuator.verifying.get_mut(&id) {
                            v.running = false;
                        }
                    }),
            );
        }
    }

    fn judge(
        &mut self,
        id: i64,
        snapshot: &crate::actors::fleet::FleetSnapshot,
        ctx: &mut Context<Self>,
    ) {
        let now = self.clock.now_ms();
        let current = self.policy.current();
        let conditions = &current.policy.automation.verification;
        let interval_ms = self.policy.sampling_interval().as_millis() as i64;
        let Some(verifier) = self.verifying.get_mut(&id) else {
            return;
        };
        let starting_ok = now < verifier.ready_by_ms;
        let verdict = match &verifier.restarted {
            Some(agent) => check_restart(snapshot, &verifier.pool, agent, starting_ok),
            None => check(
                &verifier.before,
                snapshot,
                &verifier.pool,
                conditions,
                starting_ok,
                verifier.judge,
            ),
        };
        verifier.running = false;
        verifier.checks += 1;
        verifier.next_ms = now + interval_ms;
        let pool = verifier.pool.clone();
        if !verdict.failed.is_empty() {
            let failure = verdict.failed.join("; ");
            tracing::warn!(message = "Verification check failed.", action = id, %failure);
            verifier.failures.push(failure);
        }
        let failed = verifier.failures.len();
        if verdict.decisive || failed > conditions.failure_limit as usize {
            let reason = format!(
                "verification failed {failed} of {} checks (limit {}): {}",
                verifier.checks,
                conditions.failure_limit,
                verifier.failures.last().cloned().unwrap_or_default()
            );
            self.verifying.remove(&id);
            self.roll_back_automatically(id, &pool, reason, ctx);
        } else if now >= verifier.until_ms {
            let reason = format!(
                "verification passed: {} checks, {failed} failed (limit {}){}",
                verifier.checks,
                conditions.failure_limit,
                if verdict.inconclusive.is_empty() {
                    String::new()
                } else {
                    format!("; inconclusive: {}", verdict.inconclusive.join(", "))
                }
            );
            self.end(id, &pool, ActionState::Applied, &reason, AUTO);
        }
    }

    fn roll_back_automatically(
        &mut self,
        id: i64,
        pool: &str,
        reason: String,
        ctx: &mut Context<Self>,
    ) {
        let action = match self.store.action(id) {
            Ok(Some(action)) => action,
            _ => return self.end(id, pool, ActionState::Failed, &reason, AUTO),
        };
        // A change that failed its verification backs off like one that failed to apply:
        // a worker that keeps crashing is not restarted once per window for ever.
        let (world, now) = (self.world(pool), self.clock.now_ms());
        self.failures.failed(pool, &action.change, None, world, now);
        let Ok(effectors) = self.effectors(pool) else {
            return self.end(id, pool, ActionState::Failed, &reason, AUTO);
        };
        // Re-checked as a rollback by hand is: the pool as the change left it, and never
        // below its minimum. Not undone, it failed: people decide what to do with it.
        if let Err(refusal) = self.check_inverse(&action, &effectors) {
            let reason = format!("{reason}; not rolled back: {refusal}");
            return self.end(id, pool, ActionState::Failed, &reason, AUTO);
        }
        // On record before anything is undone: a crash from here on is recovered as an
        // interrupted rollback, not as an applied change. Not recorded, nothing is undone.
        let undoing = format!("{reason}; rolling back");
        if self
            .record(id, ActionState::RollingBack, &undoing, AUTO)
            .is_err()
        {
            return;
        }
        let pool = pool.to_string();
        self.calls += 1;
        ctx.spawn(
            async move { undo(&effectors, id, &action.change, AUTO).await }
                .into_actor(self)
                .map(move |result, actuator, _ctx| {
                    let _span = actuator.span.clone().entered();
                    actuator.calls -= 1;
                    match result {
                        Ok(summary) => {
                            let reason = format!("{reason}; rolled back: {summary}");
                            actuator.end(id, &pool, ActionState::RolledBack, &reason, AUTO);
                            if let Ok(Some(action)) = actuator.store.action(id) {
                                let title = format!(
                                    "swarmpilot: action {id} ({} on pool {pool}) rolled back",
                                    action.kind.as_str()
                                );
                                actuator.notify(&action, "rolled_back", title, reason);
                            }
                        }
                        Err(error) => {
                            let reason = format!("{reason}; rollback failed: {error}");
                            actuator.end(id, &pool, ActionState::Failed, &reason, AUTO);
                        }
                    }
                }),
        );
    }

    /// Checks that action `id` can be rolled back by hand now; returns it with its pool's
    /// effectors.
    fn prepare_rollback(&self, id: i64) -> Result<(Action, Effectors), ActuatorError> {
        let action = self
            .store
            .action(id)?
            .ok_or(ActuatorError::NoSuchAction(id))?;
        let refuse = |reason: String| ActuatorError::NotRollbackable { id, reason };
        let effectors = match action.state {
            // Aborting a verification: the pool is busy with this very action.
            ActionState::Verifying => self.effectors(&action.pool)?,
            ActionState::Applied => self.idle_pool(&action.pool)?,
            other => {
                return Err(refuse(format!(
                    "it is {}, not applied or verifying",
                    other.as_str()
                )));
            }
        };
        let window_ms = self.policy.current().policy.automation.rollback_window_secs as i64 * 1000;
        if self.clock.now_ms() - action.updated_ms > window_ms {
            return Err(refuse(format!(
                "it was applied more than {} s ago",
                window_ms / 1000
            )));
        }
        self.check_inverse(&action, &effectors)?;
        Ok((action, effectors))
    }

    /// Checks that undoing `action` now is what it claims: the pool is as the change left it,
    /// and undoing it keeps the pool at or above its `min_agents` (below needs a person to
    /// propose the scale afresh, through approval).
    fn check_inverse(&self, action: &Action, effectors: &Effectors) -> Result<(), ActuatorError> {
        let id = action.id;
        let refuse = |reason: String| ActuatorError::NotRollbackable { id, reason };
        let Some(inverse) = action.inverse.clone() else {
            return Err(refuse(format!("a {} has no inverse", action.kind.as_str())));
        };
        self.check_fresh(&action.pool, effectors, &inverse)
            .map_err(|stale| refuse(format!("stale: {stale}")))?;
        let min = self
            .policy
            .current()
            .policy
            .pool(&action.pool)
            .map_or(0, |p| p.min_agents);
        if let Change::Scale { to, .. } = inverse
            && to < min
        {
            return Err(refuse(format!(
                "it would leave pool {} with {to} agents, below its min_agents {min}; propose \
                 that scale afresh so that people approve it",
                action.pool
            )));
        }
        Ok(())
    }
}

impl Handler<RollBack> for Actuator {
    type Result = ResponseActFuture<Self, Result<Action, ActuatorError>>;

    fn handle(&mut self, msg: RollBack, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let (action, effectors) = match self.prepare_rollback(msg.id) {
            Ok(ready) => ready,
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        };
        // A verification in progress stops here: the person's decision wins.
        self.verifying.remove(&action.id);
        let (change, id, actor) = (action.change.clone(), action.id, msg.actor);
        let undoing = format!("rollback requested by {actor}");
        if let Err(error) = self.record(id, ActionState::RollingBack, &undoing, &actor) {
            return Box::pin(actix::fut::ready(Err(error)));
        }
        self.begin(&action.pool, action.id);
        self.calls += 1;
        Box::pin(
            async move {
                let result = undo(&effectors, id, &change, &actor).await;
                (result, actor)
            }
            .into_actor(self)
            .map(move |(result, actor), actuator, _ctx| {
                let _span = actuator.span.clone().entered();
                actuator.calls -= 1;
                match result {
                    Ok(summary) => {
                        let reason = format!("rolled back by {actor}: {summary}");
                        let done = actuator.record(id, ActionState::RolledBack, &reason, &actor)?;
                        actuator.finish(&action.pool);
                        Ok(done)
                    }
                    Err(error) => {
                        tracing::error!(message = "Rollback failed.", action = id, %error);
                        // Still (perhaps partly) in place: applied, so it may be tried again.
                        let reason = format!("rollback by {actor} failed: {error}; still applied");
                        if actuator
                            .record(id, ActionState::Applied, &reason, &actor)
                            .is_ok()
                        {
                            actuator.finish(&action.pool);
                        }
                        Err(ActuatorError::NotRollbackable {
                            id,
                            reason: error.to_string(),
                        })
                    }
                }
            }),
        )
    }
}
