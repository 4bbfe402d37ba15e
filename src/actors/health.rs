//! `Health`: tracks heartbeats and declares an agent offline when it has been silent for
//! longer than the policy's timeout (and online again when it speaks). Before that, a report
//! overdue by more than two sampling intervals (and half the timeout) is a missed heartbeat.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Recipient};

use super::messages::{AgentHealthChanged, ForgetAgent, Heartbeat, HeartbeatLate, TrackAgent};
use crate::clock;
use crate::domain::AgentStatus;
use crate::policy::PolicyHandle;

/// How often silence is checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The health actor.
pub struct Health {
    policy: PolicyHandle,
    subscribers: Vec<Recipient<AgentHealthChanged>>,
    /// Told when a report is overdue and when it comes again.
    late: Vec<Recipient<HeartbeatLate>>,
    agents: HashMap<String, Tracked>,
}

struct Tracked {
    pool: String,
    last_seen_ms: i64,
    grace_until_ms: i64,
    offline: bool,
    late: bool,
}

impl Health {
    /// A health actor that tells `subscribers` about every verdict change.
    pub fn new(policy: PolicyHandle, subscribers: Vec<Recipient<AgentHealthChanged>>) -> Self {
        Health {
            policy,
            subscribers,
            late: Vec::new(),
            agents: HashMap::new(),
        }
    }

    /// Also tells `subscriber` when an agent's report is overdue, and when it comes again.
    pub fn with_late(mut self, subscriber: Recipient<HeartbeatLate>) -> Self {
        self.late.push(subscriber);
        self
    }

    fn publish_late(&self, agent: &str, tracked: &Tracked, now_ms: i64) {
        for subscriber in &self.late {
            subscriber.do_send(HeartbeatLate {
                agent: agent.to_string(),
                pool: tracked.pool.clone(),
                late: tracked.late,
                silent_ms: now_ms - tracked.last_seen_ms,
            });
        }
    }

    fn publish(&self, agent: &str, tracked: &Tracked, status: AgentStatus) {
        for subscriber in &self.subscribers {
            subscriber.do_send(AgentHealthChanged {
                agent: agent.to_string(),
                pool: tracked.pool.clone(),
                status,
                last_seen_ms: tracked.last_seen_ms,
            });
        }
    }

    fn check(&mut self, now_ms: i64) {
        let global = &self.policy.current().policy.global;
        let timeout = global.heartbeat_timeout_secs as i64 * 1000;
        let overdue = (global.sampling_interval_secs as i64 * 2000).max(timeout / 2);
        let newly_late: Vec<String> = self
            .agents
            .iter_mut()
            .filter(|(_, t)| !t.late && now_ms > t.grace_until_ms)
            .filter(|(_, t)| now_ms - t.last_seen_ms > overdue)
            .map(|(agent, t)| {
                t.late = true;
                agent.clone()
            })
            .collect();
        for agent in newly_late {
            if let Some(tracked) = self.agents.get(&agent) {
                self.publish_late(&agent, tracked, now_ms);
            }
        }
        let newly_offline: Vec<String> = self
            .agents
            .iter_mut()
            .filter(|(_, t)| !t.offline && now_ms > t.grace_until_ms)
            .filter(|(_, t)| now_ms - t.last_seen_ms > timeout)
            .map(|(agent, t)| {
                t.offline = true;
                agent.clone()
            })
            .collect();
        for agent in newly_offline {
            tracing::warn!(message = "Agent offline.", %agent, timeout_ms = timeout);
            if let Some(tracked) = self.agents.get(&agent) {
                self.publish(&agent, tracked, AgentStatus::Offline);
            }
        }
    }
}

impl Actor for Health {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(CHECK_INTERVAL, |health, _| health.check(clock::now_ms()));
    }
}

// === impl Handler ===

impl Handler<TrackAgent> for Health {
    type Result = ();

    fn handle(&mut self, msg: TrackAgent, _ctx: &mut Context<Self>) {
        let now = clock::now_ms();
        self.agents.insert(
            msg.agent,
            Tracked {
                pool: msg.pool,
                last_seen_ms: now,
                grace_until_ms: msg.grace_until_ms,
                offline: false,
                late: false,
            },
        );
    }
}

impl Handler<Heartbeat> for Health {
    type Result = ();

    fn handle(&mut self, msg: Heartbeat, _ctx: &mut Context<Self>) {
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        tracked.last_seen_ms = tracked.last_seen_ms.max(msg.ts_ms);
        if tracked.late {
            tracked.late = false;
            if let Some(tracked) = self.agents.get(&msg.agent) {
                self.publish_late(&msg.agent, tracked, clock::now_ms());
            }
        }
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        if tracked.offline {
            tracked.offline = false;
            tracing::info!(message = "Agent back online.", agent = %msg.agent);
            if let Some(tracked) = self.agents.get(&msg.agent) {
                self.publish(&msg.agent, tracked, AgentStatus::Active);
            }
        }
    }
}

impl Handler<ForgetAgent> for Health {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        self.agents.remove(&msg.agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_beyond_timeout_after_grace_means_offline() {
        let text = "[global]\nheartbeat_timeout_secs = 6\n";
        let policy = PolicyHandle::new(crate::policy::load_str("t.toml", text).unwrap());
        let mut health = Health::new(policy, Vec::new());
        health.agents.insert(
            "w-1".into(),
            Tracked {
                pool: "w".into(),
                last_seen_ms: 1_000,
                grace_until_ms: 10_000,
                offline: false,
                late: false,
            },
        );
        health.check(9_000);
        assert!(!health.agents["w-1"].offline, "inside the start-up grace");
        health.check(10_500);
        assert!(health.agents["w-1"].offline, "silent 9.5 s > 6 s");
        assert!(health.agents["w-1"].late, "late before offline");
    }
}
