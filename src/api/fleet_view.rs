//! The fleet as the read routes see it: one snapshot shared by every request for up to
//! [`MAX_AGE`], so that a busy dashboard or a poller costs the fleet actor a few snapshots a
//! second, not one per request. While one request takes a fresh snapshot (the fleet actor may
//! be busy routing a large batch of samples), the others answer from the previous one rather
//! than wait, if it is younger than [`STALE_MAX`]; an older one is never answered. Writes
//! (proposing an action) and the event stream's snapshot ask the actor directly.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::{Addr, Recipient};

use super::error::ApiError;
use super::routes::unavailable;
use crate::actors::fleet::{FleetSnapshot, FleetSupervisor, GetFleet};

/// How old a shared snapshot may be before a request takes a new one. Agents report every
/// few seconds; this is well inside.
pub const MAX_AGE: Duration = Duration::from_millis(250);
/// How old a snapshot may be when it is answered while its successor is being taken.
pub const STALE_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Shared {
    latest: Option<(Instant, Arc<FleetSnapshot>)>,
    refreshing: bool,
    /// Moves on at every [`FleetView::invalidate`]: a snapshot taken before is not kept.
    generation: u64,
}

/// A fleet snapshot shared between requests.
#[derive(Debug, Clone, Default)]
pub struct FleetView(Arc<Mutex<Shared>>);

impl FleetView {
    /// A snapshot at most [`MAX_AGE`] old, or one at most [`STALE_MAX`] old while another
    /// request is taking its successor.
    pub async fn get(&self, fleet: &Addr<FleetSupervisor>) -> Result<Arc<FleetSnapshot>, ApiError> {
        self.get_from(&fleet.clone().recipient()).await
    }

    /// Forgets the shared snapshot: the API changed the fleet (agents pushed samples), and
    /// its caller must read its own write.
    pub fn invalidate(&self) {
        let mut shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        shared.generation += 1;
        shared.latest = None;
    }

    async fn get_from(&self, fleet: &Recipient<GetFleet>) -> Result<Arc<FleetSnapshot>, ApiError> {
        let (taking_another, generation) = {
            let mut shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let (fresh, usable) = match &shared.latest {
                Some((taken, _)) => (taken.elapsed() < MAX_AGE, taken.elapsed() < STALE_MAX),
                None => (false, false),
            };
            if let Some((_, snapshot)) = &shared.latest
                && (fresh || (usable && shared.refreshing))
            {
                return Ok(snapshot.clone());
            }
            let another = shared.refreshing;
            shared.refreshing = true;
            (another, shared.generation)
        };
        if taking_another {
            // The one being taken may be slow: take another rather than answer an old one.
            return Ok(Arc::new(fleet.send(GetFleet).await.map_err(unavailable)?));
        }
        // Cleared however this ends, even if the request is dropped while it waits.
        let _refreshing = Refreshing(&self.0);
        let taken = Instant::now();
        let snapshot = Arc::new(fleet.send(GetFleet).await.map_err(unavailable)?);
        let mut shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.generation == generation {
            shared.latest = Some((taken, snapshot.clone()));
        }
        Ok(snapshot)
    }
}

/// Marks the end of a refresh when dropped.
struct Refreshing<'a>(&'a Mutex<Shared>);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, Context, Handler, MessageResult};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fleet that counts the snapshots asked of it.
    struct Counting(Arc<AtomicUsize>);

    impl Actor for Counting {
        type Context = Context<Self>;
    }

    impl Handler<GetFleet> for Counting {
        type Result = MessageResult<GetFleet>;
        fn handle(&mut self, _: GetFleet, _: &mut Context<Self>) -> Self::Result {
            self.0.fetch_add(1, Ordering::SeqCst);
            MessageResult(FleetSnapshot::default())
        }
    }

    /// A fleet that never answers.
    struct Silent;

    impl Actor for Silent {
        type Context = Context<Self>;
    }

    impl Handler<GetFleet> for Silent {
        type Result = actix::ResponseFuture<FleetSnapshot>;
        fn handle(&mut self, _: GetFleet, _: &mut Context<Self>) -> Self::Result {
            Box::pin(std::future::pending())
        }
    }

    #[actix::test]
    async fn requests_share_a_young_snapshot_never_an_old_one_and_a_dropped_refresh_is_forgotten() {
        let asked = Arc::new(AtomicUsize::new(0));
        let fleet = Counting(asked.clone()).start().recipient();
        let view = FleetView::default();
        for _ in 0..50 {
            view.get_from(&fleet).await.unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // A refresh whose request is dropped before the answer leaves no mark.
        view.0.lock().unwrap().latest = None;
        let silent = Silent.start().recipient();
        let dropped = tokio::time::timeout(Duration::from_millis(20), view.get_from(&silent));
        assert!(dropped.await.is_err(), "a silent fleet never answers");
        assert!(!view.0.lock().unwrap().refreshing);
        view.get_from(&fleet).await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // While a refresh runs, a snapshot past STALE_MAX is not answered: a new one is taken.
        {
            let mut shared = view.0.lock().unwrap();
            let old = shared.latest.take().unwrap().1;
            shared.latest = Some((Instant::now() - STALE_MAX * 2, old));
            shared.refreshing = true;
        }
        view.get_from(&fleet).await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        // A write through the API forgets the shared one: the next read takes a new one.
        view.invalidate();
        view.get_from(&fleet).await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 4);
    }
}
