//! A fake Kubernetes API server: one Deployment `web` in namespace `prod`, its
//! `autoscaling/v1` Scale subresource, and `v1` Status objects for every refusal, shaped as
//! the Kubernetes API documents them.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::drivers::fake::{FakeServer, Recorded, Reply};

/// What the fake cluster holds and how it misbehaves.
pub struct Cluster {
    /// The Deployment's `spec.replicas`, the size asked for.
    pub replicas: u64,
    /// Its `status.replicas`, the pods that exist: they follow the spec only when the test
    /// says so (`rolled_out`), as a rollout takes time.
    pub pods: u64,
    /// Bumped by every write.
    pub resource_version: u64,
    /// The next this many writes answer 409.
    pub conflicts: u32,
    /// Every request answers 403.
    pub forbidden: bool,
    /// The Deployment's own annotations.
    pub annotations: Value,
    /// The pod template's annotations; a change rolls the pods.
    pub template_annotations: Value,
}

/// A `v1` Status object for a refusal.
pub fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::json(
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason,
            "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": code,
        }),
    )
}

fn scale_object(cluster: &Cluster) -> Value {
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "web", "namespace": "prod", "uid": "8d1c4f7e-1d2a-4b8e-9a53-2b7f0c9e6a11",
            "resourceVersion": cluster.resource_version.to_string(),
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {"replicas": cluster.replicas},
        "status": {"replicas": cluster.pods, "selector": "app=web"},
    })
}

/// How the API server answers `request`.
pub fn answer(cluster: &mut Cluster, request: &Recorded) -> Reply {
    let base = "/apis/apps/v1/namespaces/prod/deployments";
    if cluster.forbidden {
        return status(
            403,
            "Forbidden",
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:prod:swarmpilot\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"prod\"",
        );
    }
    let Some(rest) = request.path.strip_prefix(&format!("{base}/web")) else {
        return status(404, "NotFound", "deployments.apps \"nope\" not found");
    };
    let writes = request.method != "GET";
    if writes && cluster.conflicts > 0 {
        cluster.conflicts -= 1;
        return status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    match (
        request.method.as_str(),
        rest,
        request.content_type.as_deref(),
    ) {
        ("GET", "/scale", _) => Reply::json(200, scale_object(cluster)),
        ("PATCH", "/scale", Some("application/merge-patch+json")) => {
            let Some(replicas) = request.json()["spec"]["replicas"].as_u64() else {
                return status(422, "Invalid", "spec.replicas: Invalid value");
            };
            cluster.replicas = replicas;
            cluster.resource_version += 1;
            Reply::json(200, scale_object(cluster))
        }
        ("PATCH", "", Some(content_type)) if content_type.ends_with("merge-patch+json") => {
            let patch = request.json();
            merge(&mut cluster.annotations, &patch["metadata"]["annotations"]);
            merge(
                &mut cluster.template_annotations,
                &patch["spec"]["template"]["metadata"]["annotations"],
            );
            cluster.resource_version += 1;
            Reply::json(
                200,
                json!({"kind": "Deployment", "apiVersion": "apps/v1",
                       "metadata": {"name": "web", "annotations": cluster.annotations}}),
            )
        }
        ("PATCH", ..) => status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format",
        ),
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method",
        ),
    }
}

impl Cluster {
    /// The pods have caught up with the spec.
    pub fn rolled_out(&mut self) {
        self.pods = self.replicas;
    }
}

fn merge(into: &mut Value, patch: &Value) {
    if let (Some(into), Some(patch)) = (into.as_object_mut(), patch.as_object()) {
        for (key, value) in patch {
            into.insert(key.clone(), value.clone());
        }
    }
}

/// A cluster whose Deployment runs `replicas` pods.
pub fn cluster(replicas: u64) -> Arc<Mutex<Cluster>> {
    Arc::new(Mutex::new(Cluster {
        replicas,
        pods: replicas,
        resource_version: 1000,
        conflicts: 0,
        forbidden: false,
        annotations: json!({}),
        template_annotations: json!({}),
    }))
}

/// A fake API server for `cluster`.
pub fn serve(cluster: &Arc<Mutex<Cluster>>) -> FakeServer {
    let cluster = cluster.clone();
    FakeServer::start(move |request, _| answer(&mut cluster.lock().unwrap(), request))
}
