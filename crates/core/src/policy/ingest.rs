//! How samples come in: the push endpoints' limits, what happens to agents the controller
//! has not met, the agents whose metrics the controller pulls, and the task tracker's
//! timeout and cap.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How samples come in from agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestPolicy {
    /// What samples of an agent the controller has not met do: `join` (the agent joins the
    /// pool its `pool` label names, else `default_pool`) or `reject` (the samples are refused).
    #[serde(default)]
    pub unknown_agents: UnknownAgents,
    /// What an agent does that names a pool run by a driver which did not start it and whose
    /// `allow_agents` does not list it: `observe` (it joins `default_pool` when that pool is
    /// observe-only, else it is refused) or `reject` (it is refused). Either way it never
    /// counts in the driver's pool nor becomes a restart target.
    #[serde(default)]
    pub foreign_agents: ForeignAgents,
    /// Most agents the controller watches in all; an agent met for the first time past it
    /// is refused (an observe-only pool's `max_agents` applies to joins too).
    #[serde(default = "default_max_agents")]
    #[schemars(range(min = 1))]
    pub max_agents: usize,
    /// New agents one token's pushes may bring in a minute (a bucket of this size refilled
    /// over a minute); more are refused until it refills. 0 limits nothing.
    #[serde(default = "default_max_new_agents_per_minute_per_token")]
    pub max_new_agents_per_minute_per_token: u32,
    /// An agent of an observe-only pool silent this long, seconds, is forgotten with its
    /// series and alerts (its history stays in the store); 0 keeps every agent.
    #[serde(default = "default_forget_after_secs")]
    pub forget_after_secs: u64,
    /// The pool an unknown agent joins when its samples name none.
    #[serde(default = "default_pool")]
    pub default_pool: String,
    /// Largest request body the push endpoints (`/api/v1/samples`, `/v1/metrics`) accept, bytes.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1024))]
    pub max_body_bytes: usize,
    /// Seconds any request's body (a push, an action, a silence) may take to arrive; a
    /// slower one gets 408 and its connection is closed.
    #[serde(default = "default_body_timeout_secs")]
    #[schemars(range(min = 1))]
    pub body_timeout_secs: u64,
    /// Most items one push request may carry (JSON samples, OTLP data points), counted while
    /// it is read: a larger request is refused whole with 413.
    #[serde(default = "default_max_items_per_request")]
    #[schemars(range(min = 1))]
    pub max_items_per_request: usize,
    /// Most refusals a push answer lists one by one; the others are counted.
    #[serde(default = "default_max_rejections_listed")]
    #[schemars(range(min = 1))]
    pub max_rejections_listed: usize,
    /// Most labels one pushed sample may carry.
    #[serde(default = "default_max_labels_per_sample")]
    #[schemars(range(min = 1))]
    pub max_labels_per_sample: usize,
    /// Longest label name or value of a pushed sample, bytes.
    #[serde(default = "default_max_label_bytes")]
    #[schemars(range(min = 16))]
    pub max_label_bytes: usize,
    /// How far ahead of the controller's clock a sample's timestamp may be, seconds.
    #[serde(default = "default_max_future_secs")]
    pub max_future_secs: u64,
    /// A task started through `/api/v1/tasks` and not ended within this many seconds ends
    /// as failed.
    #[serde(default = "default_task_timeout_secs")]
    #[schemars(range(min = 1))]
    pub task_timeout_secs: u64,
    /// Open tasks (running or queued) one agent may have; further starts are refused with
    /// 429 until some end.
    #[serde(default = "default_max_open_tasks_per_agent")]
    #[schemars(range(min = 1))]
    pub max_open_tasks_per_agent: usize,
    /// Prometheus endpoints scraped on the sampling interval, each the metrics of one agent.
    #[serde(default)]
    pub scrape: Vec<super::scrape::ScrapeTarget>,
    /// Pools whose agents (run by the pool's driver) are scraped at their endpoint, by pool.
    #[serde(default)]
    pub scrape_pools: std::collections::BTreeMap<String, super::scrape::ScrapePool>,
    /// Pool-level inputs read with PromQL from a Prometheus-compatible server.
    #[serde(default)]
    pub promql: Vec<super::scrape::PromQuery>,
    /// Agents the controller does not run whose metrics it pulls over WebSocket
    /// (`[[ingest.websocket]]`); a pool's own agents are pulled with its `pull` setting.
    #[serde(default)]
    pub websocket: Vec<WebSocketTarget>,
}

/// One agent whose metrics are pulled over WebSocket: every sampling interval the controller
/// sends `{"type": "metrics_request"}` and reads the `metrics_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketTarget {
    /// The agent id its samples carry.
    pub agent: String,
    /// The pool it joins when it first answers.
    pub pool: String,
    /// Where it serves the protocol, e.g. `ws://10.0.0.7:9100/metrics` (`ws://` only).
    pub url: String,
}

/// What samples of an agent the controller has not met do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAgents {
    /// The agent joins a pool and is monitored from its first sample.
    #[default]
    Join,
    /// The samples are refused, each with its index and reason.
    Reject,
}

/// What an agent does that names a driver-run pool which neither started nor allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForeignAgents {
    /// It joins `ingest.default_pool` if that pool is observe-only, and is watched there.
    #[default]
    Observe,
    /// Its samples are refused, each with its index and reason.
    Reject,
}

fn default_pool() -> String {
    "external".into()
}
const fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}
const fn default_body_timeout_secs() -> u64 {
    10
}
const fn default_max_new_agents_per_minute_per_token() -> u32 {
    10_000
}
const fn default_forget_after_secs() -> u64 {
    3600
}
const fn default_max_agents() -> usize {
    20_000
}
const fn default_max_items_per_request() -> usize {
    100_000
}
const fn default_max_rejections_listed() -> usize {
    100
}
const fn default_max_labels_per_sample() -> usize {
    32
}
const fn default_max_label_bytes() -> usize {
    1024
}
const fn default_max_future_secs() -> u64 {
    300
}
const fn default_task_timeout_secs() -> u64 {
    300
}
const fn default_max_open_tasks_per_agent() -> usize {
    10_000
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            unknown_agents: UnknownAgents::default(),
            foreign_agents: ForeignAgents::default(),
            max_agents: default_max_agents(),
            forget_after_secs: default_forget_after_secs(),
            max_new_agents_per_minute_per_token: default_max_new_agents_per_minute_per_token(),
            default_pool: default_pool(),
            max_body_bytes: default_max_body_bytes(),
            body_timeout_secs: default_body_timeout_secs(),
            max_items_per_request: default_max_items_per_request(),
            max_rejections_listed: default_max_rejections_listed(),
            max_labels_per_sample: default_max_labels_per_sample(),
            max_label_bytes: default_max_label_bytes(),
            max_future_secs: default_max_future_secs(),
            task_timeout_secs: default_task_timeout_secs(),
            max_open_tasks_per_agent: default_max_open_tasks_per_agent(),
            websocket: Vec::new(),
            scrape: Vec::new(),
            scrape_pools: Default::default(),
            promql: Vec::new(),
        }
    }
}
