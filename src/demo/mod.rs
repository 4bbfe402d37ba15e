//! `swarmpilot demo`: the controller, a pool of real worker processes and a load generator
//! that steps the load up and back down, drawn live, then a summary of every action. With the
//! embedded policy the workers are AI agents calling a local mock model provider, which
//! throttles them late in the run (`ai.rs`).

pub mod ai;
pub mod load;
pub mod scenario;
pub mod view;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::actors::alert::GetAlerts;
use crate::actors::fleet::GetFleet;
use crate::actors::policy::PolicySource;
use crate::clock;
use crate::controller::{Controller, ControllerConfig};
use crate::domain::{ActionState, Change};
use crate::policy::LoadedPolicy;
use load::{LoadConfig, LoadGenerator};

/// CPU time each demo task asks for, milliseconds.
const TASK_CPU_MS: f64 = 20.0;
/// Tasks per second in the quiet phases.
const LOW_RATE: f64 = 15.0;
/// Tasks per second in the step: 3.5 times the quiet rate.
const HIGH_RATE: f64 = 52.0;
/// How long approvals wait in the demo when it runs on the embedded policy, seconds.
const DEMO_APPROVAL_EXPIRY_SECS: u64 = 40;

/// The base risk of a restart in the demo (policy default 0.4). A leaking worker's restart
/// has confidence 0.64 to 0.8 (0.8 times a fit's R² of at least 0.8) and disrupts one of two
/// to eight workers, so it scores 0.42 + 0.3 / n + 0.3 × (1 − confidence): 0.52 to 0.68,
/// medium, waiting for one approver at every pool size. The default would let it apply alone
/// in a large pool; 0.45 made a two-worker pool's restart on a poor fit high (0.71), waiting
/// for two people.
const DEMO_RESTART_RISK: f64 = 0.42;

/// How the demo is run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Total run time.
    pub duration: Duration,
    /// Address of the API.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The policy.
    pub policy: LoadedPolicy,
    /// Where it came from.
    pub source: PolicySource,
    /// The pool the load goes to.
    pub pool: String,
    /// The `swarmpilot` executable for the workers.
    pub agent_exe: PathBuf,
}

/// What the demo did, for the exit code and the tests.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    /// Applied scale-outs caused by load (not the initial fill to `min_agents`).
    pub scale_outs: usize,
    /// Applied scale-ins.
    pub scale_ins: usize,
    /// Actions that waited for approval and expired.
    pub expired: usize,
    /// Actions rolled back (automatically or by hand).
    pub rolled_back: usize,
    /// Applied decreases of the workers' concurrency (the AI phase).
    pub concurrency_lowered: usize,
    /// Scale-outs proposed while the provider throttled (none is right).
    pub throttled_scale_outs: usize,
    /// CPU seconds the demo process used (controller and load generator, not the workers).
    pub cpu_secs: f64,
    /// Wall seconds it ran.
    pub wall_secs: f64,
}

/// The load step, as shares of the run.
pub const STEP: std::ops::Range<f64> = 0.15..0.45;

/// The phase of the load at `elapsed` into a demo of `total`: low, a step up, low again.
pub fn phase_at(elapsed: Duration, total: Duration) -> (&'static str, f64) {
    let share = elapsed.as_secs_f64() / total.as_secs_f64().max(1.0);
    if STEP.contains(&share) {
        ("high", HIGH_RATE)
    } else if ai::STEP.contains(&share) {
        ("ai", HIGH_RATE)
    } else {
        ("low", LOW_RATE)
    }
}

/// The demo's changes to the embedded policy.
fn tune_embedded(policy: &mut crate::policy::Policy) {
    // So that a waiting approval visibly expires within the run.
    policy.automation.approval_expiry_secs = DEMO_APPROVAL_EXPIRY_SECS;
    // So that the leak's restart waits for one person whatever the pool's size then.
    policy.automation.risk.kind.restart = DEMO_RESTART_RISK;
}

