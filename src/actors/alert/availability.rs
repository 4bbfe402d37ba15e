//! Availability alerts, from the health actor's verdicts rather than from metric thresholds:
//! `agent_offline` (critical: silent beyond the heartbeat timeout), `heartbeat_missed`
//! (warning: an expected report did not come) and `agent_unhealthy` (warning: its scrape or
//! WebSocket fails, or it reports `error` itself). They fire at once (the timeouts already
//! waited) and resolve when the agent reports again. `[alert_defaults] availability = false`
//! turns them off.

use actix::{Context, Handler};

use super::Alert;
use crate::actors::messages::{AgentHealthChanged, HeartbeatLate};
use crate::domain::AgentStatus;
use crate::policy::AlertLevel;

/// Silent beyond the heartbeat timeout.
pub const AGENT_OFFLINE: &str = "agent_offline";
/// A report expected by now did not come.
pub const HEARTBEAT_MISSED: &str = "heartbeat_missed";
/// Its metrics source fails, or it reports an error state.
pub const AGENT_UNHEALTHY: &str = "agent_unhealthy";
/// The store refuses writes: actuation stopped until they work again.
pub const STORE_WRITE_FAILED: &str = "store_write_failed";
/// An agent in a driver-run pool that its driver does not know was deregistered.
pub const AGENT_NOT_MANAGED: &str = "agent_not_managed";
/// A restart stopped an agent and could not start it again.
pub const RESTART_ESCALATED: &str = "restart_escalated";

/// A condition the controller itself found: fires (and resolves by itself after
/// `resolve_after_ms` when given) or resolves. Not subject to `alert_defaults.availability`.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct ControllerAlert {
    /// The alert's name (its rule).
    pub name: &'static str,
    /// How bad.
    pub level: AlertLevel,
    /// The agent it is about (`controller` for the controller itself).
    pub agent: String,
    /// The pool it is about (`-` for none).
    pub pool: String,
    /// Fires when true, resolves when false.
    pub firing: bool,
    /// Resolves by itself this long after firing (an event rather than a condition).
    pub resolve_after_ms: Option<i64>,
}

impl Alert {
    fn availability_on(&self) -> bool {
        self.routing
            .as_ref()
            .is_none_or(|(policy, _, _)| policy.current().policy.alert_defaults.availability)
    }

    /// Fires availability alert `name` on `agent` unless it is already active or off.
    fn raise(&mut self, name: &str, level: AlertLevel, agent: &str, pool: &str, value: f64) {
        if !self.availability_on() {
            return;
        }
        let now = self.clock.now_ms();
        let changes = self.book.raise(name, level, agent, pool, value, now);
        self.apply(changes, now);
    }

    /// Resolves availability alert `name` on `agent` if it fires.
    fn clear(&mut self, name: &str, agent: &str) {
        let now = self.clock.now_ms();
        let changes = self.book.clear(name, agent, now);
        self.apply(changes, now);
    }
}

// === impl Handler ===

impl Handler<ControllerAlert> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ControllerAlert, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let changes = if msg.firing {
            if let Some(after) = msg.resolve_after_ms {
                self.expiring
                    .push((msg.name, msg.agent.clone(), now + after));
            }
            self.book
                .raise(msg.name, msg.level, &msg.agent, &msg.pool, 1.0, now)
        } else {
            self.book.clear(msg.name, &msg.agent, now)
        };
        self.apply(changes, now);
        self.evaluate_soon(ctx);
    }
}

impl Alert {
    /// Resolves the controller's event alerts whose time is up.
    pub(super) fn resolve_expired(&mut self, now_ms: i64) {
        let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.expiring)
            .into_iter()
            .partition(|(_, _, at)| *at <= now_ms);
        self.expiring = kept;
        for (name, agent, _) in due {
            let changes = self.book.clear(name, &agent, now_ms);
            self.apply(changes, now_ms);
        }
    }
}

impl Handler<AgentHealthChanged> for Alert {
    type Result = ();

    fn handle(&mut self, msg: AgentHealthChanged, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let silent_secs = (self.clock.now_ms() - msg.last_seen_ms).max(0) as f64 / 1000.0;
        match msg.status {
            AgentStatus::Offline => self.raise(
                AGENT_OFFLINE,
                AlertLevel::Critical,
                &msg.agent,
                &msg.pool,
                silent_secs,
            ),
            AgentStatus::Error => self.raise(
                AGENT_UNHEALTHY,
                AlertLevel::Warning,
                &msg.agent,
                &msg.pool,
                1.0,
            ),
            _ => {
                self.clear(AGENT_OFFLINE, &msg.agent);
                self.clear(AGENT_UNHEALTHY, &msg.agent);
            }
        }
        self.evaluate_soon(ctx);
    }
}

impl Handler<HeartbeatLate> for Alert {
    type Result = ();

    fn handle(&mut self, msg: HeartbeatLate, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if msg.late {
            let silent_secs = msg.silent_ms as f64 / 1000.0;
            self.raise(
                HEARTBEAT_MISSED,
                AlertLevel::Warning,
                &msg.agent,
                &msg.pool,
                silent_secs,
            );
        } else {
            self.clear(HEARTBEAT_MISSED, &msg.agent);
        }
        self.evaluate_soon(ctx);
    }
}
