//! The command line: clap definitions and what each command runs.

pub mod actions;
pub mod client;
mod detect;
mod forecast;
pub mod hook;
mod leader;
pub mod reads;
pub mod replay;
pub mod text;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::actors::policy::PolicySource;
use crate::controller::{Controller, ControllerConfig};
use crate::policy::{self, LoadedPolicy};

/// The default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// swarmpilot: keeps a fleet of software agents healthy and efficient on its own.
#[derive(Debug, Parser)]
#[command(name = "swarmpilot", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How logs are written to stderr: `pretty` lines for people, or `json`, one object a
    /// line, for a log collector. Levels come from SWARMPILOT_LOG, else RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// The format of the log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object a line, with the span (actor, pool, agent) and fields of each event.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller, real worker processes and a stepped load, drawn live.
    Demo {
        /// How long to run, seconds.
        #[arg(long, default_value_t = 150)]
        duration: u64,
        /// API address (a free port is used if the default is taken).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory for the log and token (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Policy directory or file (default: the embedded policies/default.toml).
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Run the controller until SIGINT or SIGTERM; SIGHUP reloads the policy. Every flag
    /// may also come from its environment variable.
    Serve {
        /// Policy directory or file (default: the embedded policies/default.toml).
        #[arg(long, env = "SWARMPILOT_POLICIES")]
        policies: Option<PathBuf>,
        /// Data directory for the database, token and agent logs.
        #[arg(long, env = "SWARMPILOT_DATA_DIR", default_value = "swarmpilot-data")]
        data_dir: PathBuf,
        /// API address (default: the policy's `global.listen`, else 127.0.0.1:8080).
        #[arg(long, env = "SWARMPILOT_LISTEN")]
        listen: Option<SocketAddr>,
        /// The URL other controllers on the same PostgreSQL store send clients to while this
        /// one leads (default: the listen address's URL), e.g. `http://10.0.3.7:8080`.
        #[arg(long, env = "SWARMPILOT_ADVERTISE_URL")]
        advertise_url: Option<String>,
    },
    /// Score a `timestamp,value` CSV series for anomalies, streaming.
    Detect {
        /// Input CSV with `timestamp` and `value` columns.
        #[arg(long)]
        input: PathBuf,
        /// Output CSV: `timestamp,value,anomaly_score`.
        #[arg(long)]
        output: PathBuf,
        /// Score rows whose time goes backwards in file order (with a warning) instead of
        /// refusing the file.
        #[arg(long)]
        allow_unsorted: bool,
        /// Rows that only teach the detector and score 0 (default: NAB's probationary
        /// period, 15% of the file's rows, at most 750).
        #[arg(long, value_name = "ROWS")]
        warm_up: Option<u64>,
        /// Override one detector parameter, e.g. `--set hold_after_detection=50` or
        /// `--set kmeans.lags=3` (repeatable; names as in `DetectorConfig`).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        parameters: Vec<String>,
    },
    /// Forecast a `timestamp,value` CSV series, streaming: row t gets the forecasts made
    /// from rows 0..t for the next H rows.
    Forecast {
        /// Input CSV with `timestamp` and `value` columns.
        #[arg(long)]
        input: PathBuf,
        /// Steps ahead to forecast.
        #[arg(long)]
        horizon: usize,
        /// Output CSV: `timestamp,value,f1,...,fH`.
        #[arg(long)]
        output: PathBuf,
        /// Keep rows whose time goes backwards (in file order, with a warning).
        #[arg(long)]
        allow_unsorted: bool,
    },
    /// Score scaling strategies (swarmpilot's optimizer, Kubernetes' HPA) on a load trace
    /// with a simulated clock.
    Replay(replay::ReplayArgs),
    /// Check policy files, or print their JSON Schema.
    Policy {
        /// What to do with policy.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List, show, approve, reject and roll back the controller's actions, through its
    /// REST API.
    Actions(actions::ActionsArgs),
    /// The everyday reads of a running controller: status, agents, alerts, silences, log.
    #[command(flatten)]
    Read(reads::Read),
    /// Report a task's start or end from an agent framework's hook (never fails the task
    /// unless --strict).
    Hook(hook::HookArgs),
    /// Run a local mock model provider (OpenAI-style chat completions with a rate limit),
    /// for trying AI agent pools without a real one.
    MockProvider {
        /// Loopback port to listen on (0: any free port; the address is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Calls a second it answers for each model before it answers 429 (0: no limit).
        #[arg(long, default_value_t = 0.0)]
        requests_per_sec: f64,
        /// Calls it answers at once after a quiet spell.
        #[arg(long, default_value_t = 10.0)]
        burst: f64,
        /// How long an answer takes, milliseconds.
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
    },
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `swarmpilot completions bash > /etc/bash_completion.d/swarmpilot`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `swarmpilot man | man -l -`.
    Man,
    /// Run the bundled worker agent.
    Agent {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Pool the agent belongs to.
        #[arg(long)]
        pool: String,
        /// Agent id reported in metrics (default: the pool name and port).
        #[arg(long)]
        id: Option<String>,
        /// A model provider every task calls (OpenAI-style chat completions), by base URL.
        #[arg(long, env = "SWARMPILOT_MODEL_PROVIDER")]
        provider: Option<String>,
        /// The model those calls name.
        #[arg(long, env = "SWARMPILOT_MODEL", default_value = "mock-small")]
        model: String,
        /// Tasks run at once (the controller may change it over `POST /concurrency`).
        #[arg(long, env = "SWARMPILOT_CONCURRENCY", default_value_t = 64)]
        concurrency: u32,
    },
}

/// The `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policies: each file, and each directory of `*.toml` files (recursively), is one
    /// policy. Prints every problem as `file:line:col: message`; exits 1 on any error.
    Check {
        /// Policy files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of policy files, for editors.
    Schema,
}

fn load_policy(path: Option<&Path>) -> anyhow::Result<(LoadedPolicy, PolicySource)> {
    let (loaded, source) = match path {
        Some(path) => (
            policy::load_dir(path),
            PolicySource::Path(path.to_path_buf()),
        ),
        None => (policy::load_embedded(), PolicySource::Embedded),
    };
    let loaded = loaded.map_err(|e| anyhow::anyhow!("invalid policy:\n{e}"))?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    Ok((loaded, source))
}

/// Every policy under `path`: the file itself, or each directory holding `*.toml` files.
fn policy_units(path: &Path, units: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        units.push(path.to_path_buf());
        return;
    }
    if policy::policy_files(path).is_ok() {
        units.push(path.to_path_buf());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|child| child.is_dir())
        .collect();
    children.sort();
    for child in children {
        policy_units(&child, units);
    }
}

