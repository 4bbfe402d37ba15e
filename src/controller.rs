//! Assembles the controller: the store, the drivers, every actor, and the HTTP API.
//!
//! `serve`, `demo` and the end-to-end tests all start the controller through
//! [`Controller::start`], so they run the same code.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context};

use crate::actors::actuator::{Actuator, PoolDriver, Quiesce, Shutdown};
use crate::actors::alert::Alert;
use crate::actors::events::{Event, EventBroker, Publish};
use crate::actors::fleet::{FleetLinks, FleetSupervisor};
use crate::actors::health::{Health, StopJudging};
use crate::actors::optimizer::Optimizer;
use crate::actors::policy::{PolicyKeeper, PolicySource};
use crate::actors::sources::collector::Collector;
use crate::actors::sources::ws_pull::{PullLinks, WsPull};
use crate::actors::tasks::TaskTracker;
use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::drivers::http::{self, HttpConfig, HttpDriver};
use crate::drivers::kubernetes::{self, Credentials, KubernetesConfig, KubernetesDriver, Sources};
use crate::drivers::process::{ProcessConfig, ProcessDriver};
use crate::drivers::{Driver, DriverError, Secret};
use crate::policy::{DriverConfig, LoadedPolicy, PolicyHandle, PoolPolicy, WorkloadKind};
use crate::store::models::ModelStore;
use crate::store::{RollupWriter, Store, StoreError};

/// How long stopping the agents may take at shutdown before the controller exits anyway
/// (its children die with it: they asked the kernel for that).
pub const STOP_AGENTS_WITHIN: Duration = Duration::from_secs(5);

/// How the controller is run.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The policy to start with.
    pub policy: LoadedPolicy,
    /// Where it came from; reloads read it again.
    pub source: PolicySource,
    /// Directory for the database, the admin token and agent logs.
    pub data_dir: PathBuf,
    /// Address for the HTTP API.
    pub listen: SocketAddr,
    /// The `swarmpilot` executable that runs the bundled worker.
    pub agent_exe: PathBuf,
    /// Where every actor reads the time.
    pub clock: Clock,
    /// The leader's lease this controller holds (controllers sharing a PostgreSQL store):
    /// every write of its store checks it first.
    pub lease: Option<crate::store::Lease>,
}

/// Errors that keep the controller from starting.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The store could not be opened.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// The store's password could not be read.
    #[error("cannot read the store's password: {0}")]
    StorePassword(String),
    /// A file or socket operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The API would listen beyond loopback with no configured credentials.
    #[error("refusing to listen on {0}: without configured tokens the API stays on loopback")]
    NotLoopback(SocketAddr),
    /// The API would listen beyond loopback in clear.
    #[error(
        "refusing to listen on {0} without TLS: bearer tokens would travel in clear; set \
         global.tls (cert_file, key_file), or global.plaintext_beyond_loopback = true"
    )]
    Plaintext(SocketAddr),
    /// The policy's TLS files cannot serve.
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    /// A pool's driver could not be set up.
    #[error("cannot set up the driver of pool {pool}")]
    Driver {
        /// The pool.
        pool: String,
        /// Why.
        #[source]
        source: DriverError,
    },
    /// sysinfo could not read the host.
    #[error("cannot read system information: {0}")]
    System(String),
    /// The scraper's HTTP client could not be built.
    #[error("cannot build the HTTP client that scrapes Prometheus targets")]
    Scraper(#[source] reqwest::Error),
}

/// A running controller.
pub struct Controller {
    /// The registry of agents.
    pub fleet: Addr<FleetSupervisor>,
    /// The alert actor.
    pub alert: Addr<Alert>,
    /// The actuator.
    pub actuator: Addr<Actuator>,
    /// The policy keeper.
    pub policy_keeper: Addr<PolicyKeeper>,
    /// The policy in force.
    pub policy: PolicyHandle,
    /// The durable store.
    pub store: Store,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The API's base URL (`https://` when it serves TLS).
    pub url: String,
    /// Where the admin token is stored.
    pub token_path: PathBuf,
    /// The admin token.
    pub token: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// When it started, epoch milliseconds.
    pub started_ms: i64,
    clock: Clock,
    rollups: crate::store::RollupSink,
    server: actix_web::dev::ServerHandle,
    health: Addr<Health>,
}

