//! The Kubernetes driver against a fake API server that answers the `apps/v1` workload and
//! `autoscaling/v1` Scale endpoints as the Kubernetes API documents them.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::drivers::Secret;
use crate::drivers::fake::{FakeServer, Reply};

mod api;
use api::{answer, cluster, serve, status};

fn driver(server: &FakeServer, name: &str) -> KubernetesDriver {
    let credentials = Credentials {
        namespace: Some("from-credentials".into()),
        ..Credentials::for_test(&server.url, Auth::Token(Secret::new("sa-token")))
    };
    let config = KubernetesConfig {
        pool: "web".into(),
        namespace: Some("prod".into()),
        kind: WorkloadKind::Deployment,
        name: name.into(),
        timeout: Duration::from_secs(5),
    };
    KubernetesDriver::new(config, credentials).unwrap()
}

#[tokio::test]
async fn scale_patches_the_scale_subresource_and_size_reads_it_back() {
    let cluster = cluster(2);
    let server = serve(&cluster);
    let driver = driver(&server, "web");
    assert!(driver.remote());
    assert!(
        driver.restarts_whole_pool(),
        "a rollout restart rolls every pod"
    );
    assert_eq!(driver.size().await.unwrap(), 2);
    assert_eq!(driver.scale_to(5).await.unwrap(), 5);
    // Mid-rollout: two pods exist, five are asked for; the size is what was asked.
    assert_eq!(cluster.lock().unwrap().pods, 2);
    assert_eq!(driver.size().await.unwrap(), 5);
    assert_eq!(cluster.lock().unwrap().replicas, 5);
    cluster.lock().unwrap().rolled_out();
    assert_eq!(driver.size().await.unwrap(), 5);

    let requests = server.requests();
    let scale = "/apis/apps/v1/namespaces/prod/deployments/web/scale";
    let calls: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", scale),
            ("PATCH", scale),
            ("GET", scale),
            ("GET", scale)
        ]
    );
    assert_eq!(
        requests[1].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(requests[1].json(), json!({"spec": {"replicas": 5}}));
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sa-token"))
    );
    server.stop().await;
}

