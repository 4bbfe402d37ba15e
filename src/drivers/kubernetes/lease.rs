//! Leader election on a Kubernetes Lease (`coordination.k8s.io/v1`), the way client-go's
//! `leaderelection` package and every Kubernetes controller elect theirs:
//!
//! - The Lease names its holder (`spec.holderIdentity`), how long a renewal holds
//!   (`leaseDurationSeconds`), when it was last renewed and how often it changed hands
//!   (`leaseTransitions`).
//! - A candidate takes it when it is missing (create), released (no holder), its own (a
//!   restart), or unchanged for a whole lease duration *as this process observed it*: the
//!   candidate times the record it saw on its own monotonic clock, never by comparing the
//!   holder's `renewTime` with its own wall clock, so the machines' clocks may disagree.
//! - Every write carries the `resourceVersion` it read: of two candidates updating one
//!   version, the API server accepts one and answers the other 409 Conflict. That optimistic
//!   concurrency is what makes the holder unique.
//! - The holder renews by updating `renewTime` on the version it last wrote; a 409 or a
//!   holder that is no longer itself means the lease was lost.
//! - Releasing clears the holder (and shortens the duration to one second), so a standby
//!   takes over at its next try instead of waiting for the lease to run out.
//!
//! RBAC: `get`, `create` and `update` on `leases` in the API group `coordination.k8s.io`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::ApiClient;
use crate::drivers::{DriverError, excerpt};

const JSON: &str = "application/json";

/// What one try for the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// This process holds the lease now; `transitions` is its `leaseTransitions`.
    Acquired {
        /// How often the lease has changed hands, this take included.
        transitions: i64,
    },
    /// Another holds it (empty when nobody could be read, e.g. a lost race).
    HeldBy(String),
}

/// The record of a Lease as last read or written.
#[derive(Debug, Clone)]
struct Seen {
    /// `metadata.resourceVersion`.
    version: String,
    /// `spec.holderIdentity`, empty when released.
    holder: String,
    /// `spec.leaseDurationSeconds`.
    duration: Duration,
    /// `spec.leaseTransitions`.
    transitions: i64,
    /// The whole object, sent back with changes.
    object: Value,
    /// When this process first saw this version.
    since: Instant,
}

/// This process's side of one Lease.
pub struct LeaseLock {
    api: ApiClient,
    path: String,
    namespace: String,
    name: String,
    holder: String,
    duration: Duration,
    seen: Mutex<Option<Seen>>,
    /// The Lease as this process last wrote it while holding it; `None` once lost.
    held: Mutex<Option<Value>>,
    /// One operation at a time: a release never races a renewal that would undo it.
    turn: tokio::sync::Mutex<()>,
}

impl LeaseLock {
    /// The Lease `name` in `namespace`, held as `holder` for `duration` at a time.
    pub fn new(
        api: ApiClient,
        namespace: &str,
        name: &str,
        holder: &str,
        duration: Duration,
    ) -> Self {
        LeaseLock {
            api,
            path: format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"),
            namespace: namespace.to_string(),
            name: name.to_string(),
            holder: holder.to_string(),
            duration,
            seen: Mutex::new(None),
            held: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes the lease if it is free, released, this process's own, or was left unrenewed
    /// for its whole duration since this process first saw its current version.
    pub async fn try_acquire(&self) -> Result<Attempt, DriverError> {
        let _turn = self.turn.lock().await;
        let Some(current) = self.read().await? else {
            return self.create().await;
        };
        let expired = current.since.elapsed() >= current.duration;
        if !current.holder.is_empty() && current.holder != self.holder && !expired {
            return Ok(Attempt::HeldBy(current.holder));
        }
        let now = micro_time();
        let mut object = current.object.clone();
        // Every take counts, a restart's too: renewals tell a restart of the same name by it.
        let transitions = current.transitions + 1;
        self.terms(&mut object);
        let spec = &mut object["spec"];
        spec["acquireTime"] = json!(now);
        spec["renewTime"] = json!(now);
        spec["leaseTransitions"] = json!(transitions);
        match self.update(object, "take").await? {
            Some(taken) => {
                self.hold(Some(taken.object));
                Ok(Attempt::Acquired { transitions })
            }
            // Another candidate wrote first.
            None => Ok(Attempt::HeldBy(current.holder)),
        }
    }

    /// Renews the lease this process holds; false when it was lost (taken, released or
    /// deleted since).
    pub async fn renew(&self) -> Result<bool, DriverError> {
        let _turn = self.turn.lock().await;
        let held = self.held();
        let Some(mut object) = held else {
            return Ok(false);
        };
        let transitions = object["spec"]["leaseTransitions"].as_i64().unwrap_or(0);
        self.terms(&mut object);
        object["spec"]["renewTime"] = json!(micro_time());
        // An error keeps what is held: only a proven loss forgets it.
        if let Some(renewed) = self.update(object, "renew").await? {
            self.hold(Some(renewed.object));
            return Ok(true);
        }
        // 409: someone else changed the Lease. Still ours only if neither the holder nor
        // the transitions changed (an edit of its labels, say); then the renewal goes on
        // that version. A restart of this holder took it anew, with one more transition.
        match self.read().await? {
            Some(now) if now.holder == self.holder && now.transitions == transitions => {
                let mut object = now.object;
                self.terms(&mut object);
                object["spec"]["renewTime"] = json!(micro_time());
                match self.update(object, "renew").await? {
                    Some(renewed) => {
                        self.hold(Some(renewed.object));
                        Ok(true)
                    }
                    // Changed again meanwhile: tried again at the next renewal.
                    None => Ok(true),
                }
            }
            _ => {
                self.hold(None);
                Ok(false)
            }
        }
    }

    /// Writes this holder's terms into a Lease object: its name and its duration (someone
    /// who shortened the duration would otherwise let a standby take over early).
    fn terms(&self, object: &mut Value) {
        let spec = &mut object["spec"];
        if !spec.is_object() {
            *spec = json!({});
        }
        spec["holderIdentity"] = json!(self.holder);
        spec["leaseDurationSeconds"] = json!(self.duration.as_secs().max(1));
    }

    /// Gives the lease up: no holder, one second long.
    pub async fn release(&self) -> Result<(), DriverError> {
        let _turn = self.turn.lock().await;
        let Some(mut object) = self.held() else {
            return Ok(());
        };
        let transitions = object["spec"]["leaseTransitions"].clone();
        for attempt in 0..2 {
            object["spec"]["holderIdentity"] = Value::Null;
            object["spec"]["leaseDurationSeconds"] = json!(1);
            object["spec"]["renewTime"] = json!(micro_time());
            if self.update(object, "release").await?.is_some() {
                break;
            }
            // 409: changed meanwhile; released again if it is still this holder's.
            match self.read().await? {
                Some(now)
                    if attempt == 0
                        && now.holder == self.holder
                        && now.object["spec"]["leaseTransitions"] == transitions =>
                {
                    object = now.object;
                }
                _ => break,
            }
        }
        self.hold(None);
        Ok(())
    }

    /// The holder of the lease as last seen, if any.
    pub fn last_holder(&self) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.as_ref()
            .map(|s| s.holder.clone())
            .filter(|h| !h.is_empty())
    }

    /// The object last written by this process while it held the lease.
    fn held(&self) -> Option<Value> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn hold(&self, object: Option<Value>) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = object;
    }

