//! `Actuator`: the only actor that calls drivers. It records each proposal, applies it
//! through the pool's driver, and writes every transition to the log:
//! `proposed → applying → applied | failed`. At most one action is in flight per pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseFuture, WrapFuture,
};

use super::fleet::FleetSupervisor;
use super::messages::{DeregisterAgent, RegisterAgent};
use crate::domain::{Action, ActionState, Change, Proposal};
use crate::drivers::{Driver, DriverError};
use crate::store::{Store, StoreError};

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
    /// The controller is stopping.
    #[error("the controller is shutting down")]
    ShuttingDown,
    /// The log could not be written, so nothing was applied.
    #[error("cannot write the action log")]
    Store(#[from] StoreError),
}

/// Asks the actuator to apply a proposal.
#[derive(Debug, Message)]
#[rtype(result = "Result<Action, ActuatorError>")]
pub struct Propose(pub Proposal);

/// Asks which action, if any, is in flight for each pool.
#[derive(Debug, Message)]
#[rtype(result = "BTreeMap<String, i64>")]
pub struct GetInFlight;

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
}

/// The actuator actor.
pub struct Actuator {
    store: Store,
    fleet: Addr<FleetSupervisor>,
    pools: HashMap<String, PoolDriver>,
    in_flight: BTreeMap<String, i64>,
    shutting_down: bool,
}

impl Actuator {
    /// An actuator over the given pools' drivers.
    pub fn new(store: Store, fleet: Addr<FleetSupervisor>, pools: HashMap<String, PoolDriver>) -> Self {
        Actuator {
            store,
            fleet,
            pools,
            in_flight: BTreeMap::new(),
            shutting_down: false,
        }
    }
}

impl Actor for Actuator {
    type Context = Context<Self>;
}

// === impl Handler ===

impl Handler<Propose> for Actuator {
    type Result = Result<Action, ActuatorError>;

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let proposal = msg.0;
        if self.shutting_down {
            return Err(ActuatorError::ShuttingDown);
        }
        let pool = self
            .pools
            .get(&proposal.pool)
            .cloned()
            .ok_or_else(|| ActuatorError::UnknownPool(proposal.pool.clone()))?;
        if let Some(&action) = self.in_flight.get(&proposal.pool) {
            return Err(ActuatorError::Busy {
                pool: proposal.pool,
                action,
            });
        }
        // Re-check against what the driver reports now: a stale proposal is not applied.
        if let Change::Scale { from, .. } = proposal.change {
            let actual = pool.driver.list().len();
            if actual != from {
                return Err(ActuatorError::Stale {
                    pool: proposal.pool,
                    expected: from,
                    actual,
                });
            }
        }
        let action = self.store.insert_action(&proposal, AUTO)?;
        // The row above carries the inverse: the rollback plan is on disk before any change.
        let action = self.store.transition(
            action.id,
            ActionState::Applying,
            "policy allows automatic apply",
            AUTO,
        )?;
        self.in_flight.insert(action.pool.clone(), action.id);
        let fleet = self.fleet.clone();
        let change = action.change.clone();
        let (id, pool_name) = (action.id, action.pool.clone());
        ctx.spawn(
            async move { apply(&pool, &fleet, &change).await }
                .into_actor(self)
                .map(move |result, actuator, _ctx| {
                    actuator.in_flight.remove(&pool_name);
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

impl Handler<GetInFlight> for Actuator {
    type Result = MessageResult<GetInFlight>;

    fn handle(&mut self, _msg: GetInFlight, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.in_flight.clone())
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

/// Applies one change through the pool's driver; returns what was done, for the log.
async fn apply(
    pool: &PoolDriver,
    fleet: &Addr<FleetSupervisor>,
    change: &Change,
) -> Result<String, DriverError> {
    match change {
        Change::Scale { from, to } if to > from => {
            let mut started = Vec::new();
            for _ in *from..*to {
                let handle = pool.driver.start().await.map_err(|error| {
                    partial(error, &format!("started {} of {}", started.len(), to - from))
                })?;
                started.push(handle.id.clone());
                fleet.do_send(RegisterAgent {
                    handle,
                    startup_grace_secs: pool.startup_grace_secs,
                });
            }
            Ok(format!("started {}", started.join(", ")))
        }
        Change::Scale { from, to } => {
            // Newest first, as Kubernetes' ReplicaSet does by default.
            let running = pool.driver.list();
            let victims: Vec<String> = running
                .iter()
                .rev()
                .take(from.saturating_sub(*to))
                .map(|a| a.handle.id.clone())
                .collect();
            for agent in &victims {
                // Deregister first, so the silence of a stopped agent raises no alarm.
                fleet.do_send(DeregisterAgent {
                    agent: agent.clone(),
                });
                pool.driver.stop(agent).await?;
            }
            Ok(format!("stopped {}", victims.join(", ")))
        }
        Change::Restart { agent } => {
            let handle = pool.driver.restart(agent).await?;
            let pid = handle.pid;
            fleet.do_send(RegisterAgent {
                handle,
                startup_grace_secs: pool.startup_grace_secs,
            });
            Ok(format!("restarted {agent} as pid {}", pid.unwrap_or_default()))
        }
    }
}

fn partial(error: DriverError, progress: &str) -> DriverError {
    match error {
        DriverError::StartFailed { agent, reason } => DriverError::StartFailed {
            agent,
            reason: format!("{reason} ({progress})"),
        },
        other => other,
    }
}
