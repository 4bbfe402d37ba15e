//! `FleetSupervisor`: the registry of agents. Starts one supervised `AgentActor` per agent,
//! routes samples to them, and answers what the fleet looks like now.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use actix::{Actor, Addr, Context, Handler, Message, MessageResult, Recipient, Supervisor};

use super::agent::{
    AgentActor, AgentLinks, FinishMinutes, FleetChanges, GetSeries, RecordSamples, SharedObserved,
};
use super::events::{Event, FleetChange, Publish};
use super::messages::{
    AdmitSamples, AgentHealthChanged, AnomalyObserved, DeregisterAgent, ForgetAgent, Heartbeat,
    IngestSamples, Refused, RegisterAgent, ThresholdCrossed, TrackAgent, WatchProcess,
};
use crate::clock::Clock;
use crate::decide::membership::{Admission, Headcount, admit};
use crate::decide::rate::TokenBuckets;
use crate::domain::{AgentHandle, AgentStatus, Sample};
use crate::policy::PolicyHandle;
use crate::store::models::ModelStore;

#[path = "fleet_views.rs"]
mod views;

/// The agent id under which host-wide samples arrive.
pub use crate::domain::fleet::{AgentView, FleetAgents, FleetSnapshot};
pub use crate::domain::names::HOST_AGENT;

/// Asks for a snapshot of the fleet.
#[derive(Debug, Message)]
#[rtype(result = "FleetSnapshot")]
pub struct GetFleet;

/// Asks for one agent's recent values of one metric.
#[derive(Debug, Message)]
#[rtype(result = "Option<Vec<(i64, f64)>>")]
pub struct GetAgentSeries {
    /// Agent id.
    pub agent: String,
    /// Metric name.
    pub metric: String,
}

/// Where the fleet forwards what it learns.
#[derive(Clone)]
pub struct FleetLinks {
    /// The collector, which samples agent processes.
    pub watch: Recipient<WatchProcess>,
    /// Actors that must forget an agent that is gone.
    pub forget: Vec<Recipient<ForgetAgent>>,
    /// The health actor.
    pub track: Recipient<TrackAgent>,
    /// Heartbeats, passed to agent actors' links.
    pub heartbeat: Recipient<Heartbeat>,
    /// Threshold crossings, passed to agent actors' links.
    pub crossings: Recipient<ThresholdCrossed>,
    /// Anomaly observations, passed to agent actors' links.
    pub anomalies: Vec<Recipient<AnomalyObserved>>,
    /// Where agent actors keep their trained anomaly models.
    pub models: Option<ModelStore>,
    /// Where agent actors hand finished minutes for the store.
    pub rollups: Option<crate::store::RollupSink>,
    /// The event stream, told agents joining, leaving and changing status.
    pub events: Option<Recipient<Publish>>,
}

/// The registry of agents.
pub struct FleetSupervisor {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    links: FleetLinks,
    agents: HashMap<String, Entry>,
    /// The ids of `agents` in snapshot order (`natural_key`), kept as agents come and go.
    order: Vec<String>,
    /// How many of `agents` there are, in all and by pool.
    headcount: Headcount,
    /// New agents each token brought, as buckets refilled over a minute.
    joins: TokenBuckets,
    host: super::host_readings::HostReadings,
    samples_routed: u64,
    /// Counts every change to what a snapshot shows of the agents, here and in their
    /// readings.
    changes: FleetChanges,
    /// The agents of the last snapshot, with the change count read before it was taken:
    /// shared by the next snapshot when the count has not moved and someone (the read
    /// routes' shared snapshot) still holds them.
    last_agents: Option<AgentViews<Weak<Vec<Arc<AgentView>>>>>,
}

/// What a snapshot shows of the agents: held by a snapshot (`Arc`), or remembered (`Weak`)
/// so that the list goes when nobody reads it (each agent's view stays in its entry).
#[derive(Clone)]
struct AgentViews<A> {
    /// The change count read before they were taken.
    count: u64,
    agents: A,
    ring_points: usize,
    ring_bytes: usize,
}

struct Entry {
    handle: AgentHandle,
    addr: Addr<AgentActor>,
    status: AgentStatus,
    observed: SharedObserved,
    /// What the last snapshot showed of it.
    view: Option<views::CachedView>,
}