impl Controller {
    /// Starts everything inside the current actix system.
    pub async fn start(config: ControllerConfig) -> Result<Controller, ControllerError> {
        let global = &config.policy.policy.global;
        may_listen(config.listen, global)?;
        let tls = global
            .tls
            .as_ref()
            .map(api::tls::server_config)
            .transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let io = |context: String| move |source| ControllerError::Io { context, source };
        let listener = TcpListener::bind(config.listen)
            .map_err(io(format!("cannot listen on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io("cannot read the listen address".into()))?;
        let clock = config.clock.clone();
        let target = crate::store::StoreTarget::of(&config.policy.policy.store, &config.data_dir)
            .map_err(ControllerError::StorePassword)?;
        let store = Store::open_target(&target)?.with_clock(clock.clone());
        if let Some(lease) = &config.lease {
            store.fence(lease.clone());
        }
        tracing::info!(message = "Store open.", engine = store.engine().as_str());
        let (token_path, token) =
            api::auth::ensure_admin_token(&config.data_dir).map_err(io(format!(
                "cannot write the admin token in {}",
                config.data_dir.display()
            )))?;
        let log_dir = config.data_dir.join("agents");
        std::fs::create_dir_all(&log_dir)
            .map_err(io(format!("cannot create {}", log_dir.display())))?;

        let handle = PolicyHandle::new(with_overlay(config.policy, &config.data_dir));
        let policy = handle.current();

        // Drivers are made once, before any actor, so bad driver settings stop the start
        // early. A pool added by a reload needs a restart to get one.
        let mut pools = HashMap::new();
        for (name, pool) in &policy.policy.pools {
            if pool.observe_only() {
                // No driver: the actuator refuses every action for the pool.
                continue;
            }
            let driver = build_driver(name, pool, &config.agent_exe, &config.data_dir, &log_dir)?;
            let grace = pool.startup_secs + policy.policy.global.heartbeat_timeout_secs;
            pools.insert(
                name.clone(),
                PoolDriver {
                    driver,
                    startup_grace_secs: grace,
                    drain: Duration::from_millis(pool.drain_ms),
                    startup_ms: Default::default(),
                    weights: Default::default(),
                    remote_size: Arc::new((-1).into()),
                    concurrency: Default::default(),
                    models: Default::default(),
                },
            );
        }

        let policy_keeper = PolicyKeeper::new(
            handle.clone(),
            config.source.clone(),
            config.data_dir.clone(),
            store.clone(),
        )
        .with_clock(clock.clone())
        .start();

        // Fleet and collector/health refer to each other: create the contexts first.
        let fleet_ctx = Context::<FleetSupervisor>::new();
        let fleet = fleet_ctx.address();
        let optimizer_ctx = Context::<Optimizer>::new();
        let optimizer = optimizer_ctx.address();

        // The event stream: the store tells it every action log row once durable.
        let events = EventBroker::new(fleet.clone()).start();
        let publish = events.clone();
        store.on_transition(Arc::new(move |entry| {
            publish.do_send(Publish(Event::Action(Box::new(entry))));
        }));
        let notifier = crate::notify::Notifier::new(handle.clone(), format!("{scheme}://{addr}"));
        let alert = Alert::new(store.clone())
            .with_events(events.clone().recipient())
            .with_clock(clock.clone())
            .with_routing(handle.clone(), notifier.clone())
            .with_subscriber(optimizer.clone().recipient())
            .start();
        let health = Health::new(
            handle.clone(),
            vec![
                fleet.clone().recipient(),
                optimizer.clone().recipient(),
                alert.clone().recipient(),
            ],
        )
        .with_late(alert.clone().recipient())
        .with_forget(fleet.clone().recipient())
        .with_clock(clock.clone())
        .start();
        let collector = Collector::new(handle.clone(), fleet.clone().recipient())
            .map_err(|e| ControllerError::System(e.to_string()))?
            .with_exits(health.clone().recipient())
            .with_clock(clock.clone())
            .start();
        let retention = handle.clone();
        let (rollup_sink, _rollup_writer) = RollupWriter::start(store.clone(), move || {
            retention.current().policy.global.retention_days
        })
        .map_err(io("cannot start the rollup writer".into()))?;
        let pull_failures = crate::actors::sources::ws_pull::PullFailures::default();
        let ws_pull = WsPull::new(
            handle.clone(),
            fleet.clone().recipient(),
            PullLinks {
                ingest: fleet.clone().recipient(),
                admit: fleet.clone().recipient(),
                health: health.clone().recipient(),
                failures: pull_failures.clone(),
            },
        )
        .with_clock(clock.clone())
        .start();
        let links = FleetLinks {
            watch: collector.clone().recipient(),
            forget: vec![
                collector.recipient(),
                health.clone().recipient(),
                alert.clone().recipient(),
                ws_pull.recipient(),
            ],
            track: health.clone().recipient(),
            heartbeat: health.clone().recipient(),
            crossings: alert.clone().recipient(),
            anomalies: vec![alert.clone().recipient(), optimizer.clone().recipient()],
            models: Some(ModelStore::new(&config.data_dir.join("models"))),
            rollups: Some(rollup_sink.clone()),
            events: Some(events.clone().recipient()),
        };
        fleet_ctx.run(FleetSupervisor::new(handle.clone(), links).with_clock(clock.clone()));
        let scrape_stats = crate::actors::sources::scrape::ScrapeStats::default();
        let pool_inputs = crate::ingest::scrape::promql::PoolInputs::default();
        crate::actors::sources::scrape::Scraper::new(
            handle.clone(),
            fleet.clone(),
            health.clone().recipient(),
            scrape_stats.clone(),
            pool_inputs.clone(),
        )
        .map_err(ControllerError::Scraper)?
        .with_clock(clock.clone())
        .start();

        let actuator = Actuator::new(
            store.clone(),
            fleet.clone(),
            policy_keeper.clone(),
            handle.clone(),
            pools,
        )
        .with_notifier(notifier.clone())
        .with_alerts(alert.clone().recipient())
        .with_clock(clock.clone());
        let halt = actuator.halt();
        let decisions = Arc::new(crate::analytics::latency::LatencyHistogram::default());
        let actuator = actuator.start();
        optimizer_ctx.run(
            Optimizer::new(handle.clone(), fleet.clone(), actuator.clone())
                .with_timing(decisions.clone())
                .with_alerts(alert.clone())
                .with_inputs(pool_inputs.clone())
                .with_clock(clock.clone()),
        );

        let tasks = TaskTracker::new(handle.clone(), fleet.clone().recipient())
            .with_clock(clock.clone())
            .start();
        let started_ms = clock.now_ms();
        crate::actors::reporter::Reporter::new(
            store.clone(),
            handle.clone(),
            notifier.clone(),
            config.data_dir.clone(),
        )
        .with_clock(clock.clone())
        .start();
        let state = ApiState {
            heartbeat: health.clone().recipient(),
            fleet: fleet.clone(),
            alert: alert.clone(),
            actuator: actuator.clone(),
            optimizer: optimizer.clone(),
            store: store.clone(),
            policy: handle.clone(),
            policy_keeper: policy_keeper.clone(),
            admin_token: token.clone(),
            rates: Default::default(),
            inflight: Default::default(),
            tokens: Default::default(),
            notifier,
            tasks,
            scrape: scrape_stats,
            pull_failures,
            pool_inputs,
            clock: clock.clone(),
            halt,
            store_probe: Default::default(),
            events,
            tickets: Default::default(),
            latencies: Default::default(),
            decisions,
            fleet_view: crate::api::FleetView::default(),
            scrape_cache: Default::default(),
            started_ms,
        };
        let server =
            api::serve(state, listener, tls).map_err(io("cannot start the HTTP server".into()))?;
        let server_handle = server.handle();
        actix::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(message = "HTTP server stopped.", %error);
            }
        });
        tracing::info!(message = "Controller started.", %addr, data_dir = %config.data_dir.display());
        Ok(Controller {
            fleet,
            alert,
            actuator,
            policy_keeper,
            policy: handle,
            store,
            addr,
            url: format!("{scheme}://{addr}"),
            token_path,
            token,
            data_dir: config.data_dir.clone(),
            started_ms,
            clock,
            rollups: rollup_sink,
            server: server_handle,
            health,
        })
    }

