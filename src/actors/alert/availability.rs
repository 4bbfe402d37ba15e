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
