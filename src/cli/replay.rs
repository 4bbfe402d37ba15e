//! `swarmpilot replay`: scores scaling strategies on a load trace with a simulated clock.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::policy::{self, Automation, PoolPolicy};
use crate::replay::plot::{self, Run};
use crate::replay::{self, Outcome, ReplayConfig, Strategy, TickRecord, Trace};

/// Which strategy scales the simulated pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyName {
    /// swarmpilot's optimizer, with the policy given.
    Swarmpilot,
    /// Kubernetes' Horizontal Pod Autoscaler with its defaults.
    Hpa,
    /// Perfect foresight: the fewest agents that never violate, knowing the whole trace.
    Oracle,
}

/// The arguments of `swarmpilot replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Load trace: CSV with `timestamp` and `value` columns.
    #[arg(long)]
    pub trace: PathBuf,
    /// The strategy to score.
    #[arg(long, value_enum, default_value_t = StrategyName::Swarmpilot)]
    pub strategy: StrategyName,
    /// Score all three strategies on the same trace, with swarmpilot's ratios to the oracle
    /// and to HPA (and chart them together with --plot).
    #[arg(long)]
    pub compare: bool,
    /// Policy directory or file for the swarmpilot strategy (default: the embedded
    /// policies/replay/policy.toml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The policy's pool to use (default: its only pool).
    #[arg(long)]
    pub pool: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw demand, capacity and agents over time into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Chart only this part of the trace: `FROM:TO`, hours from its start.
    #[arg(long, value_parser = parse_span)]
    pub plot_span: Option<(f64, f64)>,
    /// Seconds per tick.
    #[arg(long, default_value_t = 15)]
    pub tick: u64,
    /// Agent capacities the trace's largest value stands for.
    #[arg(long, default_value_t = 20.0)]
    pub peak_agents: f64,
    /// Seconds a new agent takes to serve.
    #[arg(long, default_value_t = 60)]
    pub startup: u64,
    /// Fewest agents.
    #[arg(long, default_value_t = 1)]
    pub min_agents: usize,
    /// Most agents.
    #[arg(long, default_value_t = 40)]
    pub max_agents: usize,
}

/// Why `--plot-span` is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpanError {
    /// There is no `:` between the two ends.
    #[error("`{0}` is not FROM:TO (hours, e.g. 24:48)")]
    Shape(String),
    /// One end is not a finite, non-negative number.
    #[error("`{0}` is not a number of hours")]
    Hours(String),
    /// The span ends at or before its start.
    #[error("the span {from}:{to} ends before it starts")]
    Backwards {
        /// Where it starts, hours.
        from: f64,
        /// Where it ends, hours.
        to: f64,
    },
}

/// Parses `FROM:TO` hours.
fn parse_span(text: &str) -> Result<(f64, f64), SpanError> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| SpanError::Shape(text.to_string()))?;
    let hours = |part: &str| {
        part.trim()
            .parse::<f64>()
            .ok()
            .filter(|h| h.is_finite() && *h >= 0.0)
            .ok_or_else(|| SpanError::Hours(part.to_string()))
    };
    let (from, to) = (hours(from)?, hours(to)?);
    if from >= to {
        return Err(SpanError::Backwards { from, to });
    }
    Ok((from, to))
}

impl ReplayArgs {
    fn config(&self) -> anyhow::Result<ReplayConfig> {
        anyhow::ensure!(
            (1..=86_400).contains(&self.tick),
            "--tick must be between 1 and 86400 seconds"
        );
        anyhow::ensure!(
            self.startup <= 86_400,
            "--startup must be at most 86400 seconds"
        );
        anyhow::ensure!(
            self.peak_agents.is_finite() && self.peak_agents > 0.0 && self.peak_agents <= 1e5,
            "--peak-agents must be a positive number up to 100000"
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.max_agents),
            "--max-agents must be between 1 and 100000"
        );
        anyhow::ensure!(
            self.min_agents <= self.max_agents,
            "--min-agents ({}) is above --max-agents ({})",
            self.min_agents,
            self.max_agents
        );
        Ok(ReplayConfig {
            tick_secs: self.tick,
            peak_agents: self.peak_agents,
            startup_secs: self.startup,
            min_agents: self.min_agents,
            max_agents: self.max_agents,
        })
    }
}

/// The pool policy the swarmpilot strategy runs with, and the automation settings that pace
/// its actions.
fn pool_policy(
    path: Option<&Path>,
    pool: Option<&str>,
) -> anyhow::Result<(PoolPolicy, Automation)> {
    let loaded = match path {
        Some(path) => policy::load_dir(path),
        None => policy::load_str(
            "policies/replay/policy.toml (embedded)",
            policy::REPLAY_POLICY,
        ),
    }
    .map_err(|e| anyhow::anyhow!("invalid policy:\n{e}"))?;
    let pools = &loaded.policy.pools;
    let names: Vec<&str> = pools.keys().map(String::as_str).collect();
    let name = match (pool, names.as_slice()) {
        (Some(name), _) => name,
        (None, [only]) => only,
        (None, []) => anyhow::bail!("the policy defines no pool"),
        (None, _) => anyhow::bail!(
            "the policy defines pools {}: choose one with --pool",
            names.join(", ")
        ),
    };
    let chosen = pools.get(name).cloned().with_context(|| {
        format!(
            "--pool {name}: no such pool in the policy (it has {})",
            names.join(", ")
        )
    })?;
    Ok((chosen, loaded.policy.automation.clone()))
}

