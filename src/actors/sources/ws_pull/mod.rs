//! WebSocket pull: the controller connects to an agent's `ws://HOST:PORT/metrics`, sends
//! `{"type": "metrics_request"}` every sampling interval and turns each `metrics_response`
//! into samples (`protocol.rs` has the wire shape and the units).
//!
//! `WsPull` decides which agents are pulled, once a second and at once when one is forgotten:
//! the agents of pools with `pull = "websocket"` at their endpoint (`http://H:P` becomes
//! `ws://H:P/metrics`), whose samples go to the fleet as `IngestSamples`, and the static
//! `[[ingest.websocket]]` targets, whose samples go as `AdmitSamples` so each joins its pool
//! when it first answers (an unreachable static target is not in the fleet until then). Each
//! target runs its own task (`client.rs`). What the pull finds goes to the health actor as
//! `PullObserved`: the status the agent reports (`active`, `idle`, `busy`, `error`,
//! `offline`), `error` for an answer that is not metrics, and `offline` while it cannot be
//! reached, its socket is closed, or it is silent for two intervals. For an agent whose
//! process the collector samples, the pulled `cpu` and `memory` are left out: the collector's
//! readings are the controller's own, and one series should have one source.
//!
//! It knows the protocol and the socket; it does not know HTTP routes or how health verdicts
//! are made.

mod client;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, WrapFuture};

pub use client::{BACKOFF_INITIAL, BACKOFF_MAX, Backoff, PullFailures, PullLinks};

use tracing::Instrument;

use crate::actors::fleet::{FleetSnapshot, GetFleet};
use crate::actors::messages::ForgetAgent;
use crate::clock::Clock;
use crate::policy::{Policy, PolicyHandle, PullProtocol};

/// How often the set of pulled agents is brought in line with the fleet and the policy.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(1);

/// One agent to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Agent id its samples carry.
    pub agent: String,
    /// `ws://HOST:PORT/metrics`.
    pub url: String,
    /// Whether the controller runs it.
    pub kind: TargetKind,
    /// The collector samples its process already: its `cpu` and `memory` are not taken, so
    /// each series has one source.
    pub process_sampled: bool,
}

/// Whether the controller runs a pulled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// An agent of the fleet, pulled because its pool says so.
    Fleet,
    /// A static `[[ingest.websocket]]` target, which joins `pool`.
    Static {
        /// The pool it joins.
        pool: String,
    },
}

/// The actor that keeps one pull task per target.
pub struct WsPull {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    policy: PolicyHandle,
    fleet: Recipient<GetFleet>,
    links: PullLinks,
    pulling: HashMap<String, Pulling>,
    /// When an agent was last forgotten: fleet snapshots asked for before are stale.
    forgot_at: Option<Instant>,
}

struct Pulling {
    target: Target,
    task: tokio::task::JoinHandle<()>,
}

/// Why an agent's endpoint has no WebSocket URL to pull.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsUrlError {
    /// The endpoint is not `http://`.
    #[error("endpoint {endpoint:?} is not http:// (wss is not supported)")]
    NotHttp {
        /// The endpoint.
        endpoint: String,
    },
    /// The endpoint has nothing between `http://` and its path.
    #[error("endpoint {endpoint:?} names no host")]
    NoHost {
        /// The endpoint.
        endpoint: String,
    },
}

/// The WebSocket URL of an agent's endpoint: `http://H:P` → `ws://H:P/metrics`.
pub fn metrics_url(endpoint: &str) -> Result<String, MetricsUrlError> {
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| MetricsUrlError::NotHttp {
            endpoint: endpoint.to_string(),
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(MetricsUrlError::NoHost {
            endpoint: endpoint.to_string(),
        });
    }
    Ok(format!("ws://{authority}/metrics"))
}