/// Runs the demo to its end; must be called inside an actix system.
pub async fn run(mut config: DemoConfig) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let embedded = matches!(config.source, PolicySource::Embedded);
    if embedded {
        tune_embedded(&mut config.policy.policy);
    }
    // Alone, never in a store that controllers share.
    config.policy.policy.store = crate::policy::StorePolicy::default();
    let mistake = scenario::mistake_window(&config.policy.policy, config.duration);
    // The AI phase: the workers call a local mock provider (embedded policy only).
    let mut ai_phase = None;
    if embedded {
        let provider = ai::start_provider().await?;
        if ai::equip(
            &mut config.policy.policy,
            &config.pool,
            &config.agent_exe,
            &provider,
        ) {
            ai_phase = Some((ai::AiPhase::new(provider.clone()), provider));
        }
    }
    let mut throttled_since_ms = None;
    let interval_ms = config.policy.policy.global.sampling_interval_secs as i64 * 1000;
    let started_ms = clock::now_ms();
    let controller = Controller::start(ControllerConfig {
        policy: config.policy,
        source: config.source,
        data_dir: config.data_dir.clone(),
        listen: config.listen,
        agent_exe: config.agent_exe,
        clock: crate::clock::Clock::system(),
        // The demo runs alone, on the SQLite file of its own data directory.
        lease: None,
    })
    .await?;
    println!(
        "swarmpilot demo: {} s, pool {:?}",
        config.duration.as_secs(),
        config.pool
    );
    println!("  dashboard:   http://{}/", controller.addr);
    println!("  API:         http://{}/api/v1", controller.addr);
    println!(
        "  admin token: {} (the dashboard asks for it)",
        controller.token_path.display()
    );
    println!(
        "  try: curl -H \"Authorization: Bearer $(cat {})\" http://{}/api/v1/log",
        controller.token_path.display(),
        controller.addr
    );
    if embedded {
        println!(
            "  approvals expire after {DEMO_APPROVAL_EXPIRY_SECS} s in the demo (policy default: 900 s)"
        );
    }
    if let Some((_, provider)) = &ai_phase {
        println!("  the workers call a mock model provider at {provider} (loopback only)");
    }
    println!("  Ctrl-C stops the demo and every worker it started.\n");
    let mut scenario = scenario::Scenario::new(
        format!("http://{}", controller.addr),
        controller.token.clone(),
        config.pool.clone(),
        config.data_dir.clone(),
        mistake,
    );

    let load = LoadGenerator::start(LoadConfig {
        api: format!("http://{}", controller.addr),
        token: controller.token.clone(),
        pool: config.pool.clone(),
        cpu_ms: TASK_CPU_MS,
    });
    let interactive = std::io::stdout().is_terminal();
    let mut drawn_lines = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut alerts_seen = std::collections::HashMap::new();
    let interrupted = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break true,
        }
        let elapsed = started.elapsed();
        if elapsed >= config.duration {
            break false;
        }
        let (phase, rate) = phase_at(elapsed, config.duration);
        load.set_rate(phase, rate);
        let fleet = controller.fleet.send(GetFleet).await.unwrap_or_default();
        let alerts = controller.alert.send(GetAlerts).await.unwrap_or_default();
        let share = elapsed.as_secs_f64() / config.duration.as_secs_f64();
        let mut events = scenario.step(share, &fleet).await;
        if let Some((phase, _)) = &mut ai_phase {
            let said = phase.step(share).await;
            if !said.is_empty() {
                throttled_since_ms = Some(clock::now_ms());
            }
            events.extend(said);
        }
        events.extend(view::alert_events(&alerts, &mut alerts_seen));
        let recent = controller.store.actions(None, 20).unwrap_or_default();
        events.extend(scenario.tell(&recent, &controller.store));
        let actions = controller.store.actions(None, 3).unwrap_or_default();
        let stats = load.stats();
        let frame = view::Frame {
            elapsed_secs: elapsed.as_secs(),
            load: &stats,
            fleet: &fleet,
            alerts: &alerts,
            actions: &actions,
        };
        let mut stdout = std::io::stdout().lock();
        if interactive {
            // Redraw in place: up over the last frame, clear to the end of the screen.
            if drawn_lines > 0 {
                let _ = write!(stdout, "\x1b[{drawn_lines}A\x1b[J");
            }
            // Events stay on screen above the frame.
            for event in &events {
                let _ = writeln!(stdout, "[{:>3}s] {event}", elapsed.as_secs());
            }
            let text = frame.render();
            drawn_lines = text.lines().count();
            let _ = write!(stdout, "{text}");
        } else {
            for event in &events {
                let _ = writeln!(stdout, "[{:>3}s] {event}", elapsed.as_secs());
            }
            let _ = writeln!(stdout, "{}", frame.headline());
        }
        let _ = stdout.flush();
    };
    load.stop();
    if interrupted {
        println!("\ninterrupted: stopping workers");
    }
    controller
        .shutdown(Duration::from_secs(
            controller
                .policy
                .current()
                .policy
                .global
                .shutdown_grace_secs,
        ))
        .await;

    let reports = controller.final_report(Duration::from_secs(30)).await;
    let actions = controller.store.actions(None, 1000)?;
    print!("{}", view::summary(&actions, started_ms));
    for file in &reports {
        println!("final report: {}", file.display());
    }
    let applied_scales = |grow: bool| {
        actions
            .iter()
            .filter(|a| a.state == ActionState::Applied)
            .filter(|a| matches!(a.change, Change::Scale { from, to } if (to > from) == grow && from > 0))
            .count()
    };
    let ended = |state: ActionState| actions.iter().filter(|a| a.state == state).count();
    let lowered = actions
        .iter()
        .filter(|a| a.state == ActionState::Applied)
        .filter(|a| matches!(a.change, Change::AdjustConcurrency { from, to } if to < from))
        .count();
    // Scale-outs proposed once the throttling had had three sampling intervals to show in
    // the workers' scraped counters.
    let throttled_scale_outs = throttled_since_ms.map_or(0, |since| {
        let shown = since + 3 * interval_ms;
        actions
            .iter()
            .filter(|a| a.created_ms > shown)
            .filter(|a| matches!(a.change, Change::Scale { from, to } if to > from && from > 0))
            .count()
    });
    let report = DemoReport {
        scale_outs: applied_scales(true),
        scale_ins: applied_scales(false),
        expired: ended(ActionState::Expired),
        rolled_back: ended(ActionState::RolledBack),
        concurrency_lowered: lowered,
        throttled_scale_outs,
        cpu_secs: process_cpu_secs(),
        wall_secs: started.elapsed().as_secs_f64(),
    };
    println!(
        "\nscale-outs under load: {} | scale-ins: {} | approvals expired: {} | rolled back: {} | concurrency lowered: {} | scale-outs while throttled: {} | demo process CPU {:.2} s over {:.0} s = {:.1}% of one core",
        report.scale_outs,
        report.scale_ins,
        report.expired,
        report.rolled_back,
        report.concurrency_lowered,
        report.throttled_scale_outs,
        report.cpu_secs,
        report.wall_secs,
        report.cpu_secs / report.wall_secs.max(0.001) * 100.0
    );
    println!("log kept in {}", config.data_dir.display());
    Ok(report)
}