impl FleetSupervisor {
    /// Tells the event stream what happened to `agent` of `pool`.
    fn publish(&self, agent: &str, pool: &str, change: FleetChange) {
        if let Some(events) = &self.links.events {
            events.do_send(Publish(Event::Fleet {
                agent: agent.to_string(),
                pool: pool.to_string(),
                change,
                ts_ms: self.clock.now_ms(),
            }));
        }
    }

    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A registry with no agents.
    pub fn new(policy: PolicyHandle, links: FleetLinks) -> Self {
        FleetSupervisor {
            span: tracing::info_span!("actor", actor = "fleet"),
            clock: Clock::system(),
            policy,
            links,
            agents: HashMap::new(),
            order: Vec::new(),
            headcount: Headcount::default(),
            joins: TokenBuckets::default(),
            host: Default::default(),
            samples_routed: 0,
            changes: FleetChanges::default(),
            last_agents: None,
        }
    }
}

impl Actor for FleetSupervisor {
    type Context = Context<Self>;
}

// === impl Handler ===

impl Handler<RegisterAgent> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RegisterAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.register(msg.handle, msg.startup_grace_secs);
    }
}

pub use crate::decide::membership::AdmitRefusal;

impl FleetSupervisor {
    /// Supervises `handle` from now on: a new actor, or the known one for a restarted agent.
    fn register(&mut self, handle: AgentHandle, grace_secs: u64) {
        self.changes.bump();
        let id = handle.id.clone();
        if let Some(pid) = handle.pid {
            self.links.watch.do_send(WatchProcess {
                agent: id.clone(),
                pid,
            });
        }
        self.links.track.do_send(TrackAgent {
            agent: id.clone(),
            pool: handle.pool.clone(),
            grace_until_ms: self.clock.now_ms() + grace_secs as i64 * 1000,
            pid: handle.pid,
        });
        if let Some(entry) = self.agents.get_mut(&id) {
            // A restarted agent keeps its actor and its history; only the process is new
            // (and its pool, should it name another).
            if entry.handle.pool != handle.pool {
                self.headcount.leave(&entry.handle.pool);
                self.headcount.join(&handle.pool);
            }
            entry.handle = handle;
            entry.status = AgentStatus::Starting;
            return;
        }
        let observed = SharedObserved::counting(self.changes.clone());
        let links = AgentLinks {
            observed: observed.clone(),
            heartbeat: self.links.heartbeat.clone(),
            crossings: self.links.crossings.clone(),
            anomalies: self.links.anomalies.clone(),
            rollups: self.links.rollups.clone(),
        };
        let models = self.links.models.clone();
        let (actor_id, pool, policy) = (id.clone(), handle.pool.clone(), self.policy.clone());
        let addr = {
            let clock = self.clock.clone();
            Supervisor::start(move |_| {
                AgentActor::new(actor_id, pool, policy, links, models).with_clock(clock)
            })
        };
        tracing::info!(message = "Agent registered.", agent = %id, pool = %handle.pool);
        self.publish(&id, &handle.pool, FleetChange::Joined);
        self.headcount.join(&handle.pool);
        let entry = Entry {
            handle,
            addr,
            status: AgentStatus::Starting,
            observed,
            view: None,
        };
        // A known id was handled above: this one is new.
        let previous = self.agents.insert(id.clone(), entry);
        debug_assert!(previous.is_none(), "{id} registered twice");
        if let Err(at) = self.order_of(&id) {
            self.order.insert(at, id);
        }
    }

    /// Where `id` is in `order`, or where it would go.
    fn order_of(&self, id: &str) -> Result<usize, usize> {
        let key = natural_key(id);
        self.order
            .binary_search_by(|other| natural_key(other).cmp(&key))
    }

    /// Decides whether an agent met for the first time through `AdmitSamples` joins, and
    /// which pool (`decide::membership`); registers it when it does.
    fn admit(
        &mut self,
        agent: &str,
        named_pool: Option<&String>,
        by: Option<&str>,
    ) -> Result<(), AdmitRefusal> {
        let current = self.policy.current();
        let policy = &current.policy;
        let pool = match admit(policy, agent, named_pool.map(String::as_str))? {
            Admission::Join(pool) => pool,
            Admission::Observed { named, pool } => {
                tracing::warn!(
                    message = "Foreign agent kept out of a driver-run pool.",
                    %agent,
                    named = %named,
                    joins = %pool,
                );
                pool
            }
        };
        self.headcount.room(policy, &pool, agent)?;
        let limit = policy.ingest.max_new_agents_per_minute_per_token;
        if let Some(by) = by
            && limit > 0
        {
            let per_sec = f64::from(limit) / 60.0;
            let now = self.clock.now_ms();
            if self.joins.take(by, now, per_sec, f64::from(limit)).is_err() {
                return Err(AdmitRefusal::TooManyJoins {
                    by: by.to_string(),
                    limit,
                    agent: agent.to_string(),
                });
            }
        }
        let handle = AgentHandle {
            id: agent.to_string(),
            pool,
            pid: None,
            endpoint: None,
            started_ms: self.clock.now_ms(),
        };
        self.register(handle, policy.global.heartbeat_timeout_secs);
        Ok(())
    }

