//! The fleet as the decisions see it: each agent's latest readings and status, and a
//! point-in-time snapshot of every agent.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use super::AgentStatus;

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

    /// A handle that tells these readings from any other, kept without keeping them.
    pub fn identity(&self) -> ReadingsId {
        ReadingsId(Arc::downgrade(&self.0))
    }
}

/// The identity of one [`Readings`] value: while a handle is held, every change to the
/// readings gives them a new identity.
///
/// A write to readings that are not shared moves them to a new allocation while a handle is
/// held (`Arc::make_mut` parts from weak references), and a held handle keeps its
/// allocation, so no later readings can take its address.
#[derive(Debug, Clone)]
pub struct ReadingsId(Weak<BTreeMap<String, f64>>);

impl ReadingsId {
    /// Whether `readings` are still the ones this handle was taken from.
    pub fn is(&self, readings: &Readings) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&readings.0))
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

/// One agent as the optimizer sees it (the API answers `api::wire::AgentOut`).
#[derive(Debug, Clone)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Pool.
    pub pool: String,
    /// Current status.
    pub status: AgentStatus,
    /// OS process id, for local agents.
    pub pid: Option<u32>,
    /// Base URL the agent serves.
    pub endpoint: Option<String>,
    /// When this incarnation started, epoch milliseconds.
    pub started_ms: i64,
    /// When it last reported, epoch milliseconds; 0 if never.
    pub last_sample_ms: i64,
    /// Latest value of each metric.
    pub metrics: Readings,
    /// Smoothed CPU, percent of one core; `None` before the first CPU sample.
    pub cpu_smoothed: Option<f64>,
    /// Latest anomaly score of each watched metric, in [0, 1].
    pub anomaly_scores: Readings,
    /// Times its actor was restarted after a crash.
    pub actor_restarts: u32,
}

impl AgentView {
    /// An active agent of `pool` with no readings, for tests to fill in.
    pub fn blank(id: &str, pool: &str) -> AgentView {
        AgentView {
            id: id.into(),
            pool: pool.into(),
            status: AgentStatus::Active,
            pid: None,
            endpoint: None,
            started_ms: 0,
            last_sample_ms: 0,
            metrics: Readings::default(),
            cpu_smoothed: None,
            anomaly_scores: Readings::default(),
            actor_restarts: 0,
        }
    }
}

/// The agents of a snapshot, in its order.
pub type FleetAgents = Arc<Vec<Arc<AgentView>>>;

/// A point-in-time copy of the whole fleet.
#[derive(Debug, Clone, Default)]
pub struct FleetSnapshot {
    /// Every registered agent, in natural order; shared by the snapshots taken while no agent
    /// changed, and each agent's view by those taken while it did not change.
    pub agents: FleetAgents,
    /// Latest host-wide metrics.
    pub host: BTreeMap<String, f64>,
    /// Samples handed to agents (and kept for the host) since the controller started.
    pub samples_routed: u64,
    /// Points held in every agent's ring buffers.
    pub ring_points: usize,
    /// Heap bytes of every agent's ring buffers.
    pub ring_bytes: usize,
}

impl FleetSnapshot {
    /// A snapshot of `agents` and nothing else.
    pub fn of(agents: Vec<AgentView>) -> FleetSnapshot {
        FleetSnapshot {
            agents: Arc::new(agents.into_iter().map(Arc::new).collect()),
            ..FleetSnapshot::default()
        }
    }

    /// Every agent's view, in the snapshot's order.
    pub fn views(&self) -> impl Iterator<Item = &AgentView> {
        self.agents.iter().map(|agent| &**agent)
    }
}

/// The outcome of one pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// The agent answered and reported this status of its own.
    Reported(AgentStatus),
    /// The agent answered with something that is not a metrics response.
    Malformed,
    /// The agent could not be reached, closed the socket, or stayed silent too long.
    Unreachable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_to_readings_gives_them_a_new_identity() {
        let mut readings: Readings = [("cpu".to_string(), 1.0)].into_iter().collect();
        let id = readings.identity();
        assert!(id.is(&readings));
        assert!(id.is(&readings.clone()), "a copy shares the readings");
        readings.set("cpu", 1.0);
        assert!(id.is(&readings), "the same value is no change");
        // Not shared: written in place but for the handle, which moves it.
        readings.set("cpu", 2.0);
        assert!(!id.is(&readings));
        let id = readings.identity();
        let shared = readings.clone();
        readings.set("mem", 3.0);
        assert!(!id.is(&readings));
        assert!(id.is(&shared), "the copy kept the old readings");
        let id = readings.identity();
        readings.retain(|name| name == "cpu");
        assert!(!id.is(&readings));
        let id = readings.identity();
        readings.clear();
        assert!(!id.is(&readings));
        assert!(!Readings::default().identity().is(&Readings::default()));
    }
}
