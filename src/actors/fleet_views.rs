//! The agents of a fleet snapshot, each built again only when it changed.
//!
//! A snapshot of 10,000 agents built afresh copies every agent's id, pool and endpoint; the
//! registry is asked for one several times a second (pulls, scrapes, the optimizer, readers)
//! while the fleet's few busy agents keep changing it. Each entry therefore keeps the view the
//! last snapshot showed, and a snapshot shares it while the agent's readings have had no
//! write and its status and handle are the same.

use std::sync::Arc;

use crate::actors::agent::SharedObserved;
use crate::domain::fleet::AgentView;
use crate::domain::{AgentHandle, AgentStatus};

/// The view of one agent that the last snapshot showed.
pub(super) struct CachedView {
    /// Writes to the agent's readings when the view was taken.
    writes: u64,
    /// What snapshots show of the agent.
    pub view: Arc<AgentView>,
    /// Points in the agent's ring buffers.
    pub ring_points: usize,
    /// Heap bytes of the agent's ring buffers.
    pub ring_bytes: usize,
}

impl CachedView {
    /// Whether the view shows `handle` with `status`.
    fn shows(&self, handle: &AgentHandle, status: AgentStatus) -> bool {
        // Every field named, so that one added to the handle is not forgotten here.
        let AgentHandle {
            id,
            pool,
            pid,
            endpoint,
            started_ms,
        } = handle;
        let view = &self.view;
        view.status == status
            && view.id == *id
            && view.pool == *pool
            && view.pid == *pid
            && view.endpoint == *endpoint
            && view.started_ms == *started_ms
    }
}

/// The view of the agent `handle` names: the kept one while it is current, otherwise a
/// fresh one, kept in its place.
pub(super) fn current<'a>(
    kept: &'a mut Option<CachedView>,
    handle: &AgentHandle,
    status: AgentStatus,
    observed: &SharedObserved,
) -> &'a CachedView {
    let seen = (kept.as_ref())
        .filter(|kept| kept.shows(handle, status))
        .map(|kept| kept.writes);
    if let Some((observed, writes)) = observed.read_since(seen) {
        *kept = Some(CachedView {
            writes,
            ring_points: observed.ring_points,
            ring_bytes: observed.ring_bytes,
            view: Arc::new(AgentView {
                id: handle.id.clone(),
                pool: handle.pool.clone(),
                status,
                pid: handle.pid,
                endpoint: handle.endpoint.clone(),
                started_ms: handle.started_ms,
                last_sample_ms: observed.last_sample_ms,
                metrics: observed.latest,
                cpu_smoothed: observed.cpu_smoothed,
                anomaly_scores: observed.anomaly_scores,
                actor_restarts: observed.restarts,
            }),
        });
    }
    kept.as_ref().expect("a view was kept or made")
}
