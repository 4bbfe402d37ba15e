//! What an agent actor last observed, shared with the fleet's registry.
//!
//! The actor updates it in place after each batch, so a batch costs a lock and a few map
//! updates rather than a message holding a fresh copy of every latest value. The readings
//! are [`Readings`], shared copy-on-write: a snapshot of the fleet takes a reference to each
//! agent's map, and the agent copies its map only when it next writes while a snapshot still
//! holds the old one. Snapshots taken between two rounds of samples share one copy.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Serialize, Serializer};

/// Latest value of each metric, by name, shared copy-on-write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Readings(Arc<BTreeMap<String, f64>>);

impl Readings {
    /// Sets `name` to `value`; answers the value it replaces.
    pub fn insert(&mut self, name: String, value: f64) -> Option<f64> {
        Arc::make_mut(&mut self.0).insert(name, value)
    }

    /// Sets `name` to `value`, copying the map only if it changes and is shared, and
    /// allocating the name only when the map does not hold it yet.
    pub fn set(&mut self, name: &str, value: f64) {
        if self
            .0
            .get(name)
            .is_some_and(|old| old.to_bits() == value.to_bits())
        {
            return;
        }
        let map = Arc::make_mut(&mut self.0);
        match map.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                map.insert(name.to_string(), value);
            }
        }
    }

    /// Keeps only the names `keep` answers true for.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        if self.0.keys().all(|name| keep(name)) {
            return;
        }
        Arc::make_mut(&mut self.0).retain(|name, _| keep(name));
    }

    /// Forgets every reading.
    pub fn clear(&mut self) {
        if !self.0.is_empty() {
            self.0 = Arc::default();
        }
    }
}

impl Deref for Readings {
    type Target = BTreeMap<String, f64>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromIterator<(String, f64)> for Readings {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Readings(Arc::new(iter.into_iter().collect()))
    }
}

impl Serialize for Readings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(serializer)
    }
}

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
