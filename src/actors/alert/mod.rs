//! `Alert`: threshold rule states per agent, `inactive → pending → firing → resolved`, with
//! the rule's `for` duration; every transition is logged and kept in the alert history.
//! Firing and resolved alerts go through the policy's routes (`notify::Router`: grouping,
//! repeat, resolved messages, inhibition) to the notification channels.

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};

mod availability;
mod crossings;
mod reads;
mod routing;

pub use reads::{CountAlerts, GetAlertStats, GetAlerts, GetPoolAlerts, PageAlerts};

pub use availability::{
    AGENT_NOT_MANAGED, AGENT_OFFLINE, AGENT_UNHEALTHY, ControllerAlert, HEARTBEAT_MISSED,
    RESTART_ESCALATED, STORE_WRITE_FAILED,
};

use crate::clock::Clock;
use crate::decide::alerts::{AlertBook, Transition};
use crate::notify::{Notifier, Router, Silence};
use crate::policy::PolicyHandle;
use crate::store::{AlertTransition, Store};

/// How often pending alerts are checked against their `for` duration.
const EVALUATE_INTERVAL: Duration = Duration::from_millis(250);
/// How often silences are reread from the store (the API also says when they change).
const SILENCE_RELOAD: Duration = Duration::from_secs(5);
/// Message-driven evaluations (routing included) are spaced by one millisecond per this many
/// alerts held: a pass costs time in proportion to the alerts, so a storm of crossings costs
/// a bounded share of the thread, while with few alerts each is routed at once.
const ALERTS_PER_GAP_MS: usize = 200;
/// The longest spacing of message-driven evaluations, milliseconds.
const MAX_EVALUATE_GAP_MS: i64 = 50;
/// Evaluations are also spaced by this many times what the last one took, so that however
/// many alerts there are, passes take at most a fifth of the actors' thread...
const COST_TO_GAP: u32 = 4;
/// ... but never more than this apart, milliseconds (one slow store write must not hold
/// firing and notifications back for long).
const MAX_COST_GAP_MS: i64 = 2_000;

pub use crate::domain::alert::{AlertState, AlertView};

/// Acknowledges alert `id` on behalf of `by`; answered with the alert.
#[derive(Debug, Message)]
#[rtype(result = "Option<AlertView>")]
pub struct AckAlert {
    /// The alert.
    pub id: u64,
    /// Who.
    pub by: String,
}

/// Tells the alert actor the silences changed (it also rereads them every few seconds).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SilencesChanged;

/// An alert started firing or resolved: what subscribers (the optimizer) are told.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct AlertChanged {
    /// The alert after the change.
    pub alert: AlertView,
    /// The metric its rule watches.
    pub metric: String,
}

/// The alert actor's evaluation counts: proof that it looked, for tests and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AlertStats {
    /// Evaluations of every alert (pending to firing, routing, silences) so far.
    pub evaluations: u64,
    /// When the last one ran, epoch milliseconds on the controller's clock.
    pub last_evaluation_ms: i64,
}

