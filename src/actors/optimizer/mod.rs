//! `Optimizer`: per pool, turns the observed state of the fleet into proposals. It replaces
//! offline agents, scales pools with the HPA rule from `analytics::scaling`, restarts agents
//! that leak memory and moves load away from agents that stay hot (`agents.rs`), and tunes
//! alert thresholds that fire without trouble or miss a degradation (`thresholds/`).
//!
//! A pool whose policy says `scale_on` scales on that PromQL input (`load.rs`) instead of CPU.
//!
//! Like a Kubernetes reconciler it decides from observed state on every tick, never from
//! memory of what it asked for; the actuator refuses a proposal while one is in flight.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, SpawnHandle, WrapFuture};

use crate::decide::agents;
mod budget;
mod callbacks;
mod throttle;
use crate::decide::load;
mod pool;
use crate::decide::thresholds;

use super::actuator::{
    Actuator, ActuatorError, GetActivity, GetModels, GetWeights, PoolActivity, Propose,
};
use super::fleet::{AgentView, FleetSnapshot, FleetSupervisor, GetFleet};
use super::messages::{AgentHealthChanged, AnomalyObserved};
use super::{SamplingTick, schedule_sampling};
use crate::analytics::planner::{PoolPlanner, lead_ticks};
use crate::clock::Clock;
use crate::decide::gate::Hold;
use crate::decide::scale::{plan_scale, replace_offline, scaling_config};
use crate::domain::evidence::{AnomalyNote, Evidence};
use crate::domain::{AgentStatus, Change, Proposal};
use crate::ingest::scrape::promql::PoolInputs;
use crate::policy::{Policy, PolicyHandle};
use agents::AgentWatcher;
use load::{Basis, PoolLoad};
use thresholds::ThresholdWatcher;

/// A current recommendation: what the optimizer would do to a pool, and why.
#[derive(Debug, Clone)]
pub struct Recommendation {
    /// The pool.
    pub pool: String,
    /// The action kind.
    pub kind: &'static str,
    /// The change.
    pub change: Change,
    /// Why, in a sentence.
    pub reason: String,
    /// The numbers behind it (metrics, scaling decision, anomalies).
    pub evidence: Evidence,
    /// Whether policy lets it apply without a human.
    pub auto_apply: bool,
    /// What happens to it: sent to the actuator, or why not.
    pub status: String,
    /// When it was made, epoch milliseconds.
    pub at_ms: i64,
}

/// Asks for the current recommendations, one per pool at most.
#[derive(Debug, actix::Message)]
#[rtype(result = "Vec<Recommendation>")]
pub struct GetRecommendations;

/// What the optimizer learned on one tick besides the fleet.
#[derive(Clone, Copy)]
struct Seen<'a> {
    activity: &'a BTreeMap<String, PoolActivity>,
    weights: &'a BTreeMap<String, BTreeMap<String, f64>>,
    /// The model `switch_model` moved each agent to, by pool.
    models: &'a BTreeMap<String, BTreeMap<String, String>>,
    alerts: &'a [crate::actors::alert::AlertView],
}

/// How far back anomalies count as evidence for a proposal.
const ANOMALY_EVIDENCE_MS: i64 = 10 * 60 * 1000;
/// Anomalies kept per pool.
const ANOMALY_EVIDENCE_KEPT: usize = 20;

/// The optimizer actor.
pub struct Optimizer {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    ticker: Option<(SpawnHandle, Duration)>,
    fleet: Addr<FleetSupervisor>,
    actuator: Addr<Actuator>,
    /// Each pool's planner (scaler and load forecaster) and what it is fed: total agent CPU
    /// (percent of a core) or the pool's `scale_on` input.
    planners: HashMap<String, (Basis, PoolPlanner)>,
    /// The pool inputs read with PromQL, for pools that scale on one.
    inputs: PoolInputs,
    /// Recent anomaly observations per pool, the evidence proposals carry.
    anomalies: HashMap<String, std::collections::VecDeque<AnomalyObserved>>,
    /// The latest recommendation per pool.
    recommendations: BTreeMap<String, Recommendation>,
    /// The last change logged per pool in a dry run.
    dry_run_sent: HashMap<String, Change>,
    /// What the single-agent rules remember.
    watcher: AgentWatcher,
    /// The recent peaks threshold tuning compares with.
    thresholds: ThresholdWatcher,
    /// When each pool was last throttled by its model provider.
    throttle: crate::decide::concurrency::ThrottleWatch,
    /// Pools whose last `switch_model` the actuator refused or held, until when (epoch
    /// milliseconds): meanwhile their concurrency decides instead.
    spread_holds: throttle::SpreadHolds,
    /// What each pool with a budget spent, and its burn-rate alerts.
    budgets: crate::decide::budget::BudgetLedger,
    /// Each pool's cost per completed task and throughput, for scale-ins that save money.
    costs: crate::decide::cost::CostWatch,
    /// How long each evaluation took, for `/metrics`.
    timing: std::sync::Arc<crate::analytics::latency::LatencyHistogram>,
    /// The alert actor, for rules that keep firing.
    alert: Option<Addr<crate::actors::alert::Alert>>,
    /// Whether an evaluation is waiting for its snapshots, and whether another was asked for
    /// meanwhile: many agents going offline at once make one more evaluation, not one each.
    evaluating: bool,
    again: bool,
}

