//! `Actuator`: the only actor that calls drivers. It scores each proposal's risk, applies
//! what policy allows, holds the rest for approval, applies through the pool's driver (or the
//! policy overlay), verifies, rolls back, and writes every transition to the log:
//! `proposed → [pending_approval → approved →] applying → verifying → applied`, or
//! `rejected | expired | superseded | failed`, or through `rolling_back` to `rolled_back`.
//! At most one action is in flight (applying or verifying) per pool.

mod apply;
mod approvals;
mod errors;
mod gate;
mod halt;
mod messages;
mod recover;
mod run;
use crate::decide::verify;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    ResponseFuture, WrapFuture,
};

use super::alert::ControllerAlert;
use super::fleet::FleetSupervisor;
use super::policy::PolicyKeeper;
use crate::clock::{self, Clock};
use crate::decide::retry::FailureBook;
use crate::domain::{Action, ActionState, Change};
use crate::drivers::Driver;
use crate::policy::{PolicyHandle, threshold};
use crate::store::Store;
use apply::Effectors;
pub use errors::ActuatorError;
pub use halt::{Halt, Halted};
pub use messages::{
    Decide, GetActivity, GetModels, GetWeights, PoolActivity, Propose, Quiesce, RollBack,
    SetPaused, Shutdown,
};
use verify::Verifier;

/// How often remote drivers are asked their pool's size.
const REMOTE_POLL: Duration = Duration::from_secs(5);

/// Who the log names for what the controller does by itself.
pub const AUTO: &str = "auto";

/// One pool's driver, start-up grace and load weights.
#[derive(Clone)]
pub struct PoolDriver {
    /// The driver.
    pub driver: Arc<dyn Driver>,
    /// Seconds a new agent may stay silent before it is declared offline.
    pub startup_grace_secs: u64,
    /// How long a removed agent keeps serving before it is stopped.
    pub drain: Duration,
    /// Running average of how long starting an agent took, milliseconds (0: never started).
    pub startup_ms: Arc<std::sync::atomic::AtomicI64>,
    /// The load weight of each agent set by `redistribute` (absent agents weigh 1).
    pub weights: Arc<Mutex<BTreeMap<String, f64>>>,
    /// The size a remote driver last reported (-1 before it first answers).
    pub remote_size: Arc<std::sync::atomic::AtomicI64>,
    /// The concurrency `adjust_concurrency` last set for the agents (0: never set).
    pub concurrency: Arc<std::sync::atomic::AtomicU32>,
    /// The model `switch_model` moved each agent to (absent: the pool's own model).
    pub models: Arc<Mutex<BTreeMap<String, String>>>,
}

impl PoolDriver {
    /// The pool's agents as its driver knows them: listed, or last reported by a remote one.
    pub fn known_size(&self) -> Option<usize> {
        if self.driver.remote() {
            let size = self.remote_size.load(std::sync::atomic::Ordering::Relaxed);
            usize::try_from(size).ok()
        } else {
            Some(self.driver.list().len())
        }
    }

    /// The agents' concurrency: the last one set, else the policy's `normal` (none: unknown).
    pub fn concurrency_now(&self, normal: Option<u32>) -> Option<u32> {
        match self.concurrency.load(std::sync::atomic::Ordering::Relaxed) {
            0 => normal,
            set => Some(set),
        }
    }
}

/// The actuator actor.
pub struct Actuator {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    store: Store,
    fleet: Addr<FleetSupervisor>,
    keeper: Addr<PolicyKeeper>,
    policy: PolicyHandle,
    pools: HashMap<String, PoolDriver>,
    activity: BTreeMap<String, PoolActivity>,
    /// Actions being verified, by id.
    verifying: HashMap<i64, Verifier>,
    /// Where people are told about approvals waiting, expiries and automatic rollbacks.
    notifier: Option<crate::notify::Notifier>,
    /// The fleet as last seen (refreshed every tick), for re-checking approved actions.
    last_fleet: Option<crate::actors::fleet::FleetSnapshot>,
    shutting_down: bool,
    /// Whether actuation stopped because the store refused a write (shared with the API).
    halt: Halt,
    /// Where the controller's own alerts go (store writes failing, agents not managed).
    alerts: Option<Recipient<ControllerAlert>>,
    /// Failed actions per pool and target, which hold automatic retries.
    failures: FailureBook,
    /// Driver calls (apply, undo, recovery's reads) running now.
    calls: usize,
    /// Where it stands with resuming after a halt.
    resume: halt::Resume,
}

