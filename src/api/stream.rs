//! `GET /api/v1/stream`: the live event stream over WebSocket, and
//! `POST /api/v1/stream/ticket`: a single-use ticket for browsers, which cannot set the
//! `Authorization` header on a WebSocket. Each connection is a session actor
//! (actix-web-actors' `WebsocketContext`; this module is the only one that uses the crate)
//! subscribed to the `EventBroker`: a snapshot first, then every event its filter takes.
//!
//! A session never makes the controller wait, and its queue is bounded. It pings after every
//! `PING_EVERY_BYTES` sent (and every `HEARTBEAT`), each ping carrying the bytes sent so far;
//! a client's pong says how far it has read. A client more than `MAX_LAG_BYTES` behind, or
//! silent for `CLIENT_TIMEOUT`, gets a close frame with the reason and is dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Handler, StreamHandler};
use actix::{ContextFutureSpawner, WrapFuture};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiState;
use super::auth::{Caller, authenticate};
use super::error::ApiError;
use super::openapi::Endpoint;
use super::routes::{read_store, unavailable};
use super::wire::{ActionOut, AlertOut, LogEntryOut};
use crate::actors::alert::PageAlerts;
use crate::actors::events::{
    Deliver, Event, EventBroker, FellBehind, Filter, FleetChange, Subscribe, Topic, Unsubscribe,
};
use crate::actors::fleet::GetFleet;
use crate::decide::alerts::AlertFilter;
use crate::policy::Role;

/// How long a ticket may wait before it is used.
pub const TICKET_TTL_MS: i64 = 30_000;
/// A ping after this many bytes sent.
const PING_EVERY_BYTES: u64 = 64 * 1024;
/// A ping at least this often.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Bytes a client may have unread before it is dropped.
pub const MAX_LAG_BYTES: u64 = 8 * 1024 * 1024;
/// A client that answers no ping for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Batches of events a session's mailbox holds; more wait in the broker (bounded there).
const MAILBOX: usize = 16;
/// Actions in the snapshot, newest first.
const SNAPSHOT_ACTIONS: usize = 50;

/// Tickets not yet used: ticket to (caller, expiry epoch ms).
#[derive(Debug, Clone, Default)]
pub struct Tickets(Arc<Mutex<HashMap<String, (Caller, i64)>>>);

impl Tickets {
    /// A new ticket for `caller`, valid until `now_ms` plus [`TICKET_TTL_MS`].
    pub fn issue(&self, caller: Caller, now_ms: i64) -> Result<(String, i64), ApiError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(e.to_string()))?;
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires = now_ms + TICKET_TTL_MS;
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        book.retain(|_, (_, until)| *until > now_ms);
        book.insert(ticket.clone(), (caller, expires));
        Ok((ticket, expires))
    }

    /// The caller `ticket` was issued to, once: a used, unknown or expired ticket is refused.
    pub fn redeem(&self, ticket: &str, now_ms: i64) -> Result<Caller, ApiError> {
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match book.remove(ticket) {
            Some((caller, until)) if until > now_ms => Ok(caller),
            Some(_) => Err(ApiError::unauthorized("the ticket has expired")),
            None => Err(ApiError::unauthorized(
                "unknown ticket: tickets are single-use; get one from POST /api/v1/stream/ticket",
            )),
        }
    }
}

/// The stream's routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/stream",
            "The live event stream (a WebSocket upgrade)",
            || web::get().to(stream),
        )
        .own_auth()
        .query::<StreamQuery>()
        .answers_empty(
            101,
            "Switching to the WebSocket: a snapshot, then events as JSON text",
        )
        .errors(&[400]),
        Endpoint::post(
            "/stream/ticket",
            "A single-use ticket to open the stream",
            || web::post().to(ticket),
        )
        .answers::<TicketOut>(200, "The ticket, valid 30 s, carrying the token's role"),
    ]
}

#[derive(Serialize, JsonSchema)]
struct TicketOut {
    ticket: String,
    expires: String,
    role: Role,
}

