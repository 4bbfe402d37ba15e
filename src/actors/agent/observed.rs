//! What an agent actor last observed, shared with the fleet's registry.
//!
//! The actor updates it in place after each batch, so a batch costs a lock and a few map
//! updates rather than a message holding a fresh copy of every latest value. The readings
//! are [`Readings`], shared copy-on-write: a snapshot of the fleet takes a reference to each
//! agent's map, and the agent copies its map only when it next writes while a snapshot still
//! holds the old one. Snapshots taken between two rounds of samples share one copy.

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

/// [`Observed`] behind a lock, written by the agent actor and read by the registry.
#[derive(Debug, Default, Clone)]
pub struct SharedObserved(Arc<Mutex<Observed>>);

impl SharedObserved {
    /// A copy of the latest readings.
    pub fn read(&self) -> Observed {
        self.lock().clone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Observed> {
        // A writer that panicked leaves readings that are still worth showing.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