/// Every agent the policy and the fleet say to pull, by agent id.
pub fn targets(policy: &Policy, fleet: &FleetSnapshot) -> HashMap<String, Target> {
    let mut targets = HashMap::new();
    for agent in fleet.agents.iter() {
        let pulled = policy
            .pool(&agent.pool)
            .is_some_and(|pool| pool.pull == PullProtocol::Websocket);
        let Some(endpoint) = agent.endpoint.as_deref().filter(|_| pulled) else {
            continue;
        };
        match metrics_url(endpoint) {
            Ok(url) => {
                let target = Target {
                    agent: agent.id.clone(),
                    url,
                    kind: TargetKind::Fleet,
                    process_sampled: agent.pid.is_some(),
                };
                targets.insert(agent.id.clone(), target);
            }
            Err(reason) => {
                tracing::debug!(message = "Agent not pulled.", agent = %agent.id, %reason);
            }
        }
    }
    // A static target named like a fleet agent is pulled where the operator said.
    for listed in &policy.ingest.websocket {
        let target = Target {
            agent: listed.agent.clone(),
            url: listed.url.clone(),
            kind: TargetKind::Static {
                pool: listed.pool.clone(),
            },
            process_sampled: false,
        };
        targets.insert(listed.agent.clone(), target);
    }
    targets
}

// === impl WsPull ===

impl WsPull {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A puller that reads the fleet through `fleet` and reports through `links`.
    pub fn new(policy: PolicyHandle, fleet: Recipient<GetFleet>, links: PullLinks) -> Self {
        WsPull {
            span: tracing::info_span!("actor", actor = "ws_pull"),
            clock: Clock::system(),
            policy,
            fleet,
            links,
            pulling: HashMap::new(),
            forgot_at: None,
        }
    }

    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let asked = Instant::now();
        let fleet = self.fleet.send(GetFleet);
        ctx.spawn(fleet.into_actor(self).map(move |snapshot, pull, _| {
            let _span = pull.span.clone().entered();
            let Ok(snapshot) = snapshot else {
                tracing::debug!(message = "Fleet gone; nothing to pull.");
                return;
            };
            if pull.forgot_at.is_some_and(|forgot| forgot > asked) {
                return;
            }
            let wanted = targets(&pull.policy.current().policy, &snapshot);
            pull.apply(wanted);
        }));
    }

    /// Stops the tasks of targets no longer wanted (or changed) and starts the new ones.
    fn apply(&mut self, mut wanted: HashMap<String, Target>) {
        self.pulling.retain(|agent, pulling| {
            let keep = wanted.get(agent) == Some(&pulling.target);
            if keep {
                wanted.remove(agent);
            } else {
                tracing::info!(message = "Agent no longer pulled.", %agent, url = %pulling.target.url);
                pulling.task.abort();
            }
            keep
        });
        for (agent, target) in wanted {
            tracing::info!(message = "Pulling agent metrics.", %agent, url = %target.url);
            let span = tracing::info_span!("task", task = "ws_pull", %agent);
            let task = actix::spawn(
                client::run(
                    target.clone(),
                    self.links.clone(),
                    self.policy.clone(),
                    self.clock.clone(),
                )
                .instrument(span),
            );
            self.pulling.insert(agent, Pulling { target, task });
        }
    }
}

impl Actor for WsPull {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.reconcile(ctx);
        ctx.run_interval(RECONCILE_INTERVAL, |pull, ctx| {
            let _span = pull.span.clone().entered();
            pull.reconcile(ctx)
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        for pulling in self.pulling.values() {
            pulling.task.abort();
        }
    }
}

// === impl Handler ===

impl Handler<ForgetAgent> for WsPull {
    type Result = ();

    /// An agent deregistered is no longer pulled (a static target comes back at the next
    /// reconcile while the policy lists it).
    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.forgot_at = Some(Instant::now());
        if let Some(pulling) = self.pulling.remove(&msg.agent) {
            tracing::info!(message = "Agent no longer pulled.", agent = %msg.agent);
            pulling.task.abort();
        }
        self.links.failures.forget(&msg.agent);
    }
}

/// Asks which agents are pulled now (for tests).
#[cfg(test)]
#[derive(Debug, actix::Message)]
#[rtype(result = "Vec<String>")]
struct Pulled;

#[cfg(test)]
impl Handler<Pulled> for WsPull {
    type Result = actix::MessageResult<Pulled>;

    fn handle(&mut self, _msg: Pulled, _ctx: &mut Context<Self>) -> Self::Result {
        let mut agents: Vec<String> = self.pulling.keys().cloned().collect();
        agents.sort();
        actix::MessageResult(agents)
    }
}

#[cfg(test)]
mod tests;
