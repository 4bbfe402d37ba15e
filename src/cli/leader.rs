//! Leadership among `serve` processes on one PostgreSQL store: one leads (runs the
//! controller and acts), the others stand by (serve reads and say where the leader is) and
//! try for the lease every second (every third of its time if that is shorter). The lease is
//! a row in the store (`store/lease.rs`, which says why it is safe); the leader renews it on
//! a thread of its own from the moment it takes it, and a watchdog exits the process once
//! four fifths of a lease pass (on the boot clock, which counts a suspend) since the start of
//! the last renewal that held, before another controller can take it. The controller's store
//! is fenced by the lease's epoch, so a leader that was paused past its lease cannot commit a
//! write either. Each controller's name is kept, and locked, in `DATA_DIR/node.id`: two
//! processes on one data directory would share a name, so the second refuses to start.
//! With `[store.kubernetes_lease]`, a Kubernetes Lease chooses the leader instead of the row
//! (`leader/kubernetes.rs`), and the row only fences.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::api::standby::{StandbyState, serve as serve_standby};
use crate::controller::ControllerConfig;
use crate::store::{Lease, Store, StoreTarget};

mod kubernetes;

/// The name of the election all controllers of one store take part in.
const ELECTION: &str = "controller";

/// The exit code of a leader that lost its lease (README: exit codes).
pub const EXIT_LEADERSHIP_LOST: i32 = 4;

/// This process's part in the election of its store.
pub(super) struct Election {
    store: Store,
    holder: String,
    ttl: Duration,
    /// The Kubernetes Lease that chooses the leader, when the policy names one.
    kube: Option<Arc<kubernetes::KubeElection>>,
    /// `node.id`, locked for as long as this process runs.
    _node: std::fs::File,
}

impl Election {
    /// The election of `config`'s store; `None` on SQLite, where one controller runs alone.
    pub(super) fn of(config: &ControllerConfig) -> anyhow::Result<Option<Election>> {
        let policy = &config.policy.policy.store;
        let target = StoreTarget::of(policy, &config.data_dir)
            .map_err(|why| anyhow::anyhow!("cannot read the store's password: {why}"))?;
        if matches!(target, StoreTarget::Sqlite(_)) {
            return Ok(None);
        }
        let (holder, node) = node_id(&config.data_dir)?;
        // A connection of its own: renewals never wait behind the controller's statements.
        let store = Store::open_target(&target).context("cannot open the store")?;
        let ttl = Duration::from_secs(policy.lease_secs);
        let kube = policy
            .kubernetes_lease
            .as_ref()
            .map(|lease| kubernetes::KubeElection::new(lease, &holder, ttl).map(Arc::new))
            .transpose()?;
        Ok(Some(Election {
            store,
            holder,
            ttl,
            kube,
            _node: node,
        }))
    }

    fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis() as i64
    }

    /// How often the leader renews the lease.
    fn every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often a standby tries for the lease: every second at most, so that a lease
    /// released on SIGTERM is taken within about a second (a try is one small statement).
    fn poll(&self) -> Duration {
        self.every().min(Duration::from_secs(1))
    }

    async fn try_lead(&self, address: &str) -> anyhow::Result<Result<Lease, crate::store::Leader>> {
        if let Some(kube) = &self.kube {
            return kube
                .try_lead(&self.store, &self.holder, address, ELECTION)
                .await;
        }
        let (store, holder, address, ttl) = (
            self.store.clone(),
            self.holder.clone(),
            address.to_string(),
            self.ttl_ms(),
        );
        tokio::task::spawn_blocking(move || store.try_lead(ELECTION, &holder, &address, ttl))
            .await?
            .context("cannot reach the store for the leader's lease")
    }

    /// Takes the lease, standing by on `config.listen` until it is free, and keeps renewing
    /// it from then until `stepping_down` is set; `None` when `stop` fired first.
    /// `config.listen` becomes the address actually bound.
    pub(super) async fn lead(
        &self,
        config: &mut ControllerConfig,
        stop: &mut tokio::sync::oneshot::Receiver<()>,
        stepping_down: &Arc<AtomicBool>,
    ) -> anyhow::Result<Option<Lease>> {
        let asked = boot_ms();
        let mut leader = match self.try_lead("").await {
            Ok(Ok(lease)) => {
                self.keep(&lease, asked, stepping_down.clone());
                return Ok(Some(lease));
            }
            Ok(Err(leader)) => leader,
            // Credentials or RBAC refused: no retry would help, so the start fails.
            Err(error) if refused_for_good(&error) => return Err(error),
            // Stands by, and tries again as a standby does.
            Err(error) => {
                tracing::warn!(
                    message = "Cannot read the leader's lease.",
                    error = format!("{error:#}")
                );
                crate::store::Leader::default()
            }
        };
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        config.listen = listener.local_addr()?;
        let global = &config.policy.policy.global;
        crate::controller::may_listen(config.listen, global)?;
        let tls = global
            .tls
            .as_ref()
            .map(crate::api::tls::server_config)
            .transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (token_path, admin_token) = crate::api::auth::ensure_admin_token(&config.data_dir)
            .context("cannot write the admin token")?;
        let seen = Arc::new(Mutex::new(Some(leader.clone())));
        let state = StandbyState {
            store: self.store.clone(),
            policy: Arc::new(config.policy.policy.clone()),
            admin_token,
            leader: seen.clone(),
            started_ms: crate::clock::now_ms(),
        };
        let server = serve_standby(listener, state, tls)?;
        let handle = server.handle();
        actix::spawn(server);
        // Tests and scripts read this line to find the port when listening on port 0.
        println!("swarmpilot listening on {scheme}://{}", config.listen);
        println!("admin token in {}", token_path.display());
        tracing::info!(message = "Standing by: another controller leads.",
            leader = %leader.holder, address = %leader.address, epoch = leader.epoch);
        let lease = loop {
            tokio::select! {
                _ = &mut *stop => {
                    handle.stop(true).await;
                    return Ok(None);
                }
                () = tokio::time::sleep(self.poll()) => {}
            }
            let asked = boot_ms();
            match self.try_lead("").await {
                Ok(Ok(lease)) => {
                    // Renewing before anything else: the standby's server takes a moment
                    // to stop, and the controller to start.
                    self.keep(&lease, asked, stepping_down.clone());
                    break lease;
                }
                Ok(Err(now)) => {
                    if now.holder != leader.holder || now.epoch != leader.epoch {
                        tracing::info!(message = "Another controller leads.",
                            leader = %now.holder, address = %now.address, epoch = now.epoch);
                    }
                    leader = now.clone();
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                }
                Err(error) => tracing::warn!(
                    message = "Cannot read the leader's lease.",
                    error = format!("{error:#}")
                ),
            }
        };
        // The controller binds the same address once the standby's server has let it go.
        handle.stop(true).await;
        tracing::info!(message = "Took the lead.", epoch = lease.epoch,
            after = %leader.holder);
        Ok(Some(lease))
    }

    /// Says where the leader serves.
    pub(super) fn advertise(&self, lease: &Lease, url: &str) {
        if let Err(error) = self.store.advertise(lease, url) {
            tracing::warn!(message = "Cannot record the leader's address.", %error);
        }
    }

    /// Keeps renewing `lease`, taken by a request that started at `asked` (boot clock,
    /// milliseconds), until `stepping_down` is set; exits the process once four fifths of a
    /// lease pass without a renewal that held.
    fn keep(&self, lease: &Lease, asked: u64, stepping_down: Arc<AtomicBool>) {
        // The start of the last renewal that held, boot clock milliseconds.
        let renewed = Arc::new(AtomicU64::new(asked));
        let (store, lease, ttl, every) =
            (self.store.clone(), lease.clone(), self.ttl, self.every());
        let kube = self.kube.clone();
        // With a Kubernetes Lease, the store's row is renewed too: the fence holds only as
        // long as this leader keeps both.
        let renew = move || {
            if let Some(kube) = &kube
                && !kube.renew()?
            {
                return Ok(false);
            }
            store
                .renew(&lease, ttl.as_millis() as i64)
                .map_err(|e| e.to_string())
        };
        let (held, down) = (renewed.clone(), stepping_down.clone());
        let spawned = std::thread::Builder::new()
            .name("lease-renew".into())
            .spawn(move || {
                while !down.load(Ordering::SeqCst) {
                    let at = boot_ms();
                    let next = match renew() {
                        Ok(true) => {
                            held.fetch_max(at, Ordering::SeqCst);
                            every
                        }
                        Ok(false) if down.load(Ordering::SeqCst) => return,
                        Ok(false) => step_down("another controller holds the lease"),
                        Err(error) => {
                            tracing::warn!(message = "Cannot renew the leader's lease.", %error);
                            // Soon again: one lost round trip must not cost the lease.
                            Duration::from_millis(250)
                        }
                    };
                    std::thread::sleep(next);
                }
            });
        // Watches the renewals even while one hangs on an unreachable store.
        let watchdog = std::thread::Builder::new()
            .name("lease-watchdog".into())
            .spawn(move || {
                // Stops before the lease can run out: a fifth of it is the margin.
                let limit = (ttl.as_millis() as u64) * 4 / 5;
                while !stepping_down.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    let last = renewed.load(Ordering::SeqCst);
                    let since = boot_ms().saturating_sub(last);
                    if since >= limit && !stepping_down.load(Ordering::SeqCst) {
                        step_down("the lease could not be renewed in time");
                    }
                }
            });
        if let Err(error) = spawned.and(watchdog) {
            step_down(&format!("cannot start the lease's threads: {error}"));
        }
    }

    /// Gives the lease up, so that a standby takes over at once.
    pub(super) fn release(&self, lease: &Lease) {
        if let Some(kube) = &self.kube {
            match kube.release() {
                Ok(()) => tracing::info!(message = "Kubernetes Lease released."),
                Err(error) => {
                    tracing::warn!(message = "Cannot release the Kubernetes Lease.", %error)
                }
            }
        }
        match self.store.release(lease) {
            Ok(()) => tracing::info!(message = "Lease released.", epoch = lease.epoch),
            Err(error) => tracing::warn!(message = "Cannot release the lease.", %error),
        }
    }
}