    /// Stops intake (the API), lets driver calls in flight finish and their actions reach
    /// the log for up to `grace`, then stops every agent process (a remote driver's agents
    /// stay with their orchestrator).
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        // Pushed reports stop with the API: their agents are not offline for it, and a fleet
        // falling silent at once would be a storm of alerts holding the actors' thread.
        let _ = tokio::time::timeout_at(deadline, self.health.send(StopJudging)).await;
        // Nothing new is taken from now on, by the optimizer or over the API.
        let _ = tokio::time::timeout_at(deadline, self.actuator.send(Quiesce)).await;
        self.server.stop(true).await;
        loop {
            match tokio::time::timeout_at(deadline, self.actuator.send(Quiesce)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(calls)) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(message = "Waiting for driver calls in flight.", calls);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Ok(calls)) => {
                    tracing::warn!(
                        message = "Shutdown grace over; actions in flight are left to recovery.",
                        calls
                    );
                    break;
                }
                Ok(Err(error)) => {
                    tracing::warn!(message = "Actuator gone before shutdown.", %error);
                    break;
                }
                Err(_) => {
                    tracing::warn!(message = "Actuator did not answer within the shutdown grace.");
                    break;
                }
            }
        }
        // Each agent gets the driver's stop grace, all at once.
        let stopped = tokio::time::timeout(STOP_AGENTS_WITHIN, self.actuator.send(Shutdown)).await;
        if !matches!(stopped, Ok(Ok(()))) {
            tracing::warn!(
                message = "Agents not all stopped in time; they die with the controller."
            );
        }
    }
}

