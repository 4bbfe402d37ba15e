//! `EventBroker`: the live event stream's hub. The fleet, the alert actor and the store (for
//! every action log row) publish to it; it hands each event to the subscribed sessions whose
//! filter takes it. Samples are not published one by one: while a session wants them, the
//! broker reads the fleet once a second and sends, as one event, the latest readings of every
//! agent that reported since the last, so a client gets each agent at most once a second.
//!
//! Delivery never waits. Each session's events wait in the broker and go as one batch every
//! `FLUSH` (with `try_send`: a session whose mailbox is full keeps them waiting); a session
//! whose waiting events pass `MAX_PENDING_BYTES` (estimated) is told it fell behind, once,
//! and gets nothing more. A WebSocket session whose client stops reading is not run at all
//! (its socket is not writable), so this bound, not the session, keeps the memory in check.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, Recipient, WrapFuture,
};

use super::fleet::{FleetSupervisor, GetFleet};
use crate::domain::AgentStatus;
use crate::domain::alert::AlertView;
use crate::domain::fleet::FleetAgents;
use crate::store::LogEntry;

/// How often the latest readings are sent to sessions that want samples.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How often waiting events go to their sessions.
const FLUSH: Duration = Duration::from_millis(20);
/// Estimated bytes of events a session may have waiting before it is dropped.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;
/// Estimated bytes of one event (of one agent, for samples) as the stream sends it.
const EVENT_BYTES: usize = 512;

/// The stream's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    /// Each agent's latest readings, at most once a second.
    Samples,
    /// Agents joining, leaving and changing status.
    Fleet,
    /// Every alert state change.
    Alerts,
    /// Every action transition, approvals included.
    Actions,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 4] = [Topic::Samples, Topic::Fleet, Topic::Alerts, Topic::Actions];

    /// The topic's name in queries and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Samples => "samples",
            Topic::Fleet => "fleet",
            Topic::Alerts => "alerts",
            Topic::Actions => "actions",
        }
    }
}

/// What happened in the fleet.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetChange {
    /// An agent joined a pool.
    Joined,
    /// An agent left (deregistered).
    Left,
    /// An agent's status changed.
    Status(AgentStatus),
}

/// One event of the stream.
#[derive(Debug, Clone)]
pub enum Event {
    /// The latest readings of the agents that reported since the last such event.
    Samples(FleetAgents),
    /// An agent joined, left or changed status.
    Fleet {
        /// The agent.
        agent: String,
        /// Its pool.
        pool: String,
        /// What happened.
        change: FleetChange,
        /// When, epoch milliseconds.
        ts_ms: i64,
    },
    /// An alert changed state.
    Alert(Box<AlertView>),
    /// An action log row.
    Action(Box<LogEntry>),
}

impl Event {
    /// The event's topic.
    pub fn topic(&self) -> Topic {
        match self {
            Event::Samples(_) => Topic::Samples,
            Event::Fleet { .. } => Topic::Fleet,
            Event::Alert(_) => Topic::Alerts,
            Event::Action(_) => Topic::Actions,
        }
    }

    /// About how many bytes the event takes on the wire.
    pub fn weight(&self) -> usize {
        match self {
            Event::Samples(agents) => agents.len().max(1) * EVENT_BYTES,
            _ => EVENT_BYTES,
        }
    }

    /// The pool and agent the event is about (an action on a whole pool has no agent;
    /// samples are about many, and a session keeps those its filter takes).
    pub fn subject(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Event::Samples(_) => (None, None),
            Event::Fleet { agent, pool, .. } => (Some(pool), Some(agent)),
            Event::Alert(alert) => (Some(&alert.pool), Some(&alert.agent)),
            Event::Action(entry) => (Some(&entry.pool), entry.agent.as_deref()),
        }
    }
}

/// What a session wants: topics, and optionally one pool and one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The topics.
    pub topics: BTreeSet<Topic>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only this agent (events about a whole pool still come when the pool matches).
    pub agent: Option<String>,
}