/// The alert actor.
pub struct Alert {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    stats: AlertStats,
    clock: Clock,
    store: Store,
    /// Routes and channels, when notifications are wanted.
    routing: Option<(PolicyHandle, Notifier, Router)>,
    /// Every alert and its state machine (`decide::alerts`).
    book: AlertBook,
    /// The silences, as last read from the store.
    silences: Vec<Silence>,
    /// Whether the next pass regroups the whole book (`routing`).
    routed: routing::RouteState,
    /// Who is told when an alert fires or resolves.
    subscribers: Vec<Recipient<AlertChanged>>,
    /// The event stream, told every state change (pending included).
    events: Option<Recipient<crate::actors::events::Publish>>,
    /// When the alerts were last evaluated, and whether a message's evaluation is already
    /// scheduled.
    evaluated_ms: i64,
    evaluation_scheduled: bool,
    /// How long the last evaluation took (real time).
    last_cost: Duration,
    /// The controller's event alerts (name, agent) and when each resolves by itself.
    expiring: Vec<(&'static str, String, i64)>,
    /// State changes not yet in the alert history (the alert, its state before, when):
    /// written together at the end of each evaluation, so a storm costs one commit a pass.
    unwritten: Vec<(AlertView, &'static str, i64)>,
}

impl Alert {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// An alert actor that records history in `store`.
    pub fn new(store: Store) -> Self {
        Alert {
            span: tracing::info_span!("actor", actor = "alert"),
            stats: AlertStats::default(),
            clock: Clock::system(),
            store,
            routing: None,
            // Ids stay unique across restarts: they start from the clock.
            book: AlertBook::new(crate::clock::now_ms().max(0) as u64 * 1000),
            silences: Vec::new(),
            routed: routing::RouteState::default(),
            subscribers: Vec::new(),
            events: None,
            evaluated_ms: 0,
            evaluation_scheduled: false,
            last_cost: Duration::ZERO,
            expiring: Vec::new(),
            unwritten: Vec::new(),
        }
    }

    /// Also tells `subscriber` every time an alert fires or resolves.
    pub fn with_subscriber(mut self, subscriber: Recipient<AlertChanged>) -> Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Also publishes every state change to the event stream.
    pub fn with_events(mut self, events: Recipient<crate::actors::events::Publish>) -> Self {
        self.events = Some(events);
        self
    }

    /// Notifies through the routes of `policy` with `notifier`.
    pub fn with_routing(mut self, policy: PolicyHandle, notifier: Notifier) -> Self {
        self.routing = Some((policy, notifier, Router::default()));
        self
    }

    /// Records what the book changed, logs firing and resolving, and tells the subscribers.
    fn apply(&mut self, changes: Vec<Transition>, now_ms: i64) {
        for change in changes {
            self.routed.dirty = true;
            self.unwritten
                .push((change.alert.clone(), change.from_name(), now_ms));
            let view = &change.alert;
            if let Some(events) = &self.events {
                let event = crate::actors::events::Event::Alert(Box::new(view.clone()));
                events.do_send(crate::actors::events::Publish(event));
            }
            match view.state {
                AlertState::Firing => {
                    tracing::warn!(message = "Alert firing.", rule = %view.rule,
                        agent = %view.agent, pool = %view.pool, value = view.value,
                        level = ?view.level);
                }
                AlertState::Resolved => {
                    tracing::info!(message = "Alert resolved.", rule = %view.rule,
                        agent = %view.agent, pool = %view.pool);
                }
                AlertState::Pending => continue,
            }
            let changed = AlertChanged {
                alert: change.alert,
                metric: change.metric,
            };
            for subscriber in &self.subscribers {
                subscriber.do_send(changed.clone());
            }
        }
    }

    /// The spacing the last pass's cost asks for, milliseconds.
    fn cost_gap(&self) -> i64 {
        ((self.last_cost * COST_TO_GAP).as_millis() as i64).min(MAX_COST_GAP_MS)
    }

    /// Evaluates now, unless one ran less than the gap ago (one millisecond per
    /// `ALERTS_PER_GAP_MS` alerts, at most `MAX_EVALUATE_GAP_MS`, or `COST_TO_GAP` times what
    /// the last one took): then once when the gap ends. A storm of messages makes one pass
    /// per gap, not one each.
    fn evaluate_soon(&mut self, ctx: &mut Context<Self>) {
        if self.evaluation_scheduled {
            return;
        }
        let now = self.clock.now_ms();
        let by_size = ((self.book.len() / ALERTS_PER_GAP_MS) as i64).min(MAX_EVALUATE_GAP_MS);
        let gap = by_size.max(self.cost_gap());
        if now - self.evaluated_ms >= gap {
            self.evaluated_ms = now;
            self.evaluate(now);
        } else {
            self.evaluation_scheduled = true;
            let wait = Duration::from_millis((self.evaluated_ms + gap - now).max(1) as u64);
            ctx.run_later(wait, |alert, _| {
                let _span = alert.span.clone().entered();
                let now = alert.clock.now_ms();
                alert.evaluation_scheduled = false;
                alert.evaluated_ms = now;
                alert.evaluate(now);
            });
        }
    }

    fn evaluate(&mut self, now_ms: i64) {
        let started = std::time::Instant::now();
        self.resolve_expired(now_ms);
        let changes = self.book.evaluate(now_ms);
        self.apply(changes, now_ms);
        self.route(now_ms);
        self.stats.evaluations += 1;
        self.stats.last_evaluation_ms = now_ms;
        // Keep resolved alerts visible for a while, then forget them (routing sees them go).
        if self.book.forget_resolved(now_ms) > 0 {
            self.routed.dirty = true;
        }
        self.write_history();
        self.last_cost = started.elapsed();
    }

    /// Appends the state changes since the last pass to the alert history, in one
    /// transaction.
    fn write_history(&mut self) {
        if self.unwritten.is_empty() {
            return;
        }
        let unwritten = std::mem::take(&mut self.unwritten);
        let rows: Vec<AlertTransition> = unwritten
            .iter()
            .map(|(view, from, at)| transition(view, from, None, *at))
            .collect();
        if let Err(error) = self.store.record_alerts(&rows) {
            tracing::error!(message = "Alert history write failed.", %error, rows = rows.len());
        }
    }
}

/// The history row of `view` moving from `from_state` to `to_state` (its own state if none).
fn transition<'a>(
    view: &'a AlertView,
    from_state: &'a str,
    to_state: Option<&'a str>,
    now_ms: i64,
) -> AlertTransition<'a> {
    AlertTransition {
        ts_ms: now_ms,
        rule: &view.rule,
        agent: &view.agent,
        pool: &view.pool,
        level: view.level.as_str(),
        from_state,
        to_state: to_state.unwrap_or(view.state.as_str()),
        value: view.value,
        metric: &view.metric,
        threshold: view.threshold,
        message: &view.message,
    }
}

