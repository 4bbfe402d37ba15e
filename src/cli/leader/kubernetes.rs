//! The leader chosen by a Kubernetes Lease (`[store.kubernetes_lease]`) instead of the
//! database's lease row. Kubernetes decides who leads (`drivers/kubernetes/lease.rs` says
//! how); the database still fences: the new leader seizes the lease row in a new epoch the
//! moment it takes the Lease, so every write of the leader it deposed fails from then on.
//! The seizure names the Lease's term (its transitions): a candidate that took the Lease
//! and was paused before seizing cannot take the row from a leader chosen after it. The
//! leader renews the row with the Lease, and steps down when either is lost; a candidate
//! that took the Lease but cannot seize the row gives the Lease back.
//! The Lease's requests run on a runtime of their own, so that they can be waited for from
//! the renewal thread and from the shutdown path alike.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::drivers::kubernetes::lease::{Attempt, LeaseLock};
use crate::drivers::kubernetes::{ApiClient, Credentials, Sources};
use crate::policy::KubernetesLease;
use crate::store::{Leader, Lease, Store};

/// This controller's side of the Kubernetes Lease.
pub(super) struct KubeElection {
    lock: Arc<LeaseLock>,
    ttl: Duration,
    /// Where the Lease's requests run; shut down in the background when dropped (it may be
    /// dropped inside the server's runtime).
    runtime: Option<tokio::runtime::Runtime>,
}

impl KubeElection {
    /// The election on `settings`' Lease, as `holder`, for `ttl` at a time.
    pub(super) fn new(
        settings: &KubernetesLease,
        holder: &str,
        ttl: Duration,
    ) -> anyhow::Result<Self> {
        let sources = Sources::from_env(
            settings.kubeconfig.as_ref().map(Into::into),
            settings.context.clone(),
        );
        let credentials = Credentials::resolve(&sources, settings.api_server.as_deref())
            .context("cannot find credentials for the Kubernetes Lease")?;
        let namespace = settings
            .namespace
            .clone()
            .or_else(|| credentials.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        // A request, a token from an exec plugin included, must leave room for a retry
        // within the renewal's budget (the watchdog stops the leader at four fifths).
        let api = ApiClient::new(credentials, request_timeout(ttl))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-lease")
            .enable_all()
            .build()
            .context("cannot start the Kubernetes Lease's runtime")?;
        let lock = LeaseLock::new(api, &namespace, &settings.name, holder, ttl);
        tracing::info!(message = "Leader election on a Kubernetes Lease.",
            lease = %settings.name, %namespace);
        Ok(KubeElection {
            lock: Arc::new(lock),
            ttl,
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Takes the Lease if it is free, then the database's lease row for fencing; otherwise
    /// answers who leads (with the address the leader advertised in the database). A Lease
    /// taken whose row cannot be is given up again, so that another may lead.
    pub(super) async fn try_lead(
        &self,
        store: &Store,
        holder: &str,
        address: &str,
        election: &str,
    ) -> anyhow::Result<Result<Lease, Leader>> {
        let lock = self.lock.clone();
        let attempt = self
            .run(async move { lock.try_acquire().await })
            .await
            .context("cannot reach the Kubernetes Lease")?;
        let (store, holder, address, election) = (
            store.clone(),
            holder.to_string(),
            address.to_string(),
            election.to_string(),
        );
        let ttl_ms = self.ttl.as_millis() as i64;
        let outcome = tokio::task::spawn_blocking(move || match attempt {
            Attempt::Acquired { transitions } => {
                match store.seize(&election, &holder, &address, transitions, ttl_ms) {
                    Ok(Some(lease)) => {
                        tracing::info!(message = "Took the Kubernetes Lease.", transitions,
                            epoch = lease.epoch);
                        Ok(Ok(lease))
                    }
                    Ok(None) => Err(anyhow::anyhow!(
                        "took the Kubernetes Lease, but a holder chosen later holds the store's lease"
                    )),
                    Err(error) => Err(anyhow::Error::new(error)
                        .context("took the Kubernetes Lease but cannot fence the store")),
                }
            }
            Attempt::HeldBy(leader) => {
                // Where the leader serves is in the database, once it has advertised it.
                let row = store.leader(&election).ok().flatten();
                let (address, epoch) = row
                    .filter(|row| row.holder == leader)
                    .map_or((String::new(), 0), |row| (row.address, row.epoch));
                Ok(Err(Leader {
                    holder: leader,
                    address,
                    epoch,
                    expires_in_ms: 0,
                }))
            }
        })
        .await?;
        if outcome.is_err() {
            let lock = self.lock.clone();
            if let Err(error) = self.run(async move { lock.release().await }).await {
                tracing::warn!(message = "Cannot give the Kubernetes Lease back.", %error);
            }
        }
        outcome
    }

    /// Runs a Lease request on the Lease's runtime, bounded by a third of the lease.
    async fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, crate::drivers::DriverError>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let bound = self.ttl / 3;
        let task = self
            .runtime()
            .spawn(async move { tokio::time::timeout(bound, request).await });
        match task.await? {
            Ok(result) => Ok(result?),
            Err(_) => anyhow::bail!("the API server did not answer within {bound:?}"),
        }
    }

    /// Renews the Lease; false once another holds it. Waits, so call it off the server's
    /// threads.
    pub(super) fn renew(&self) -> Result<bool, String> {
        let lock = self.lock.clone();
        futures_executor::block_on(self.run(async move { lock.renew().await }))
            .map_err(|error| format!("{error:#}"))
    }

    /// Gives the Lease up, so that a standby takes it at its next try.
    pub(super) fn release(&self) -> Result<(), String> {
        let lock = self.lock.clone();
        futures_executor::block_on(self.run(async move { lock.release().await }))
            .map_err(|error| format!("{error:#}"))
    }
}

/// How long one request to the API server may take: a fifth of the lease, at least a
/// second, so that a renewal that got no answer is tried again before the watchdog fires.
fn request_timeout(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_secs(1))
}

impl Drop for KubeElection {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
