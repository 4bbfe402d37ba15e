//! Prometheus scraping: endpoints read in the text exposition format on the sampling
//! interval (`[[ingest.scrape]]`), the agents of pools the controller runs
//! (`[ingest.scrape_pools.NAME]`), and how their series become swarmpilot metrics.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One Prometheus endpoint whose series are the metrics of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// The URL read, e.g. `http://127.0.0.1:9100/metrics`.
    pub url: String,
    /// The agent its samples belong to (unique among targets).
    pub agent: String,
    /// The pool the agent joins when first met; default: `ingest.default_pool`.
    #[serde(default)]
    pub pool: Option<String>,
    /// How long one scrape may take, milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: u64,
    /// Which series become which metrics.
    pub metrics: Vec<MetricMapping>,
    /// How the request authenticates (bearer, basic, headers, CA).
    #[serde(default)]
    pub auth: HttpAuth,
}

/// How a scrape or a PromQL query authenticates, as Prometheus' own scrape configuration
/// does. Secrets come from an environment variable or a file, read at each request (so a
/// rotated file takes effect), never from the policy text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    /// A bearer token, from this environment variable.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// A bearer token, from this file.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Headers sent with every request, e.g. `{ "X-Scope-OrgID" = "team-a" }` for Mimir.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A PEM file of the certificate authorities the server's certificate is checked against,
    /// instead of the system's (as Prometheus' `ca_file`), for servers of a private CA.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// HTTP basic authentication: a user name, and its password from a variable or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password, from this environment variable.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The password, from this file.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// Scraping of the agents a pool's driver runs, at their endpoint followed by `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapePool {
    /// Path of the metrics page on each agent's endpoint.
    #[serde(default = "default_path")]
    pub path: String,
    /// How long one scrape may take, milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: u64,
    /// Which series become which metrics; default: the bundled worker's, `tasks_total` as
    /// `throughput_per_s` (rate), the share of failed tasks as `error_rate` (percent),
    /// `tasks_in_flight` as `active_tasks`, and the mean task latency between two scrapes as
    /// `response_time_ms` (its 95th percentile as `response_time_p95_ms`).
    #[serde(default = "bundled_worker_metrics")]
    pub metrics: Vec<MetricMapping>,
    /// How each request authenticates (bearer, basic, headers, CA).
    #[serde(default)]
    pub auth: HttpAuth,
}

/// One swarmpilot metric read from a Prometheus metric family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricMapping {
    /// The Prometheus metric family, e.g. `node_load1` or `node_cpu_seconds_total`.
    pub from: String,
    /// Only series whose labels have all these values count; the series that match are
    /// added up (rates per series first, so one series' reset does not skew the others).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The swarmpilot metric it becomes, e.g. `load1`.
    pub to: String,
    /// How the value is read.
    #[serde(default)]
    pub read: ReadAs,
    /// For `read = "quantile"`: which quantile, in (0, 1).
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// For `read = "ratio"`: the counter families whose increase is the denominator.
    #[serde(default)]
    pub over: Vec<String>,
    /// The value is multiplied by this, e.g. 1000 for seconds to milliseconds.
    #[serde(default = "default_scale")]
    pub scale: f64,
}

/// How a mapped series is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadAs {
    /// By the family's `# TYPE`: a counter as `rate`, a histogram or summary as `mean`,
    /// anything else as `value`.
    #[default]
    Auto,
    /// The value as it is.
    Value,
    /// Increase per second between two scrapes; a decrease is a counter reset (the new value
    /// is the increase since the reset).
    Rate,
    /// A histogram or summary: increase of `_sum` over increase of `_count` between two
    /// scrapes (no sample when nothing was observed in between).
    Mean,
    /// A histogram: the quantile of the observations between two scrapes, interpolated in
    /// the buckets as PromQL's `histogram_quantile`; a summary: its series of that quantile.
    Quantile,
    /// Increase of `from` over the summed increase of the `over` counters (no sample when
    /// they did not increase).
    Ratio,
}

const fn default_timeout_ms() -> u64 {
    2000
}
fn default_path() -> String {
    "/metrics".into()
}
const fn default_quantile() -> f64 {
    0.95
}
const fn default_scale() -> f64 {
    1.0
}

/// The mapping of the bundled worker's `/metrics` (see `agent::metrics`).
pub fn bundled_worker_metrics() -> Vec<MetricMapping> {
    let map = |from: &str, to: &str, read: ReadAs, scale: f64| MetricMapping {
        from: from.into(),
        labels: BTreeMap::new(),
        to: to.into(),
        read,
        quantile: default_quantile(),
        over: Vec::new(),
        scale,
    };
    let done = "swarmpilot_agent_tasks_total";
    let failed = "swarmpilot_agent_tasks_failed_total";
    let latency = "swarmpilot_agent_task_latency_seconds";
    vec![
        map(done, "throughput_per_s", ReadAs::Rate, 1.0),
        MetricMapping {
            over: vec![done.into(), failed.into()],
            ..map(failed, "error_rate", ReadAs::Ratio, 100.0)
        },
        map(
            "swarmpilot_agent_tasks_in_flight",
            "active_tasks",
            ReadAs::Value,
            1.0,
        ),
        map(latency, "response_time_ms", ReadAs::Mean, 1000.0),
        map(latency, "response_time_p95_ms", ReadAs::Quantile, 1000.0),
        // A worker that calls a model provider (`--provider`) also exposes these.
        map(
            "swarmpilot_agent_model_calls_total",
            "model_calls_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_rate_limited_total",
            "errors_rate_limited_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_timeouts_total",
            "errors_timeout_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_errors_total",
            "errors_other_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_input_tokens_total",
            "tokens_in_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_output_tokens_total",
            "tokens_out_per_s",
            ReadAs::Rate,
            1.0,
        ),
        map(
            "swarmpilot_agent_model_call_seconds",
            "model_latency_ms",
            ReadAs::Mean,
            1000.0,
        ),
    ]
}

impl Default for ScrapePool {
    fn default() -> Self {
        ScrapePool {
            path: default_path(),
            timeout_ms: default_timeout_ms(),
            metrics: bundled_worker_metrics(),
            auth: HttpAuth::default(),
        }
    }
}

/// A pool-level input read with an instant PromQL query from a Prometheus-compatible server
/// (Prometheus, Thanos, Mimir), as KEDA's Prometheus scaler reads one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromQuery {
    /// The server's base URL, e.g. `http://127.0.0.1:9090`; `/api/v1/query` is added.
    pub server: String,
    /// The pool the input is about.
    pub pool: String,
    /// The input's name, e.g. `requests_per_second`.
    pub input: String,
    /// The query; it must answer one series or a scalar, e.g. `sum(rate(requests_total[1m]))`.
    pub query: String,
    /// How long one query may take, milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: u64,
    /// How the query authenticates (bearer, basic, headers, CA).
    #[serde(default)]
    pub auth: HttpAuth,
}

/// A pool input the pool scales on, instead of its agents' CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleOn {
    /// The input, as an `[[ingest.promql]]` entry of the same pool names it.
    pub input: String,
    /// How much of the input one agent should carry (above 0), e.g. 50 requests per second.
    pub target_per_agent: f64,
}
