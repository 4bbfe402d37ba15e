//! `GET /readyz`: ready when the store takes a write now and actuation has not stopped on a
//! refused one. The store is probed with one small write (the same row every time), at most
//! once a second however often the probe is asked, on the blocking pool and with a deadline,
//! so a hung disk makes the controller not ready rather than the probe hang.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web;

use crate::store::Store;

/// How long a probe's answer is reused.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a probe write may take before the store counts as unreachable.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// When a probe ran, and its answer: nothing, or why the store is not ready.
type Probed = (Instant, Result<(), String>);

/// The latest store probe, shared by the API's workers.
#[derive(Debug, Clone, Default)]
pub struct StoreProbe(Arc<Mutex<Option<Probed>>>);

impl StoreProbe {
    /// Whether `store` takes a write now, or why not; from the last second's probe if any.
    pub async fn check(&self, store: &Store) -> Result<(), String> {
        if let Some((at, answer)) = self.0.lock().ok().and_then(|last| last.clone())
            && at.elapsed() < PROBE_EVERY
        {
            return answer;
        }
        let store = store.clone();
        let write = web::block(move || store.check_writable());
        let answer = match tokio::time::timeout(PROBE_DEADLINE, write).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(format!("the store refuses writes: {error}")),
            Ok(Err(error)) => Err(format!("the store probe failed: {error}")),
            Err(_) => Err(format!(
                "the store did not take a write within {} s",
                PROBE_DEADLINE.as_secs()
            )),
        };
        if let Err(reason) = &answer {
            tracing::warn!(message = "Not ready.", %reason);
        }
        if let Ok(mut last) = self.0.lock() {
            *last = Some((Instant::now(), answer.clone()));
        }
        answer
    }
}
