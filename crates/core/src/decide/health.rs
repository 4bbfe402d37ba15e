//! The health verdict: an agent's status from its silence, what pulling it found, and whether
//! its endpoint can be scraped. The health actor keeps one [`Tracked`] per agent and
//! publishes the verdict when it changes; no other part of the controller decides health.

use crate::domain::AgentStatus;
pub use crate::domain::fleet::PullOutcome;

/// Failed scrapes in a row after which a scraped agent is `error`.
pub const SCRAPE_FAILURES_UNHEALTHY: u32 = 2;

/// What the health actor knows of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// Its pool.
    pub pool: String,
    /// When it last reported, epoch milliseconds.
    pub last_seen_ms: i64,
    /// Until when it is starting and may not answer yet.
    pub grace_until_ms: i64,
    /// Silent beyond the heartbeat timeout.
    pub silent: bool,
    /// A report is overdue.
    pub late: bool,
    /// The latest pull outcome, for pulled agents.
    pub pulled: Option<PullOutcome>,
    /// Failed scrapes since the last good one, for scraped agents.
    pub scrape_failures: u32,
    /// The status last published (`active` until told otherwise).
    pub published: AgentStatus,
    /// Its process has exited (until a new incarnation is tracked).
    pub exited: bool,
    /// The pid of the incarnation tracked, when the controller runs it.
    pub pid: Option<u32>,
}

impl Tracked {
    /// An agent of `pool` seen at `now_ms`, starting until `grace_until_ms`.
    pub fn new(pool: String, now_ms: i64, grace_until_ms: i64) -> Tracked {
        Tracked {
            pool,
            last_seen_ms: now_ms,
            grace_until_ms,
            silent: false,
            late: false,
            pulled: None,
            scrape_failures: 0,
            published: AgentStatus::Active,
            exited: false,
            pid: None,
        }
    }

    /// The status the agent has now: an exited process or silence first, then what its pull found, then whether
    /// its endpoint can be scraped (a starting agent may not listen yet: only after its grace).
    pub fn verdict(&self, now_ms: i64) -> AgentStatus {
        if self.silent || self.exited {
            return AgentStatus::Offline;
        }
        match self.pulled {
            Some(PullOutcome::Reported(status)) => status,
            Some(PullOutcome::Malformed) => AgentStatus::Error,
            // A starting agent may not listen yet: unreachable counts only after its grace.
            Some(PullOutcome::Unreachable) if now_ms > self.grace_until_ms => AgentStatus::Offline,
            _ if self.scrape_failures >= SCRAPE_FAILURES_UNHEALTHY
                && now_ms > self.grace_until_ms =>
            {
                AgentStatus::Error
            }
            _ => AgentStatus::Active,
        }
    }
}