    /// Hands each agent its samples; host-wide ones are kept here.
    fn route(&mut self, samples: Vec<Sample>) {
        // Batches come mostly grouped by agent: a sample for the same agent as the one before
        // joins its group without a lookup.
        let mut groups: Vec<(String, Vec<Sample>)> = Vec::new();
        let mut index: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut host_minutes = Vec::new();
        for sample in samples {
            if sample.agent == HOST_AGENT {
                self.samples_routed += 1;
                host_minutes.extend(self.host.observe(sample));
                continue;
            }
            if let Some((agent, group)) = groups.last_mut()
                && *agent == sample.agent
            {
                group.push(sample);
                continue;
            }
            match index.get(&sample.agent) {
                Some(&at) => groups[at].1.push(sample),
                None => {
                    // The agent's id is cloned once per batch, not once per sample.
                    index.insert(sample.agent.clone(), groups.len());
                    groups.push((sample.agent.clone(), vec![sample]));
                }
            }
        }
        if let Some(sink) = &self.links.rollups {
            sink.send(host_minutes);
        }
        for (agent, samples) in groups {
            match self.agents.get_mut(&agent) {
                Some(entry) => {
                    // An agent that reports is no longer starting.
                    if entry.status == AgentStatus::Starting {
                        self.changes.bump();
                        entry.status = AgentStatus::Active;
                    }
                    self.samples_routed += samples.len() as u64;
                    entry.addr.do_send(RecordSamples(samples));
                }
                None => tracing::debug!(message = "Samples for an unknown agent dropped.", %agent),
            }
        }
    }
}

impl Handler<DeregisterAgent> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, msg: DeregisterAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        // Dropping the last address stops the actor; its supervisor does not restart it.
        if let Some(entry) = self.agents.remove(&msg.agent) {
            if let Ok(at) = self.order_of(&msg.agent) {
                self.order.remove(at);
            }
            self.changes.bump();
            self.headcount.leave(&entry.handle.pool);
            tracing::info!(message = "Agent deregistered.", agent = %msg.agent);
            self.publish(&msg.agent, &entry.handle.pool, FleetChange::Left);
        }
        for recipient in &self.links.forget {
            recipient.do_send(ForgetAgent {
                agent: msg.agent.clone(),
            });
        }
    }
}

impl Handler<IngestSamples> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, msg: IngestSamples, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.route(msg.0);
    }
}

impl Handler<AdmitSamples> for FleetSupervisor {
    type Result = MessageResult<AdmitSamples>;

    fn handle(&mut self, msg: AdmitSamples, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let mut refused: Vec<Refused> = Vec::new();
        let mut samples = msg.samples;
        // Agents refused in this batch, and where their refusal is.
        let mut verdicts: HashMap<String, Option<usize>> = HashMap::new();
        let mut position = 0;
        samples.retain(|sample| {
            let at = position;
            position += 1;
            // Known agents, and those admitted earlier in this batch, are registered.
            if sample.agent == HOST_AGENT || self.agents.contains_key(&sample.agent) {
                return true;
            }
            let verdict = match verdicts.get(&sample.agent) {
                Some(&verdict) => verdict,
                None => {
                    let verdict = self
                        .admit(
                            &sample.agent,
                            msg.pools.get(&sample.agent),
                            msg.by.as_deref(),
                        )
                        .err()
                        .map(|refusal| {
                            refused.push(Refused {
                                agent: sample.agent.clone(),
                                reason: refusal.to_string(),
                                positions: Vec::new(),
                            });
                            refused.len() - 1
                        });
                    verdicts.insert(sample.agent.clone(), verdict);
                    verdict
                }
            };
            match verdict {
                None => true,
                Some(slot) => {
                    refused[slot].positions.push(at);
                    false
                }
            }
        });
        self.route(samples);
        MessageResult(refused)
    }
}

impl Handler<AgentHealthChanged> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, msg: AgentHealthChanged, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if let Some(entry) = self.agents.get_mut(&msg.agent) {
            self.changes.bump();
            entry.status = msg.status;
            let pool = entry.handle.pool.clone();
            self.publish(&msg.agent, &pool, FleetChange::Status(msg.status));
        }
    }
}