impl Optimizer {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// An optimizer that evaluates on every sampling interval of the policy in force.
    pub fn new(
        policy: PolicyHandle,
        fleet: Addr<FleetSupervisor>,
        actuator: Addr<Actuator>,
    ) -> Self {
        Optimizer {
            span: tracing::info_span!("actor", actor = "optimizer"),
            clock: Clock::system(),
            policy,
            ticker: None,
            fleet,
            actuator,
            planners: HashMap::new(),
            inputs: PoolInputs::default(),
            anomalies: HashMap::new(),
            recommendations: BTreeMap::new(),
            dry_run_sent: HashMap::new(),
            watcher: AgentWatcher::default(),
            thresholds: ThresholdWatcher::default(),
            throttle: Default::default(),
            spread_holds: Default::default(),
            budgets: Default::default(),
            costs: Default::default(),
            timing: Default::default(),
            alert: None,
            evaluating: false,
            again: false,
        }
    }

    /// Records how long each evaluation takes in `timing`.
    pub fn with_timing(
        mut self,
        timing: std::sync::Arc<crate::analytics::latency::LatencyHistogram>,
    ) -> Self {
        self.timing = timing;
        self
    }

    /// Also tunes thresholds that keep firing, from the alerts of `alert`.
    pub fn with_alerts(mut self, alert: Addr<crate::actors::alert::Alert>) -> Self {
        self.alert = Some(alert);
        self
    }