#[tokio::test]
async fn scaling_to_zero_reads_the_omitted_replicas_as_zero() {
    let cluster = cluster(1);
    let server = FakeServer::start(move |request, _| {
        let mut cluster = cluster.lock().unwrap();
        let reply = answer(&mut cluster, request);
        // The API leaves spec.replicas out when it is zero (omitempty).
        let mut body = reply.body;
        if body["spec"]["replicas"] == json!(0) {
            body["spec"] = json!({});
        }
        Reply::json(reply.status, body)
    });
    assert_eq!(driver(&server, "web").scale_to(0).await.unwrap(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_conflict_is_retried_then_succeeds() {
    let cluster = cluster(2);
    cluster.lock().unwrap().conflicts = 1;
    let server = serve(&cluster);
    assert_eq!(driver(&server, "web").scale_to(3).await.unwrap(), 3);
    let patches = server.requests();
    assert_eq!(patches.len(), 2);
    assert!(patches.iter().all(|r| r.method == "PATCH"));
    server.stop().await;
}

#[tokio::test]
async fn a_conflict_that_persists_fails_after_three_attempts() {
    let cluster = cluster(2);
    cluster.lock().unwrap().conflicts = 10;
    let server = serve(&cluster);
    let error = driver(&server, "web").scale_to(3).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, DriverError::Refused { status: 409, .. }),
        "{text}"
    );
    assert!(
        text.contains("conflict after 3 attempts: Operation cannot be fulfilled"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn forbidden_names_the_rbac_verb_and_is_not_retried() {
    let cluster = cluster(2);
    cluster.lock().unwrap().forbidden = true;
    let server = serve(&cluster);
    let error = driver(&server, "web").scale_to(3).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, DriverError::Refused { status: 403, .. }),
        "{text}"
    );
    assert!(
        text.contains("answered 403: forbidden: cannot patch deployments/scale in namespace prod"),
        "{text}"
    );
    assert!(
        text.contains("system:serviceaccount:prod:swarmpilot"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1);
    // Each request names its own verb and resource.
    let driver = driver(&server, "web");
    let reading = driver.size().await.unwrap_err().to_string();
    assert!(
        reading.contains("cannot get deployments/scale in namespace prod"),
        "{reading}"
    );
    let restart = driver.restart("web-1").await.unwrap_err().to_string();
    assert!(
        restart.contains("cannot patch deployments in namespace prod"),
        "{restart}"
    );
    assert_eq!(server.requests().len(), 3, "no 403 is retried");
    server.stop().await;
}

#[tokio::test]
async fn a_missing_workload_is_named() {
    let server = serve(&cluster(2));
    let error = driver(&server, "nope")
        .size()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("answered 404: not found: no deployment nope in namespace prod"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test]
async fn rejected_credentials_name_where_they_came_from() {
    let server = FakeServer::start(|_, _| status(401, "Unauthorized", "Unauthorized"));
    let error = driver(&server, "web").size().await.unwrap_err().to_string();
    assert!(
        error.contains(
            "answered 401: unauthorized: the API server rejected the credentials from the test"
        ),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test]
async fn restart_sends_the_rollout_restart_patch() {
    let cluster = cluster(2);
    let server = serve(&cluster);
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let handle = driver(&server, "web")
        .restart("web-7d9f-abcde")
        .await
        .unwrap();
    assert_eq!(
        (
            handle.id.as_str(),
            handle.pool.as_str(),
            handle.pid,
            handle.endpoint
        ),
        ("web-7d9f-abcde", "web", None, None)
    );
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web")
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    let body = request.json();
    let restarted_at =
        body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap();
    let restarted_at = chrono::DateTime::parse_from_rfc3339(restarted_at).unwrap();
    assert!(restarted_at >= before, "{restarted_at}");
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only the annotation: {body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn weights_become_an_annotation_of_the_workload() {
    let cluster = cluster(2);
    let server = serve(&cluster);
    let weights = [("web-a".to_string(), 0.7), ("web-b".to_string(), 0.3)].into();
    driver(&server, "web").set_weights(&weights).await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(
        (request.path.as_str(), request.content_type.as_deref()),
        (
            "/apis/apps/v1/namespaces/prod/deployments/web",
            Some("application/merge-patch+json")
        )
    );
    let annotation = cluster.lock().unwrap().annotations["swarmpilot.io/weights"].clone();
    let parsed: Value = serde_json::from_str(annotation.as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({"web-a": 0.7, "web-b": 0.3}));
    assert_eq!(
        cluster.lock().unwrap().template_annotations,
        json!({}),
        "no rollout"
    );
    server.stop().await;
}

#[tokio::test]
async fn kubernetes_owns_the_pods() {
    let server = serve(&cluster(2));
    let driver = driver(&server, "web");
    assert_eq!(driver.namespace(), "prod", "the policy's namespace wins");
    assert!(matches!(
        driver.start().await,
        Err(DriverError::Unsupported { .. })
    ));
    assert!(matches!(
        driver.stop("web-1").await,
        Err(DriverError::Unsupported { .. })
    ));
    assert!(driver.list().is_empty());
    driver.shutdown().await.unwrap();
    assert!(
        server.requests().is_empty(),
        "shutdown must not scale to zero"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_statefulset_and_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first\n").unwrap();
    let server = FakeServer::start(|_, _| {
        Reply::json(
            200,
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                                "metadata": {"name": "db", "resourceVersion": "7"},
                                "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=db"}}),
        )
    });
    let credentials =
        Credentials::for_test(&format!("{}/", server.url), Auth::TokenFile(token.clone()));
    let config = KubernetesConfig {
        pool: "db".into(),
        namespace: None,
        kind: WorkloadKind::StatefulSet,
        name: "db".into(),
        timeout: Duration::from_secs(5),
    };
    let driver = KubernetesDriver::new(config, credentials).unwrap();
    assert_eq!(driver.size().await.unwrap(), 3);
    // A rotated token is picked up by the next request.
    std::fs::write(&token, "second\n").unwrap();
    assert_eq!(driver.size().await.unwrap(), 3);
    let requests = server.requests();
    assert_eq!(
        requests[0].path,
        "/apis/apps/v1/namespaces/default/statefulsets/db/scale"
    );
    let tokens: Vec<_> = requests
        .iter()
        .map(|r| r.authorization.clone().unwrap())
        .collect();
    assert_eq!(tokens, ["Bearer first", "Bearer second"]);
    server.stop().await;
}

#[tokio::test]
async fn an_exec_plugin_gives_a_token_kept_until_the_server_refuses_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A plugin as EKS', GKE's and AKS' are: it reads KUBERNETES_EXEC_INFO and prints an
    // ExecCredential; each run gives a new token.
    let runs = dir.path().join("runs");
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\ncase \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3 ;; esac\n\
             echo run >> {runs:?}\nn=$(wc -l < {runs:?})\n\
             printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
             \"status\":{{\"token\":\"plugin-%s\",\"expirationTimestamp\":\"2999-01-01T00:00:00Z\"}}}}' \"$n\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let server = FakeServer::start(move |_, _| {
        // The third request is refused: the token was revoked.
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
            return status(401, "Unauthorized", "token revoked");
        }
        Reply::json(
            200,
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "web", "resourceVersion": "1"},
                   "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}),
        )
    });
    let credentials = Credentials::for_test(
        &server.url,
        Auth::Exec(exec::ExecPlugin {
            command: plugin,
            args: Vec::new(),
            env: Vec::new(),
            api_version: "client.authentication.k8s.io/v1".into(),
        }),
    );
    let config = KubernetesConfig {
        pool: "web".into(),
        namespace: None,
        kind: WorkloadKind::Deployment,
        name: "web".into(),
        timeout: Duration::from_secs(5),
    };
    let driver = KubernetesDriver::new(config, credentials).unwrap();
    assert_eq!(driver.size().await.unwrap(), 2);
    assert_eq!(driver.size().await.unwrap(), 2);
    assert!(driver.size().await.is_err(), "the revoked token is refused");
    assert_eq!(driver.size().await.unwrap(), 2);
    let tokens: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.authorization.clone().unwrap())
        .collect();
    assert_eq!(
        tokens,
        [
            "Bearer plugin-1",
            "Bearer plugin-1",
            "Bearer plugin-1",
            "Bearer plugin-2"
        ],
        "kept until refused, then asked again"
    );
    server.stop().await;
}