impl Actuator {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// An actuator over the given pools' drivers and the policy overlay.
    pub fn new(
        store: Store,
        fleet: Addr<FleetSupervisor>,
        keeper: Addr<PolicyKeeper>,
        policy: PolicyHandle,
        pools: HashMap<String, PoolDriver>,
    ) -> Self {
        Actuator {
            span: tracing::info_span!("actor", actor = "actuator"),
            clock: Clock::system(),
            store,
            fleet,
            keeper,
            policy,
            pools,
            activity: BTreeMap::new(),
            verifying: HashMap::new(),
            notifier: None,
            last_fleet: None,
            shutting_down: false,
            halt: Halt::default(),
            alerts: None,
            failures: FailureBook::default(),
            calls: 0,
            resume: halt::Resume::default(),
        }
    }

    /// Sends the controller's own alerts (a store refusing writes, an agent its driver does
    /// not run) to `alerts`.
    pub fn with_alerts(mut self, alerts: Recipient<ControllerAlert>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Whether actuation is stopped, as the API reads it.
    pub fn halt(&self) -> Halt {
        self.halt.clone()
    }

    /// Tells people through `notifier`'s channels what waits for them and what was undone.
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Sends a notification about `action` (labels: rule, pool, kind, level).
    fn notify(&self, action: &Action, rule: &str, title: String, text: String) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let labels = [
            ("rule", rule),
            ("pool", action.pool.as_str()),
            ("kind", action.kind.as_str()),
            ("level", "warning"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let details = serde_json::to_value(action).unwrap_or_default();
        notifier.send(crate::notify::Notification {
            labels,
            title,
            text,
            details,
            resolved: false,
        });
    }

    /// The API address people's commands should use.
    fn api_url(&self) -> String {
        self.notifier.as_ref().map_or_else(
            || "http://127.0.0.1:8080".to_string(),
            |n| n.api_url.clone(),
        )
    }

    /// The pool's effectors, if the pool exists (busy or not).
    fn effectors(&self, pool: &str) -> Result<Effectors, ActuatorError> {
        if self.shutting_down {
            return Err(ActuatorError::ShuttingDown);
        }
        self.check_running()?;
        let driver = self.pools.get(pool).cloned().ok_or_else(|| {
            let policy = self.policy.current();
            match policy.policy.pool(pool) {
                Some(p) if p.observe_only() => ActuatorError::ObserveOnly(pool.to_string()),
                _ => ActuatorError::UnknownPool(pool.to_string()),
            }
        })?;
        Ok(Effectors {
            pool: driver,
            store: self.store.clone(),
            halt: self.halt.clone(),
            fleet: self.fleet.clone(),
            keeper: self.keeper.clone(),
            clock: self.clock.clone(),
            catalog: self
                .policy
                .current()
                .policy
                .pools
                .get(pool)
                .map(|p| {
                    p.model
                        .iter()
                        .chain(&p.equivalent_models)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The pool's effectors, if the pool exists and no action is in flight on it.
    fn idle_pool(&self, pool: &str) -> Result<Effectors, ActuatorError> {
        let effectors = self.effectors(pool)?;
        if let Some(action) = self.in_flight(pool) {
            return Err(ActuatorError::Busy {
                pool: pool.to_string(),
                action,
            });
        }
        Ok(effectors)
    }

    fn in_flight(&self, pool: &str) -> Option<i64> {
        self.activity.get(pool).and_then(|a| a.in_flight)
    }

    /// Refuses a change whose starting point is no longer what the fleet or policy shows
    /// (a remote driver's pool size as it last reported it).
    fn check_fresh(
        &self,
        pool: &str,
        effectors: &Effectors,
        change: &Change,
    ) -> Result<(), ActuatorError> {
        match change {
            Change::Scale { from, .. } => {
                // A remote pool of a size not yet reported is not scaled on a guess.
                if effectors.pool.driver.remote() && effectors.pool.known_size().is_none() {
                    return Err(ActuatorError::SizeUnknown(pool.to_string()));
                }
                let actual = effectors.pool.known_size().unwrap_or(*from);
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
            Change::Redistribute { from, .. } => {
                let weights = effectors.pool.weights.lock().map(|w| w.clone());
                let current = weights.unwrap_or_default();
                let differs = from.iter().any(|(agent, w)| {
                    (current.get(agent).copied().unwrap_or(1.0) - w).abs() > 1e-9
                });
                if differs {
                    return Err(ActuatorError::StaleWeights {
                        pool: pool.to_string(),
                    });
                }
            }
            Change::AdjustConcurrency { from, .. } => {
                let policy = self.policy.current();
                let normal = policy
                    .policy
                    .pools
                    .get(pool)
                    .and_then(|p| p.concurrency.as_ref());
                let actual = effectors.pool.concurrency_now(normal.map(|c| c.max));
                if actual != Some(*from) {
                    return Err(ActuatorError::StaleConcurrency {
                        pool: pool.to_string(),
                        expected: *from,
                        actual: actual.unwrap_or_default(),
                    });
                }
            }
            Change::SwitchModel { agent, from, to } => {
                let stale = |why: String| ActuatorError::StaleModel {
                    agent: agent.clone(),
                    why,
                };
                let Some(primary) = effectors.catalog.first() else {
                    return Err(stale(format!("pool {pool} names no model")));
                };
                if !effectors.catalog.iter().any(|m| &m.name == to) {
                    return Err(stale(format!(
                        "{to} is not pool {pool}'s model nor one of its equivalent_models"
                    )));
                }
                let models = effectors.pool.models.lock().map(|m| m.get(agent).cloned());
                let actual = models.ok().flatten().unwrap_or(primary.name.clone());
                if &actual != from {
                    return Err(stale(format!("it calls {actual}, not {from}")));
                }
            }
            Change::Restart { .. } => {}
        }
        Ok(())
    }

    /// A fingerprint of the pool (its driver's agents, a remote size) and the policy: when
    /// it changes, a change that failed for good may be tried again.
    fn world(&self, pool: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.policy.current().version.hash(&mut hasher);
        if let Some(driver) = self.pools.get(pool) {
            for agent in driver.driver.list() {
                (agent.handle.id, agent.handle.pid, agent.running).hash(&mut hasher);
            }
            driver
                .remote_size
                .load(std::sync::atomic::Ordering::Relaxed)
                .hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Deregisters `agent` and raises the controller's event alert `name` about it (for ten
    /// minutes), once the fleet has forgotten it, so that forgetting does not resolve it.
    fn raise(&self, name: &'static str, agent: &str, pool: &str, ctx: &mut Context<Self>) {
        let fleet = self.fleet.clone();
        let alerts = self.alerts.clone();
        let alert = ControllerAlert {
            name,
            level: crate::policy::AlertLevel::Warning,
            agent: agent.to_string(),
            pool: pool.to_string(),
            firing: true,
            resolve_after_ms: Some(10 * 60_000),
        };
        let deregister = crate::actors::messages::DeregisterAgent {
            agent: agent.to_string(),
        };
        ctx.spawn(
            async move {
                let _ = fleet.send(deregister).await;
                if let Some(alerts) = alerts {
                    alerts.do_send(alert);
                }
            }
            .into_actor(self),
        );
    }

    fn begin(&mut self, pool: &str, id: i64) {
        self.activity.entry(pool.to_string()).or_default().in_flight = Some(id);
    }

    fn finish(&mut self, pool: &str) {
        let activity = self.activity.entry(pool.to_string()).or_default();
        activity.in_flight = None;
        activity.last_finished_ms = Some(self.clock.now_ms());
    }
}

/// The actuator's own clock: expiries, approved actions waiting for their pool, checks.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Tick;

impl Actor for Actuator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.recover(ctx);
        // At once, then every few seconds: a pool on a remote driver is not scaled until
        // its size is known.
        self.poll_remote_sizes();
        ctx.run_interval(Duration::from_secs(1), |_actuator, ctx| {
            ctx.notify(Tick);
        });
        ctx.run_interval(REMOTE_POLL, |actuator, _ctx| {
            let _span = actuator.span.clone().entered();
            if !actuator.shutting_down {
                actuator.poll_remote_sizes();
            }
        });
    }
}

impl Handler<Tick> for Actuator {
    type Result = ();

    fn handle(&mut self, _msg: Tick, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if self.shutting_down {
            return;
        }
        if self.halt.get().is_some() {
            return self.try_resume(ctx);
        }
        self.expire_pending();
        // The fleet is read only while people have actions waiting or approved: the
        // re-check before an approved action applies compares with it.
        let waiting = self
            .store
            .actions_in(&[ActionState::PendingApproval, ActionState::Approved])
            .map(|actions| !actions.is_empty())
            .unwrap_or(false);
        if waiting {
            let fleet = self.fleet.clone();
            ctx.spawn(
                async move { fleet.send(crate::actors::fleet::GetFleet).await }
                    .into_actor(self)
                    .map(|snapshot, actuator, ctx| {
                        let _span = actuator.span.clone().entered();
                        if let Ok(snapshot) = snapshot {
                            actuator.last_fleet = Some(snapshot);
                        }
                        actuator.start_approved(ctx);
                    }),
            );
        } else {
            self.last_fleet = None;
        }
        self.check_verifications(ctx);
    }
}

impl Actuator {
    /// Asks each remote driver its pool's size, every few seconds, for the stale checks.
    fn poll_remote_sizes(&mut self) {
        for (name, pool) in self.pools.iter().filter(|(_, p)| p.driver.remote()) {
            let (name, pool) = (name.clone(), pool.clone());
            actix::spawn(async move {
                match pool.driver.size().await {
                    Ok(size) => pool
                        .remote_size
                        .store(size as i64, std::sync::atomic::Ordering::Relaxed),
                    Err(error) => tracing::warn!(
                        message = "Driver cannot report its pool's size.",
                        pool = %name,
                        %error
                    ),
                }
            });
        }
    }
}

impl Handler<GetActivity> for Actuator {
    type Result = MessageResult<GetActivity>;

    fn handle(&mut self, _msg: GetActivity, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let mut activity = self.activity.clone();
        for (name, pool) in &self.pools {
            let startup = pool.startup_ms.load(std::sync::atomic::Ordering::Relaxed);
            if startup > 0 {
                activity
                    .entry(name.clone())
                    .or_default()
                    .observed_startup_ms = Some(startup);
            }
            let concurrency = pool.concurrency.load(std::sync::atomic::Ordering::Relaxed);
            if concurrency > 0 {
                activity.entry(name.clone()).or_default().concurrency = Some(concurrency);
            }
            if pool.driver.remote()
                && let Some(size) = pool.known_size()
            {
                activity.entry(name.clone()).or_default().driver_size = Some(size);
            }
        }
        MessageResult(activity)
    }
}

/// Each pool's copy of the per-agent map `of` picks from its driver's state.
fn per_pool<T: Clone + Default>(
    pools: &HashMap<String, PoolDriver>,
    of: impl Fn(&PoolDriver) -> &Mutex<T>,
) -> BTreeMap<String, T> {
    pools
        .iter()
        .map(|(name, pool)| {
            let copy = of(pool).lock().map(|m| m.clone()).unwrap_or_default();
            (name.clone(), copy)
        })
        .collect()
}

impl Handler<GetModels> for Actuator {
    type Result = MessageResult<GetModels>;

    fn handle(&mut self, _msg: GetModels, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(per_pool(&self.pools, |pool| &*pool.models))
    }
}

impl Handler<GetWeights> for Actuator {
    type Result = MessageResult<GetWeights>;

    fn handle(&mut self, _msg: GetWeights, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(per_pool(&self.pools, |pool| &*pool.weights))
    }
}

impl Handler<SetPaused> for Actuator {
    type Result = Result<Option<crate::domain::Pause>, ActuatorError>;

    /// Answers the pause now in force: `Some` when paused, `None` when resumed.
    fn handle(&mut self, msg: SetPaused, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        if msg.paused {
            let pause = crate::domain::Pause {
                paused: true,
                by: msg.by.clone(),
                since: clock::rfc3339(self.clock.now_ms()),
            };
            self.store.set_paused(Some(&pause))?;
            tracing::warn!(message = "Automation paused.", by = %msg.by);
            Ok(Some(pause))
        } else {
            self.store.set_paused(None)?;
            tracing::warn!(message = "Automation resumed.", by = %msg.by);
            Ok(None)
        }
    }
}

impl Handler<Quiesce> for Actuator {
    type Result = usize;

    fn handle(&mut self, _msg: Quiesce, _ctx: &mut Context<Self>) -> usize {
        let _span = self.span.clone().entered();
        if !self.shutting_down {
            tracing::info!(
                message = "Actuation stops for shutdown.",
                calls = self.calls
            );
        }
        self.shutting_down = true;
        self.calls
    }
}

impl Handler<Shutdown> for Actuator {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
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
