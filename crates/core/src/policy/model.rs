//! The policy model: global settings and pools. Every field is documented (the docs become the
//! JSON Schema's descriptions) and every default is a `const fn`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::automation::Automation;
use super::genai::GenAiPolicy;
use super::ingest::IngestPolicy;
use super::levels::AlertDefaults;
use super::reports::ReportsPolicy;
use super::rules::{AlertRule, AnomalyPolicy, Channel, Profile, Route};

/// The effective policy: everything an operator can tune.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Settings that apply to the whole controller.
    #[serde(default)]
    pub global: Global,
    /// Pools of interchangeable agents, by name.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolPolicy>,
    /// Per agent type thresholds and scaling limits, by name; pools refer to them.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Threshold alert rules.
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
    /// Which alerts go to which channels.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Notification channels, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, Channel>,
    /// What the controller may do by itself.
    #[serde(default)]
    pub automation: Automation,
    /// Which agent metrics the anomaly detector watches, and when it speaks.
    #[serde(default)]
    pub anomaly: AnomalyPolicy,
    /// How samples come in from agents.
    #[serde(default)]
    pub ingest: IngestPolicy,
    /// Thresholds and timing every pool is watched with unless its profile says otherwise.
    #[serde(default)]
    pub alert_defaults: AlertDefaults,
    /// Reports written on a schedule and when the controller stops.
    #[serde(default)]
    pub reports: ReportsPolicy,
    /// What model tokens cost (AI agent fleets).
    #[serde(default)]
    pub genai: GenAiPolicy,
    /// Where the controller keeps its durable state.
    #[serde(default)]
    pub store: StorePolicy,
}

/// Where the controller keeps its durable state: the SQLite file in the data directory
/// unless a PostgreSQL database is named. Read at start; a change needs a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorePolicy {
    /// A PostgreSQL database, `postgres://user@host:port/dbname` (keep the password out of
    /// it: name it by `password_env` or `password_file`).
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the database password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The file holding the database password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Controllers on one PostgreSQL database elect a leader, which holds a lease of this
    /// many seconds and renews it every third of that; a standby takes over within about
    /// this time of the leader's loss.
    #[serde(default = "default_lease_secs")]
    #[schemars(range(min = 3, max = 300))]
    pub lease_secs: u64,
    /// Elect the leader with a Kubernetes Lease (coordination.k8s.io) instead of the
    /// database's lease row; the database still fences the leader's writes.
    #[serde(default)]
    pub kubernetes_lease: Option<KubernetesLease>,
}

/// A Kubernetes Lease that controllers on one PostgreSQL store elect their leader with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesLease {
    /// The Lease's name.
    pub name: String,
    /// Its namespace; default: the kubeconfig context's, else the pod's, else `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// API server URL instead of the credentials' one.
    #[serde(default)]
    pub api_server: Option<String>,
    /// Kubeconfig file; default: `$KUBECONFIG`, else `~/.kube/config`, else the pod's service account.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Kubeconfig context; default: the file's current context.
    #[serde(default)]
    pub context: Option<String>,
}

impl Default for StorePolicy {
    fn default() -> Self {
        StorePolicy {
            url: None,
            password_env: None,
            password_file: None,
            lease_secs: default_lease_secs(),
            kubernetes_lease: None,
        }
    }
}

const fn default_lease_secs() -> u64 {
    10
}

