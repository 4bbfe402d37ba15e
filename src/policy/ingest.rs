//! How samples come in: the push endpoints' limits and what happens to agents the controller
//! has not met.

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
    /// The pool an unknown agent joins when its samples name none.
    #[serde(default = "default_pool")]
    pub default_pool: String,
    /// Largest request body the push endpoints (`/api/v1/samples`, `/v1/metrics`) accept, bytes.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1024))]
    pub max_body_bytes: usize,
    /// How far ahead of the controller's clock a sample's timestamp may be, seconds.
    #[serde(default = "default_max_future_secs")]
    pub max_future_secs: u64,
    /// Prometheus endpoints scraped on the sampling interval, each the metrics of one agent.
    #[serde(default)]
    pub scrape: Vec<super::scrape::ScrapeTarget>,
    /// Pools whose agents (run by the pool's driver) are scraped at their endpoint, by pool.
    #[serde(default)]
    pub scrape_pools: std::collections::BTreeMap<String, super::scrape::ScrapePool>,
    /// Pool-level inputs read with PromQL from a Prometheus-compatible server.
    #[serde(default)]
    pub promql: Vec<super::scrape::PromQuery>,
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

fn default_pool() -> String {
    "external".into()
}
const fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}
const fn default_max_future_secs() -> u64 {
    300
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            unknown_agents: UnknownAgents::default(),
            default_pool: default_pool(),
            max_body_bytes: default_max_body_bytes(),
            max_future_secs: default_max_future_secs(),
            scrape: Vec::new(),
            scrape_pools: Default::default(),
            promql: Vec::new(),
        }
    }
}
