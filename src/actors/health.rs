//! `Health`: tracks heartbeats and declares an agent offline when it has been silent for
//! longer than the policy's timeout (and online again when it speaks).

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Recipient};

use super::messages::{AgentHealthChanged, ForgetAgent, Heartbeat, TrackAgent};
use crate::clock;
use crate::domain::AgentStatus;
use crate::policy::PolicyHandle;

/// How often silence is checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The health actor.
pub struct Health {
    policy: PolicyHandle,
    subscribers: Vec<Recipient<AgentHealthChanged>>,
    agents: HashMap<String, Tracked>,
}

struct Tracked {
    pool: String,
    last_seen_ms: i64,
    grace_until_ms: i64,
    offline: bool,
}

impl Health {
    /// A health actor that tells `subscribers` about every verdict change.
    pub fn new(policy: PolicyHandle, subscribers: Vec<Recipient<AgentHealthChanged>>) -> Self {
        Health {
            policy,
            subscribers,
            agents: HashMap::new(),
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
        let timeout = self.policy.current().policy.global.heartbeat_timeout_secs as i64 * 1000;
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
            },
        );
        health.check(9_000);
        assert!(!health.agents["w-1"].offline, "inside the start-up grace");
        health.check(10_500);
        assert!(health.agents["w-1"].offline, "silent 9.5 s > 6 s");
    }
}
