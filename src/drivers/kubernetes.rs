//! The `kubernetes` driver: the pool is one Deployment or StatefulSet, driven through the
//! Kubernetes API with plain HTTPS requests.
//!
//! - `size` reads the workload's `autoscaling/v1` Scale subresource,
//!   `GET /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale`, and
//!   answers `spec.replicas`, the size asked for, as the HPA takes its current replicas: while
//!   a rollout is under way `status.replicas` lags it, and a size read from the status would
//!   make the controller plan (and judge its own scale) against pods that are still coming.
//! - `scale_to` sends `{"spec":{"replicas":N}}` to the same subresource as a JSON merge
//!   patch (`application/merge-patch+json`), as `kubectl scale` does, and answers the
//!   `spec.replicas` the API server accepted (pods follow as the workload's controller acts).
//!   The patch carries no `resourceVersion`; a 409 Conflict is still retried, up to
//!   [`CONFLICT_ATTEMPTS`] tries in all, [`CONFLICT_BACKOFF`] times the attempt apart.
//! - `restart` is `kubectl rollout restart`: a strategic merge patch of the workload that sets
//!   the pod template annotation `kubectl.kubernetes.io/restartedAt` to now, so the whole
//!   workload rolls. Kubernetes cannot restart one pod of a workload in place: the agent
//!   argument only names what the log says.
//! - `set_weights`: Kubernetes has no per-pod weights, so the workload gets the annotation
//!   `swarmpilot.io/weights` with the weights as JSON (merge patch of its metadata, which
//!   does not roll the pods), for a service mesh or the agents to read.
//! - `set_concurrency`: likewise the annotation `swarmpilot.io/concurrency` with the limit,
//!   for the agents to read (through the downward API) without a rollout.
//!
//! The RBAC the controller needs: `get` and `patch` on `{deployments|statefulsets}/scale`,
//! and `patch` on `{deployments|statefulsets}` in the namespace. A 403 names the missing
//! verb. Only 409 is retried: other refusals, and requests that get no answer within the
//! timeout, fail at once, and the optimizer decides again from what it observes next.
//!
//! Kubernetes owns the pods: `start`/`stop` are unsupported, `list` is empty, and `shutdown`
//! leaves the workload as it is.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Driver, DriverError, DriverFuture, excerpt};
use crate::clock;
use crate::domain::AgentHandle;

mod client;
pub mod credentials;
pub mod exec;
pub mod lease;

pub use client::ApiClient;

pub use credentials::{Auth, Credentials, CredentialsError, Sources};

/// How many times a request answered with 409 Conflict is tried in all.
pub const CONFLICT_ATTEMPTS: u32 = 3;
/// The pause before the second try after a 409; the third waits twice as long.
pub const CONFLICT_BACKOFF: Duration = Duration::from_millis(100);
/// The pod template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The workload annotation that carries the load weights.
pub const WEIGHTS_ANNOTATION: &str = "swarmpilot.io/weights";
/// The workload annotation that carries the agents' concurrency limit.
pub const CONCURRENCY_ANNOTATION: &str = "swarmpilot.io/concurrency";

const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

/// Which kind of workload the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// An `apps/v1` Deployment.
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
}

/// Settings of one pool's Kubernetes driver.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// The pool this workload is.
    pub pool: String,
    /// The namespace; `None` takes the credentials' namespace, else `default`.
    pub namespace: Option<String>,
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// The workload's name.
    pub name: String,
    /// How long one request may take.
    pub timeout: Duration,
}

/// Drives a pool that is one Kubernetes workload.
pub struct KubernetesDriver {
    pool: String,
    namespace: String,
    kind: WorkloadKind,
    name: String,
    api: ApiClient,
}

// === impl WorkloadKind ===

impl WorkloadKind {
    /// The resource name in API paths and RBAC rules, e.g. `deployments`.
    pub fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

// === impl KubernetesDriver ===

impl KubernetesDriver {
    /// A driver for `config` that talks to the API server of `credentials`.
    pub fn new(config: KubernetesConfig, credentials: Credentials) -> Result<Self, DriverError> {
        let namespace = config
            .namespace
            .or_else(|| credentials.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        Ok(KubernetesDriver {
            pool: config.pool,
            namespace,
            kind: config.kind,
            name: config.name,
            api: ApiClient::new(credentials, config.timeout)?,
        })
    }

    /// The namespace the workload is looked for in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn workload_path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.plural(),
            self.name
        )
    }

