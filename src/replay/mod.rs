//! `swarmpilot replay`: one pool simulated on a load trace with a simulated clock, so a
//! scaling strategy can be scored on real load shapes: time overloaded against agents paid.
//!
//! The model is fixed so anyone can reproduce the figures: ticks of `tick_secs`; demand is the
//! trace interpolated and scaled so its maximum is `peak_agents` agent capacities; agents are
//! starting (serving nothing) for `startup_secs`, then ready; a tick is an SLO violation when
//! demand exceeds 85% of the ready agents' capacity. Strategies decide at the end of each
//! tick from what they could have observed by then.

pub mod hpa;
pub mod oracle;
pub mod pacing;
pub mod plot;
pub mod swarmpilot;
pub mod trace;

use serde::Serialize;

pub use trace::Trace;

/// Utilization above which a tick counts as an SLO violation.
pub const SLO_UTILIZATION: f64 = 0.85;
/// Per-agent utilization both strategies start from.
pub const INITIAL_UTILIZATION: f64 = 0.7;

/// The simulation's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplayConfig {
    /// Seconds per tick.
    pub tick_secs: u64,
    /// Agent capacities the trace's maximum stands for.
    pub peak_agents: f64,
    /// Seconds from the decision to add an agent until it serves.
    pub startup_secs: u64,
    /// Fewest agents.
    pub min_agents: usize,
    /// Most agents.
    pub max_agents: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            tick_secs: 15,
            peak_agents: 20.0,
            startup_secs: 60,
            min_agents: 1,
            max_agents: 40,
        }
    }
}

/// What a strategy sees at the end of a tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The tick's time, epoch milliseconds.
    pub now_ms: i64,
    /// Requests in agent capacities, uncapped.
    pub demand: f64,
    /// Mean CPU of the ready agents, percent: `min(utilization, 1) × 100`.
    pub cpu_percent: f64,
    /// Agents that exist, starting or ready.
    pub current: usize,
    /// Agents that serve.
    pub ready: usize,
    /// How long agents took to start, once one has been seen to.
    pub observed_startup_ms: Option<i64>,
}

/// A scaling strategy: decides the pool's size at the end of each tick.
pub trait Strategy {
    /// The name reported.
    fn name(&self) -> &'static str;
    /// The number of agents the pool should have from now on.
    fn decide(&mut self, observation: &Observation) -> usize;
    /// Changes it wanted that the actuator's pacing held back.
    fn held(&self) -> u64 {
        0
    }
}

/// The score of one strategy on one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The strategy.
    pub strategy: &'static str,
    /// Seconds during which utilization exceeded 85%.
    pub slo_violation_seconds: u64,
    /// Seconds of every agent that existed, starting or ready.
    pub agent_seconds: u64,
    /// Ticks at which the pool's size changed.
    pub scale_actions: u64,
    /// Scale actions that went the other way from the one before.
    pub direction_changes: u64,
    /// The most agents at any time.
    pub max_agents: usize,
    /// Ticks simulated.
    pub ticks: u64,
    /// Changes the strategy wanted that the actuator's pacing held back (cooldown, hourly
    /// cap, an action still verifying).
    pub held_by_pacing: u64,
}

/// One tick as simulated, for charts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRecord {
    /// Epoch milliseconds.
    pub ms: i64,
    /// Demand in agent capacities.
    pub demand: f64,
    /// Ready agents during the tick.
    pub ready: usize,
    /// Agents that existed during the tick.
    pub agents: usize,
}

/// Runs `strategy` over `trace`; `progress(done, total)` is called every so often.
pub fn simulate(
    trace: &Trace,
    config: &ReplayConfig,
    strategy: &mut dyn Strategy,
    progress: &mut dyn FnMut(u64, u64),
) -> (Outcome, Vec<TickRecord>) {
    let tick_ms = config.tick_secs.max(1) as i64 * 1000;
    let startup_ms = config.startup_secs as i64 * 1000;
    let total = ((trace.end_ms() - trace.start_ms()) / tick_ms + 1) as u64;
    let clamp = |n: usize| n.clamp(config.min_agents, config.max_agents.max(config.min_agents));
    let start = trace.start_ms();
    let first = trace.demand_at(start, config.peak_agents);
    // When each agent serves from, in the order they were added: the newest last.
    let initial = clamp((first / INITIAL_UTILIZATION).ceil() as usize);
    let mut ready_at: Vec<i64> = vec![i64::MIN; initial];
    let mut outcome = Outcome {
        strategy: strategy.name(),
        slo_violation_seconds: 0,
        agent_seconds: 0,
        scale_actions: 0,
        direction_changes: 0,
        max_agents: initial,
        ticks: 0,
        held_by_pacing: 0,
    };
    let mut records = Vec::with_capacity(total as usize);
    let mut last_direction = 0i8;
    let mut observed_startup_ms = None;
    let mut first_started: Option<i64> = None;
    let mut now = start;
    while now <= trace.end_ms() {
        let demand = trace.demand_at(now, config.peak_agents);
        let ready = ready_at.iter().filter(|&&at| at <= now).count();
        let utilization = if ready == 0 {
            f64::INFINITY
        } else {
            demand / ready as f64
        };
        if utilization > SLO_UTILIZATION {
            outcome.slo_violation_seconds += config.tick_secs;
        }
        outcome.agent_seconds += config.tick_secs * ready_at.len() as u64;
        outcome.ticks += 1;
        records.push(TickRecord {
            ms: now,
            demand,
            ready,
            agents: ready_at.len(),
        });
        // The actuator notices start-up time once the first agent it started serves.
        if observed_startup_ms.is_none()
            && let Some(at) = first_started
            && at + startup_ms <= now
        {
            observed_startup_ms = Some(startup_ms);
        }
        let observation = Observation {
            now_ms: now,
            demand,
            cpu_percent: utilization.min(1.0) * 100.0,
            current: ready_at.len(),
            ready,
            observed_startup_ms,
        };
        let current = ready_at.len();
        let desired = clamp(strategy.decide(&observation));
        if desired != current {
            let direction = if desired > current { 1 } else { -1 };
            outcome.scale_actions += 1;
            if last_direction != 0 && direction != last_direction {
                outcome.direction_changes += 1;
            }
            last_direction = direction;
            if desired > current {
                first_started.get_or_insert(now);
                ready_at.resize(desired, now + startup_ms);
            } else {
                // Starting agents are the newest: removing from the end takes them first.
                ready_at.truncate(desired);
            }
            outcome.max_agents = outcome.max_agents.max(desired);
        }
        if outcome.ticks.is_multiple_of(20_000) {
            progress(outcome.ticks, total);
        }
        now += tick_ms;
    }
    progress(outcome.ticks, total);
    outcome.held_by_pacing = strategy.held();
    (outcome, records)
}

#[cfg(test)]
mod tests;
