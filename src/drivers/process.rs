//! The `process` driver: agents are local OS processes on free loopback ports.
//!
//! Children are never orphaned: each one asks the kernel to kill it when the controller
//! dies (`PR_SET_PDEATHSIG`), a dropped child is killed (`kill_on_drop`), and `shutdown`
//! stops them all gracefully (SIGTERM, then SIGKILL after a grace period).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use super::{Driver, DriverAgent, DriverError, DriverFuture};
use crate::clock;
use crate::domain::AgentHandle;
use crate::policy::PoolModel;

/// How long a stopped agent gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often readiness is probed while an agent starts.
const READY_POLL: Duration = Duration::from_millis(25);

/// Settings of one pool's process driver.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The pool whose agents this driver runs.
    pub pool: String,
    /// Program and arguments; `{port}`, `{pool}` and `{agent}` are substituted.
    pub command: Vec<String>,
    /// Directory for each agent's output, `<agent>.log`.
    pub log_dir: PathBuf,
    /// How long an agent may take to accept connections.
    pub startup_timeout: Duration,
    /// Names the controller in each child's environment as `SWARMPILOT_CONTROLLER`, so an
    /// operator (or a test) can find every process a controller started.
    pub controller: String,
    /// Variables passed from the controller's environment by name, beside [`BASE_ENV`].
    pub env: Vec<String>,
    /// The pool's model, each agent's `SWARMPILOT_MODEL` unless `switch_model` moved it.
    pub model: Option<String>,
}

/// What every agent gets from the controller's environment, whatever the policy lists: what a
/// process needs to run and log, nothing that could be a secret.
pub const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SWARMPILOT_LOG",
    "RUST_LOG",
];

impl ProcessConfig {
    /// The command that runs the bundled worker, `EXE agent ...`.
    pub fn bundled_worker(exe: &Path) -> Vec<String> {
        [
            exe.display().to_string().as_str(),
            "agent",
            "--listen",
            "127.0.0.1:{port}",
            "--pool",
            "{pool}",
            "--id",
            "{agent}",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    }
}

/// Runs one pool's agents as child processes.
pub struct ProcessDriver {
    config: ProcessConfig,
    state: Mutex<State>,
}

struct State {
    next_index: u64,
    agents: BTreeMap<String, Managed>,
    /// Shut down: no agent starts any more.
    closed: bool,
    /// The concurrency last set, passed to agents started later as `SWARMPILOT_CONCURRENCY`.
    concurrency: Option<u32>,
    /// The model each agent was moved to, passed to it when it restarts as `SWARMPILOT_MODEL`.
    models: BTreeMap<String, PoolModel>,
}

impl State {
    /// The variables an agent starts with besides the pool's: its concurrency, and the model
    /// it was moved to or else the pool's own (`pool_model`).
    fn env_for(&self, agent: &str, pool_model: Option<&str>) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(limit) = self.concurrency {
            env.push(("SWARMPILOT_CONCURRENCY", limit.to_string()));
        }
        let moved = self.models.get(agent).map(|m| m.name.as_str());
        if let Some(model) = moved.or(pool_model) {
            env.push(("SWARMPILOT_MODEL", model.to_string()));
        }
        env
    }
}

/// One child process. A task of its own waits for it, so it is reaped the moment it exits
/// (tokio wakes on SIGCHLD), and kills it if the driver drops it.
struct Managed {
    handle: AgentHandle,
    /// Its exit status once it has exited (and been reaped).
    exited: watch::Receiver<Option<std::process::ExitStatus>>,
    /// Dropping this kills the child.
    _kill: oneshot::Sender<()>,
}