/// Appends a row `from_state → to_state` about `view` to the alert history.
fn record_as(store: &Store, view: &AlertView, from_state: &str, to_state: &str, now_ms: i64) {
    let row = transition(view, from_state, Some(to_state), now_ms);
    if let Err(error) = store.record_alert(&row) {
        tracing::error!(message = "Alert history write failed.", %error);
    }
}

impl Actor for Alert {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.reload_silences();
        ctx.run_interval(EVALUATE_INTERVAL, |alert, _| {
            let _span = alert.span.clone().entered();
            let now = alert.clock.now_ms();
            // A pass that took long spaces the ticks too.
            if now - alert.evaluated_ms >= alert.cost_gap() {
                alert.evaluated_ms = now;
                alert.evaluate(now);
            }
        });
        ctx.run_interval(SILENCE_RELOAD, |alert, _| {
            let _span = alert.span.clone().entered();
            alert.reload_silences()
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.write_history();
    }
}

// === impl Handler ===

impl Handler<AckAlert> for Alert {
    type Result = Option<AlertView>;

    fn handle(&mut self, msg: AckAlert, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let view = self.book.ack(msg.id, &msg.by, now)?;
        tracing::info!(message = "Alert acknowledged.", rule = %view.rule, agent = %view.agent,
            by = %msg.by);
        // The history keeps the acknowledgement as a row of its own, after what changed
        // before it.
        self.write_history();
        record_as(&self.store, &view, view.state.as_str(), "acknowledged", now);
        Some(view)
    }
}

impl Handler<SilencesChanged> for Alert {
    type Result = ();

    fn handle(&mut self, _msg: SilencesChanged, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.reload_silences();
        if self.routed.dirty {
            self.mark_silenced(self.clock.now_ms());
        }
    }
}

#[cfg(test)]
mod tests;
