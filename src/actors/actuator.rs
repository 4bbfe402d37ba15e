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
use crate::clock;
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

/// What the actuator is doing, or last did, to one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolActivity {
    /// The action being applied now.
    pub in_flight: Option<i64>,
    /// When the last action on the pool finished, epoch milliseconds.
    pub last_finished_ms: Option<i64>,
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
}

/// The actuator actor.
pub struct Actuator {
    store: Store,
    fleet: Addr<FleetSupervisor>,
    pools: HashMap<String, PoolDriver>,
    activity: BTreeMap<String, PoolActivity>,
    shutting_down: bool,
}

impl Actuator {
    /// An actuator over the given pools' drivers.
    pub fn new(
        store: Store,
        fleet: Addr<FleetSupervisor>,
        pools: HashMap<String, PoolDriver>,
    ) -> Self {
        Actuator {
            store,
            fleet,
            pools,
            activity: BTreeMap::new(),
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
        let in_flight = self.activity.get(&proposal.pool).and_then(|a| a.in_flight);
        if let Some(action) = in_flight {
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
        self.activity
            .entry(action.pool.clone())
            .or_default()
            .in_flight = Some(action.id);
        let fleet = self.fleet.clone();
        let change = action.change.clone();
        let (id, pool_name) = (action.id, action.pool.clone());
        ctx.spawn(
            async move { apply(&pool, &fleet, &change).await }
                .into_actor(self)
                .map(move |result, actuator, _ctx| {
                    let activity = actuator.activity.entry(pool_name).or_default();
                    activity.in_flight = None;
                    activity.last_finished_ms = Some(clock::now_ms());
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

impl Handler<GetActivity> for Actuator {
    type Result = MessageResult<GetActivity>;

    fn handle(&mut self, _msg: GetActivity, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.activity.clone())
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
                    partial(
                        error,
                        &format!("started {} of {}", started.len(), to - from),
                    )
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
            // Deregister first, so the silence of a stopped agent raises no alarm and load
            // balancers following the API stop sending to it; then drain, then stop.
            for agent in &victims {
                fleet.do_send(DeregisterAgent {
                    agent: agent.clone(),
                });
            }
            tokio::time::sleep(pool.drain).await;
            for agent in &victims {
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
            Ok(format!(
                "restarted {agent} as pid {}",
                pid.unwrap_or_default()
            ))
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