async fn ticket(state: web::Data<ApiState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let role = caller.role;
    let (ticket, expires) = state.tickets.issue(caller, state.clock.now_ms())?;
    Ok(HttpResponse::Ok().json(TicketOut {
        ticket,
        expires: crate::clock::rfc3339(expires),
        role,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Comma-separated topics (samples, fleet, alerts, actions); default: all.
    topics: Option<String>,
    /// Only this pool.
    pool: Option<String>,
    /// Only this agent.
    agent: Option<String>,
    /// A ticket from POST /api/v1/stream/ticket, instead of the Authorization header.
    ticket: Option<String>,
}

fn parse_filter(query: &StreamQuery) -> Result<Filter, ApiError> {
    let topics: BTreeSet<Topic> = match &query.topics {
        None => Topic::ALL.into_iter().collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|name| {
                Topic::ALL
                    .into_iter()
                    .find(|t| t.as_str() == name)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            Some("topics"),
                            format!(
                                "unknown topic {name:?}: one of samples, fleet, alerts, actions"
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if topics.is_empty() {
        return Err(ApiError::bad_request(Some("topics"), "no topic asked for"));
    }
    Ok(Filter {
        topics,
        pool: query.pool.clone(),
        agent: query.agent.clone(),
    })
}

async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = match &query.ticket {
        Some(ticket) => state.tickets.redeem(ticket, state.clock.now_ms())?,
        None => authenticate(&req)?,
    };
    let filter = parse_filter(&query)?;
    let session = StreamSession {
        broker: state.events.clone(),
        state: state.clone(),
        role: caller.role,
        filter,
        id: None,
        sent: 0,
        read: 0,
        pinged: 0,
        last_heard: Instant::now(),
    };
    ws::start(session, &req, body)
        .map_err(|error| ApiError::bad_request(None, format!("not a WebSocket upgrade: {error}")))
}

/// The first message: the agents, alerts and recent actions the filter takes.
async fn snapshot(state: &ApiState, filter: &Filter, role: Role) -> Result<String, ApiError> {
    // Fresh, not the read routes' shared one: a client builds its whole view on it.
    let fleet = state.fleet.send(GetFleet).await.map_err(unavailable)?;
    let wanted = AlertFilter {
        agent: filter.agent.clone(),
        pool: filter.pool.clone(),
        ..AlertFilter::default()
    };
    let (alerts, _) = state
        .alert
        .send(PageAlerts {
            filter: wanted,
            limit: usize::MAX,
        })
        .await
        .map_err(unavailable)?;
    let actions = read_store(&state.store, |store| store.actions(None, SNAPSHOT_ACTIONS)).await?;
    let pool_ok = |pool: &str| filter.pool.as_deref().is_none_or(|p| p == pool);
    let agent_ok = |agent: &str| filter.agent.as_deref().is_none_or(|a| a == agent);
    let agents: Vec<SampleOut> = fleet
        .views()
        .filter(|a| pool_ok(&a.pool) && agent_ok(&a.id))
        .map(SampleOut::from)
        .collect();
    // The alert actor filtered them by pool and agent already.
    let alerts: Vec<AlertOut> = alerts.iter().map(AlertOut::from).collect();
    let actions: Vec<ActionOut> = actions
        .iter()
        .filter(|a| pool_ok(&a.pool) && a.agent.as_deref().is_none_or(agent_ok))
        .map(ActionOut::from)
        .collect();
    let topics: Vec<&str> = filter.topics.iter().map(|t| t.as_str()).collect();
    Ok(json!({
        "topic": "snapshot",
        "topics": topics,
        "role": role,
        "agents": agents,
        "alerts": alerts,
        "actions": actions,
    })
    .to_string())
}

/// An agent's latest readings, as the snapshot and the samples topic send them (the full
/// agent is at `GET /api/v1/agents/{id}`).
#[derive(Serialize)]
struct SampleOut<'a> {
    id: &'a str,
    pool: &'a str,
    status: crate::domain::AgentStatus,
    ts_ms: i64,
    metrics: &'a std::collections::BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    anomaly_scores: &'a std::collections::BTreeMap<String, f64>,
}

impl<'a> From<&'a crate::domain::fleet::AgentView> for SampleOut<'a> {
    fn from(agent: &'a crate::domain::fleet::AgentView) -> Self {
        SampleOut {
            id: &agent.id,
            pool: &agent.pool,
            status: agent.status,
            ts_ms: agent.last_sample_ms,
            metrics: &agent.metrics,
            anomaly_scores: &agent.anomaly_scores,
        }
    }
}

/// One event as the stream sends it to a session with `filter`; `None` when nothing in it is
/// for the session.
fn event_json(event: &Event, filter: &Filter) -> Option<String> {
    let value = match event {
        Event::Samples(agents) => {
            let agents: Vec<SampleOut> = agents
                .iter()
                .filter(|a| filter.takes_agent(&a.pool, &a.id))
                .map(|a| SampleOut::from(&**a))
                .collect();
            if agents.is_empty() {
                return None;
            }
            json!({"topic": "samples", "agents": agents})
        }
        Event::Fleet {
            agent,
            pool,
            change,
            ts_ms,
        } => {
            let (what, status) = match change {
                FleetChange::Joined => ("joined", None),
                FleetChange::Left => ("left", None),
                FleetChange::Status(status) => ("status", Some(*status)),
            };
            json!({"topic": "fleet", "event": what, "agent": agent, "pool": pool,
                   "status": status, "ts_ms": ts_ms, "time": crate::clock::rfc3339(*ts_ms)})
        }
        Event::Alert(alert) => json!({"topic": "alerts", "alert": AlertOut::from(&**alert)}),
        Event::Action(entry) => json!({"topic": "actions", "entry": LogEntryOut::from(&**entry)}),
    };
    Some(value.to_string())
}

/// One client's session.
pub struct StreamSession {
    broker: Addr<EventBroker>,
    /// What the snapshot is read from.
    state: web::Data<ApiState>,
    /// The caller's role, told in the snapshot.
    role: Role,
    filter: Filter,
    /// The broker's id for it, once subscribed.
    id: Option<u64>,
    /// Bytes sent so far.
    sent: u64,
    /// Bytes the client has read, as its last pong said.
    read: u64,
    /// `sent` when the last ping went.
    pinged: u64,
    /// When the client last answered.
    last_heard: Instant,
}

impl StreamSession {
    fn ping(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.pinged = self.sent;
        ctx.ping(&self.sent.to_be_bytes());
    }

    /// Sends `text`, counting its bytes.
    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: String) {
        self.sent += text.len() as u64;
        ctx.text(text);
    }

    /// Closes with `reason` and drops the client.
    fn drop_client(&mut self, ctx: &mut ws::WebsocketContext<Self>, reason: String) {
        tracing::warn!(message = "Stream client dropped.", %reason);
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Again,
            description: Some(reason),
        }));
        ctx.stop();
    }
}