impl Controller {
    /// Writes the final report (since the start) where `[reports]` says, unless it says
    /// `final = false`, within `budget`; answers the files. The agents first hand over the
    /// minutes they are summing. A failure or an overrun is logged: stopping goes on.
    ///
    /// Called last, once everything else has stopped: after a short wait for the agents to
    /// hand over their minutes it blocks this thread (the actors' thread, which may be busy
    /// with a storm of alerts by now) on the report's own thread, up to the budget.
    pub async fn final_report(&self, budget: Duration) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + budget;
        let (store, policy, dir) = (
            self.store.clone(),
            self.policy.clone(),
            self.data_dir.clone(),
        );
        let (started, now) = (self.started_ms, self.clock.now_ms());
        // The minutes still in the agents and the writer's queue belong in it.
        let finished = self.fleet.send(crate::actors::fleet::FinishAllMinutes);
        let _ = tokio::time::timeout(budget.min(Duration::from_secs(1)), finished).await;
        let rollups = self.rollups.clone();
        let (tell, told) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("final-report".into())
            .spawn(move || {
                if !rollups.flush(Duration::from_secs(10)) {
                    tracing::warn!(message = "Rollups not all written before the final report.");
                }
                let _ = tell.send(crate::reports::schedule::write_final(
                    &store, &policy, &dir, started, now,
                ));
            });
        // A thread of its own, not the runtime's blocking pool, so an overrun leaves nothing
        // for the runtime to wait for on the way out; files are written whole or not at all.
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let written = match spawned {
            Ok(_) => told.recv_timeout(left).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match written {
            Ok(Ok(Some((_, files)))) => {
                tracing::info!(message = "Final report written.", files = ?files);
                files
            }
            Ok(Ok(None)) => Vec::new(),
            Ok(Err(error)) => {
                tracing::warn!(message = "Final report not written.", %error);
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(message = "Final report not written in time, or its thread failed.", %error);
                Vec::new()
            }
        }
    }
}

/// Whether the API may listen on `listen` under `global`: beyond loopback only with tokens,
/// and with TLS unless the policy says plaintext in so many words.
pub(crate) fn may_listen(
    listen: SocketAddr,
    global: &crate::policy::Global,
) -> Result<(), ControllerError> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if global.tokens.is_empty() {
        return Err(ControllerError::NotLoopback(listen));
    }
    if global.tls.is_none() && !global.plaintext_beyond_loopback {
        return Err(ControllerError::Plaintext(listen));
    }
    Ok(())
}