/// Settings that apply to the whole controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// How often the collector samples hosts and agents, seconds (1-10).
    #[serde(default = "default_sampling_interval_secs")]
    pub sampling_interval_secs: u64,
    /// An agent not heard from for this long is offline, seconds.
    #[serde(default = "default_heartbeat_timeout_secs")]
    pub heartbeat_timeout_secs: u64,
    /// Samples kept in memory per agent and metric.
    #[serde(default = "default_ring_buffer_size")]
    #[schemars(range(min = 1))]
    pub ring_buffer_size: usize,
    /// Days of history (rollups, alert history) kept in the store.
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = 1))]
    pub retention_days: u64,
    /// Address of the HTTP API when `--listen` is not given, e.g. `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Option<String>,
    /// API tokens, by reference to where the secret is kept (never inline).
    #[serde(default)]
    pub tokens: Vec<TokenRef>,
    /// Serve the API over TLS with these PEM files.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Requests a second each token may make (its bucket refills at this rate); past it the
    /// API answers 429 with `Retry-After`. 0 limits nothing.
    #[serde(default = "default_requests_per_sec_per_token")]
    pub requests_per_sec_per_token: u32,
    /// Requests a token may make at once after a quiet spell (its bucket's size).
    #[serde(default = "default_request_burst_per_token")]
    #[schemars(range(min = 1))]
    pub request_burst_per_token: u32,
    /// Requests each token may have in flight at once (a body still arriving counts); past
    /// it the API answers 429 with `Retry-After`. 0 limits nothing.
    #[serde(default = "default_max_requests_in_flight_per_token")]
    pub max_requests_in_flight_per_token: u32,
    /// Listen beyond loopback without TLS, so that bearer tokens travel in clear: refused
    /// unless set to true in so many words.
    #[serde(default)]
    pub plaintext_beyond_loopback: bool,
    /// On SIGTERM, how long an action in flight may take to reach a logged state before the
    /// controller stops its drivers and exits, seconds (a second SIGTERM exits at once).
    #[serde(default = "default_shutdown_grace_secs")]
    #[schemars(range(min = 1, max = 600))]
    pub shutdown_grace_secs: u64,
}

const fn default_sampling_interval_secs() -> u64 {
    2
}
const fn default_heartbeat_timeout_secs() -> u64 {
    6
}
const fn default_ring_buffer_size() -> usize {
    1000
}
const fn default_retention_days() -> u64 {
    7
}
const fn default_requests_per_sec_per_token() -> u32 {
    10_000
}
const fn default_request_burst_per_token() -> u32 {
    20_000
}
const fn default_max_requests_in_flight_per_token() -> u32 {
    256
}
const fn default_shutdown_grace_secs() -> u64 {
    10
}

impl Default for Global {
    fn default() -> Self {
        Global {
            sampling_interval_secs: default_sampling_interval_secs(),
            heartbeat_timeout_secs: default_heartbeat_timeout_secs(),
            ring_buffer_size: default_ring_buffer_size(),
            retention_days: default_retention_days(),
            listen: None,
            tokens: Vec::new(),
            tls: None,
            requests_per_sec_per_token: default_requests_per_sec_per_token(),
            request_burst_per_token: default_request_burst_per_token(),
            max_requests_in_flight_per_token: default_max_requests_in_flight_per_token(),
            plaintext_beyond_loopback: false,
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}

/// The certificate and key the API serves TLS with, PEM files read at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, the server's first.
    pub cert_file: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// What a token holder may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Also acknowledge alerts and manage silences.
    Operator,
    /// Also approve and reject actions.
    Approver,
    /// Also pause automation and reload policy.
    Admin,
}

/// An API token, named by where its secret lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    /// Who holds the token; the log names this user.
    pub name: String,
    /// What the holder may do.
    pub role: Role,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token.
    #[serde(default)]
    pub token_file: Option<String>,
}