impl Filter {
    /// A filter that takes every event.
    pub fn everything() -> Filter {
        Filter {
            topics: Topic::ALL.into_iter().collect(),
            pool: None,
            agent: None,
        }
    }

    /// Whether `agent` of `pool` passes (for samples, which carry many agents).
    pub fn takes_agent(&self, pool: &str, agent: &str) -> bool {
        self.pool.as_deref().is_none_or(|p| p == pool)
            && self.agent.as_deref().is_none_or(|a| a == agent)
    }

    /// Whether `event` passes.
    pub fn takes(&self, event: &Event) -> bool {
        if !self.topics.contains(&event.topic()) {
            return false;
        }
        let (pool, agent) = event.subject();
        let pool_ok = match (self.pool.as_deref(), pool) {
            (Some(wanted), Some(pool)) => wanted == pool,
            _ => true,
        };
        let agent_ok = match (self.agent.as_deref(), agent) {
            (Some(wanted), Some(agent)) => wanted == agent,
            _ => true,
        };
        pool_ok && agent_ok
    }
}

/// An event published to the stream.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Publish(pub Event);

/// An event as the broker hands it out: shared by every session, with a slot for its text as
/// the stream sends it, so it is written once however many sessions send it.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    /// Its wire text for sessions that take all of it (filled by the first such session).
    pub text: std::sync::OnceLock<String>,
}

/// Events handed to one session, oldest first.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<Arc<Published>>);

/// Tells a session it fell behind: more events waited for it than the broker keeps.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FellBehind;

/// Adds a session; answered with its id.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Subscribe {
    /// What it wants.
    pub filter: Filter,
    /// Where its events go.
    pub events: Recipient<Deliver>,
    /// Where it learns it fell behind.
    pub behind: Recipient<FellBehind>,
}

/// Removes session `0`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// Asks how many sessions are subscribed.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CountSessions;

struct Session {
    filter: Filter,
    events: Recipient<Deliver>,
    behind: Recipient<FellBehind>,
    /// Events not yet handed over, and their estimated bytes.
    pending: Vec<Arc<Published>>,
    pending_bytes: usize,
    /// Told it fell behind: nothing more is sent.
    dropped: bool,
}

/// The broker actor.
pub struct EventBroker {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    fleet: Addr<FleetSupervisor>,
    sessions: HashMap<u64, Session>,
    next_id: u64,
    /// Per agent, the sample time of the readings last sent.
    sent_ms: HashMap<String, i64>,
    reading: bool,
}

impl EventBroker {
    /// A broker that reads samples from `fleet`.
    pub fn new(fleet: Addr<FleetSupervisor>) -> Self {
        EventBroker {
            span: tracing::info_span!("actor", actor = "events"),
            fleet,
            sessions: HashMap::new(),
            next_id: 1,
            sent_ms: HashMap::new(),
            reading: false,
        }
    }

    /// Queues `event` for every session whose filter takes it; drops a session whose queue
    /// passes the bound.
    fn fan_out(&mut self, event: Event) {
        let weight = event.weight();
        let event = Arc::new(Published {
            event,
            text: std::sync::OnceLock::new(),
        });
        for (id, session) in &mut self.sessions {
            if session.dropped || !session.filter.takes(&event.event) {
                continue;
            }
            session.pending.push(event.clone());
            session.pending_bytes += weight;
            if session.pending_bytes > MAX_PENDING_BYTES {
                session.dropped = true;
                session.pending = Vec::new();
                session.pending_bytes = 0;
                tracing::warn!(
                    message = "Stream client fell behind; dropping it.",
                    session = id
                );
                session.behind.do_send(FellBehind);
            }
        }
    }

