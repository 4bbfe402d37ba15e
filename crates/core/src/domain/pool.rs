//! What the decisions know about a pool beyond its agents: the actuator's activity on it,
//! and the pool inputs read for it.

/// What the actuator is doing, or last did, to one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolActivity {
    /// The action being applied or verified now.
    pub in_flight: Option<i64>,
    /// When the last action on the pool finished, epoch milliseconds.
    pub last_finished_ms: Option<i64>,
    /// How long a new agent of the pool has been taking to become ready, milliseconds.
    pub observed_startup_ms: Option<i64>,
    /// The concurrency the controller last set for the pool's agents (none set yet: they run
    /// at the policy's `concurrency.max`).
    pub concurrency: Option<u32>,
    /// The pool's size as its remote driver last reported it (an orchestrator's replicas).
    pub driver_size: Option<usize>,
}

/// One input as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputState {
    /// The value read, when the last query gave one (a failed query clears it: a stale
    /// input is no input).
    pub value: Option<f64>,
    /// When it was read, epoch milliseconds.
    pub read_ms: i64,
    /// Queries that failed.
    pub failures: u64,
    /// Why the last query failed, if it did.
    pub last_error: Option<String>,
}
