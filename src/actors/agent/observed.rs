//! What an agent actor last observed, shared with the fleet's registry.
//!
//! The actor updates it in place after each batch, so a batch costs a lock and a few map
//! updates rather than a message holding a fresh copy of every latest value. The readings
//! are [`Readings`], shared copy-on-write: the view of the agent that the registry keeps for
//! snapshots takes a reference to its map, and the agent copies its map at its next write
//! after a snapshot (one copy per round of samples, however many snapshots were taken). A
//! count of writes tells the registry whether its view is still current.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use crate::domain::fleet::Readings;

/// An agent's latest readings.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observed {
    /// Latest value of each metric.
    pub latest: Readings,
    /// Smoothed CPU (EWMA), percent of one core; `None` before the first CPU sample.
    pub cpu_smoothed: Option<f64>,
    /// Latest anomaly score of each watched metric, in [0, 1].
    pub anomaly_scores: Readings,
    /// When the last sample was taken, epoch milliseconds; 0 before the first.
    pub last_sample_ms: i64,
    /// How often the actor was restarted by its supervisor.
    pub restarts: u32,
    /// Points held in its ring buffers.
    pub ring_points: usize,
    /// Heap bytes of its ring buffers.
    pub ring_bytes: usize,
}

/// A count of the changes to what a fleet snapshot shows, shared by the registry and its
/// agents: a reader that saw the same count before two snapshots would get the same one.
#[derive(Debug, Default, Clone)]
pub struct FleetChanges(Arc<AtomicU64>);

impl FleetChanges {
    /// Counts a change (made, or about to be made under a lock the snapshot also takes).
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// The count so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// [`Observed`] behind a lock, written by the agent actor and read by the registry.
#[derive(Debug, Default, Clone)]
pub struct SharedObserved {
    observed: Arc<Mutex<Stamped>>,
    changes: FleetChanges,
}

/// The readings and how many writes made them.
#[derive(Debug, Default)]
struct Stamped {
    observed: Observed,
    writes: u64,
}

impl SharedObserved {
    /// Readings whose writes count in `changes`.
    pub fn counting(changes: FleetChanges) -> Self {
        SharedObserved {
            observed: Arc::default(),
            changes,
        }
    }

    /// A copy of the latest readings (snapshots use `read_since`).
    #[cfg(test)]
    pub fn read(&self) -> Observed {
        self.guard().observed.clone()
    }

    /// A copy of the latest readings and the count of writes that made them, unless that
    /// count is still `seen`.
    pub fn read_since(&self, seen: Option<u64>) -> Option<(Observed, u64)> {
        let stamped = self.guard();
        (seen != Some(stamped.writes)).then(|| (stamped.observed.clone(), stamped.writes))
    }

    /// The readings, to write: counted as a change when the writer lets go, while it still
    /// holds the lock, so a reader that saw the new count and then takes the lock sees the
    /// write.
    pub(super) fn lock(&self) -> Writing<'_> {
        Writing {
            guard: self.guard(),
            changes: &self.changes,
        }
    }

    fn guard(&self) -> MutexGuard<'_, Stamped> {
        // A writer that panicked leaves readings that are still worth showing.
        self.observed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A write to an agent's readings, counted as a change when it ends.
pub struct Writing<'a> {
    guard: MutexGuard<'a, Stamped>,
    changes: &'a FleetChanges,
}

impl Deref for Writing<'_> {
    type Target = Observed;

    fn deref(&self) -> &Observed {
        &self.guard.observed
    }
}

impl DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Observed {
        &mut self.guard.observed
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        // Runs before the guard (a field) is dropped: the lock is still held.
        self.guard.writes += 1;
        self.changes.bump();
    }
}
