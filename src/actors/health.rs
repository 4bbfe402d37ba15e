//! `Health`: tracks heartbeats and declares an agent offline when it has been silent for
//! longer than the policy's timeout (and online again when it speaks). For agents whose
//! metrics are pulled, it also folds in what the pull found: the status the agent reports of
//! itself, `error` for answers that are not metrics, and `offline` while it cannot be
//! reached (after its start-up grace, which its first answer ends). Before the timeout, a
//! report overdue by more than two sampling intervals (and half the timeout) is a missed
//! heartbeat, told to the alert actor.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};

use super::messages::{
    AgentHealthChanged, DeregisterAgent, ForgetAgent, Heartbeat, HeartbeatLate, ProcessExited,
    PullObserved, PullOutcome, ScrapeObserved, TrackAgent,
};
use crate::clock::Clock;
use crate::decide::health::Tracked;
use crate::policy::PolicyHandle;

/// How often silence is checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The health actor.
pub struct Health {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    subscribers: Vec<Recipient<AgentHealthChanged>>,
    /// Told when a report is overdue and when it comes again.
    late: Vec<Recipient<HeartbeatLate>>,
    agents: HashMap<String, Tracked>,
    /// Off once the controller stops taking reports: silence then means nothing.
    judging: bool,
    /// Told to forget an agent silent past the policy's `ingest.forget_after_secs` (an agent
    /// of an observe-only pool that the policy does not name as a scrape or pull target).
    forget: Vec<Recipient<DeregisterAgent>>,
}

/// Stop judging silence: the controller has stopped taking reports, so every agent that
/// pushes would look silent, and offline, for no fault of its own.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopJudging;

// === impl Health ===

impl Health {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A health actor that tells `subscribers` about every verdict change.
    pub fn new(policy: PolicyHandle, subscribers: Vec<Recipient<AgentHealthChanged>>) -> Self {
        Health {
            span: tracing::info_span!("actor", actor = "health"),
            clock: Clock::system(),
            policy,
            subscribers,
            late: Vec::new(),
            agents: HashMap::new(),
            judging: true,
            forget: Vec::new(),
        }
    }

    /// Tells `registry` to forget agents silent past the policy's `ingest.forget_after_secs`.
    pub fn with_forget(mut self, registry: Recipient<DeregisterAgent>) -> Self {
        self.forget.push(registry);
        self
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

    /// Publishes `agent`'s verdict if it changed.
    fn settle(&mut self, agent: &str, now_ms: i64) {
        if !self.judging {
            return;
        }
        if let Some(tracked) = self.agents.get_mut(agent) {
            announce(&self.subscribers, agent, tracked, now_ms);
        }
    }

    fn check(&mut self, now_ms: i64) {
        if !self.judging {
            return;
        }
        let current = self.policy.current();
        let global = &current.policy.global;
        let timeout = global.heartbeat_timeout_secs as i64 * 1000;
        let overdue = (global.sampling_interval_secs as i64 * 2000).max(timeout / 2);
        let ingest = &current.policy.ingest;
        let forget_after = ingest.forget_after_secs as i64 * 1000;
        // Targets the policy names (scraped, pulled) stay, down or not: they are its to drop.
        let declared = |agent: &str| {
            ingest.scrape.iter().any(|t| t.agent == agent)
                || ingest.websocket.iter().any(|t| t.agent == agent)
        };
        let mut newly_late = Vec::new();
        let mut gone = Vec::new();
        for (agent, tracked) in &mut self.agents {
            // Agents that pushed to an observe-only pool and fell silent long ago are
            // forgotten; a driver's agents are its to replace.
            if tracked.silent
                && forget_after > 0
                && now_ms - tracked.last_seen_ms > forget_after
                && !declared(agent)
                && current
                    .policy
                    .pool(&tracked.pool)
                    .is_none_or(|pool| pool.observe_only())
            {
                gone.push((agent.clone(), now_ms - tracked.last_seen_ms));
                continue;
            }
            if !tracked.late
                && now_ms > tracked.grace_until_ms
                && now_ms - tracked.last_seen_ms > overdue
            {
                tracked.late = true;
                newly_late.push(agent.clone());
            }
            if !tracked.silent
                && now_ms > tracked.grace_until_ms
                && now_ms - tracked.last_seen_ms > timeout
            {
                tracked.silent = true;
                tracing::warn!(message = "Agent offline.", %agent, timeout_ms = timeout);
            }
        }
        for agent in newly_late {
            if let Some(tracked) = self.agents.get(&agent) {
                self.publish_late(&agent, tracked, now_ms);
            }
        }
        for (agent, silent_ms) in gone {
            tracing::info!(message = "Agent forgotten with its series and alerts: silent longer than policy ingest.forget_after_secs.",
                %agent, silent_secs = silent_ms / 1000);
            self.agents.remove(&agent);
            for recipient in &self.forget {
                recipient.do_send(DeregisterAgent {
                    agent: agent.clone(),
                });
            }
        }
        // Silence, and the end of a start-up grace, change verdicts without a message.
        for (agent, tracked) in &mut self.agents {
            announce(&self.subscribers, agent, tracked, now_ms);
        }
    }
}

/// Tells `subscribers` `agent`'s verdict if it changed since it was last told.
fn announce(
    subscribers: &[Recipient<AgentHealthChanged>],
    agent: &str,
    tracked: &mut Tracked,
    now_ms: i64,
) {
    let status = tracked.verdict(now_ms);
    if status == tracked.published {
        return;
    }
    tracing::info!(message = "Agent status changed.", %agent, from = ?tracked.published, to = ?status);
    tracked.published = status;
    for subscriber in subscribers {
        subscriber.do_send(AgentHealthChanged {
            agent: agent.to_string(),
            pool: tracked.pool.clone(),
            status,
            last_seen_ms: tracked.last_seen_ms,
        });
    }
}

impl Actor for Health {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        ctx.run_interval(CHECK_INTERVAL, |health, _| {
            let _span = health.span.clone().entered();
            health.check(health.clock.now_ms())
        });
    }
}

