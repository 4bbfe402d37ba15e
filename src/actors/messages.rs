//! Messages that several actors share, grouped by sender. Messages private to one actor live
//! beside it.

use std::collections::HashMap;

use actix::Message;
use serde::Serialize;

use crate::domain::evidence::AnomalyNote;

use crate::domain::{AgentHandle, AgentStatus, Sample};
use crate::policy::AlertRule;

// === sent by the collector (and later every ingest path) ===

/// A batch of samples for the fleet to route to agent actors.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct IngestSamples(pub Vec<Sample>);

// === sent by the ingest paths (push, OTLP, pull, tasks) ===

/// Samples from outside the controller: agents it has not met join a pool (or are refused,
/// as the policy's `ingest.unknown_agents` says). Answers the agents refused, with why.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Refused>")]
pub struct AdmitSamples {
    /// The samples, already checked one by one.
    pub samples: Vec<Sample>,
    /// The pool each agent's samples named (label `pool`), for agents met for the first time.
    pub pools: HashMap<String, String>,
    /// The token holder whose request brought them, whose new agents a minute are counted;
    /// `None` for the controller's own sources (scrape, pull, tasks).
    pub by: Option<String>,
}

/// An agent whose samples were not admitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refused {
    /// Agent id.
    pub agent: String,
    /// Why, for the client.
    pub reason: String,
    /// Where its samples were in `AdmitSamples::samples`.
    pub positions: Vec<usize>,
}

// === sent by the scraper (Prometheus text) ===

/// Whether scraping an agent's Prometheus endpoint worked this time; the health actor folds it
/// into the agent's status.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ScrapeObserved {
    /// The agent scraped.
    pub agent: String,
    /// The endpoint answered with a page that parsed.
    pub reachable: bool,
}

// === sent by the pull clients (WebSocket) ===

/// What pulling an agent's metrics found this time; the health actor folds it into the
/// agent's status.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PullObserved {
    /// Agent id.
    pub agent: String,
    /// What came back.
    pub outcome: PullOutcome,
}

pub use crate::domain::fleet::PullOutcome;

// === sent by the fleet supervisor ===

/// Asks the collector to sample this process on every tick.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WatchProcess {
    /// Agent id.
    pub agent: String,
    /// OS process id.
    pub pid: u32,
}

/// Asks the collector, health and alert actors to forget an agent that is gone.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ForgetAgent {
    /// Agent id.
    pub agent: String,
}

/// Asks the health actor to expect heartbeats from an agent.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TrackAgent {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// No offline verdict before this epoch millisecond (start-up grace).
    pub grace_until_ms: i64,
    /// Its process, when the controller runs it.
    pub pid: Option<u32>,
}

// === sent by agent actors ===

/// Proof of life: the agent reported something.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Heartbeat {
    /// Agent id.
    pub agent: String,
    /// When it was seen, epoch milliseconds.
    pub ts_ms: i64,
}

/// A threshold rule started or stopped being breached on an agent.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ThresholdCrossed {
    /// The rule.
    pub rule: AlertRule,
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// The value that crossed.
    pub value: f64,
    /// When, epoch milliseconds.
    pub ts_ms: i64,
    /// True when the value is now beyond the threshold.
    pub breached: bool,
}

/// A watched metric of an agent scored as anomalous.
#[derive(Debug, Clone, Message, Serialize)]
#[rtype(result = "()")]
#[serde(transparent)]
pub struct AnomalyObserved(pub AnomalyNote);

impl std::ops::Deref for AnomalyObserved {
    type Target = AnomalyNote;

    fn deref(&self) -> &AnomalyNote {
        &self.0
    }
}

impl AnomalyObserved {
    /// The observation as evidence of a proposal.
    pub fn note(&self) -> AnomalyNote {
        self.0.clone()
    }
}

// === sent by the health actor ===

/// The health actor's verdict changed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct AgentHealthChanged {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// The new status: `offline` after silence or when its metrics cannot be pulled,
    /// `active` again, or what a pulled agent reports (`idle`, `busy`, `error`, ...).
    pub status: AgentStatus,
    /// Epoch milliseconds of the last heartbeat.
    pub last_seen_ms: i64,
}

/// An agent's report is overdue (more than two sampling intervals of silence, short of the
/// offline timeout), or came again.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct HeartbeatLate {
    /// Agent id.
    pub agent: String,
    /// Its pool.
    pub pool: String,
    /// True while overdue; false once it reported again.
    pub late: bool,
    /// How long it has been silent, milliseconds.
    pub silent_ms: i64,
}

// === sent by the actuator ===

/// A driver started (or restarted) an agent: the fleet supervises it from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RegisterAgent {
    /// What the driver reported.
    pub handle: AgentHandle,
    /// Seconds it may stay silent before it is declared offline.
    pub startup_grace_secs: u64,
}

/// An agent was stopped on purpose: stop supervising it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DeregisterAgent {
    /// Agent id.
    pub agent: String,
}

/// A watched agent process has exited: it is offline now, not after the heartbeat timeout.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ProcessExited {
    /// Agent id.
    pub agent: String,
    /// The process that exited (an older incarnation's exit is ignored).
    pub pid: u32,
}
