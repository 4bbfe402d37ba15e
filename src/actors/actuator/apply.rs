//! Carrying out one change: through the pool's driver (scale, restart) or the policy
//! overlay (adjust_threshold), and undoing it.

use actix::Addr;

use super::PoolDriver;
use crate::actors::fleet::FleetSupervisor;
use crate::actors::messages::{DeregisterAgent, RegisterAgent};
use crate::actors::policy::{ChangeOverlay, PolicyKeeper};
use crate::domain::{ActionState, Change};
use crate::drivers::DriverError;
use crate::policy::OverlayEntry;

/// What an apply needs to reach.
#[derive(Clone)]
pub struct Effectors {
    /// The pool's driver.
    pub pool: PoolDriver,
    /// The log, where a restart records each of its steps.
    pub store: crate::store::Store,
    /// Whether actuation is stopped: a step not on record stops it, and nothing is written
    /// while it is.
    pub halt: super::Halt,
    /// The fleet, told about agents started and stopped.
    pub fleet: Addr<FleetSupervisor>,
    /// The policy keeper, which owns the overlay.
    pub keeper: Addr<PolicyKeeper>,
    /// The controller's clock.
    pub clock: crate::clock::Clock,
    /// The pool's model and its equivalents, the pool's own first.
    pub catalog: Vec<crate::policy::PoolModel>,
}

/// Why a change could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The driver failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The policy refused the new threshold.
    #[error("policy refused the change: {0}")]
    Policy(String),
    /// This change has no inverse.
    #[error("a {0} cannot be undone")]
    Irreversible(&'static str),
    /// A restart stopped the agent and could not start it again: it was deregistered.
    #[error(
        "restart of {agent} escalated: stopped, then {attempts} starts failed (last: {last}); deregistered"
    )]
    Escalated {
        /// The agent.
        agent: String,
        /// Starts tried.
        attempts: u32,
        /// Why the last start failed.
        last: String,
    },
}

impl ApplyError {
    /// Why retrying the same change cannot help, if it cannot: the target is gone, the
    /// driver cannot do it, the orchestrator or the policy refused the request itself.
    pub fn permanent(&self) -> Option<String> {
        let permanent = match self {
            ApplyError::Driver(DriverError::NoSuchAgent(_))
            | ApplyError::Driver(DriverError::Unsupported { .. })
            | ApplyError::Driver(DriverError::Setup { .. })
            | ApplyError::Driver(DriverError::Credentials(_))
            | ApplyError::Policy(_)
            | ApplyError::Irreversible(_) => true,
            ApplyError::Driver(DriverError::Refused { status, .. }) => {
                (400..500).contains(status) && ![408, 429].contains(status)
            }
            ApplyError::Driver(_) | ApplyError::Escalated { .. } => false,
        };
        permanent.then(|| self.to_string())
    }
}

/// How many times a restart tries to start its agent after stopping it before it escalates.
pub const START_ATTEMPTS: u32 = 3;

