//! `Optimizer`: per pool, turns the observed state of the fleet into proposals. It replaces
//! offline agents and scales pools with the HPA rule from `analytics::scaling`.
//!
//! Like a Kubernetes reconciler it decides from observed state on every tick, never from
//! memory of what it asked for; the actuator refuses a proposal while one is in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};

use super::actuator::{Actuator, ActuatorError, Propose};
use super::fleet::{AgentView, FleetSnapshot, FleetSupervisor, GetFleet};
use super::messages::AgentHealthChanged;
use crate::analytics::scaling::{Scaler, ScalingConfig};
use crate::clock;
use crate::domain::{AgentStatus, Change, Proposal};
use crate::policy::{Policy, PoolPolicy};

/// The optimizer actor.
pub struct Optimizer {
    policy: Arc<Policy>,
    interval: Duration,
    fleet: Addr<FleetSupervisor>,
    actuator: Addr<Actuator>,
    scalers: HashMap<String, Scaler>,
}

impl Optimizer {
    /// An optimizer that evaluates every `interval`.
    pub fn new(
        policy: Arc<Policy>,
        interval: Duration,
        fleet: Addr<FleetSupervisor>,
        actuator: Addr<Actuator>,
    ) -> Self {
        Optimizer {
            policy,
            interval,
            fleet,
            actuator,
            scalers: HashMap::new(),
        }
    }

    fn evaluate(&mut self, ctx: &mut Context<Self>) {
        let fleet = self.fleet.clone();
        ctx.spawn(
            async move { fleet.send(GetFleet).await }
                .into_actor(self)
                .map(|snapshot, optimizer, _ctx| match snapshot {
                    Ok(snapshot) => optimizer.decide(&snapshot, clock::now_ms()),
                    Err(error) => tracing::debug!(message = "Fleet unreachable.", %error),
                }),
        );
    }

    /// One proposal per pool at most: replacing an offline agent comes before scaling.
    fn decide(&mut self, snapshot: &FleetSnapshot, now_ms: i64) {
        let policy = self.policy.clone();
        for (name, pool) in &policy.pools {
            let agents: Vec<&AgentView> =
                snapshot.agents.iter().filter(|a| &a.pool == name).collect();
            let proposal = match agents.iter().find(|a| a.status == AgentStatus::Offline) {
                Some(offline) => Some(replace_offline(name, offline, now_ms)),
                None => self.scale(name, pool, &agents, now_ms),
            };
            if let Some(proposal) = proposal {
                self.propose(proposal);
            }
        }
    }

    fn scale(
        &mut self,
        name: &str,
        pool: &PoolPolicy,
        agents: &[&AgentView],
        now_ms: i64,
    ) -> Option<Proposal> {
        let config = scaling_config(pool);
        let scaler = self
            .scalers
            .entry(name.to_string())
            .or_insert_with(|| Scaler::new(config));
        scaler.set_config(config);
        // Only agents with a CPU reading count, as the HPA ignores pods without metrics.
        let readings: Vec<f64> = agents
            .iter()
            .filter(|a| a.status != AgentStatus::Offline)
            .filter_map(|a| a.cpu_smoothed)
            .collect();
        let current = agents.len();
        let observed = if readings.is_empty() {
            pool.target_cpu_percent
        } else {
            readings.iter().sum::<f64>() / readings.len() as f64
        };
        let decision = scaler.decide(now_ms, current, observed);
        if decision.desired == current {
            return None;
        }
        let reason = if current < pool.min_agents {
            format!("pool has {current} agents, below min_agents {}", pool.min_agents)
        } else if current > pool.max_agents {
            format!("pool has {current} agents, above max_agents {}", pool.max_agents)
        } else {
            format!(
                "mean agent CPU {observed:.1}% vs target {:.0}% (ratio {:.2})",
                pool.target_cpu_percent, decision.ratio
            )
        };
        let per_agent: serde_json::Map<String, serde_json::Value> = agents
            .iter()
            .map(|a| (a.id.clone(), serde_json::json!(a.cpu_smoothed)))
            .collect();
        Some(Proposal {
            pool: name.to_string(),
            change: Change::Scale {
                from: current,
                to: decision.desired,
            },
            reason,
            evidence: serde_json::json!({
                "decision": decision,
                "target_cpu_percent": pool.target_cpu_percent,
                "agent_cpu_percent": per_agent,
            }),
        })
    }

    fn propose(&self, proposal: Proposal) {
        let actuator = self.actuator.clone();
        actix::spawn(async move {
            match actuator.send(Propose(proposal)).await {
                Ok(Ok(action)) => {
                    tracing::info!(message = "Proposal accepted.", action = action.id,
                        pool = %action.pool, reason = %action.reason);
                }
                Ok(Err(ActuatorError::Busy { .. } | ActuatorError::Stale { .. })) => {}
                Ok(Err(error)) => tracing::warn!(message = "Proposal refused.", %error),
                Err(error) => tracing::debug!(message = "Actuator unreachable.", %error),
            }
        });
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
        }),
    }
}

fn scaling_config(pool: &PoolPolicy) -> ScalingConfig {
    ScalingConfig {
        min_agents: pool.min_agents,
        max_agents: pool.max_agents,
        target: pool.target_cpu_percent,
        tolerance: pool.tolerance,
        scale_down_window_ms: pool.scale_down_stabilization_secs as i64 * 1000,
    }
}

impl Actor for Optimizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.evaluate(ctx);
        ctx.run_interval(self.interval, |optimizer, ctx| optimizer.evaluate(ctx));
    }
}

// === impl Handler ===

impl Handler<AgentHealthChanged> for Optimizer {
    type Result = ();

    fn handle(&mut self, msg: AgentHealthChanged, ctx: &mut Context<Self>) {
        // React at once to an agent going offline instead of waiting for the next tick.
        if msg.status == AgentStatus::Offline {
            self.evaluate(ctx);
        }
    }
}
