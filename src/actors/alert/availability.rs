//! Availability alerts, from the health actor's verdicts rather than from metric thresholds:
//! `agent_offline` (critical: silent beyond the heartbeat timeout), `heartbeat_missed`
//! (warning: an expected report did not come) and `agent_unhealthy` (warning: its scrape or
//! WebSocket fails, or it reports `error` itself). They fire at once (the timeouts already
//! waited) and resolve when the agent reports again. `[alert_defaults] availability = false`
//! turns them off.

use actix::{Context, Handler};

use super::{Alert, AlertState, AlertView, record};
use crate::actors::messages::{AgentHealthChanged, HeartbeatLate};
use crate::domain::AgentStatus;
use crate::policy::{AlertLevel, AlertRule};

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

    /// Fires availability alert `name` on `agent` unless it is already active.
    fn raise(&mut self, name: &str, level: AlertLevel, agent: &str, pool: &str, value: f64) {
        let key = (name.to_string(), agent.to_string());
        let active = self
            .alerts
            .get(&key)
            .is_some_and(|(_, v)| v.state != AlertState::Resolved);
        if active || !self.availability_on() {
            return;
        }
        let now = self.clock.now_ms();
        let rule = AlertRule {
            name: name.to_string(),
            metric: "availability".into(),
            above: 0.0,
            for_secs: 0,
            level,
            pool: Some(pool.to_string()),
            keep_firing_for_secs: 0,
            clear_below: None,
            cooldown_secs: 0,
        };
        let view = AlertView {
            id: self.new_id(),
            rule: name.to_string(),
            agent: agent.to_string(),
            pool: pool.to_string(),
            level,
            state: AlertState::Pending,
            value,
            since_ms: now,
            fired_ms: None,
            resolved_ms: None,
            acked: None,
            silenced_by: Vec::new(),
        };
        record(&self.store, &view, "inactive", now);
        self.alerts.insert(key.clone(), (rule, view));
        self.transition(&key, AlertState::Firing, now);
    }

    /// Resolves availability alert `name` on `agent` if it fires.
    fn clear(&mut self, name: &str, agent: &str) {
        let key = (name.to_string(), agent.to_string());
        self.resolve_if_firing(&key, self.clock.now_ms());
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