    /// Sends one request, retrying on 409; `verb` and `resource` name the RBAC rule a 403
    /// is about.
    async fn request(
        &self,
        method: Method,
        path: &str,
        patch: Option<(&'static str, Value)>,
        (verb, resource): (&str, &str),
    ) -> Result<Value, DriverError> {
        let url = self.api.url(path);
        let mut attempt = 1;
        loop {
            let (status, body) = self.api.send(method.clone(), &url, patch.as_ref()).await?;
            if (200..300).contains(&status) {
                return serde_json::from_str(&body).map_err(|error| DriverError::Refused {
                    target: url.clone(),
                    status,
                    message: format!("answer is not JSON ({error}): {}", excerpt(&body, 200)),
                });
            }
            if status == 409 && attempt < CONFLICT_ATTEMPTS {
                attempt += 1;
                tracing::warn!(
                    message = "Kubernetes answered 409 Conflict; trying again.",
                    pool = %self.pool,
                    %url,
                    attempt
                );
                tokio::time::sleep(CONFLICT_BACKOFF * (attempt - 1)).await;
                continue;
            }
            return Err(DriverError::Refused {
                message: self.explain(status, &body, verb, resource, attempt),
                target: url,
                status,
            });
        }
    }

    /// A clear message for a failed request, from the status and the API's Status object.
    fn explain(
        &self,
        status: u16,
        body: &str,
        verb: &str,
        resource: &str,
        attempts: u32,
    ) -> String {
        let said = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|status| status["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| excerpt(body, 200));
        let namespace = &self.namespace;
        match status {
            401 => format!(
                "unauthorized: the API server rejected the credentials from {}: {said}",
                self.api.credentials().origin
            ),
            403 => format!(
                "forbidden: cannot {verb} {resource} in namespace {namespace} (RBAC must allow `{verb}` on `{resource}`): {said}"
            ),
            404 => format!(
                "not found: no {} {} in namespace {namespace}: {said}",
                self.kind.singular(),
                self.name
            ),
            409 => format!("conflict after {attempts} attempts: {said}"),
            _ => said,
        }
    }

    fn read_scale(&self, response: Value, field: &str) -> Result<usize, DriverError> {
        let replicas = response
            .get(field)
            .and_then(|part| part.get("replicas"))
            .map_or(Some(0), Value::as_u64);
        // spec.replicas and status.replicas are left out when zero.
        replicas
            .and_then(|replicas| usize::try_from(replicas).ok())
            .ok_or_else(|| DriverError::Refused {
                target: format!(
                    "{}{}/scale",
                    self.api.credentials().server,
                    self.workload_path()
                ),
                status: 200,
                message: format!("the Scale object has no integer {field}.replicas: {response}"),
            })
    }

    async fn patch_workload(
        &self,
        content_type: &'static str,
        patch: Value,
    ) -> Result<Value, DriverError> {
        let resource = self.kind.plural();
        self.request(
            Method::PATCH,
            &self.workload_path(),
            Some((content_type, patch)),
            ("patch", resource),
        )
        .await
    }
}

impl Driver for KubernetesDriver {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn restart<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle> {
        Box::pin(async move {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let patch =
                json!({"spec": {"template": {"metadata": {"annotations": {(RESTARTED_AT): now}}}}});
            self.patch_workload(STRATEGIC_MERGE_PATCH, patch).await?;
            tracing::info!(
                message = "Workload rollout restarted.",
                pool = %self.pool,
                agent,
                workload = %format!("{}/{}", self.kind.plural(), self.name),
                namespace = %self.namespace
            );
            Ok(AgentHandle {
                id: agent.to_string(),
                pool: self.pool.clone(),
                pid: None,
                endpoint: None,
                started_ms: clock::now_ms(),
            })
        })
    }

    fn remote(&self) -> bool {
        true
    }

    fn restarts_whole_pool(&self) -> bool {
        true
    }

    fn size(&self) -> DriverFuture<'_, usize> {
        Box::pin(async move {
            let resource = format!("{}/scale", self.kind.plural());
            let path = format!("{}/scale", self.workload_path());
            let scale = self
                .request(Method::GET, &path, None, ("get", &resource))
                .await?;
            self.read_scale(scale, "spec")
        })
    }

    fn scale_to(&self, to: usize) -> DriverFuture<'_, usize> {
        Box::pin(async move {
            let resource = format!("{}/scale", self.kind.plural());
            let path = format!("{}/scale", self.workload_path());
            let patch = json!({"spec": {"replicas": to}});
            let scale = self
                .request(
                    Method::PATCH,
                    &path,
                    Some((MERGE_PATCH, patch)),
                    ("patch", &resource),
                )
                .await?;
            let accepted = self.read_scale(scale, "spec")?;
            tracing::info!(message = "Workload scaled.", pool = %self.pool, to, accepted, namespace = %self.namespace);
            Ok(accepted)
        })
    }

    fn set_weights<'a>(&'a self, weights: &'a BTreeMap<String, f64>) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let value = serde_json::to_string(weights).unwrap_or_default();
            let patch = json!({"metadata": {"annotations": {(WEIGHTS_ANNOTATION): value}}});
            self.patch_workload(MERGE_PATCH, patch).await?;
            Ok(())
        })
    }

    fn set_concurrency(&self, limit: u32) -> DriverFuture<'_, ()> {
        Box::pin(async move {
            let patch =
                json!({"metadata": {"annotations": {(CONCURRENCY_ANNOTATION): limit.to_string()}}});
            self.patch_workload(MERGE_PATCH, patch).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