/// Applies `change` for action `action_id`; returns what was done, for the log.
pub async fn apply(
    effectors: &Effectors,
    action_id: i64,
    change: &Change,
    actor: &str,
) -> Result<String, ApplyError> {
    let pool = &effectors.pool;
    let fleet = &effectors.fleet;
    match change {
        Change::Scale { to, .. } if pool.driver.remote() => {
            // The orchestrator owns the agents: one request, then what it reports.
            let size = pool.driver.scale_to(*to).await?;
            pool.remote_size
                .store(size as i64, std::sync::atomic::Ordering::Relaxed);
            Ok(format!("{} reports {size} agents", pool.driver.kind()))
        }
        Change::Scale { from, to } if to > from => {
            let mut started = Vec::new();
            for _ in *from..*to {
                let started_at = std::time::Instant::now();
                let handle = pool.driver.start().await.map_err(|error| {
                    partial(
                        error,
                        &format!("started {} of {}", started.len(), to - from),
                    )
                })?;
                record_startup(pool, started_at.elapsed());
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
                if let Ok(mut models) = pool.models.lock() {
                    models.remove(agent);
                }
            }
            Ok(format!("stopped {}", victims.join(", ")))
        }
        Change::Restart { agent }
            if !pool.driver.remote() && !pool.driver.restarts_whole_pool() =>
        {
            restart_in_steps(effectors, action_id, agent).await
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
        Change::Redistribute { to, .. } => {
            pool.driver.set_weights(to).await?;
            if let Ok(mut weights) = pool.weights.lock() {
                weights.clone_from(to);
            }
            let shares: Vec<String> = to.iter().map(|(a, w)| format!("{a}={w:.2}")).collect();
            Ok(format!("load weights set: {}", shares.join(", ")))
        }
        Change::SwitchModel { agent, to, .. } => {
            let model = effectors
                .catalog
                .iter()
                .find(|m| &m.name == to)
                .ok_or_else(|| {
                    ApplyError::Policy(format!("{to} is not among the pool's models"))
                })?;
            pool.driver.set_model(agent, model).await?;
            if let Ok(mut models) = pool.models.lock() {
                if effectors.catalog.first().is_some_and(|own| &own.name == to) {
                    models.remove(agent);
                } else {
                    models.insert(agent.clone(), to.clone());
                }
            }
            Ok(format!("{agent} now calls {to}"))
        }
        Change::AdjustConcurrency { to, .. } => {
            pool.driver.set_concurrency(*to).await?;
            pool.concurrency
                .store(*to, std::sync::atomic::Ordering::Relaxed);
            Ok(format!("concurrency set to {to} tasks at once per agent"))
        }
        Change::AdjustThreshold { rule, from, to } => {
            let entry = OverlayEntry {
                action_id,
                rule: rule.clone(),
                above: *to,
                previous: *from,
                created_ms: effectors.clock.now_ms(),
            };
            change_overlay(effectors, Some(entry), None, actor).await?;
            Ok(format!(
                "threshold of {rule} set from {from} to {to} in the policy overlay"
            ))
        }
    }
}

/// A restart as a state machine, each step in the log: stop, start (tried
/// [`START_ATTEMPTS`] times, one, two seconds apart), check that it runs. A start that keeps
/// failing escalates: the agent is deregistered rather than left as a ghost.
async fn restart_in_steps(
    effectors: &Effectors,
    action_id: i64,
    agent: &str,
) -> Result<String, ApplyError> {
    let pool = &effectors.pool;
    // A step that cannot be written stops actuation; the restart itself goes on (a stopped
    // agent is better started), and the reconcile after the halt finds it as it is.
    let step = |text: String| {
        if effectors.halt.get().is_some() {
            tracing::warn!(message = "Restart step not recorded: actuation is stopped.",
                action = action_id, step = %text);
            return;
        }
        let recorded =
            effectors
                .store
                .transition(action_id, ActionState::Applying, &text, super::AUTO);
        if let Err(error) = recorded {
            let reason =
                format!("the store refused a write (action {action_id} restart step): {error}");
            tracing::error!(message = "Log write failed; actuation stops.", %reason);
            effectors.halt.trip(reason, effectors.clock.now_ms());
        }
    };
    let old = pool
        .driver
        .list()
        .into_iter()
        .find(|a| a.handle.id == agent);
    let old = old.ok_or_else(|| DriverError::NoSuchAgent(agent.to_string()))?;
    pool.driver.stop(agent).await?;
    step(format!(
        "restart step 1 (stop): {agent} (pid {}) stopped",
        old.handle.pid.unwrap_or_default()
    ));
    let mut last = String::new();
    for attempt in 1..=START_ATTEMPTS {
        match pool.driver.start_as(agent).await {
            Ok(handle) => {
                let runs = pool
                    .driver
                    .list()
                    .iter()
                    .any(|a| a.handle.id == agent && a.running);
                if runs {
                    let pid = handle.pid.unwrap_or_default();
                    step(format!(
                        "restart step 2 (start, attempt {attempt}) and 3 (check): {agent} runs as pid {pid}"
                    ));
                    effectors.fleet.do_send(RegisterAgent {
                        handle,
                        startup_grace_secs: pool.startup_grace_secs,
                    });
                    return Ok(format!("restarted {agent} as pid {pid}"));
                }
                last = "it exited right after it started".to_string();
                // Nothing half-started stays behind.
                let _ = pool.driver.stop(agent).await;
            }
            Err(error) => last = error.to_string(),
        }
        step(format!(
            "restart step 2 (start): attempt {attempt} of {START_ATTEMPTS} failed: {last}"
        ));
        if attempt < START_ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_secs(1 << (attempt - 1))).await;
        }
    }
    // Awaited, so the fleet has forgotten the agent before the escalation is raised.
    let _ = effectors
        .fleet
        .send(DeregisterAgent {
            agent: agent.to_string(),
        })
        .await;
    Err(ApplyError::Escalated {
        agent: agent.to_string(),
        attempts: START_ATTEMPTS,
        last,
    })
}

/// Undoes the change of action `action_id`; returns what was done, for the log.
pub async fn undo(
    effectors: &Effectors,
    action_id: i64,
    change: &Change,
    actor: &str,
) -> Result<String, ApplyError> {
    match change {
        Change::AdjustThreshold { rule, from, .. } => {
            // Removing the overlay entry restores what the operator's files say.
            change_overlay(effectors, None, Some(action_id), actor).await?;
            Ok(format!("overlay entry removed: {rule} back to {from}"))
        }
        Change::Restart { .. } => Err(ApplyError::Irreversible("restart")),
        Change::Scale { .. }
        | Change::Redistribute { .. }
        | Change::AdjustConcurrency { .. }
        | Change::SwitchModel { .. } => match change.inverse() {
            Some(inverse) => apply(effectors, action_id, &inverse, actor).await,
            None => Err(ApplyError::Irreversible("scale")),
        },
    }
}

async fn change_overlay(
    effectors: &Effectors,
    add: Option<OverlayEntry>,
    remove_action: Option<i64>,
    actor: &str,
) -> Result<(), ApplyError> {
    let request = ChangeOverlay {
        add,
        remove_action,
        actor: actor.to_string(),
    };
    match effectors.keeper.send(request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(ApplyError::Policy(error.to_string())),
        Err(error) => Err(ApplyError::Policy(format!(
            "policy keeper unavailable: {error}"
        ))),
    }
}

/// Folds one start-up duration into the pool's running average (weight 1/4).
fn record_startup(pool: &PoolDriver, took: std::time::Duration) {
    use std::sync::atomic::Ordering;
    let took = took.as_millis() as i64;
    let previous = pool.startup_ms.load(Ordering::Relaxed);
    let next = if previous == 0 {
        took
    } else {
        previous + (took - previous) / 4
    };
    pool.startup_ms.store(next.max(1), Ordering::Relaxed);
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