    /// Reads pool inputs from `inputs`, where the scraper records its PromQL queries.
    pub fn with_inputs(mut self, inputs: PoolInputs) -> Self {
        self.inputs = inputs;
        self
    }

    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        if self.evaluating {
            self.again = true;
            return;
        }
        self.evaluating = true;
        let (fleet, actuator, alert) = (
            self.fleet.clone(),
            self.actuator.clone(),
            self.alert.clone(),
        );
        // Thresholds are tuned only in the pools the optimizer decides for.
        let decided: Vec<String> = (self.policy.current().policy.pools.iter())
            .filter(|(_, pool)| !pool.observe_only())
            .map(|(name, _)| name.clone())
            .collect();
        ctx.spawn(
            async move {
                let snapshot = fleet.send(GetFleet).await;
                let activity = actuator.send(GetActivity).await;
                let weights = actuator.send(GetWeights).await;
                let models = actuator.send(GetModels).await.unwrap_or_default();
                let alerts = match alert {
                    Some(alert) if !decided.is_empty() => alert
                        .send(crate::actors::alert::GetPoolAlerts(decided))
                        .await
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                (snapshot, activity, weights, models, alerts)
            }
            .into_actor(self)
            .map(
                |(snapshot, activity, weights, models, alerts), optimizer, ctx| {
                    let _span = optimizer.span.clone().entered();
                    optimizer.evaluating = false;
                    match (snapshot, activity, weights) {
                        (Ok(snapshot), Ok(activity), Ok(weights)) => {
                            let seen = Seen {
                                activity: &activity,
                                weights: &weights,
                                models: &models,
                                alerts: &alerts,
                            };
                            let started = std::time::Instant::now();
                            optimizer.decide(&snapshot, &seen, optimizer.clock.now_ms());
                            optimizer.timing.observe(started.elapsed().as_secs_f64());
                        }
                        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                            tracing::debug!(message = "Fleet or actuator unreachable.", %error)
                        }
                    }
                    if std::mem::take(&mut optimizer.again) {
                        // Asked for while this one gathered its snapshots: once more, on fresh ones.
                        optimizer.evaluate(ctx);
                    }
                },
            ),
        );
    }

    /// One proposal per pool at most: replacing an offline agent comes before scaling.
    fn decide(&mut self, snapshot: &FleetSnapshot, seen: &Seen<'_>, now_ms: i64) {
        let Seen {
            activity,
            weights,
            models,
            alerts,
        } = *seen;
        let current = self.policy.current();
        let policy: &Policy = &current.policy;
        let interval_ms = self.policy.sampling_interval().as_millis() as i64;
        let inputs = self.inputs.snapshot();
        budget::watch(
            &mut self.budgets,
            policy,
            snapshot,
            self.alert.as_ref(),
            now_ms,
        );
        for (name, pool) in policy.pools.iter().filter(|(_, p)| !p.observe_only()) {
            let agents: Vec<&AgentView> = snapshot.views().filter(|a| &a.pool == name).collect();
            let activity = activity.get(name).copied().unwrap_or_default();
            // The pool's load (total CPU, or its input) feeds its planner's forecaster on
            // every tick.
            let load = PoolLoad::of(policy, name, pool, &agents, &inputs, interval_ms, now_ms);
            let config = scaling_config(policy, pool);
            let planner = self.planner(name, load.basis(), config);
            if let Some(total) = load.total() {
                planner.observe(total);
            }
            let (cost_per_task, throughput) = budget::cost_per_task(&agents);
            self.costs.observe(name, cost_per_task, throughput, now_ms);
            let rules = &policy.automation.agent_rules;
            self.watcher.observe(&agents, rules, now_ms);
            let no_weights = BTreeMap::new();
            let pool_weights = weights.get(name).unwrap_or(&no_weights);
            let target = pool.target_cpu_percent;
            let hot = self
                .watcher
                .hot(name, &agents, pool_weights, target, rules, now_ms);
            let burst = self.watcher.burst(name, &agents, rules, now_ms);
            let tuning = &policy.automation.threshold_tuning;
            let pool_rules: Vec<_> = policy
                .rules_for_pool(name)
                .into_iter()
                .filter(|r| !r.name.starts_with("anomaly_"))
                .collect();
            let max_error_rate = policy.automation.verification.max_error_rate;
            let degraded = thresholds::degradation(&agents, max_error_rate);
            self.thresholds.observe(
                name,
                &agents,
                &pool_rules,
                tuning,
                !degraded.is_empty(),
                now_ms,
            );
            // The start-up time observed, or the policy's bound until one is seen.
            let startup_ms = activity
                .observed_startup_ms
                .unwrap_or(pool.startup_secs as i64 * 1000);
            let lead_ticks = lead_ticks(startup_ms, interval_ms);
            // None while a remote driver has not said its size: no scaling on a guess.
            let size = load.size(pool, agents.len(), &activity);
            // The pool's scaling proposal, if its size is known and should change.
            let plan = |optimizer: &mut Self| {
                let planner = optimizer.planner(name, load.basis(), config);
                let at = (size?, agents.as_slice());
                plan_scale(planner, config, name, pool, at, &load, now_ms, lead_ticks)
            };
            if activity.in_flight.is_some() {
                // While an action applies and is verified the planner still plans, so its
                // stabilization window counts those recommendations, as the HPA's does.
                if load.settled(&agents, activity, interval_ms) {
                    let _ = plan(self);
                } else if let Some(size) = size {
                    self.planner(name, load.basis(), config).hold(now_ms, size);
                }
                continue;
            }
            let no_models = BTreeMap::new();
            let spread = self
                .spread_holds
                .allows(name, pool, now_ms)
                .then(|| models.get(name).unwrap_or(&no_models));
            let throttle = throttle::step(
                &mut self.throttle,
                name,
                pool,
                (&agents, spread),
                activity,
                now_ms,
            );
            let (throttled, concurrency) = match throttle {
                throttle::Step::Throttled(proposal) => (true, proposal),
                throttle::Step::Normal(proposal) => (false, proposal),
            };
            let proposal = match agents.iter().find(|a| a.status == AgentStatus::Offline) {
                Some(offline) => Some(replace_offline(name, offline, now_ms)),
                // More agents would make more refused calls, and restarts do not help: only
                // the concurrency comes down.
                None if throttled => {
                    if let Some(size) = size {
                        self.planner(name, load.basis(), config).hold(now_ms, size);
                    }
                    concurrency
                }
                None if load.settled(&agents, activity, interval_ms) => plan(self)
                    .or_else(|| self.watcher.leak(name, &agents, rules))
                    .or(burst)
                    .or_else(|| {
                        let seen = self.anomalies.get(name);
                        let seen: Vec<&AnomalyNote> = seen
                            .map(|s| s.iter().map(|o| &o.0).collect())
                            .unwrap_or_default();
                        AgentWatcher::anomalous(name, &agents, &seen, rules, now_ms)
                    })
                    .or(hot)
                    .or_else(|| {
                        let size = size?;
                        self.costs.propose(name, size, pool.min_agents, now_ms)
                    })
                    .or_else(|| {
                        let seen = self.anomalies.get(name);
                        let seen: Vec<&AnomalyNote> = seen
                            .map(|s| s.iter().map(|o| &o.0).collect())
                            .unwrap_or_default();
                        self.thresholds.noisy(
                            name,
                            &agents,
                            &pool_rules,
                            alerts,
                            &seen,
                            tuning,
                            now_ms,
                        )
                    })
                    .or_else(|| {
                        self.thresholds
                            .missed(name, &pool_rules, alerts, &degraded, tuning, now_ms)
                    })
                    .or(concurrency),
                None => None,
            };
            if let Some(mut proposal) = proposal {
                budget::mark(&mut proposal, pool, &agents);
                let recent: Vec<&AnomalyObserved> = self
                    .anomalies
                    .get(name)
                    .map(|seen| {
                        seen.iter()
                            .filter(|a| now_ms - a.ts_ms < ANOMALY_EVIDENCE_MS)
                            .collect()
                    })
                    .unwrap_or_default();
                proposal
                    .evidence
                    .attach_anomalies(recent.iter().map(|a| a.note()).collect());
                let kind = proposal.change.kind().as_str();
                let automation = &policy.automation;
                let allowed = automation.auto_apply.iter().any(|k| k == kind);
                let status = if automation.dry_run {
                    "logged only: automation.dry_run is on".to_string()
                } else if !allowed {
                    format!("sent for approval: automation.auto_apply does not include {kind}")
                } else {
                    "sent to the actuator's risk gate".to_string()
                };
                self.recommendations.insert(
                    name.clone(),
                    Recommendation {
                        pool: name.clone(),
                        kind,
                        change: proposal.change.clone(),
                        reason: proposal.reason.clone(),
                        evidence: proposal.evidence.clone(),
                        auto_apply: allowed && !automation.dry_run,
                        status,
                        at_ms: now_ms,
                    },
                );
                // A dry run logs each distinct proposal once, not on every tick.
                let repeat =
                    automation.dry_run && self.dry_run_sent.get(name) == Some(&proposal.change);
                if !repeat {
                    if automation.dry_run {
                        self.dry_run_sent
                            .insert(name.clone(), proposal.change.clone());
                    }
                    self.propose(proposal);
                }
            } else {
                self.recommendations.remove(name);
            }
        }
        let alive: Vec<&AgentView> = snapshot.views().collect();
        self.watcher.retain(&alive);
    }

    fn propose(&self, proposal: Proposal) {
        let actuator = self.actuator.clone();
        let holds = matches!(proposal.change, Change::SwitchModel { .. }).then(|| {
            (
                self.spread_holds.clone(),
                proposal.pool.clone(),
                self.clock.now_ms(),
            )
        });
        actix::spawn(async move {
            let request = Propose {
                proposal,
                actor: crate::actors::actuator::AUTO.to_string(),
                approver: false,
            };
            let answer = actuator.send(request).await;
            if let (Some((holds, pool, now_ms)), Ok(Err(error))) = (holds, &answer) {
                // A move the actuator will not make now: the concurrency decides meanwhile.
                holds.hold(&pool, now_ms, error);
            }
            match answer {
                Ok(Ok(action)) => {
                    tracing::info!(message = "Proposal accepted.", action = action.id,
                        pool = %action.pool, reason = %action.reason);
                }
                Ok(Err(
                    ActuatorError::Busy { .. }
                    | ActuatorError::Stale { .. }
                    | ActuatorError::SizeUnknown(_)
                    | ActuatorError::Held(
                        Hold::AwaitingApproval { .. }
                        | Hold::RecentlyRefused { .. }
                        | Hold::CoolingDown { .. },
                    )
                    | ActuatorError::Paused,
                )) => {}
                Ok(Err(error)) => tracing::warn!(message = "Proposal refused.", %error),
                Err(error) => tracing::debug!(message = "Actuator unreachable.", %error),
            }
        });
    }
}

