//! `Actuator`: the only actor that calls drivers. It records each proposal, applies it
//! through the pool's driver (or the policy overlay), and writes every transition to the
//! log: `proposed → applying → applied | failed`, and `applied → rolled_back` when undone.
//! At most one action is in flight per pool.

mod apply;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseActFuture, ResponseFuture, WrapFuture,
};

use super::fleet::FleetSupervisor;
use super::policy::PolicyKeeper;
use crate::clock;
use crate::domain::{Action, ActionState, Change, Proposal};
use crate::drivers::Driver;
use crate::policy::{PolicyHandle, threshold};
use crate::store::{Store, StoreError};
use apply::{Effectors, apply, undo};

/// Who the log names for what the controller does by itself.
pub const AUTO: &str = "auto";

/// Errors the actuator answers a proposal with.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    /// No such pool in the policy.
    #[error("no pool named {0}")]
    UnknownPool(String),
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

/// Asks the actuator to apply a proposal on behalf of `actor` (`auto` or a user).
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct Propose {
    /// What to do.
    pub proposal: Proposal,
    /// Who asks.
    pub actor: String,
}

/// Asks the actuator to undo an applied action; answered once it is undone.
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct RollBack {
    /// The action.
    pub id: i64,
    /// Who asks.
    pub actor: String,
}

/// What the actuator is doing, or last did, to one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolActivity {
    /// The action being applied now.
    pub in_flight: Option<i64>,
    /// When the last action on the pool finished, epoch milliseconds.
    pub last_finished_ms: Option<i64>,
    /// How long a new agent of the pool has been taking to become ready, milliseconds.
    pub observed_startup_ms: Option<i64>,
}

/// Asks for every pool's activity.
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, PoolActivity>")]
pub struct GetActivity;

/// Stops every agent of every pool; answered when they are gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// One pool's driver and start-up grace.
#[derive(Clone)]
pub struct PoolDriver {
    /// The driver.
    pub driver: Arc<dyn Driver>,
    /// Seconds a new agent may stay silent before it is declared offline.
    pub startup_grace_secs: u64,
    /// How long a removed agent keeps serving before it is stopped.
    pub drain: std::time::Duration,
    /// Running average of how long starting an agent took, milliseconds (0: never started).
    pub startup_ms: Arc<std::sync::atomic::AtomicI64>,
}

/// The actuator actor.
pub struct Actuator {
    store: Store,
    fleet: Addr<FleetSupervisor>,
    keeper: Addr<PolicyKeeper>,
    policy: PolicyHandle,
    pools: HashMap<String, PoolDriver>,
    activity: BTreeMap<String, PoolActivity>,
    shutting_down: bool,
}

impl Actuator {
    /// An actuator over the given pools' drivers and the policy overlay.
    pub fn new(
        store: Store,
        fleet: Addr<FleetSupervisor>,
        keeper: Addr<PolicyKeeper>,
        policy: PolicyHandle,
        pools: HashMap<String, PoolDriver>,
    ) -> Self {
        Actuator {
            store,
            fleet,
            keeper,
            policy,
            pools,
            activity: BTreeMap::new(),
            shutting_down: false,
        }
    }

    /// The pool's effectors, if the pool exists and is idle.
    fn idle_pool(&self, pool: &str) -> Result<Effectors, ActuatorError> {
        if self.shutting_down {
            return Err(ActuatorError::ShuttingDown);
        }
        let driver = self
            .pools
            .get(pool)
            .cloned()
            .ok_or_else(|| ActuatorError::UnknownPool(pool.to_string()))?;
        if let Some(action) = self.activity.get(pool).and_then(|a| a.in_flight) {
            return Err(ActuatorError::Busy {
                pool: pool.to_string(),
                action,
            });
        }
        Ok(Effectors {
            pool: driver,
            fleet: self.fleet.clone(),
            keeper: self.keeper.clone(),
        })
    }

    /// Refuses a change whose starting point is no longer what the fleet or policy shows.
    fn check_fresh(
        &self,
        pool: &str,
        effectors: &Effectors,
        change: &Change,
    ) -> Result<(), ActuatorError> {
        match change {
            Change::Scale { from, .. } => {
                let actual = effectors.pool.driver.list().len();
                if actual != *from {
                    return Err(ActuatorError::Stale {
                        pool: pool.to_string(),
                        expected: *from,
                        actual,
                    });
                }
            }
            Change::AdjustThreshold { rule, from, .. } => {
                let actual = threshold(&self.policy.current().policy, rule);
                if actual != Some(*from) {
                    return Err(ActuatorError::StaleThreshold {
                        rule: rule.clone(),
                        expected: *from,
                        actual,
                    });
                }
            }
            Change::Restart { .. } => {}
        }
        Ok(())
    }

    fn begin(&mut self, pool: &str, id: i64) {
        self.activity.entry(pool.to_string()).or_default().in_flight = Some(id);
    }

    fn finish(&mut self, pool: &str) {
        let activity = self.activity.entry(pool.to_string()).or_default();
        activity.in_flight = None;
        activity.last_finished_ms = Some(clock::now_ms());
    }
}

