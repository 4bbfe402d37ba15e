//! The Lease election against a fake API server that keeps one Lease the way the API
//! server does: created once, replaced only at the version it was read (409 otherwise).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::drivers::Secret;
use crate::drivers::fake::{FakeServer, Recorded, Reply};
use crate::drivers::kubernetes::{Auth, Credentials};

const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/swarmpilot";

/// The Lease the fake server keeps, and its version counter.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    version: u64,
    /// Every request answers 503, as an API server that is down behind its load balancer.
    failing: bool,
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn answer(store: &mut Store, request: &Recorded) -> Reply {
    let collection = PATH.rsplit_once('/').unwrap().0;
    if store.failing {
        return status(503, "ServiceUnavailable", "the server is unavailable");
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", PATH) => match &store.lease {
            Some(lease) => Reply::json(200, lease.clone()),
            None => status(
                404,
                "NotFound",
                "leases.coordination.k8s.io \"swarmpilot\" not found",
            ),
        },
        ("POST", path) if path == collection => {
            if store.lease.is_some() {
                return status(
                    409,
                    "AlreadyExists",
                    "leases.coordination.k8s.io \"swarmpilot\" already exists",
                );
            }
            let mut lease = request.json();
            store.version += 1;
            lease["metadata"]["resourceVersion"] = json!(store.version.to_string());
            store.lease = Some(lease.clone());
            Reply::json(201, lease)
        }
        ("PUT", PATH) => {
            let mut lease = request.json();
            let current = store
                .lease
                .as_ref()
                .map(|l| l["metadata"]["resourceVersion"].clone());
            if current != Some(lease["metadata"]["resourceVersion"].clone()) {
                return status(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on leases.coordination.k8s.io \"swarmpilot\": the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            store.version += 1;
            lease["metadata"]["resourceVersion"] = json!(store.version.to_string());
            store.lease = Some(lease.clone());
            Reply::json(200, lease)
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn serve() -> (FakeServer, Arc<Mutex<Store>>) {
    let store = Arc::new(Mutex::new(Store::default()));
    let kept = store.clone();
    let server = FakeServer::start(move |request, _| answer(&mut kept.lock().unwrap(), request));
    (server, store)
}

fn lock(server: &FakeServer, holder: &str, secs: u64) -> LeaseLock {
    let credentials = Credentials::for_test(&server.url, Auth::Token(Secret::new("sa-token")));
    let api = ApiClient::new(credentials, Duration::from_secs(5)).unwrap();
    LeaseLock::new(api, "ops", "swarmpilot", holder, Duration::from_secs(secs))
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_release_frees_the_lease_at_once() {
    let (server, store) = serve();
    let (a, b) = (lock(&server, "a", 60), lock(&server, "b", 60));
    // Missing: created, held by a.
    assert_eq!(
        a.try_acquire().await.unwrap(),
        Attempt::Acquired { transitions: 0 }
    );
    assert_eq!(b.try_acquire().await.unwrap(), Attempt::HeldBy("a".into()));
    assert_eq!(b.last_holder().as_deref(), Some("a"));
    assert!(a.renew().await.unwrap());
    assert!(a.renew().await.unwrap());
    // b is not fooled by a's renewals: still held.
    assert_eq!(b.try_acquire().await.unwrap(), Attempt::HeldBy("a".into()));
    {
        let lease = store.lock().unwrap().lease.clone().unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "a");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 60);
        assert_eq!(lease["kind"], "Lease");
    }
    // Released: b takes it at its next try, as the second holder.
    a.release().await.unwrap();
    assert!(!a.renew().await.unwrap(), "released, a holds nothing");
    assert_eq!(
        b.try_acquire().await.unwrap(),
        Attempt::Acquired { transitions: 1 }
    );
    // a restarted process of b's name takes its own lease back at once.
    let b_again = lock(&server, "b", 60);
    assert_eq!(
        b_again.try_acquire().await.unwrap(),
        Attempt::Acquired { transitions: 2 }
    );
    assert!(!b.renew().await.unwrap(), "the old b lost to its restart");
    assert!(!b.renew().await.unwrap(), "and stays lost");
    assert!(b_again.renew().await.unwrap());
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sa-token"))
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.method != "GET")
            .all(|r| r.content_type.as_deref() == Some("application/json"))
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unrenewed_lease_is_taken_after_its_duration_as_the_candidate_timed_it() {
    let (server, store) = serve();
    let (a, b) = (lock(&server, "a", 1), lock(&server, "b", 1));
    assert_eq!(
        a.try_acquire().await.unwrap(),
        Attempt::Acquired { transitions: 0 }
    );
    // The holder's clock is far behind: its renewTime says nothing to b, who times the
    // version it saw on its own clock.
    store.lock().unwrap().lease.as_mut().unwrap()["spec"]["renewTime"] =
        json!("2001-01-01T00:00:00.000000Z");
    let first = Instant::now();
    assert_eq!(b.try_acquire().await.unwrap(), Attempt::HeldBy("a".into()));
    let taken = loop {
        match b.try_acquire().await.unwrap() {
            Attempt::Acquired { transitions } => break transitions,
            Attempt::HeldBy(holder) => assert_eq!(holder, "a"),
        }
        assert!(first.elapsed() < Duration::from_secs(10), "never taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(taken, 1);
    assert!(
        first.elapsed() >= Duration::from_secs(1),
        "taken before the lease ran out"
    );
    // The deposed holder finds out at its next renewal, and cannot write over b.
    assert!(!a.renew().await.unwrap());
    assert_eq!(
        store.lock().unwrap().lease.as_ref().unwrap()["spec"]["holderIdentity"],
        "b"
    );
    server.stop().await;
}

#[tokio::test]
async fn of_two_candidates_racing_for_one_version_one_wins() {
    let (server, _store) = serve();
    let (a, b, c) = (
        lock(&server, "a", 60),
        lock(&server, "b", 60),
        lock(&server, "c", 60),
    );
    assert!(matches!(
        a.try_acquire().await.unwrap(),
        Attempt::Acquired { .. }
    ));
    a.release().await.unwrap();
    let (b_try, c_try) = tokio::join!(b.try_acquire(), c.try_acquire());
    let won = [b_try.unwrap(), c_try.unwrap()]
        .iter()
        .filter(|t| matches!(t, Attempt::Acquired { .. }))
        .count();
    assert_eq!(
        won, 1,
        "exactly one of two candidates takes a released lease"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_edit_by_someone_else_is_renewed_over_and_a_shortened_lease_restored() {
    let (server, store) = serve();
    let a = lock(&server, "a", 60);
    assert!(matches!(
        a.try_acquire().await.unwrap(),
        Attempt::Acquired { .. }
    ));
    // Someone labels the Lease and shortens it: a new version, the same holder.
    {
        let mut kept = store.lock().unwrap();
        kept.version += 1;
        let version = kept.version.to_string();
        let lease = kept.lease.as_mut().unwrap();
        lease["metadata"]["resourceVersion"] = json!(version);
        lease["metadata"]["labels"] = json!({"team": "ops"});
        lease["spec"]["leaseDurationSeconds"] = json!(1);
    }
    assert!(a.renew().await.unwrap(), "still a's after the 409");
    let lease = store.lock().unwrap().lease.clone().unwrap();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 60);
    assert_eq!(lease["metadata"]["labels"]["team"], "ops");
    assert!(a.renew().await.unwrap());
    // An API server that fails keeps the lease held: the next renewal may hold.
    store.lock().unwrap().failing = true;
    assert!(a.renew().await.is_err());
    assert!(a.held().is_some(), "an error is not a loss");
    store.lock().unwrap().failing = false;
    assert!(
        a.renew().await.unwrap(),
        "held again once the server answers"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refusal_names_the_rbac_rule() {
    let server = FakeServer::start(|_, _| {
        status(
            403,
            "Forbidden",
            "leases.coordination.k8s.io \"swarmpilot\" is forbidden: User \"system:serviceaccount:ops:swarmpilot\" cannot get resource \"leases\"",
        )
    });
    let error = lock(&server, "a", 10)
        .try_acquire()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`leases` in `coordination.k8s.io`"),
        "{error}"
    );
    assert!(error.contains("cannot get resource"), "{error}");
    server.stop().await;
}
