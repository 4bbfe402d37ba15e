//! The simulation's accounting, checked against hand-worked schedules.

use super::*;

/// Asks for a fixed size at given ticks, and keeps the size otherwise.
struct Scripted {
    plan: Vec<(usize, usize)>,
    tick: usize,
    seen: Vec<Observation>,
}

impl Strategy for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn decide(&mut self, observation: &Observation) -> usize {
        self.seen.push(*observation);
        let tick = self.tick;
        self.tick += 1;
        self.plan
            .iter()
            .find(|(at, _)| *at == tick)
            .map_or(observation.current, |(_, size)| *size)
    }
}

fn flat(demand: f64, secs: i64) -> Trace {
    Trace::new("flat".into(), vec![0, secs * 1000], vec![demand, demand]).unwrap()
}

fn run(trace: &Trace, plan: Vec<(usize, usize)>) -> (Outcome, Vec<TickRecord>, Scripted) {
    let mut strategy = Scripted {
        plan,
        tick: 0,
        seen: Vec::new(),
    };
    let config = ReplayConfig {
        peak_agents: 1.0,
        ..ReplayConfig::default()
    };
    let (outcome, ticks) = simulate(trace, &config, &mut strategy, &mut |_, _| {});
    (outcome, ticks, strategy)
}

#[test]
fn starting_agents_cost_but_do_not_serve() {
    // Demand 1 agent capacity from 0 to 300 s: 21 ticks; ceil(1 / 0.7) = 2 agents at first.
    let trace = flat(1.0, 300);
    // Tick 0: scale to 4 (two start, ready at 60 s). Tick 1: to 3, dropping a starting one.
    // Tick 5: to 1, dropping the newest first.
    let (outcome, ticks, strategy) = run(&trace, vec![(0, 4), (1, 3), (5, 1)]);
    assert_eq!(outcome.ticks, 21);
    let ready: Vec<usize> = ticks.iter().map(|t| t.ready).collect();
    let agents: Vec<usize> = ticks.iter().map(|t| t.agents).collect();
    assert_eq!(&ready[..7], &[2, 2, 2, 2, 3, 3, 1]);
    assert_eq!(&agents[..7], &[2, 4, 3, 3, 3, 3, 1]);
    // 2 + 4 + 3 × 4 + 1 × 15 agent-ticks of 15 s.
    assert_eq!(outcome.agent_seconds, (2 + 4 + 12 + 15) * 15);
    // From tick 6 one agent carries demand 1: utilization 1 > 0.85 for 15 ticks.
    assert_eq!(outcome.slo_violation_seconds, 15 * 15);
    assert_eq!(outcome.scale_actions, 3);
    assert_eq!(outcome.direction_changes, 1);
    assert_eq!(outcome.max_agents, 4);
    // The start-up time is known once the first new agent served: at 60 s, tick 4.
    let startup: Vec<Option<i64>> = strategy
        .seen
        .iter()
        .map(|o| o.observed_startup_ms)
        .collect();
    assert_eq!(startup[3], None);
    assert_eq!(startup[4], Some(60_000));
    // CPU saturates at 100% while the demand stays uncapped.
    let last = strategy.seen.last().unwrap();
    assert_eq!((last.cpu_percent, last.demand), (100.0, 1.0));
}

#[test]
fn sizes_are_clamped_and_no_ready_agent_is_always_a_violation() {
    let trace = flat(1.0, 60);
    let config = ReplayConfig {
        peak_agents: 1.0,
        min_agents: 0,
        max_agents: 3,
        ..ReplayConfig::default()
    };
    let mut strategy = Scripted {
        plan: vec![(0, 0), (1, 10)],
        tick: 0,
        seen: Vec::new(),
    };
    let (outcome, ticks) = simulate(&trace, &config, &mut strategy, &mut |_, _| {});
    // Tick 0 serves with 2; from tick 1 nothing is ready until 60 s after tick 1.
    assert_eq!(
        ticks.iter().map(|t| t.agents).collect::<Vec<_>>(),
        [2, 0, 3, 3, 3]
    );
    assert_eq!(outcome.slo_violation_seconds, 4 * 15);
    assert_eq!(outcome.max_agents, 3, "10 clamped to max_agents");
}

#[test]
fn hpa_and_swarmpilot_replay_a_daily_shape() {
    // Two days of a smooth daily cycle with a steep morning rise, every 5 minutes.
    let times: Vec<i64> = (0..576).map(|i| i * 300_000).collect();
    let values: Vec<f64> = (0..576)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            if (8.0..20.0).contains(&hour) {
                80.0
            } else {
                20.0
            }
        })
        .collect();
    let trace = Trace::new("daily".into(), times, values).unwrap();
    let config = ReplayConfig::default();
    let mut ticks_seen = 0;
    let (hpa, _) = simulate(
        &trace,
        &config,
        &mut hpa::Hpa::new(config.min_agents, config.max_agents),
        &mut |done, _| ticks_seen = done,
    );
    assert_eq!(ticks_seen, hpa.ticks);
    assert!(
        hpa.slo_violation_seconds > 0,
        "a step of 4× overloads a reactive HPA"
    );
    let policy = crate::policy::load_str("replay.toml", crate::policy::REPLAY_POLICY).unwrap();
    let pool = policy.policy.pools.values().next().unwrap();
    let mut ours = swarmpilot::Swarmpilot::new(pool, &policy.policy.automation, &config);
    let (swarmpilot, _) = simulate(&trace, &config, &mut ours, &mut |_, _| {});
    assert!(swarmpilot.max_agents <= config.max_agents);
    assert!(ours.last_plan().is_some());
    assert_eq!(swarmpilot.ticks, hpa.ticks);
}