    /// Reads the Lease; `None` when it does not exist.
    async fn read(&self) -> Result<Option<Seen>, DriverError> {
        let (status, body) = self.call(Method::GET, None).await?;
        match status {
            404 => Ok(None),
            200 => Ok(Some(self.remember(&body, status)?)),
            _ => Err(self.refused(status, &body, "get")),
        }
    }

    async fn create(&self) -> Result<Attempt, DriverError> {
        let now = micro_time();
        let object = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration.as_secs().max(1),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        });
        let collection = self
            .path
            .rsplit_once('/')
            .map_or("", |(c, _)| c)
            .to_string();
        let url = self.api.url(&collection);
        let (status, body) = self
            .api
            .send(Method::POST, &url, Some(&(JSON, object)))
            .await?;
        match status {
            201 | 200 => {
                let created = self.remember(&body, status)?;
                self.hold(Some(created.object));
                Ok(Attempt::Acquired { transitions: 0 })
            }
            // Another candidate created it first.
            409 => Ok(Attempt::HeldBy(String::new())),
            _ => Err(self.refused(status, &body, "create")),
        }
    }

    /// Replaces the Lease with `object` (which carries the version it was read at);
    /// `None` on 409 Conflict.
    async fn update(&self, object: Value, what: &str) -> Result<Option<Seen>, DriverError> {
        let (status, body) = self.call(Method::PUT, Some(object)).await?;
        match status {
            200 => Ok(Some(self.remember(&body, status)?)),
            409 | 404 => Ok(None),
            _ => Err(self.refused(status, &body, &format!("update ({what})"))),
        }
    }

    async fn call(
        &self,
        method: Method,
        body: Option<Value>,
    ) -> Result<(u16, String), DriverError> {
        let url = self.api.url(&self.path);
        let body = body.map(|b| (JSON, b));
        self.api.send(method, &url, body.as_ref()).await
    }

    /// Keeps the Lease in `body` as the one last seen; a version seen before keeps the time
    /// it was first seen.
    fn remember(&self, body: &str, status: u16) -> Result<Seen, DriverError> {
        let object: Value = serde_json::from_str(body).map_err(|error| DriverError::Refused {
            target: self.api.url(&self.path),
            status,
            message: format!("answer is not JSON ({error}): {}", excerpt(body, 200)),
        })?;
        let spec = &object["spec"];
        let version = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let since = match seen.as_ref() {
            Some(before) if before.version == version => before.since,
            _ => Instant::now(),
        };
        let record = Seen {
            version,
            holder: spec["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            duration: Duration::from_secs(
                spec["leaseDurationSeconds"]
                    .as_u64()
                    .unwrap_or(self.duration.as_secs()),
            ),
            transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
            object,
            since,
        };
        *seen = Some(record.clone());
        Ok(record)
    }

    fn refused(&self, status: u16, body: &str, verb: &str) -> DriverError {
        let said = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|status| status["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| excerpt(body, 200));
        let message = match status {
            403 => format!(
                "forbidden: cannot {verb} the Lease {} in namespace {} (RBAC must allow `get`, `create` and `update` on `leases` in `coordination.k8s.io`): {said}",
                self.name, self.namespace
            ),
            401 => format!(
                "unauthorized: the API server rejected the credentials from {}: {said}",
                self.api.credentials().origin
            ),
            _ => format!("cannot {verb} the Lease {}: {said}", self.name),
        };
        DriverError::Refused {
            target: self.api.url(&self.path),
            status,
            message,
        }
    }
}

/// Now as a Kubernetes `MicroTime`.
fn micro_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests;