/// CPU seconds (user + system) used by this process alone, not its children.
pub fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::risk::{RiskInput, assess};
    use crate::decide::agents::{LEAK_MIN_R2, leak_confidence};
    use crate::policy::RiskMode;

    #[test]
    fn load_steps_up_then_back_down() {
        let total = Duration::from_secs(60);
        let at = |s| phase_at(Duration::from_secs(s), total).0;
        assert_eq!(
            (at(0), at(8), at(9), at(26), at(27), at(59)),
            ("low", "low", "high", "high", "low", "low")
        );
    }

    #[test]
    fn a_leaking_workers_restart_waits_for_one_approver_at_every_pool_size() {
        let mut policy = crate::policy::load_embedded().unwrap().policy;
        tune_embedded(&mut policy);
        let pool = policy.pool("worker").unwrap();
        let change = Change::Restart {
            agent: "worker-1".to_string(),
        };
        for size in pool.min_agents..=pool.max_agents {
            for r2 in [LEAK_MIN_R2, 0.85, 0.9, 0.95, 1.0] {
                let input = RiskInput {
                    change: &change,
                    pool_size: size,
                    disrupted: 1,
                    confidence: leak_confidence(r2),
                    recent_rollbacks: 0,
                };
                let risk = assess(&input, &policy.automation);
                assert_eq!(
                    risk.mode,
                    RiskMode::Approval,
                    "{size} workers, R² {r2}: {risk}"
                );
            }
        }
    }
}