// === impl Handler ===

impl Handler<StopJudging> for Health {
    type Result = ();

    fn handle(&mut self, _msg: StopJudging, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.judging = false;
        tracing::info!(message = "Health stops judging silence for shutdown.");
    }
}

impl Handler<TrackAgent> for Health {
    type Result = ();

    fn handle(&mut self, msg: TrackAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let mut tracked = Tracked::new(msg.pool, now, msg.grace_until_ms);
        tracked.pid = msg.pid;
        self.agents.insert(msg.agent, tracked);
    }
}

impl Handler<Heartbeat> for Health {
    type Result = ();

    fn handle(&mut self, msg: Heartbeat, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        tracked.last_seen_ms = tracked.last_seen_ms.max(msg.ts_ms);
        if tracked.late {
            tracked.late = false;
            if let Some(tracked) = self.agents.get(&msg.agent) {
                self.publish_late(&msg.agent, tracked, self.clock.now_ms());
            }
        }
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        if tracked.silent {
            tracked.silent = false;
            tracing::info!(message = "Agent back online.", agent = %msg.agent);
        }
        self.settle(&msg.agent, self.clock.now_ms());
    }
}

impl Handler<PullObserved> for Health {
    type Result = ();

    fn handle(&mut self, msg: PullObserved, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        let now = self.clock.now_ms();
        if msg.outcome != PullOutcome::Unreachable {
            // It answered, so it is up: losing it from now on counts at once.
            tracked.grace_until_ms = tracked.grace_until_ms.min(now);
        }
        tracked.pulled = Some(msg.outcome);
        self.settle(&msg.agent, now);
    }
}

impl Handler<ScrapeObserved> for Health {
    type Result = ();

    fn handle(&mut self, msg: ScrapeObserved, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        let now = self.clock.now_ms();
        if msg.reachable {
            tracked.scrape_failures = 0;
            // It answered, so it is up: losing it from now on counts at once.
            tracked.grace_until_ms = tracked.grace_until_ms.min(now);
        } else {
            tracked.scrape_failures = tracked.scrape_failures.saturating_add(1);
        }
        self.settle(&msg.agent, now);
    }
}

impl Handler<ProcessExited> for Health {
    type Result = ();

    fn handle(&mut self, msg: ProcessExited, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let Some(tracked) = self.agents.get_mut(&msg.agent) else {
            return;
        };
        // An older incarnation's exit says nothing about the one running now.
        if tracked.pid != Some(msg.pid) {
            return;
        }
        if !tracked.exited {
            tracked.exited = true;
            tracing::warn!(message = "Agent process exited.", agent = %msg.agent);
        }
        self.settle(&msg.agent, self.clock.now_ms());
    }
}