/// Whether `error` is the API server refusing this controller's credentials (401) or its
/// RBAC (403): a mistake of deployment that retries do not mend.
fn refused_for_good(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<crate::drivers::DriverError>(),
        Some(crate::drivers::DriverError::Refused {
            status: 401 | 403,
            ..
        })
    )
}

/// Stops acting at once: the process exits (its workers die with it), and whatever runs it
/// starts it again, as a standby.
fn step_down(why: &str) -> ! {
    tracing::error!(
        message = "Leadership lost: exiting so that only the new leader acts.",
        reason = why
    );
    eprintln!("swarmpilot: leadership lost ({why}); exiting");
    std::process::exit(EXIT_LEADERSHIP_LOST)
}

/// Milliseconds on the boot clock, which, unlike the monotonic one, counts a suspend.
fn boot_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}

/// This controller's name in elections, kept in `DATA_DIR/node.id` (so a restarted
/// controller takes its own lease back at once, in a new epoch), and that file, locked: a
/// second process on the same data directory would share the name, and is refused.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<(String, std::fs::File)> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join("node.id");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another swarmpilot process uses the data directory {}: each controller needs its own",
            data_dir.display()
        );
    }
    let mut id = String::new();
    file.read_to_string(&mut id)?;
    let id = id.trim().to_string();
    if !id.is_empty() {
        return Ok((id, file));
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("{}-{suffix}", host.trim());
    file.rewind()?;
    writeln!(file, "{id}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok((id, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refused_credentials_or_rbac_fail_the_start() {
        let refused = |status| {
            anyhow::Error::new(crate::drivers::DriverError::Refused {
                target: "https://k8s/lease".into(),
                status,
                message: "no".into(),
            })
            .context("cannot reach the Kubernetes Lease")
        };
        assert!(refused_for_good(&refused(403)));
        assert!(refused_for_good(&refused(401)));
        assert!(!refused_for_good(&refused(503)));
        assert!(!refused_for_good(&refused(0)));
        assert!(!refused_for_good(&anyhow::anyhow!("store unreachable")));
    }

    #[test]
    fn a_data_directory_names_one_controller_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (id, held) = node_id(dir.path()).unwrap();
        assert!(!id.is_empty());
        let refused = node_id(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("another swarmpilot process"), "{refused}");
        drop(held);
        // Started again once the first is gone: the same name, so its lease comes back.
        let (again, _held) = node_id(dir.path()).unwrap();
        assert_eq!(again, id);
    }
}