/// A pool of interchangeable agents and how to scale it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPolicy {
    /// How the pool's agents are started, stopped and restarted.
    #[serde(default)]
    pub driver: DriverConfig,
    /// The profile (thresholds, limits) of the pool's agent type.
    #[serde(default)]
    pub profile: Option<String>,
    /// Fewest agents the pool may have.
    #[serde(default = "default_min_agents")]
    pub min_agents: usize,
    /// Most agents the pool may have (a profile's `max_agents` may lower it).
    #[serde(default = "default_max_agents")]
    #[schemars(range(min = 1))]
    pub max_agents: usize,
    /// Mean agent CPU the scaler aims for, percent of one core.
    #[serde(default = "default_target_cpu_percent")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_percent: f64,
    /// No scaling while observed/target is within 1 ± tolerance.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 0, max = 0.99))]
    pub tolerance: f64,
    /// A scale-in goes only to the highest recommendation of this many seconds.
    #[serde(default = "default_scale_down_stabilization_secs")]
    pub scale_down_stabilization_secs: u64,
    /// Seconds a new agent may take to become ready.
    #[serde(default = "default_startup_secs")]
    #[schemars(range(min = 1))]
    pub startup_secs: u64,
    /// Milliseconds a removed agent keeps serving (while clients notice) before it stops.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// How fast the pool may grow (Kubernetes' default: +100% or +4 agents per 15 s).
    #[serde(default = "ScaleRate::default_up")]
    pub scale_up: ScaleRate,
    /// How fast the pool may shrink (Kubernetes' default: -100% per 15 s, no limit).
    #[serde(default = "ScaleRate::default_down")]
    pub scale_down: ScaleRate,
    /// How the controller also pulls metrics from each of the pool's agents at its endpoint:
    /// `none`, or `websocket` (`metrics_request` every sampling interval on
    /// `ws://HOST:PORT/metrics`, as the bundled worker serves it).
    #[serde(default)]
    pub pull: PullProtocol,
    /// Scale on a pool input read with PromQL (`[[ingest.promql]]`) instead of CPU: the pool
    /// runs about input value / `target_per_agent` agents, as KEDA's Prometheus scaler does.
    #[serde(default)]
    pub scale_on: Option<super::scrape::ScaleOn>,
    /// Agents the driver did not start that may still join this pool when they report with
    /// its name (`*` matches any run of characters, e.g. `workers-*`); scrape and WebSocket
    /// targets the policy assigns to the pool are allowed too. Others are foreign: see
    /// `ingest.foreign_agents`. Never restart targets either way.
    #[serde(default)]
    pub allow_agents: Vec<String>,
    /// What the controller may do with the agents' concurrency when the pool's model
    /// provider throttles it (`adjust_concurrency`); absent: the pool only stops scaling out.
    #[serde(default)]
    pub concurrency: Option<super::genai::ConcurrencyPolicy>,
    /// What the pool may spend on models; burn-rate alerts watch it, and a scale-out that
    /// would break it waits for approval.
    #[serde(default)]
    pub budget: Option<super::genai::BudgetPolicy>,
    /// The model the pool's agents call: its `[genai]` price turns tokens that arrive without
    /// a cost (pushed or scraped `tokens_in_per_s`, task ends naming no priced model) into
    /// `cost_per_hour` and `cost_per_task`.
    #[serde(default)]
    pub model: Option<super::genai::PoolModel>,
    /// Models as good as `model` for the pool's work: when the provider throttles the model
    /// some agents call while another of these is not throttled, agents move to it one at a
    /// time (`switch_model`) before the concurrency comes down.
    #[serde(default)]
    pub equivalent_models: Vec<super::genai::PoolModel>,
}

/// How metrics are pulled from agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullProtocol {
    /// Nothing is pulled: the collector samples local processes, agents push.
    #[default]
    None,
    /// A WebSocket at `/metrics` answers `{"type": "metrics_request"}` with a
    /// `metrics_response`; a closed or silent socket marks the agent offline.
    Websocket,
}

/// A rate policy: within any `period_secs` the pool may change by `percent` of its size at
/// the period's start or by `agents`, whichever allows more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRate {
    /// Percent of the pool's size.
    #[serde(default = "default_rate_percent")]
    #[schemars(range(min = 0, max = 1000))]
    pub percent: f64,
    /// Agents.
    #[serde(default)]
    pub agents: usize,
    /// The period, seconds.
    #[serde(default = "default_rate_period_secs")]
    #[schemars(range(min = 1))]
    pub period_secs: u64,
}

const fn default_rate_percent() -> f64 {
    100.0
}
const fn default_rate_period_secs() -> u64 {
    15
}

impl ScaleRate {
    /// Kubernetes' default scale-up policy.
    pub fn default_up() -> ScaleRate {
        ScaleRate {
            percent: 100.0,
            agents: 4,
            period_secs: 15,
        }
    }

    /// Kubernetes' default scale-down policy.
    pub fn default_down() -> ScaleRate {
        ScaleRate {
            percent: 100.0,
            agents: 0,
            period_secs: 15,
        }
    }
}

const fn default_min_agents() -> usize {
    1
}
const fn default_max_agents() -> usize {
    10
}
const fn default_target_cpu_percent() -> f64 {
    50.0
}
const fn default_tolerance() -> f64 {
    0.1
}
const fn default_scale_down_stabilization_secs() -> u64 {
    300
}
const fn default_startup_secs() -> u64 {
    10
}
const fn default_drain_ms() -> u64 {
    1000
}