impl SamplingTick for Optimizer {
    fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)> {
        &mut self.ticker
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.evaluate(ctx);
    }
}

impl Actor for Optimizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.evaluate(ctx);
        schedule_sampling(self, ctx);
    }
}

// === impl Handler ===

impl Handler<GetRecommendations> for Optimizer {
    type Result = actix::MessageResult<GetRecommendations>;

    fn handle(&mut self, _msg: GetRecommendations, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        actix::MessageResult(self.recommendations.values().cloned().collect())
    }
}

impl Handler<AnomalyObserved> for Optimizer {
    type Result = ();

    fn handle(&mut self, msg: AnomalyObserved, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let seen = self.anomalies.entry(msg.pool.clone()).or_default();
        if seen.len() == ANOMALY_EVIDENCE_KEPT {
            seen.pop_front();
        }
        seen.push_back(msg);
    }
}

impl Handler<AgentHealthChanged> for Optimizer {
    type Result = ();

    fn handle(&mut self, msg: AgentHealthChanged, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        // React at once to an agent going offline instead of waiting for the next tick, in
        // pools the controller runs.
        let runs_pool =
            (self.policy.current().policy.pool(&msg.pool)).is_some_and(|p| !p.observe_only());
        if msg.status == AgentStatus::Offline && runs_pool {
            self.evaluate(ctx);
        }
    }
}
