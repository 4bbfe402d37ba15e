//! Two controllers on one PostgreSQL store electing their leader with a Kubernetes Lease
//! (`[store.kubernetes_lease]`), against a fake API server that keeps the Lease as the real
//! one does: created once, replaced only at the `resourceVersion` it was read at.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarmpilot::store::testing::TestServer;

use crate::shutdown::policy_with;
use crate::util::{Server, wait_for};

const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/swarmpilot";
const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";
const LEASE_SECS: u64 = 6;

/// The Lease the fake API server keeps, and its version counter.
#[derive(Default)]
struct Kept {
    lease: Option<Value>,
    version: u64,
}

fn refusal(code: u16, reason: &str) -> (u16, Value) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": reason, "message": reason, "code": code});
    (code, status)
}

fn answer(kept: &mut Kept, method: &str, path: &str, mut sent: Value) -> (u16, Value) {
    match (method, path) {
        ("GET", PATH) => match &kept.lease {
            Some(lease) => (200, lease.clone()),
            None => refusal(404, "NotFound"),
        },
        ("POST", COLLECTION) if kept.lease.is_some() => refusal(409, "AlreadyExists"),
        ("POST", COLLECTION) => {
            kept.version += 1;
            sent["metadata"]["resourceVersion"] = json!(kept.version.to_string());
            kept.lease = Some(sent.clone());
            (201, sent)
        }
        ("PUT", PATH) => {
            let current = kept
                .lease
                .as_ref()
                .map(|l| l["metadata"]["resourceVersion"].clone());
            if current != Some(sent["metadata"]["resourceVersion"].clone()) {
                return refusal(409, "Conflict");
            }
            kept.version += 1;
            sent["metadata"]["resourceVersion"] = json!(kept.version.to_string());
            kept.lease = Some(sent.clone());
            (200, sent)
        }
        _ => refusal(404, "NotFound"),
    }
}

/// Starts the fake API server; answers its URL and the Lease it keeps.
fn api_server() -> (String, Arc<Mutex<Kept>>) {
    let kept: Arc<Mutex<Kept>> = Arc::default();
    let held = kept.clone();
    let url = crate::fake_http::serve(move |method, path, sent| {
        answer(&mut held.lock().unwrap(), method, path, sent)
    });
    (url, kept)
}

fn holder(kept: &Mutex<Kept>) -> (String, i64) {
    let kept = kept.lock().unwrap();
    let spec = &kept.lease.as_ref().expect("a Lease")["spec"];
    (
        spec["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        spec["leaseTransitions"].as_i64().unwrap_or(-1),
    )
}

fn node_id(server: &Server) -> String {
    std::fs::read_to_string(server.data_dir.join("node.id"))
        .unwrap()
        .trim()
        .to_string()
}

/// Waits up to `secs` for `server` to lead (`GET /readyz` 200); answers how long it took.
pub(crate) async fn leads_within(server: &Server, secs: u64) -> Duration {
    let began = Instant::now();
    wait_for("the standby leads", Duration::from_secs(secs), || async {
        (server.try_get("/readyz").await?.0 == 200).then_some(())
    })
    .await;
    began.elapsed()
}

async fn is_standby_of(server: &Server, leader: &Server) {
    wait_for(
        "a standby naming the leader",
        Duration::from_secs(15),
        || async {
            let (status, ready) = server.try_get("/readyz").await?;
            (status == 503 && ready["leader"] == leader.url.as_str()).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_kubernetes_lease_elects_one_leader_and_hands_over_on_release_and_on_death() {
    let (api, kept) = api_server();
    let url = TestServer::shared().fresh_database();
    let policy = policy_with(&format!(
        "[store]\nurl = \"{url}\"\nlease_secs = {LEASE_SECS}\n\
         [store.kubernetes_lease]\nname = \"swarmpilot\"\nnamespace = \"ops\"\napi_server = \"{api}\"\n"
    ));
    let mut first = Server::start(&policy);
    leads_within(&first, 15).await;
    assert_eq!(holder(&kept), (node_id(&first), 0));
    let mut second = Server::start(&policy);
    is_standby_of(&second, &first).await;

    // SIGTERM releases the Lease: the standby takes it at its next try.
    first.stop_with(libc::SIGTERM);
    let took = leads_within(&second, 15).await;
    assert!(took < Duration::from_secs(5), "took over after {took:?}");
    assert_eq!(holder(&kept), (node_id(&second), 1));
    first.start_after_stop();
    is_standby_of(&first, &second).await;

    // SIGKILL: the Lease stops changing, and the standby takes it once a whole lease passed
    // as it timed it.
    let killed = Instant::now();
    second.stop_with(libc::SIGKILL);
    leads_within(&first, 30).await;
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(LEASE_SECS - 2) && took < Duration::from_secs(LEASE_SECS + 10),
        "took over after {took:?}"
    );
    assert_eq!(holder(&kept), (node_id(&first), 2));
    let (_, system) = first.get("/api/v1/system").await;
    assert_eq!(system["role"], "leader", "{system}");
}
