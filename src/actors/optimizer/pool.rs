//! The optimizer's pool-level decisions: scaling through the pool's planner, and replacing an
//! offline agent.

use super::{AgentView, Optimizer, PoolActivity};
use crate::analytics::planner::{Plan, PoolPlanner};
use crate::analytics::scaling::{RateLimit, ScalingConfig};
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::{Policy, PoolPolicy};

impl Optimizer {
    pub(super) fn scale(
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
pub(super) fn pool_load(agents: &[&AgentView]) -> Option<f64> {
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
pub(super) fn settled(agents: &[&AgentView], activity: PoolActivity, interval_ms: i64) -> bool {
    let Some(changed_ms) = activity.last_finished_ms else {
        return true;
    };
    agents.iter().all(|agent| {
        cpu_reading(agent).is_some() && agent.last_sample_ms >= changed_ms + interval_ms
    })
}

pub(super) fn replace_offline(pool: &str, agent: &AgentView, now_ms: i64) -> Proposal {
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

pub(super) fn scaling_config(policy: &Policy, pool: &PoolPolicy) -> ScalingConfig {
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
