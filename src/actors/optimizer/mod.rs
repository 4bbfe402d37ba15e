//! `Optimizer`: per pool, turns the observed state of the fleet into proposals. It replaces
//! offline agents, scales pools with the HPA rule from `analytics::scaling`, restarts agents
//! that leak memory and moves load away from agents that stay hot (`agents.rs`).
//!
//! Like a Kubernetes reconciler it decides from observed state on every tick, never from
//! memory of what it asked for; the actuator refuses a proposal while one is in flight.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, SpawnHandle, WrapFuture};

mod agents;

use super::actuator::{Actuator, ActuatorError, GetActivity, GetWeights, PoolActivity, Propose};
use super::fleet::{AgentView, FleetSnapshot, FleetSupervisor, GetFleet};
use super::messages::{AgentHealthChanged, AnomalyObserved};
use super::{SamplingTick, schedule_sampling};
use crate::analytics::planner::{Plan, PoolPlanner, lead_ticks};
use crate::analytics::scaling::{RateLimit, ScalingConfig};
use crate::clock;
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::{Policy, PolicyHandle, PoolPolicy};
use agents::AgentWatcher;

/// A current recommendation: what the optimizer would do to a pool, and why.
#[derive(Debug, Clone, serde::Serialize)]
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
    pub evidence: serde_json::Value,
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

/// How far back anomalies count as evidence for a proposal.
const ANOMALY_EVIDENCE_MS: i64 = 10 * 60 * 1000;
/// Anomalies kept per pool.
const ANOMALY_EVIDENCE_KEPT: usize = 20;

/// The optimizer actor.
pub struct Optimizer {
    policy: PolicyHandle,
    ticker: Option<(SpawnHandle, Duration)>,
    fleet: Addr<FleetSupervisor>,
    actuator: Addr<Actuator>,
    /// Each pool's planner: scaler and load forecaster (total agent CPU, percent of a core).
    planners: HashMap<String, PoolPlanner>,
    /// Recent anomaly observations per pool, the evidence proposals carry.
    anomalies: HashMap<String, std::collections::VecDeque<AnomalyObserved>>,
    /// The latest recommendation per pool.
    recommendations: BTreeMap<String, Recommendation>,
    /// The last change logged per pool in a dry run.
    dry_run_sent: HashMap<String, Change>,
    /// What the single-agent rules remember.
    watcher: AgentWatcher,
}

