//! Declarative policy: the documented model, loading and checking.
//!
//! Text in, errors out: the files are read, and the environment looked at, by the caller.

mod automation;
mod check;
mod environment;
mod genai;
mod ingest;
mod levels;
mod load;
mod model;
mod overlay;
mod reports;
mod rules;
mod rules_cache;
mod schema;
mod scrape;

pub use automation::{
    AgentRules, Automation, KindRisk, RiskMode, RiskPolicy, ThresholdTuning, Verification,
};
pub use check::Severity;
pub use environment::{Environment, ListedEnvironment};
pub use genai::{
    BudgetPolicy, ConcurrencyPolicy, DEFAULT_THROTTLE_PERCENT, GenAiPolicy, ModelPrice, PoolModel,
};
pub use ingest::{ForeignAgents, IngestPolicy, UnknownAgents, WebSocketTarget};
pub use levels::AlertDefaults;
pub use load::{
    DEFAULT_POLICY, DEFAULT_PRICES, EMBEDDED_POLICY, LoadError, LoadedPolicy, PolicyError,
    REPLAY_POLICY, load_sources, load_str, unreadable, version_of,
};
pub use model::{
    DriverConfig, Global, KubernetesLease, Policy, PoolPolicy, PullProtocol, Role, ScaleRate,
    StorePolicy, TlsFiles, TokenRef, WorkloadKind,
};
pub use overlay::{OVERLAY_FILE, OverlayEntry, apply_overlay, overlaid, threshold};
pub use reports::{REPORT_FORMATS, ReportsPolicy};
pub use rules::{AlertLevel, AlertRule, AnomalyPolicy, Channel, LevelThresholds, Profile, Route};
pub use schema::policy_schema;
pub use scrape::{
    BasicAuth, HttpAuth, MetricMapping, PromQuery, ReadAs, ScaleOn, ScrapePool, ScrapeTarget,
    bundled_worker_metrics,
};