/// The driver `pool` asks for.
fn build_driver(
    name: &str,
    pool: &PoolPolicy,
    agent_exe: &Path,
    data_dir: &Path,
    log_dir: &Path,
) -> Result<Arc<dyn Driver>, ControllerError> {
    let failed = |source| ControllerError::Driver {
        pool: name.to_string(),
        source,
    };
    let driver: Arc<dyn Driver> = match &pool.driver {
        DriverConfig::None => {
            return Err(failed(crate::drivers::DriverError::Unsupported {
                driver: "none",
                verb: "run agents (the pool is observe-only)",
            }));
        }
        DriverConfig::Process { command, env } => {
            let command = if command.is_empty() {
                ProcessConfig::bundled_worker(agent_exe)
            } else {
                command.clone()
            };
            Arc::new(ProcessDriver::new(ProcessConfig {
                pool: name.to_string(),
                command,
                log_dir: log_dir.to_path_buf(),
                startup_timeout: Duration::from_secs(pool.startup_secs.max(1) * 2),
                controller: data_dir.display().to_string(),
                env: env.clone(),
                model: pool.model.as_ref().map(|m| m.name.clone()),
            }))
        }
        DriverConfig::Http {
            url,
            timeout_ms,
            retries,
            token_env,
        } => {
            // The policy check has made sure the variable is set; a missing one here means
            // it was unset since, and the orchestrator will answer 401.
            let token = token_env
                .as_ref()
                .and_then(|var| std::env::var(var).ok())
                .map(Secret::new);
            let driver = HttpDriver::new(HttpConfig {
                pool: name.to_string(),
                url: url.clone(),
                timeout: Duration::from_millis(*timeout_ms),
                retries: *retries,
                backoff: http::FIRST_BACKOFF,
                token,
            });
            Arc::new(driver.map_err(failed)?)
        }
        DriverConfig::Kubernetes {
            namespace,
            kind,
            name: workload,
            api_server,
            kubeconfig,
            context,
            timeout_ms,
        } => {
            let sources =
                Sources::from_env(kubeconfig.as_ref().map(PathBuf::from), context.clone());
            let credentials = Credentials::resolve(&sources, api_server.as_deref())
                .map_err(|error| failed(error.into()))?;
            let kind = match kind {
                WorkloadKind::Deployment => kubernetes::WorkloadKind::Deployment,
                WorkloadKind::StatefulSet => kubernetes::WorkloadKind::StatefulSet,
            };
            let driver = KubernetesDriver::new(
                KubernetesConfig {
                    pool: name.to_string(),
                    namespace: namespace.clone(),
                    kind,
                    name: workload.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                },
                credentials,
            )
            .map_err(failed)?;
            tracing::info!(
                message = "Kubernetes driver ready.",
                pool = name,
                workload = %format!("{}/{workload}", kind.plural()),
                namespace = driver.namespace()
            );
            Arc::new(driver)
        }
    };
    Ok(driver)
}

/// The operator's policy with the controller's overlay on top; an overlay that cannot be
/// read or no longer fits is logged and left on disk, and the files' policy is used.
fn with_overlay(files: LoadedPolicy, data_dir: &std::path::Path) -> LoadedPolicy {
    let result = crate::store::overlay::read_overlay(data_dir)
        .map_err(crate::actors::policy::overlay_error)
        .and_then(|entries| crate::policy::overlaid(files.clone(), entries));
    match result {
        Ok(loaded) => loaded,
        Err(error) => {
            for problem in &error.errors {
                tracing::error!(message = "Policy overlay not applied.", %problem);
            }
            files
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_tokens_and_tls_or_plaintext_said_in_so_many_words() {
        let policy = |text: &str| crate::policy::load_str("p.toml", text).unwrap().policy;
        let (anywhere, loopback) = (
            "0.0.0.0:8080".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        );
        let tokens = "[[global.tokens]]\nname = \"ops\"\nrole = \"viewer\"\ntoken_env = \"PATH\"\n";
        let bare = policy("");
        assert!(may_listen(loopback, &bare.global).is_ok());
        assert!(matches!(
            may_listen(anywhere, &bare.global),
            Err(ControllerError::NotLoopback(_))
        ));
        let with_tokens = policy(tokens);
        assert!(matches!(
            may_listen(anywhere, &with_tokens.global),
            Err(ControllerError::Plaintext(_))
        ));
        let said = policy(&format!(
            "[global]\nplaintext_beyond_loopback = true\n{tokens}"
        ));
        assert!(may_listen(anywhere, &said.global).is_ok());
        let tls = policy(&format!(
            "[global.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n{tokens}"
        ));
        assert!(may_listen(anywhere, &tls.global).is_ok());
    }
}