impl Optimizer {
    /// An optimizer that evaluates on every sampling interval of the policy in force.
    pub fn new(
        policy: PolicyHandle,
        fleet: Addr<FleetSupervisor>,
        actuator: Addr<Actuator>,
    ) -> Self {
        Optimizer {
            policy,
            ticker: None,
            fleet,
            actuator,
            planners: HashMap::new(),
            anomalies: HashMap::new(),
            recommendations: BTreeMap::new(),
            dry_run_sent: HashMap::new(),
            watcher: AgentWatcher::default(),
        }
    }

    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        let (fleet, actuator) = (self.fleet.clone(), self.actuator.clone());
        ctx.spawn(
            async move {
                let snapshot = fleet.send(GetFleet).await;
                let activity = actuator.send(GetActivity).await;
                let weights = actuator.send(GetWeights).await;
                (snapshot, activity, weights)
            }
            .into_actor(self)
            .map(|observed, optimizer, _ctx| match observed {
                (Ok(snapshot), Ok(activity), Ok(weights)) => {
                    optimizer.decide(&snapshot, &activity, &weights, clock::now_ms())
                }
                (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                    tracing::debug!(message = "Fleet or actuator unreachable.", %error)
                }
            }),
        );
    }

    /// One proposal per pool at most: replacing an offline agent comes before scaling.
    fn decide(
        &mut self,
        snapshot: &FleetSnapshot,
        activity: &BTreeMap<String, PoolActivity>,
        weights: &BTreeMap<String, BTreeMap<String, f64>>,
        now_ms: i64,
    ) {
        let current = self.policy.current();
        let policy: &Policy = &current.policy;
        let interval_ms = self.policy.sampling_interval().as_millis() as i64;
        for (name, pool) in &policy.pools {
            let agents: Vec<&AgentView> =
                snapshot.agents.iter().filter(|a| &a.pool == name).collect();
            let activity = activity.get(name).copied().unwrap_or_default();
            // The pool's total CPU feeds its planner's forecaster on every tick.
            if let Some(load) = pool_load(&agents) {
                self.planners
                    .entry(name.clone())
                    .or_insert_with(|| PoolPlanner::new(scaling_config(policy, pool)))
                    .observe(load);
            }
            let rules = &policy.automation.agent_rules;
            self.watcher.observe(&agents, rules, now_ms);
            let no_weights = BTreeMap::new();
            let pool_weights = weights.get(name).unwrap_or(&no_weights);
            let target = pool.target_cpu_percent;
            let hot = self
                .watcher
                .hot(name, &agents, pool_weights, target, rules, now_ms);
            // The start-up time observed, or the policy's bound until one is seen.
            let startup_ms = activity
                .observed_startup_ms
                .unwrap_or(pool.startup_secs as i64 * 1000);
            let lead_ticks = lead_ticks(startup_ms, interval_ms);
            if activity.in_flight.is_some() {
                // While an action applies and is verified the planner still plans, so its
                // stabilization window counts those recommendations, as the HPA's does.
                if settled(&agents, activity, interval_ms) {
                    let _ = self.scale(policy, name, pool, &agents, now_ms, lead_ticks);
                } else if let Some(planner) = self.planners.get_mut(name) {
                    planner.hold(now_ms, agents.len());
                }
                continue;
            }
            let proposal = match agents.iter().find(|a| a.status == AgentStatus::Offline) {
                Some(offline) => Some(replace_offline(name, offline, now_ms)),
                None if settled(&agents, activity, interval_ms) => self
                    .scale(policy, name, pool, &agents, now_ms, lead_ticks)
                    .or_else(|| self.watcher.leak(name, &agents, rules))
                    .or(hot),
                None => None,
            };
            if let Some(mut proposal) = proposal {
                let recent: Vec<&AnomalyObserved> = self
                    .anomalies
                    .get(name)
                    .map(|seen| {
                        seen.iter()
                            .filter(|a| now_ms - a.ts_ms < ANOMALY_EVIDENCE_MS)
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(evidence) = proposal.evidence.as_object_mut() {
                    evidence.insert("anomalies".into(), serde_json::json!(recent));
                }
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
        let alive: Vec<&AgentView> = snapshot.agents.iter().collect();
        self.watcher.retain(&alive);
    }

    fn scale(
        &mut self,
        policy: &Policy,
        name: &str,
        pool: &PoolPolicy,
        agents: &[&AgentView],
        now_ms: i64,
        lead_ticks: usize,
    ) -> Option<Proposal> {
        let config = scaling_config(policy, pool);
        let current = agents.len();
        let planner = self
            .planners
            .entry(name.to_string())
            .or_insert_with(|| PoolPlanner::new(config));
        let plan =
            pool_load(agents).map(|load| planner.plan(config, now_ms, current, load, lead_ticks));
        // Without any CPU reading only the pool's bounds decide.
        let floor = config.min_agents;
        let desired = plan.as_ref().map_or_else(
            || current.clamp(floor, config.max_agents.max(floor)),
            Plan::desired,
        );
        if desired == current {
            return None;
        }
        let target = pool.target_cpu_percent;
        let reason = match &plan {
            Some(plan) if plan.forecast_led => format!(
                "forecast pool CPU {:.0}% of a core (with margin) within {} tick(s) (agent start-up time) needs {desired} agents at target {target:.0}%",
                plan.planned, plan.lead_ticks
            ),
            _ if current < pool.min_agents => format!(
                "pool has {current} agents, below min_agents {}",
                pool.min_agents
            ),
            _ if current > config.max_agents => format!(
                "pool has {current} agents, above max_agents {}",
                config.max_agents
            ),
            Some(plan) => format!(
                "mean agent CPU {:.1}% (planned, with margin) vs target {target:.0}% (ratio {:.2})",
                plan.decision.observed, plan.decision.ratio
            ),
            None => format!("pool size {current} outside its bounds"),
        };
        let per_agent: serde_json::Map<String, serde_json::Value> = agents
            .iter()
            .map(|a| (a.id.clone(), serde_json::json!(cpu_reading(a))))
            .collect();
        let (model, season) = planner.model();
        // The HPA rule on load seen is surer than a forecast; bounds alone are certain.
        let confidence = match &plan {
            Some(plan) if plan.forecast_led => 0.7,
            Some(_) => 0.9,
            None => 1.0,
        };
        Some(Proposal {
            pool: name.to_string(),
            change: Change::Scale {
                from: current,
                to: desired,
            },
            reason,
            evidence: serde_json::json!({
                "decision": plan.as_ref().map(|p| p.decision),
                "plan": plan,
                "target_cpu_percent": target,
                "agent_cpu_percent": per_agent,
                "forecast": {
                    "pool_load_percent": planner.forecast(),
                    "model": model,
                    "season": season,
                },
            }),
            confidence,
            expected_effect: match &plan {
                Some(plan) => format!(
                    "{desired} agents: mean agent CPU from {:.0}% to about {:.0}% (target {target:.0}%)",
                    plan.load / current.max(1) as f64,
                    plan.load / desired.max(1) as f64
                ),
                None => format!("{desired} agents, within the pool's bounds"),
            },
        })
    }

    fn propose(&self, proposal: Proposal) {
        let actuator = self.actuator.clone();
        actix::spawn(async move {
            let request = Propose {
                proposal,
                actor: crate::actors::actuator::AUTO.to_string(),
                approver: false,
            };
            match actuator.send(request).await {
                Ok(Ok(action)) => {
                    tracing::info!(message = "Proposal accepted.", action = action.id,
                        pool = %action.pool, reason = %action.reason);
                }
                Ok(Err(
                    ActuatorError::Busy { .. }
                    | ActuatorError::Stale { .. }
                    | ActuatorError::AwaitingApproval { .. }
                    | ActuatorError::RecentlyRefused { .. }
                    | ActuatorError::CoolingDown { .. }
                    | ActuatorError::Paused,
                )) => {}
                Ok(Err(error)) => tracing::warn!(message = "Proposal refused.", %error),
                Err(error) => tracing::debug!(message = "Actuator unreachable.", %error),
            }
        });
    }
}

/// The latest CPU reading of an agent that is not offline.
fn cpu_reading(agent: &AgentView) -> Option<f64> {
    if agent.status == AgentStatus::Offline {
        return None;
    }
    agent.metrics.get(metric::CPU_PERCENT).copied()
}

/// The pool's total CPU: the mean of the agents with a reading, counted for every agent that
/// is not offline (one still starting is taken to be as busy as the others); `None` without
/// any reading.
fn pool_load(agents: &[&AgentView]) -> Option<f64> {
    let readings: Vec<f64> = agents.iter().filter_map(|a| cpu_reading(a)).collect();
    if readings.is_empty() {
        return None;
    }
    let mean = readings.iter().sum::<f64>() / readings.len() as f64;
    let serving = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Offline)
        .count();
    Some(mean * serving as f64)
}

/// True once every agent has a CPU reading that covers a whole interval after the pool's last
/// change, so a decision never acts on load measured before the previous action took effect.
fn settled(agents: &[&AgentView], activity: PoolActivity, interval_ms: i64) -> bool {
    let Some(changed_ms) = activity.last_finished_ms else {
        return true;
    };
    agents.iter().all(|agent| {
        cpu_reading(agent).is_some() && agent.last_sample_ms >= changed_ms + interval_ms
    })
}

impl SamplingTick for Optimizer {
    fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)> {
        &mut self.ticker
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.evaluate(ctx);
    }
}

fn replace_offline(pool: &str, agent: &AgentView, now_ms: i64) -> Proposal {
    let silent_secs = (now_ms - agent.last_sample_ms.max(agent.started_ms)) as f64 / 1000.0;
    Proposal {
        pool: pool.to_string(),
        change: Change::Restart {
            agent: agent.id.clone(),
        },
        reason: format!("agent {} offline: silent for {silent_secs:.0} s", agent.id),
        evidence: serde_json::json!({
            "agent": agent.id,
            "pid": agent.pid,
            "last_sample_ms": agent.last_sample_ms,
            "status": agent.status,
        }),
        confidence: 1.0,
        expected_effect: format!("agent {} serving again", agent.id),
    }
}

fn scaling_config(policy: &Policy, pool: &PoolPolicy) -> ScalingConfig {
    ScalingConfig {
        min_agents: pool.min_agents,
        max_agents: policy.max_agents(pool),
        target: pool.target_cpu_percent,
        tolerance: pool.tolerance,
        scale_down_window_ms: pool.scale_down_stabilization_secs as i64 * 1000,
        scale_up: RateLimit::of(&pool.scale_up),
        scale_down: RateLimit::of(&pool.scale_down),
    }
}

impl Actor for Optimizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.evaluate(ctx);
        schedule_sampling(self, ctx);
    }
}

// === impl Handler ===

impl Handler<GetRecommendations> for Optimizer {
    type Result = actix::MessageResult<GetRecommendations>;

    fn handle(&mut self, _msg: GetRecommendations, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.recommendations.values().cloned().collect())
    }
}

impl Handler<AnomalyObserved> for Optimizer {
    type Result = ();

    fn handle(&mut self, msg: AnomalyObserved, _ctx: &mut Context<Self>) {
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
        // React at once to an agent going offline instead of waiting for the next tick.
        if msg.status == AgentStatus::Offline {
            self.evaluate(ctx);
        }
    }
}