impl Handler<ForgetAgent> for Health {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.agents.remove(&msg.agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::health::SCRAPE_FAILURES_UNHEALTHY;
    use crate::domain::AgentStatus;

    fn health(text: &str) -> Health {
        let policy = PolicyHandle::new(crate::policy::load_str("t.toml", text).unwrap());
        Health::new(policy, Vec::new())
    }

    #[test]
    fn silence_beyond_timeout_after_grace_means_offline() {
        let mut health = health("[global]\nheartbeat_timeout_secs = 6\n");
        health
            .agents
            .insert("w-1".into(), Tracked::new("w".into(), 1_000, 10_000));
        health.check(9_000);
        assert!(!health.agents["w-1"].silent, "inside the start-up grace");
        health.check(10_500);
        assert!(health.agents["w-1"].silent, "silent 9.5 s > 6 s");
        assert_eq!(health.agents["w-1"].published, AgentStatus::Offline);
        assert!(health.agents["w-1"].late, "late before offline");
    }

    #[test]
    fn failed_scrapes_in_a_row_after_the_grace_mean_error_and_one_good_scrape_clears_it() {
        let mut tracked = Tracked::new("w".into(), 1_000, 10_000);
        tracked.scrape_failures = SCRAPE_FAILURES_UNHEALTHY;
        assert_eq!(
            tracked.verdict(5_000),
            AgentStatus::Active,
            "still starting"
        );
        assert_eq!(tracked.verdict(10_500), AgentStatus::Error);
        tracked.scrape_failures = SCRAPE_FAILURES_UNHEALTHY - 1;
        assert_eq!(
            tracked.verdict(10_500),
            AgentStatus::Active,
            "one failure is not a verdict"
        );
        tracked.silent = true;
        assert_eq!(
            tracked.verdict(10_500),
            AgentStatus::Offline,
            "silence comes first"
        );
    }

    #[test]
    fn pull_outcomes_set_the_status_unreachable_only_after_the_grace() {
        let mut tracked = Tracked::new("w".into(), 1_000, 10_000);
        tracked.pulled = Some(PullOutcome::Unreachable);
        assert_eq!(
            tracked.verdict(5_000),
            AgentStatus::Active,
            "still starting"
        );
        assert_eq!(tracked.verdict(10_001), AgentStatus::Offline);
        tracked.pulled = Some(PullOutcome::Malformed);
        assert_eq!(tracked.verdict(5_000), AgentStatus::Error);
        tracked.pulled = Some(PullOutcome::Reported(AgentStatus::Busy));
        assert_eq!(tracked.verdict(20_000), AgentStatus::Busy);
        tracked.silent = true;
        assert_eq!(
            tracked.verdict(20_000),
            AgentStatus::Offline,
            "silence wins"
        );
    }

    #[test]
    fn pushed_agents_silent_past_the_limit_are_forgotten_and_a_drivers_are_not() {
        let mut health = health(
            "[global]\nheartbeat_timeout_secs = 6\n\
             [pools.worker]\n\
             [pools.external]\ndriver = { type = \"none\" }\nmin_agents = 0\n\
             [ingest]\nforget_after_secs = 60\n\
             [[ingest.scrape]]\nurl = \"http://127.0.0.1:9/metrics\"\nagent = \"s-1\"\n\
             metrics = [{ from = \"node_load1\", to = \"load1\" }]\n",
        );
        for (agent, pool) in [("p-1", "external"), ("w-1", "worker"), ("s-1", "external")] {
            health
                .agents
                .insert(agent.into(), Tracked::new(pool.into(), 1_000, 1_000));
        }
        health.check(8_000);
        assert_eq!(health.agents.len(), 3, "offline, not yet forgotten");
        health.check(61_000);
        assert_eq!(health.agents.len(), 3, "silent 60 s, not more than 60 s");
        health.check(61_100);
        assert!(!health.agents.contains_key("p-1"));
        assert!(health.agents.contains_key("w-1"), "a driver's agent stays");
        assert!(
            health.agents.contains_key("s-1"),
            "a target the policy names stays"
        );
    }

    #[test]
    fn once_it_stops_judging_silence_changes_nothing() {
        let mut health = health("[global]\nheartbeat_timeout_secs = 6\n");
        health
            .agents
            .insert("w-1".into(), Tracked::new("w".into(), 1_000, 1_000));
        health.judging = false;
        health.check(60_000);
        assert!(!health.agents["w-1"].silent);
        assert_eq!(health.agents["w-1"].published, AgentStatus::Active);
    }
}