fn policy_command(command: PolicyCommand) -> anyhow::Result<i32> {
    match command {
        PolicyCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&policy::policy_schema())?
            );
            Ok(0)
        }
        PolicyCommand::Check { paths } => {
            let mut units = Vec::new();
            for path in &paths {
                policy_units(path, &mut units);
            }
            if units.is_empty() {
                anyhow::bail!("no policy files under {}", paths[0].display());
            }
            let (mut errors, mut warnings) = (0, 0);
            for unit in &units {
                match policy::load_dir(unit) {
                    Ok(loaded) => {
                        warnings += loaded.warnings.len();
                        for warning in &loaded.warnings {
                            println!("{warning}");
                        }
                        println!("{}: ok (version {})", unit.display(), loaded.version);
                    }
                    Err(error) => {
                        errors += error.errors.len();
                        warnings += error.warnings.len();
                        for problem in error.errors.iter().chain(&error.warnings) {
                            println!("{problem}");
                        }
                    }
                }
            }
            println!(
                "{} polic{} checked: {errors} error(s), {warnings} warning(s)",
                units.len(),
                if units.len() == 1 { "y" } else { "ies" }
            );
            Ok(if errors > 0 { 1 } else { 0 })
        }
    }
}

fn agent_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the swarmpilot executable for the workers")
}