    /// Hands each session its waiting events as one batch, unless its mailbox is full.
    fn flush(&mut self) {
        let mut gone = Vec::new();
        for (id, session) in &mut self.sessions {
            if session.pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut session.pending);
            match session.events.try_send(Deliver(batch)) {
                Ok(()) => session.pending_bytes = 0,
                Err(actix::dev::SendError::Full(Deliver(batch))) => session.pending = batch,
                Err(actix::dev::SendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.sessions.remove(&id);
        }
    }

    /// Sends the readings that changed since the last time, when a session wants samples.
    fn send_samples(&mut self, ctx: &mut Context<Self>) {
        let wanted = self
            .sessions
            .values()
            .any(|s| !s.dropped && s.filter.topics.contains(&Topic::Samples));
        if !wanted || self.reading {
            return;
        }
        self.reading = true;
        ctx.spawn(
            self.fleet
                .send(GetFleet)
                .into_actor(self)
                .map(|snapshot, broker, _ctx| {
                    let _span = broker.span.clone().entered();
                    broker.reading = false;
                    let Ok(snapshot) = snapshot else {
                        return;
                    };
                    let mut fresh = Vec::new();
                    for agent in snapshot.agents.iter() {
                        let last = broker.sent_ms.get(&agent.id).copied().unwrap_or(i64::MIN);
                        if agent.last_sample_ms > last {
                            broker
                                .sent_ms
                                .insert(agent.id.clone(), agent.last_sample_ms);
                            fresh.push(agent.clone());
                        }
                    }
                    if !fresh.is_empty() {
                        broker.fan_out(Event::Samples(Arc::new(fresh)));
                    }
                }),
        );
    }
}

impl Actor for EventBroker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        ctx.run_interval(SAMPLE_INTERVAL, |broker, ctx| {
            let _span = broker.span.clone().entered();
            broker.send_samples(ctx);
        });
        ctx.run_interval(FLUSH, |broker, _ctx| {
            let _span = broker.span.clone().entered();
            broker.flush();
        });
    }
}

// === impl Handler ===

impl Handler<Publish> for EventBroker {
    type Result = ();

    fn handle(&mut self, msg: Publish, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if let Event::Fleet {
            agent,
            change: FleetChange::Left,
            ..
        } = &msg.0
        {
            self.sent_ms.remove(agent);
        }
        if !self.sessions.is_empty() {
            self.fan_out(msg.0);
        }
    }
}

impl Handler<Subscribe> for EventBroker {
    type Result = u64;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> u64 {
        let _span = self.span.clone().entered();
        let id = self.next_id;
        self.next_id += 1;
        self.sessions.insert(
            id,
            Session {
                filter: msg.filter,
                events: msg.events,
                behind: msg.behind,
                pending: Vec::new(),
                pending_bytes: 0,
                dropped: false,
            },
        );
        id
    }
}

impl Handler<Unsubscribe> for EventBroker {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.sessions.remove(&msg.0);
    }
}

impl Handler<CountSessions> for EventBroker {
    type Result = usize;

    fn handle(&mut self, _msg: CountSessions, _ctx: &mut Context<Self>) -> usize {
        let _span = self.span.clone().entered();
        self.sessions.values().filter(|s| !s.dropped).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet_event(agent: &str, pool: &str) -> Event {
        Event::Fleet {
            agent: agent.into(),
            pool: pool.into(),
            change: FleetChange::Joined,
            ts_ms: 0,
        }
    }

    #[test]
    fn filters_take_their_topics_pool_and_agent() {
        let filter = |topics: &[Topic], pool: Option<&str>, agent: Option<&str>| Filter {
            topics: topics.iter().copied().collect(),
            pool: pool.map(str::to_string),
            agent: agent.map(str::to_string),
        };
        let joined = fleet_event("w-1", "web");
        for (filter, expected) in [
            (filter(&Topic::ALL, None, None), true),
            (filter(&[Topic::Alerts], None, None), false),
            (filter(&[Topic::Fleet], Some("web"), None), true),
            (filter(&[Topic::Fleet], Some("db"), None), false),
            (filter(&[Topic::Fleet], None, Some("w-1")), true),
            (filter(&[Topic::Fleet], None, Some("w-2")), false),
        ] {
            assert_eq!(filter.takes(&joined), expected, "{filter:?}");
        }
    }
}
