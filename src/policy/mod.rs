//! Declarative policy: the documented model, loading and checking, and the handle through
//! which every actor sees the version in force.
//!
//! Policy is pure: loading reads files, but nothing here talks to actors or the network.

mod automation;
mod check;
mod ingest;
mod levels;
mod load;
mod model;
mod overlay;
mod rules;
mod rules_cache;
mod schema;
mod scrape;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use automation::{
    AgentRules, Automation, KindRisk, RiskMode, RiskPolicy, ThresholdTuning, Verification,
};
pub use check::Severity;
pub use ingest::{IngestPolicy, UnknownAgents, WebSocketTarget};
pub use levels::AlertDefaults;
pub use load::{
    DEFAULT_POLICY, LoadError, LoadedPolicy, PolicyError, REPLAY_POLICY, load_dir, load_sources,
    load_str, policy_files, read_sources, version_of,
};
pub use model::{
    DriverConfig, Global, Policy, PoolPolicy, PullProtocol, Role, ScaleRate, TokenRef, WorkloadKind,
};
pub use overlay::{
    OVERLAY_FILE, OverlayEntry, OverlayError, apply_overlay, overlaid, read_overlay, threshold,
    write_overlay,
};
pub use rules::{AlertLevel, AlertRule, AnomalyPolicy, Channel, LevelThresholds, Profile, Route};
pub use schema::policy_schema;
pub use scrape::{
    MetricMapping, PromQuery, ReadAs, ScaleOn, ScrapePool, ScrapeTarget, bundled_worker_metrics,
};

/// The policy in force, shared by every actor; swapped atomically on reload.
#[derive(Clone)]
pub struct PolicyHandle {
    current: Arc<ArcSwap<LoadedPolicy>>,
}

impl PolicyHandle {
    /// A handle holding `loaded`.
    pub fn new(loaded: LoadedPolicy) -> Self {
        PolicyHandle {
            current: Arc::new(ArcSwap::from_pointee(loaded)),
        }
    }

    /// The version in force now.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        self.current.load_full()
    }

    /// The sampling interval in force.
    pub fn sampling_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.current.load().policy.global.sampling_interval_secs)
    }

    /// Puts `loaded` in force; every later `current()` sees it.
    pub fn replace(&self, loaded: LoadedPolicy) {
        self.current.store(Arc::new(loaded));
    }
}

#[cfg(test)]
mod tests;