fn strategy(
    name: StrategyName,
    (pool, automation): &(PoolPolicy, Automation),
    config: &ReplayConfig,
    trace: &Trace,
) -> Box<dyn Strategy> {
    match name {
        StrategyName::Hpa => Box::new(replay::hpa::Hpa::new(config.min_agents, config.max_agents)),
        StrategyName::Swarmpilot => Box::new(replay::swarmpilot::Swarmpilot::new(
            pool, automation, config,
        )),
        StrategyName::Oracle => Box::new(replay::oracle::Oracle::new(trace, config)),
    }
}

/// Runs the command; the result goes to stdout, progress to stderr.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let trace = Trace::read(&args.trace)?;
    for warning in &trace.warnings {
        eprintln!("{warning}");
    }
    let pool = pool_policy(args.policy.as_deref(), args.pool.as_deref())?;
    let names = if args.compare {
        vec![
            StrategyName::Hpa,
            StrategyName::Swarmpilot,
            StrategyName::Oracle,
        ]
    } else {
        vec![args.strategy]
    };
    let mut results: Vec<(Outcome, Vec<TickRecord>)> = Vec::new();
    for name in names {
        let mut strategy = strategy(name, &pool, &config, &trace);
        let label = strategy.name();
        let mut progress = |done: u64, total: u64| {
            if total >= 20_000 {
                eprintln!(
                    "replay {label}: {:>3}% ({done}/{total} ticks)",
                    done * 100 / total.max(1)
                );
            }
        };
        results.push(replay::simulate(
            &trace,
            &config,
            strategy.as_mut(),
            &mut progress,
        ));
    }
    let outcomes: Vec<&Outcome> = results.iter().map(|(o, _)| o).collect();
    if args.json {
        let rows: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                let mut row = serde_json::json!(o);
                row["trace"] = serde_json::json!(trace.name);
                row["settings"] = serde_json::json!(config);
                row
            })
            .collect();
        let out = match rows.as_slice() {
            [one] => one.clone(),
            _ => serde_json::Value::Array(rows),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", table(&trace, &config, &outcomes));
    }
    if let Some(path) = &args.plot {
        let origin = trace.start_ms();
        let within = |ticks: &[TickRecord]| -> std::ops::Range<usize> {
            let Some((from, to)) = args.plot_span else {
                return 0..ticks.len();
            };
            let at = |hours: f64| origin + (hours * 3_600_000.0) as i64;
            ticks.partition_point(|t| t.ms < at(from))..ticks.partition_point(|t| t.ms <= at(to))
        };
        let runs: Vec<Run<'_>> = results
            .iter()
            .map(|(outcome, ticks)| Run {
                name: outcome.strategy,
                ticks: &ticks[within(ticks)],
            })
            .collect();
        anyhow::ensure!(
            runs.iter().all(|r| !r.ticks.is_empty()),
            "--plot-span: the trace has no ticks in that span (it lasts {:.1} hours)",
            (trace.end_ms() - origin) as f64 / 3_600_000.0
        );
        let file = Path::new(&trace.name)
            .file_name()
            .map_or(trace.name.clone(), |f| f.to_string_lossy().into_owned());
        let title = format!(
            "{file}: {} (peak {} agents, start-up {} s)",
            outcomes
                .iter()
                .map(|o| o.strategy)
                .collect::<Vec<_>>()
                .join(" vs "),
            config.peak_agents,
            config.startup_secs
        );
        plot::draw(path, &title, &runs, origin)
            .with_context(|| format!("cannot draw {}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

/// The results as a text table, with the comparison when there are two.
fn table(trace: &Trace, config: &ReplayConfig, outcomes: &[&Outcome]) -> String {
    let mut out = format!(
        "trace {}: {} ticks of {} s, peak {} agents, start-up {} s, agents {}-{}\n",
        trace.name,
        outcomes.first().map_or(0, |o| o.ticks),
        config.tick_secs,
        config.peak_agents,
        config.startup_secs,
        config.min_agents,
        config.max_agents
    );
    out.push_str(&format!(
        "{:<12} {:>22} {:>14} {:>14} {:>18} {:>11}\n",
        "strategy",
        "slo_violation_seconds",
        "agent_seconds",
        "scale_actions",
        "direction_changes",
        "max_agents"
    ));
    for o in outcomes {
        out.push_str(&format!(
            "{:<12} {:>22} {:>14} {:>14} {:>18} {:>11}\n",
            o.strategy,
            o.slo_violation_seconds,
            o.agent_seconds,
            o.scale_actions,
            o.direction_changes,
            o.max_agents
        ));
    }
    for o in outcomes.iter().filter(|o| o.held_by_pacing > 0) {
        out.push_str(&format!(
            "{}: {} changes held back by the actuator's pacing (an action verifying, cooldown, \
             hourly cap)\n",
            o.strategy, o.held_by_pacing
        ));
    }
    let named = |name: &str| outcomes.iter().find(|o| o.strategy == name);
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            "n/a".to_string()
        } else {
            format!("{:.3}", a as f64 / b as f64)
        }
    };
    if let (Some(ours), Some(hpa)) = (named("swarmpilot"), named("hpa")) {
        out.push_str(&format!(
            "swarmpilot / hpa: SLO violation seconds {}, agent-seconds {}, direction changes {} vs {}\n",
            ratio(ours.slo_violation_seconds, hpa.slo_violation_seconds),
            ratio(ours.agent_seconds, hpa.agent_seconds),
            ours.direction_changes,
            hpa.direction_changes,
        ));
    }
    if let (Some(ours), Some(oracle)) = (named("swarmpilot"), named("oracle")) {
        out.push_str(&format!(
            "swarmpilot / oracle: agent-seconds {} (violation seconds {} vs {})\n",
            ratio(ours.agent_seconds, oracle.agent_seconds),
            ours.slo_violation_seconds,
            oracle.slo_violation_seconds,
        ));
    }
    out
}
