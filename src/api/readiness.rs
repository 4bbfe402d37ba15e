//! `GET /readyz`: ready when the store takes a write now and actuation has not stopped on a
//! refused one. The store is probed with one small write (the same row every time), at most
//! once a second however often the probe is asked, and never more than one at a time: on the
//! blocking pool, answered within a deadline. A write still pending past the deadline (a hung
//! disk) makes the controller not ready, and no second probe starts behind it to pile up on
//! the blocking pool.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web;
use tokio::sync::oneshot;

use crate::store::Store;

/// How long a probe's answer is reused.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a probe write may take before the store counts as unreachable.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// The latest probe's answer and when, and when the one running (if any) began.
#[derive(Debug, Default)]
struct Probes {
    last: Option<(Instant, Result<(), String>)>,
    running_since: Option<Instant>,
}

/// The store's readiness probe, shared by the API's workers.
#[derive(Debug, Clone, Default)]
pub struct StoreProbe(Arc<Mutex<Probes>>);

fn hung() -> String {
    format!(
        "the store did not take a write within {} s",
        PROBE_DEADLINE.as_secs()
    )
}

impl StoreProbe {
    /// Whether `store` takes a write now, or why not; from the last second's probe if any.
    pub async fn check(&self, store: &Store) -> Result<(), String> {
        let answered = {
            let Ok(mut probes) = self.0.lock() else {
                return Err("the store probe failed".into());
            };
            if let Some((at, answer)) = &probes.last
                && at.elapsed() < PROBE_EVERY
            {
                return answer.clone();
            }
            if let Some(since) = probes.running_since {
                // One probe at a time: its answer, or the last one while it is not late.
                return if since.elapsed() > PROBE_DEADLINE {
                    Err(hung())
                } else {
                    probes.last.as_ref().map_or(Ok(()), |(_, a)| a.clone())
                };
            }
            probes.running_since = Some(Instant::now());
            let (tell, answered) = oneshot::channel();
            let (store, shared) = (store.clone(), self.0.clone());
            actix_web::rt::spawn(async move {
                let answer = match web::block(move || store.check_writable()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(format!("the store refuses writes: {error}")),
                    Err(error) => Err(format!("the store probe failed: {error}")),
                };
                if let Ok(mut probes) = shared.lock() {
                    probes.running_since = None;
                    probes.last = Some((Instant::now(), answer.clone()));
                }
                // The asker may have given up at the deadline; the answer is kept anyway.
                let _ = tell.send(answer);
            });
            answered
        };
        let answer = match tokio::time::timeout(PROBE_DEADLINE, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the store probe was dropped".into()),
            Err(_) => Err(hung()),
        };
        if let Err(reason) = &answer {
            tracing::warn!(message = "Not ready.", %reason);
        }
        answer
    }
}
