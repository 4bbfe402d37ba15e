//! swarmpilot's own optimizer as a replay strategy: the live controller's [`PoolPlanner`]
//! (forecast and HPA rule) fed the pool's load once per tick, with the pool's policy, its
//! plans applied only as the live actuator's pacing lets them ([`Pacing`]).

use super::pacing::Pacing;
use super::{Observation, ReplayConfig, Strategy};
use crate::analytics::planner::{Plan, PoolPlanner, lead_ticks};
use crate::analytics::scaling::{RateLimit, ScalingConfig};
use crate::policy::{Automation, PoolPolicy};

/// The optimizer's planner on a simulated pool.
#[derive(Debug, Clone)]
pub struct Swarmpilot {
    planner: PoolPlanner,
    config: ScalingConfig,
    /// Start-up time assumed until one is observed: the policy's `startup_secs`.
    assumed_startup_ms: i64,
    tick_ms: i64,
    last_plan: Option<Plan>,
    /// What the actuator lets through.
    pacing: Pacing,
}

impl Swarmpilot {
    /// The optimizer with `pool`'s policy, paced by `automation` as the live actuator is, its
    /// size clamped as the replay's settings say.
    pub fn new(pool: &PoolPolicy, automation: &Automation, replay: &ReplayConfig) -> Self {
        let config = ScalingConfig {
            min_agents: replay.min_agents,
            max_agents: replay.max_agents,
            target: pool.target_cpu_percent,
            tolerance: pool.tolerance,
            scale_down_window_ms: pool.scale_down_stabilization_secs as i64 * 1000,
            scale_up: RateLimit::of(&pool.scale_up),
            scale_down: RateLimit::of(&pool.scale_down),
        };
        Swarmpilot {
            planner: PoolPlanner::new(config),
            config,
            assumed_startup_ms: pool.startup_secs as i64 * 1000,
            tick_ms: replay.tick_secs.max(1) as i64 * 1000,
            last_plan: None,
            pacing: Pacing::new(automation.clone(), replay.min_agents),
        }
    }

    /// The plan made at the last tick.
    pub fn last_plan(&self) -> Option<&Plan> {
        self.last_plan.as_ref()
    }
}

impl Strategy for Swarmpilot {
    fn name(&self) -> &'static str {
        "swarmpilot"
    }

    fn decide(&mut self, observation: &Observation) -> usize {
        // The pool's load in percent of one agent's capacity, the unit of the policy's
        // per-agent target; the request rate, since CPU saturates at 100% when overloaded.
        let load = observation.demand * 100.0;
        self.planner.observe(load);
        let startup_ms = observation
            .observed_startup_ms
            .unwrap_or(self.assumed_startup_ms);
        let lead = lead_ticks(startup_ms, self.tick_ms);
        let plan = self.planner.plan(
            self.config,
            observation.now_ms,
            observation.current,
            load,
            lead,
        );
        let desired = plan
            .desired()
            .clamp(self.config.min_agents, self.config.max_agents);
        self.last_plan = Some(plan);
        self.pacing
            .admit(observation.now_ms, observation.current, desired)
    }

    fn held(&self) -> u64 {
        self.pacing.held
    }
}