impl Handler<GetFleet> for FleetSupervisor {
    type Result = MessageResult<GetFleet>;

    fn handle(&mut self, _msg: GetFleet, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        // Read before the agents are: a change counted after this may be missing from them.
        let count = self.changes.count();
        let shared = self.last_agents.as_ref().and_then(|views| {
            let agents = views.agents.upgrade().filter(|_| views.count == count)?;
            Some(AgentViews {
                count,
                agents,
                ring_points: views.ring_points,
                ring_bytes: views.ring_bytes,
            })
        });
        let views = shared.unwrap_or_else(|| {
            let views = self.agent_views(count);
            self.last_agents = Some(AgentViews {
                count,
                agents: Arc::downgrade(&views.agents),
                ring_points: views.ring_points,
                ring_bytes: views.ring_bytes,
            });
            views
        });
        let AgentViews {
            agents,
            ring_points,
            ring_bytes,
            ..
        } = views;
        MessageResult(FleetSnapshot {
            agents,
            host: self.host.latest.clone(),
            samples_routed: self.samples_routed,
            ring_points,
            ring_bytes,
        })
    }
}

impl FleetSupervisor {
    /// What each agent looks like now, in natural (`natural_key`) order, and their ring
    /// buffers' totals.
    fn agent_views(&mut self, count: u64) -> AgentViews<FleetAgents> {
        debug_assert_eq!(
            self.order.len(),
            self.agents.len(),
            "order and agents differ"
        );
        let (mut ring_points, mut ring_bytes) = (0, 0);
        let agents = &mut self.agents;
        let views: Vec<Arc<AgentView>> = (self.order.iter())
            .filter_map(|id| {
                let entry = agents.get_mut(id)?;
                let kept = views::current(
                    &mut entry.view,
                    &entry.handle,
                    entry.status,
                    &entry.observed,
                );
                ring_points += kept.ring_points;
                ring_bytes += kept.ring_bytes;
                Some(kept.view.clone())
            })
            .collect();
        AgentViews {
            count,
            agents: Arc::new(views),
            ring_points,
            ring_bytes,
        }
    }
}

impl Handler<GetAgentSeries> for FleetSupervisor {
    type Result = actix::ResponseFuture<Option<Vec<(i64, f64)>>>;

    fn handle(&mut self, msg: GetAgentSeries, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let addr = self.agents.get(&msg.agent).map(|e| e.addr.clone());
        Box::pin(async move {
            let addr = addr?;
            addr.send(GetSeries { metric: msg.metric }).await.ok()
        })
    }
}

/// Has every agent hand its minutes so far to the rollup writer; answers once each has.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FinishAllMinutes;

impl Handler<FinishAllMinutes> for FleetSupervisor {
    type Result = actix::ResponseFuture<()>;

    fn handle(&mut self, _: FinishAllMinutes, _ctx: &mut Context<Self>) -> Self::Result {
        if let Some(sink) = &self.links.rollups {
            sink.send(self.host.take_minutes());
        }
        let sent: Vec<_> = self
            .agents
            .values()
            .map(|e| e.addr.send(FinishMinutes))
            .collect();
        Box::pin(async move {
            for reply in sent {
                let _ = reply.await;
            }
        })
    }
}

/// The key agents sort by, `worker-10` after `worker-9`: the id's stem, then its trailing
/// digits as a number (by length without leading zeros, then by text, so any length sorts),
/// then the id itself, so that two ids never share a key (`w-1`, `w-01`).
pub fn natural_key(id: &str) -> (&str, usize, &str, &str) {
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = id.split_at(id.len() - digits);
    let significant = number.trim_start_matches('0');
    (stem, significant.len(), significant, id)
}

#[cfg(test)]
mod order {
    use super::natural_key;

    #[test]
    fn numbers_sort_as_numbers_and_no_two_ids_share_a_key() {
        let mut ids = vec![
            "w-10",
            "w-9",
            "w-01",
            "w-1",
            "w-",
            "w-0",
            "a",
            "w-123456789012345678901234",
            "w-2",
        ];
        ids.sort_by_key(|id| natural_key(id));
        assert_eq!(
            ids,
            [
                "a",
                "w-",
                "w-0",
                "w-01",
                "w-1",
                "w-2",
                "w-9",
                "w-10",
                "w-123456789012345678901234"
            ]
        );
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