impl Actor for StreamSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        // Subscribed before the snapshot is taken, so that nothing that happens in between
        // is lost (an event may be in both: clients take the later state). Until both are
        // done, events wait in the broker.
        let subscribe = Subscribe {
            filter: self.filter.clone(),
            events: ctx.address().recipient(),
            behind: ctx.address().recipient(),
        };
        let broker = self.broker.clone();
        let (state, filter, role) = (self.state.clone(), self.filter.clone(), self.role);
        async move {
            let id = broker.send(subscribe).await;
            (id, snapshot(&state, &filter, role).await)
        }
        .into_actor(self)
        .map(|(id, snapshot), session, ctx| {
            let Ok(id) = id else {
                return ctx.stop();
            };
            session.id = Some(id);
            match snapshot {
                Ok(text) => {
                    session.send(ctx, text);
                    session.ping(ctx);
                }
                Err(error) => {
                    let reason = format!("cannot take the snapshot: {}", error.message);
                    session.drop_client(ctx, reason);
                }
            }
        })
        .wait(ctx);
        ctx.run_interval(HEARTBEAT, |session, ctx| {
            if session.last_heard.elapsed() > CLIENT_TIMEOUT {
                let reason = format!("no answer to pings for {} s", CLIENT_TIMEOUT.as_secs());
                return session.drop_client(ctx, reason);
            }
            session.ping(ctx);
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(id) = self.id {
            self.broker.do_send(Unsubscribe(id));
        }
    }
}

impl Handler<Deliver> for StreamSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        for published in &msg.0 {
            // Text is shared unless this session keeps only some of the samples.
            let text = match &published.event {
                Event::Samples(_) if self.filter.pool.is_some() || self.filter.agent.is_some() => {
                    event_json(&published.event, &self.filter)
                }
                event => Some(
                    published
                        .text
                        .get_or_init(|| {
                            event_json(event, &Filter::everything()).unwrap_or_default()
                        })
                        .clone(),
                )
                .filter(|text| !text.is_empty()),
            };
            if let Some(text) = text {
                self.send(ctx, text);
            }
        }
        if self.sent - self.read > MAX_LAG_BYTES {
            let reason = format!(
                "client fell behind: more than {} MiB unread",
                MAX_LAG_BYTES / (1024 * 1024)
            );
            return self.drop_client(ctx, reason);
        }
        if self.sent - self.pinged >= PING_EVERY_BYTES {
            self.ping(ctx);
        }
    }
}

impl Handler<FellBehind> for StreamSession {
    type Result = ();

    fn handle(&mut self, _msg: FellBehind, ctx: &mut Self::Context) {
        let reason = format!(
            "client fell behind: more than {} MiB of events waiting",
            crate::actors::events::MAX_PENDING_BYTES / (1024 * 1024)
        );
        self.drop_client(ctx, reason);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for StreamSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(payload)) => {
                if let Ok(bytes) = <[u8; 8]>::try_from(&payload[..]) {
                    self.read = self.read.max(u64::from_be_bytes(bytes));
                }
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(message = "Stream protocol error.", %error);
                ctx.stop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_single_use_and_expires() {
        let tickets = Tickets::default();
        let viewer = Caller {
            name: "vera".into(),
            role: Role::Viewer,
        };
        let (ticket, expires) = tickets.issue(viewer.clone(), 1_000).unwrap();
        assert_eq!(expires, 1_000 + TICKET_TTL_MS);
        assert_eq!(tickets.redeem(&ticket, 2_000).unwrap(), viewer);
        assert!(tickets.redeem(&ticket, 2_000).is_err(), "used once");
        let (late, _) = tickets.issue(viewer, 1_000).unwrap();
        let refused = tickets.redeem(&late, 1_000 + TICKET_TTL_MS).unwrap_err();
        assert!(refused.message.contains("expired"), "{}", refused.message);
    }
}