/// Runs one command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Policy { command } => policy_command(command),
        Command::Actions(args) => actions::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "swarmpilot", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(0)
        }
        Command::MockProvider {
            port,
            requests_per_sec,
            burst,
            latency_ms,
        } => {
            let limits = crate::mock_provider::Limits {
                requests_per_sec,
                burst,
                latency_ms,
            };
            actix::System::new()
                .block_on(crate::mock_provider::run(port, limits, |addr| {
                    println!("mock provider listening on http://{addr}");
                }))
                .context("mock provider failed")?;
            Ok(0)
        }
        Command::Read(read) => reads::run(read),
        Command::Replay(args) => {
            replay::run(args)?;
            Ok(0)
        }
        Command::Forecast {
            input,
            horizon,
            output,
            allow_unsorted,
        } => {
            forecast::run(&input, &output, horizon, allow_unsorted)?;
            Ok(0)
        }
        Command::Detect {
            input,
            output,
            allow_unsorted,
            warm_up,
            parameters,
        } => {
            let config = detect::config_with(&parameters)?;
            detect::run(&input, &output, allow_unsorted, warm_up, config)?;
            Ok(0)
        }
        Command::Agent {
            listen,
            pool,
            id,
            provider,
            model,
            concurrency,
        } => {
            let id = id.unwrap_or_else(|| format!("{pool}-{}", listen.port()));
            actix::System::new()
                .block_on(crate::worker::run(crate::worker::WorkerConfig {
                    listen,
                    pool,
                    id,
                    provider,
                    model,
                    concurrency,
                }))
                .context("worker failed")?;
            Ok(0)
        }
        Command::Serve {
            policies,
            data_dir,
            listen,
            advertise_url,
        } => {
            let (policy, source) = load_policy(policies.as_deref())?;
            let from_policy = policy.policy.global.listen.as_deref().map(str::parse);
            let listen = match (listen, from_policy) {
                (Some(listen), _) => listen,
                // The policy check already refused an address that does not parse.
                (None, Some(Ok(listen))) => listen,
                _ => DEFAULT_LISTEN.parse()?,
            };
            let config = ControllerConfig {
                policy,
                source,
                data_dir,
                listen,
                agent_exe: agent_exe()?,
                clock: crate::clock::Clock::system(),
                lease: None,
            };
            actix::System::new().block_on(serve(config, advertise_url))?;
            Ok(0)
        }
        Command::Demo {
            duration,
            listen,
            data_dir,
            policies,
        } => {
            let (policy, source) = load_policy(policies.as_deref())?;
            // The first pool the controller runs: an observe-only one has no agents to load.
            let pool = policy
                .policy
                .pools
                .iter()
                .find(|(_, pool)| !pool.observe_only())
                .map(|(name, _)| name.clone())
                .context("the policy defines no pool with a driver to demonstrate")?;
            let data_dir = data_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("swarmpilot-demo-{}", crate::clock::now_ms()))
            });
            let config = crate::demo::DemoConfig {
                duration: Duration::from_secs(duration.max(1)),
                listen: listen.unwrap_or_else(default_demo_listen),
                data_dir,
                policy,
                source,
                pool,
                agent_exe: agent_exe()?,
            };
            actix::System::new().block_on(crate::demo::run(config))?;
            Ok(0)
        }
    }
}