/// How a pool's agents are run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriverConfig {
    /// Local OS processes on free loopback ports.
    Process {
        /// The command and its arguments; `{port}`, `{pool}` and `{agent}` are substituted.
        /// Empty means the bundled worker, `swarmpilot agent`.
        #[serde(default)]
        command: Vec<String>,
        /// Environment variables passed from the controller to each agent, by name. Agents
        /// start with a scrubbed environment: these, the base a process needs (`PATH`,
        /// `HOME`, `LANG`, `LC_ALL`, `TZ`, `TMPDIR`, the log filters `SWARMPILOT_LOG` and
        /// `RUST_LOG`) and `SWARMPILOT_CONTROLLER`; never the controller's secrets.
        #[serde(default)]
        env: Vec<String>,
    },
    /// An orchestrator behind one HTTP endpoint: each action is POSTed to `url` as JSON,
    /// `{"pool", "action": "scale"|"restart"|"set_weights"|"state", "to"?, "agent"?,
    /// "weights"?}`, and answered 2xx with the pool's state, `{"size": N}`.
    Http {
        /// Where every action is POSTed, e.g. `https://orchestrator.internal/swarm`.
        url: String,
        /// How long one request may take, milliseconds.
        #[serde(default = "default_driver_timeout_ms")]
        #[schemars(range(min = 1))]
        timeout_ms: u64,
        /// How many times a request is tried again after no answer or a 5xx (backoff from 200 ms, doubling).
        #[serde(default = "default_http_retries")]
        #[schemars(range(max = 10))]
        retries: u32,
        /// Environment variable holding a bearer token for the orchestrator (never inline).
        #[serde(default)]
        token_env: Option<String>,
    },
    /// A Kubernetes Deployment or StatefulSet, scaled through its Scale subresource.
    Kubernetes {
        /// The workload's namespace; default: the kubeconfig context's, else the pod's, else `default`.
        #[serde(default)]
        namespace: Option<String>,
        /// The kind of workload.
        #[serde(default)]
        kind: WorkloadKind,
        /// The workload's name.
        name: String,
        /// API server URL instead of the credentials' one, e.g. `http://127.0.0.1:8001` for `kubectl proxy`.
        #[serde(default)]
        api_server: Option<String>,
        /// Kubeconfig file; default: `$KUBECONFIG`, else `~/.kube/config`, else the pod's service account.
        #[serde(default)]
        kubeconfig: Option<String>,
        /// Kubeconfig context; default: the file's current context.
        #[serde(default)]
        context: Option<String>,
        /// How long one request to the API server may take, milliseconds.
        #[serde(default = "default_driver_timeout_ms")]
        #[schemars(range(min = 1))]
        timeout_ms: u64,
    },
    /// No driver: the agents run elsewhere and report by themselves. The pool is monitored
    /// and alerted on, never actuated.
    None,
}

/// Which kind of Kubernetes workload a pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// An `apps/v1` Deployment.
    #[default]
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
}

const fn default_driver_timeout_ms() -> u64 {
    5000
}
const fn default_http_retries() -> u32 {
    3
}

impl DriverConfig {
    /// The driver's `type`, e.g. `process`.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverConfig::None => "none",
            DriverConfig::Process { .. } => "process",
            DriverConfig::Http { .. } => "http",
            DriverConfig::Kubernetes { .. } => "kubernetes",
        }
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig::Process {
            command: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl PoolPolicy {
    /// True when no driver runs the pool's agents: monitored, never actuated.
    pub fn observe_only(&self) -> bool {
        self.driver == DriverConfig::None
    }

    /// True when `agent`, which the driver did not start, is on the pool's allow-list.
    pub fn allows(&self, agent: &str) -> bool {
        self.allow_agents
            .iter()
            .any(|pattern| crate::domain::names::glob(pattern, agent))
    }
}

impl Policy {
    /// The policy of one pool, if it exists.
    pub fn pool(&self, name: &str) -> Option<&PoolPolicy> {
        self.pools.get(name)
    }

    /// Most agents `pool` may have: its own limit, lowered by its profile's.
    pub fn max_agents(&self, pool: &PoolPolicy) -> usize {
        let profile_max = pool
            .profile
            .as_ref()
            .and_then(|name| self.profiles.get(name))
            .and_then(|profile| profile.max_agents);
        profile_max.map_or(pool.max_agents, |max| max.min(pool.max_agents))
    }
}