impl Actor for Actuator {
    type Context = Context<Self>;
}

// === impl Handler ===

impl Handler<Propose> for Actuator {
    type Result = Result<Action, ActuatorError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let Propose { proposal, actor } = msg;
        let effectors = self.idle_pool(&proposal.pool)?;
        // Re-check against what the driver and policy show now: a stale proposal is not applied.
        self.check_fresh(&proposal.pool, &effectors, &proposal.change)?;
        let action = self.store.insert_action(&proposal, &actor)?;
        // The row above carries the inverse: the rollback plan is on disk before any change.
        let why = if actor == AUTO {
            "policy allows automatic apply".to_string()
        } else {
            format!("requested by {actor}")
        };
        let action = self
            .store
            .transition(action.id, ActionState::Applying, &why, AUTO)?;
        self.begin(&action.pool, action.id);
        let change = action.change.clone();
        let (id, pool) = (action.id, action.pool.clone());
        ctx.spawn(
            async move { apply(&effectors, id, &change, &actor).await }
                .into_actor(self)
                .map(move |result, actuator, _ctx| {
                    actuator.finish(&pool);
                    let (state, reason) = match result {
                        Ok(summary) => (ActionState::Applied, summary),
                        Err(error) => {
                            tracing::warn!(message = "Action failed.", action = id, %error);
                            (ActionState::Failed, error.to_string())
                        }
                    };
                    if let Err(error) = actuator.store.transition(id, state, &reason, AUTO) {
                        tracing::error!(message = "Log write failed.", action = id, %error);
                    }
                    tracing::info!(message = "Action finished.", action = id,
                        state = state.as_str(), %reason);
                }),
        );
        Ok(action)
    }
}

impl Handler<RollBack> for Actuator {
    type Result = ResponseActFuture<Self, Result<Action, ActuatorError>>;

    fn handle(&mut self, msg: RollBack, _ctx: &mut Context<Self>) -> Self::Result {
        let prepared = self.prepare_rollback(msg.id);
        let (action, effectors) = match prepared {
            Ok(ready) => ready,
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        };
        self.begin(&action.pool, action.id);
        let (change, id, actor) = (action.change.clone(), action.id, msg.actor);
        Box::pin(
            async move {
                let result = undo(&effectors, id, &change, &actor).await;
                (result, actor)
            }
            .into_actor(self)
            .map(move |(result, actor), actuator, _ctx| {
                actuator.finish(&action.pool);
                match result {
                    Ok(summary) => {
                        let reason = format!("rolled back by {actor}: {summary}");
                        Ok(actuator.store.transition(
                            id,
                            ActionState::RolledBack,
                            &reason,
                            &actor,
                        )?)
                    }
                    Err(error) => {
                        tracing::error!(message = "Rollback failed.", action = id, %error);
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

impl Actuator {
    /// Checks that action `id` can be rolled back now; returns it with its pool's effectors.
    fn prepare_rollback(&self, id: i64) -> Result<(Action, Effectors), ActuatorError> {
        let action = self
            .store
            .action(id)?
            .ok_or(ActuatorError::NoSuchAction(id))?;
        let refuse = |reason: String| ActuatorError::NotRollbackable { id, reason };
        if action.state != ActionState::Applied {
            return Err(refuse(format!(
                "it is {}, not applied",
                action.state.as_str()
            )));
        }
        let window_ms = self.policy.current().policy.automation.rollback_window_secs as i64 * 1000;
        if clock::now_ms() - action.updated_ms > window_ms {
            return Err(refuse(format!(
                "it was applied more than {} s ago",
                window_ms / 1000
            )));
        }
        let Some(inverse) = action.inverse.clone() else {
            return Err(refuse(format!("a {} has no inverse", action.kind.as_str())));
        };
        let effectors = self.idle_pool(&action.pool)?;
        if let Change::Scale { .. } = inverse {
            self.check_fresh(&action.pool, &effectors, &inverse)?;
        }
        Ok((action, effectors))
    }
}

impl Handler<GetActivity> for Actuator {
    type Result = MessageResult<GetActivity>;

    fn handle(&mut self, _msg: GetActivity, _ctx: &mut Context<Self>) -> Self::Result {
        let mut activity = self.activity.clone();
        for (name, pool) in &self.pools {
            let startup = pool.startup_ms.load(std::sync::atomic::Ordering::Relaxed);
            if startup > 0 {
                activity
                    .entry(name.clone())
                    .or_default()
                    .observed_startup_ms = Some(startup);
            }
        }
        MessageResult(activity)
    }
}

impl Handler<Shutdown> for Actuator {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let drivers: Vec<Arc<dyn Driver>> = self.pools.values().map(|p| p.driver.clone()).collect();
        Box::pin(async move {
            for driver in drivers {
                if let Err(error) = driver.shutdown().await {
                    tracing::warn!(message = "Driver shutdown failed.", %error);
                }
            }
        })
    }
}