/// The default address if free, else any free loopback port.
fn default_demo_listen() -> SocketAddr {
    let default: SocketAddr = DEFAULT_LISTEN
        .parse()
        .unwrap_or(([127, 0, 0, 1], 8080).into());
    match std::net::TcpListener::bind(default) {
        Ok(_) => default,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

async fn serve(mut config: ControllerConfig, advertise_url: Option<String>) -> anyhow::Result<()> {
    if let Some(url) = &advertise_url {
        let usable = (url.starts_with("http://") || url.starts_with("https://"))
            && actix_web::http::header::HeaderValue::from_str(url).is_ok();
        anyhow::ensure!(
            usable,
            "--advertise-url {url:?} is not an http:// or https:// URL"
        );
    }
    let grace = Duration::from_secs(config.policy.policy.global.shutdown_grace_secs);
    let mut stop = watch_signals(grace).context("cannot watch SIGTERM and SIGINT")?;
    // Heard from the start: a standby told to reload must not die of the signal.
    let keeper = reload_on_sighup().context("cannot watch SIGHUP")?;
    // On a PostgreSQL store, controllers elect one leader; the others stand by.
    let election = leader::Election::of(&config)?;
    let stepping_down = Arc::new(AtomicBool::new(false));
    let mut lease = None;
    if let Some(election) = &election {
        let Some(held) = election
            .lead(&mut config, &mut stop, &stepping_down)
            .await?
        else {
            tracing::info!(message = "Standby stopped.");
            return Ok(());
        };
        config.lease = Some(held.clone());
        lease = Some(held);
    }
    // Gives the lease up, so that a standby takes over at once.
    let release = || {
        if let (Some(election), Some(lease)) = (&election, &lease) {
            stepping_down.store(true, Ordering::SeqCst);
            election.release(lease);
        }
    };
    let controller = match Controller::start(config).await {
        Ok(controller) => controller,
        Err(error) => {
            // A leader that cannot start must not keep the standbys waiting.
            release();
            return Err(error.into());
        }
    };
    if let (Some(election), Some(lease)) = (&election, &lease) {
        election.advertise(lease, advertise_url.as_deref().unwrap_or(&controller.url));
    }
    let _ = keeper.set(controller.policy_keeper.clone());
    // Tests and scripts read this line to find the port when listening on port 0.
    println!("swarmpilot listening on {}", controller.url);
    println!("admin token in {}", controller.token_path.display());
    let _ = stop.await;
    let stopping = std::time::Instant::now();
    controller.shutdown(grace).await;
    // The final report gets what is left of the shutdown's bound, less two seconds for the
    // actors to stop: past the bound the process exits anyway.
    let left = shutdown_bound(grace).saturating_sub(stopping.elapsed() + Duration::from_secs(2));
    for file in controller.final_report(left).await {
        eprintln!("final report: {}", file.display());
    }
    release();
    tracing::info!(message = "Controller stopped.");
    Ok(())
}

/// Reloads the policy on every SIGHUP, as daemons do, once the keeper is set (a standby has
/// none: it reads the policy when it leads); a policy that does not load is logged and the
/// running one stays.
fn reload_on_sighup() -> std::io::Result<Arc<std::sync::OnceLock<PolicyKeeperAddr>>> {
    use crate::actors::policy::ReloadPolicy;
    let keeper: Arc<std::sync::OnceLock<PolicyKeeperAddr>> = Arc::default();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    let slot = keeper.clone();
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            // The keeper logs the outcome: the new version, or why the running one stays.
            for _ in signals.forever() {
                match slot.get() {
                    Some(keeper) => {
                        tracing::info!(message = "SIGHUP: reloading the policy.");
                        keeper.do_send(ReloadPolicy {
                            actor: "SIGHUP".into(),
                        });
                    }
                    None => tracing::info!(
                        message = "SIGHUP on a standby: the policy is read when it leads."
                    ),
                }
            }
        })?;
    Ok(keeper)
}

/// The address of the actor that keeps the policy.
type PolicyKeeperAddr = actix::Addr<crate::actors::policy::PolicyKeeper>;

/// How long a shutdown may take in all before the process exits regardless.
fn shutdown_bound(grace: Duration) -> Duration {
    grace + crate::controller::STOP_AGENTS_WITHIN + Duration::from_secs(2)
}

/// Watches SIGTERM and SIGINT on a thread of its own, so that a busy controller still hears
/// them: the first resolves the answer (a graceful shutdown); from then on the controller
/// exits at the latest `grace` plus the time to stop agents later, and a second signal exits
/// at once. Either way the agents die with it (they asked the kernel for that).
fn watch_signals(grace: Duration) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first = Some(tx);
            for signal in signals.forever() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                let Some(tx) = first.take() else {
                    tracing::warn!(message = "Second signal: exiting now.", signal = name);
                    std::process::exit(128 + signal);
                };
                tracing::info!(
                    message = "Shutting down.",
                    signal = name,
                    grace_secs = grace.as_secs()
                );
                let _ = tx.send(());
                let limit = shutdown_bound(grace);
                let _ = std::thread::Builder::new()
                    .name("shutdown-deadline".into())
                    .spawn(move || {
                        std::thread::sleep(limit);
                        tracing::error!(
                            message = "Shutdown overran its bound: exiting now.",
                            bound_secs = limit.as_secs()
                        );
                        std::process::exit(1);
                    });
            }
        })?;
    Ok(rx)
}