impl Managed {
    /// Takes `child` into a waiting task.
    fn watch(handle: AgentHandle, mut child: Child) -> Managed {
        let (status_tx, exited) = watch::channel(None);
        let (kill, killed) = oneshot::channel::<()>();
        let pid = handle.pid;
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    // Its whole process group: a shell's children too.
                    signal_group(pid, libc::SIGKILL);
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // Reaped: the status, or a failure to wait, which means it is gone too.
            let _ =
                status_tx.send(Some(status.unwrap_or_else(|_| {
                    std::os::unix::process::ExitStatusExt::from_raw(-1)
                })));
        });
        Managed {
            handle,
            exited,
            _kill: kill,
        }
    }

    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        *self.exited.borrow()
    }
}

impl ProcessDriver {
    /// A driver with no agents yet.
    pub fn new(config: ProcessConfig) -> Self {
        ProcessDriver {
            config,
            state: Mutex::new(State {
                next_index: 0,
                agents: BTreeMap::new(),
                closed: false,
                concurrency: None,
                models: BTreeMap::new(),
            }),
        }
    }

    /// Terminates `agent`'s process; what the driver remembers of it (its model) stays.
    async fn halt(&self, agent: &str) -> Result<(), DriverError> {
        let managed = self.lock().agents.remove(agent);
        let managed = managed.ok_or_else(|| DriverError::NoSuchAgent(agent.to_string()))?;
        terminate(managed).await;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a map of children; a panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `agent` on a free port and waits until it accepts connections.
    async fn spawn_ready(&self, agent: &str) -> Result<AgentHandle, DriverError> {
        let port = free_port().map_err(|source| DriverError::Io {
            context: "cannot find a free loopback port".into(),
            source,
        })?;
        let args: Vec<String> = self
            .config
            .command
            .iter()
            .map(|arg| {
                arg.replace("{port}", &port.to_string())
                    .replace("{pool}", &self.config.pool)
                    .replace("{agent}", agent)
            })
            .collect();
        let uses_port = self.config.command.iter().any(|a| a.contains("{port}"));
        let log_path = self.config.log_dir.join(format!("{agent}.log"));
        // Only this incarnation's output explains a failed start.
        let offset = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let handle = self.launch(agent, &args, &log_path, port, uses_port)?;
        let pid = handle.pid;
        tracing::info!(message = "Agent process started.", agent, ?pid, port);

        let deadline = tokio::time::Instant::now() + self.config.startup_timeout;
        loop {
            if let Some(status) = self.exit_status(agent) {
                self.lock().agents.remove(agent);
                return Err(DriverError::StartFailed {
                    agent: agent.to_string(),
                    reason: format!("exited with {status}; output: {}", tail(&log_path, offset)),
                });
            }
            let ready = if uses_port {
                tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .await
                    .is_ok()
            } else {
                true
            };
            if ready {
                return Ok(handle);
            }
            if tokio::time::Instant::now() >= deadline {
                let managed = self.lock().agents.remove(agent);
                if let Some(managed) = managed {
                    terminate(managed).await;
                }
                return Err(DriverError::StartFailed {
                    agent: agent.to_string(),
                    reason: format!(
                        "not accepting connections on port {port} after {:?}; output: {}",
                        self.config.startup_timeout,
                        tail(&log_path, offset)
                    ),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Spawns `agent` and takes it into the driver's map, under one lock so that a shutdown
    /// never misses a child (and, once shut down, nothing starts).
    fn launch(
        &self,
        agent: &str,
        args: &[String],
        log_path: &Path,
        port: u16,
        uses_port: bool,
    ) -> Result<AgentHandle, DriverError> {
        let mut state = self.lock();
        if state.closed {
            return Err(DriverError::StartFailed {
                agent: agent.to_string(),
                reason: "the controller is shutting down".into(),
            });
        }
        let env = state.env_for(agent, self.config.model.as_deref());
        let child =
            spawn(args, log_path, &self.config, &env).map_err(|source| DriverError::Io {
                context: format!("cannot start {:?} for agent {agent}", args.first()),
                source,
            })?;
        let handle = AgentHandle {
            id: agent.to_string(),
            pool: self.config.pool.clone(),
            pid: child.id(),
            endpoint: uses_port.then(|| format!("http://127.0.0.1:{port}")),
            started_ms: clock::now_ms(),
        };
        state
            .agents
            .insert(agent.to_string(), Managed::watch(handle.clone(), child));
        Ok(handle)
    }

    fn exit_status(&self, agent: &str) -> Option<std::process::ExitStatus> {
        self.lock().agents.get(agent)?.exit_status()
    }
}

impl Driver for ProcessDriver {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn start(&self) -> DriverFuture<'_, AgentHandle> {
        Box::pin(async move {
            let agent = {
                let mut state = self.lock();
                state.next_index += 1;
                format!("{}-{}", self.config.pool, state.next_index)
            };
            self.spawn_ready(&agent).await
        })
    }

    fn stop<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            self.halt(agent).await?;
            // Gone for good: a later agent of the same name starts on the pool's model.
            self.lock().models.remove(agent);
            Ok(())
        })
    }

    fn start_as<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle> {
        Box::pin(async move {
            if self.lock().agents.contains_key(agent) {
                return Err(DriverError::StartFailed {
                    agent: agent.to_string(),
                    reason: "it is already running".into(),
                });
            }
            self.spawn_ready(agent).await
        })
    }

    fn restart<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle> {
        Box::pin(async move {
            // The same agent again, on the model it was moved to if it was.
            self.halt(agent).await?;
            self.start_as(agent).await
        })
    }

    fn list(&self) -> Vec<DriverAgent> {
        let state = self.lock();
        let mut agents: Vec<DriverAgent> = state
            .agents
            .values()
            .map(|managed| DriverAgent {
                handle: managed.handle.clone(),
                running: managed.exit_status().is_none(),
            })
            .collect();
        agents.sort_by_key(|a| a.handle.started_ms);
        agents
    }

    fn set_concurrency(&self, limit: u32) -> DriverFuture<'_, ()> {
        Box::pin(async move {
            let endpoints: Vec<String> = {
                let mut state = self.lock();
                state.concurrency = Some(limit);
                state
                    .agents
                    .values()
                    .filter(|managed| managed.exit_status().is_none())
                    .filter_map(|managed| managed.handle.endpoint.clone())
                    .collect()
            };
            super::agent_api::post_limit(&endpoints, limit).await
        })
    }

    fn set_model<'a>(&'a self, agent: &'a str, model: &'a PoolModel) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let endpoint = {
                let state = self.lock();
                let managed = state
                    .agents
                    .get(agent)
                    .filter(|m| m.exit_status().is_none())
                    .ok_or_else(|| DriverError::NoSuchAgent(agent.to_string()))?;
                managed
                    .handle
                    .endpoint
                    .clone()
                    .ok_or_else(|| DriverError::Refused {
                        target: agent.to_string(),
                        status: 0,
                        message: "the agent serves no endpoint to tell".into(),
                    })?
            };
            super::agent_api::post_model(&endpoint, model).await?;
            self.lock().models.insert(agent.to_string(), model.clone());
            Ok(())
        })
    }

    fn shutdown(&self) -> DriverFuture<'_, ()> {
        Box::pin(async move {
            let all: Vec<Managed> = {
                let mut state = self.lock();
                state.closed = true;
                std::mem::take(&mut state.agents).into_values().collect()
            };
            // All at once: each waits out its own grace in parallel.
            futures_util::future::join_all(all.into_iter().map(terminate)).await;
            Ok(())
        })
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// Starts `args` with its output to `log_path` and a scrubbed environment: [`BASE_ENV`], the
/// pool's `env` names, and `SWARMPILOT_CONTROLLER`.
fn spawn(
    args: &[String],
    log_path: &Path,
    config: &ProcessConfig,
    env: &[(&'static str, String)],
) -> std::io::Result<Child> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut command = Command::new(program);
    command.env_clear();
    let passed = BASE_ENV
        .iter()
        .copied()
        .chain(config.env.iter().map(String::as_str));
    for name in passed {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .args(rest)
        .env("SWARMPILOT_CONTROLLER", &config.controller)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C in the terminal reaches the controller, which
        // then stops its agents in order, instead of reaching every agent at once.
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The controller may have died before prctl took effect.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Signals the agent's process group (it leads one), while the agent is not yet reaped.
fn signal(managed: &Managed, signal: libc::c_int) {
    // Its waiting task holds the status once reaped; until then the pid is still ours.
    if managed.exit_status().is_none() {
        signal_group(managed.handle.pid, signal);
    }
}

/// Signals process group `pid` (an agent leads its own): the agent and whatever it started.
fn signal_group(pid: Option<u32>, signal: libc::c_int) {
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) on the group our child leads. A group id is not reused while any
        // member lives; once none does the call fails with ESRCH and does nothing.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// SIGTERM to its process group, wait up to the grace period, then SIGKILL; always reaped by
/// its waiting task; whatever of its group is left (a shell's child) is killed after.
async fn terminate(managed: Managed) {
    signal(&managed, libc::SIGTERM);
    let mut exited = managed.exited.clone();
    let (id, pid) = (managed.handle.id.clone(), managed.handle.pid);
    let in_time = tokio::time::timeout(STOP_GRACE, exited.wait_for(Option::is_some))
        .await
        .is_ok();
    if !in_time {
        tracing::warn!(message = "Agent ignored SIGTERM; killing.", agent = %id);
    }
    // Dropping it tells its task to kill and reap it (at once if it has exited).
    drop(managed);
    let _ = exited.wait_for(Option::is_some).await;
    signal_group(pid, libc::SIGKILL);
    tracing::info!(message = "Agent process stopped.", agent = %id);
}

/// The last lines written to `path` after byte `offset`.
fn tail(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let joined: Vec<&str> = lines.into_iter().rev().collect();
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(command: &[&str], dir: &Path) -> ProcessDriver {
        ProcessDriver::new(ProcessConfig {
            pool: "p".into(),
            command: command.iter().map(ToString::to_string).collect(),
            log_dir: dir.to_path_buf(),
            startup_timeout: Duration::from_secs(5),
            controller: dir.display().to_string(),
            env: Vec::new(),
            model: None,
        })
    }

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[tokio::test]
    async fn starts_lists_restarts_and_stops_real_processes() {
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(&["sleep", "30"], dir.path());
        let first = driver.start().await.unwrap();
        let second = driver.start().await.unwrap();
        assert_eq!((first.id.as_str(), second.id.as_str()), ("p-1", "p-2"));
        let pid = first.pid.unwrap();
        assert!(alive(pid));
        assert_eq!(driver.list().iter().filter(|a| a.running).count(), 2);

        let restarted = driver.restart("p-1").await.unwrap();
        assert_eq!(restarted.id, "p-1");
        assert_ne!(restarted.pid, Some(pid));

        driver.stop("p-2").await.unwrap();
        assert!(!alive(second.pid.unwrap()), "stopped and reaped");
        assert!(matches!(
            driver.stop("p-2").await,
            Err(DriverError::NoSuchAgent(_))
        ));

        driver.shutdown().await.unwrap();
        assert!(driver.list().is_empty());
        assert!(!alive(restarted.pid.unwrap()));
    }

    #[tokio::test]
    async fn a_process_that_dies_shows_as_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(&["sleep", "30"], dir.path());
        let agent = driver.start().await.unwrap();
        // SAFETY: killing the child we just started.
        unsafe { libc::kill(agent.pid.unwrap() as libc::pid_t, libc::SIGKILL) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while driver.list()[0].running {
            assert!(std::time::Instant::now() < deadline, "death not noticed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        driver.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_command_that_fails_reports_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(&["sh", "-c", "echo boom >&2; exit 3", "{port}"], dir.path());
        let error = driver.start().await.unwrap_err().to_string();
        assert!(error.contains("boom"), "{error}");
        assert!(driver.list().is_empty());
    }
}
