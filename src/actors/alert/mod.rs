//! `Alert`: threshold rule states per agent, `inactive → pending → firing → resolved`, with
//! the rule's `for` duration; every transition is logged and kept in the alert history.
//! Firing and resolved alerts go through the policy's routes (`notify::Router`: grouping,
//! repeat, resolved messages, inhibition) to the notification channels.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult};
use serde::Serialize;

mod routing;

use super::messages::{AnomalyObserved, ForgetAgent, ThresholdCrossed};
use crate::clock;
use crate::notify::{Notifier, Router, Silence};
use crate::policy::{AlertLevel, AlertRule, PolicyHandle};
use crate::store::{AlertTransition, Store};

/// How often pending alerts are checked against their `for` duration.
const EVALUATE_INTERVAL: Duration = Duration::from_millis(250);
/// How often silences are reread from the store (the API also says when they change).
const SILENCE_RELOAD: Duration = Duration::from_secs(5);
/// An anomaly alert resolves after this long without a new anomalous score.
const ANOMALY_QUIET_MS: i64 = 60_000;

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Breached, waiting for its `for` duration.
    Pending,
    /// Breached for long enough.
    Firing,
    /// Was firing, no longer breached.
    Resolved,
}

impl AlertState {
    /// The snake_case name used in the API and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// Unique while the controller runs.
    pub id: u64,
    /// Rule name.
    pub rule: String,
    /// Agent it is about.
    pub agent: String,
    /// Agent's pool.
    pub pool: String,
    /// Severity.
    pub level: AlertLevel,
    /// Current state.
    pub state: AlertState,
    /// Value that last changed the state.
    pub value: f64,
    /// When the breach began, epoch milliseconds.
    pub since_ms: i64,
    /// When it started firing, if it did.
    pub fired_ms: Option<i64>,
    /// When it resolved, if it did.
    pub resolved_ms: Option<i64>,
    /// Who acknowledged it, and when (epoch milliseconds).
    pub acked: Option<(String, i64)>,
    /// The silences that mute it now.
    pub silenced_by: Vec<i64>,
}

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

/// Asks for current and recently resolved alerts.
#[derive(Debug, Message)]
#[rtype(result = "Vec<AlertView>")]
pub struct GetAlerts;

/// The alert actor.
pub struct Alert {
    store: Store,
    /// Routes and channels, when notifications are wanted.
    routing: Option<(PolicyHandle, Notifier, Router)>,
    alerts: HashMap<(String, String), (AlertRule, AlertView)>,
    /// When each anomaly alert last saw an anomalous score.
    anomaly_seen: HashMap<(String, String), i64>,
    /// The silences, as last read from the store.
    silences: Vec<Silence>,
    /// The next alert id.
    next_id: u64,
}

impl Alert {
    /// An alert actor that records history in `store`.
    pub fn new(store: Store) -> Self {
        Alert {
            store,
            routing: None,
            alerts: HashMap::new(),
            anomaly_seen: HashMap::new(),
            silences: Vec::new(),
            // Ids stay unique across restarts: they start from the clock.
            next_id: clock::now_ms().max(0) as u64 * 1000,
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Notifies through the routes of `policy` with `notifier`.
    pub fn with_routing(mut self, policy: PolicyHandle, notifier: Notifier) -> Self {
        self.routing = Some((policy, notifier, Router::default()));
        self
    }

    fn transition(store: &Store, view: &mut AlertView, to: AlertState, now_ms: i64) {
        let from = view.state;
        view.state = to;
        match to {
            AlertState::Firing => {
                view.fired_ms = Some(now_ms);
                tracing::warn!(message = "Alert firing.", rule = %view.rule, agent = %view.agent,
                    value = view.value, level = ?view.level);
            }
            AlertState::Resolved => {
                view.resolved_ms = Some(now_ms);
                tracing::info!(message = "Alert resolved.", rule = %view.rule, agent = %view.agent);
            }
            AlertState::Pending => {}
        }
        record(store, view, from.as_str(), now_ms);
    }

    fn evaluate(&mut self, now_ms: i64) {
        for (rule, view) in self.alerts.values_mut() {
            if view.state == AlertState::Pending
                && now_ms - view.since_ms >= rule.for_secs as i64 * 1000
            {
                Self::transition(&self.store, view, AlertState::Firing, now_ms);
            }
        }
        let quiet: Vec<(String, String)> = self
            .anomaly_seen
            .iter()
            .filter(|(_, seen)| now_ms - **seen > ANOMALY_QUIET_MS)
            .map(|(key, _)| key.clone())
            .collect();
        for key in quiet {
            self.anomaly_seen.remove(&key);
            if let Some((_, view)) = self.alerts.get_mut(&key)
                && view.state == AlertState::Firing
            {
                Self::transition(&self.store, view, AlertState::Resolved, now_ms);
            }
        }
        self.route(now_ms);
        self.mark_silenced(now_ms);
        // Keep resolved alerts visible for a while, then forget them.
        self.alerts.retain(|_, (_, view)| {
            view.resolved_ms
                .is_none_or(|at| now_ms - at < 10 * 60 * 1000)
        });
    }
}

/// Appends the transition into `view.state` to the alert history.
fn record(store: &Store, view: &AlertView, from_state: &str, now_ms: i64) {
    record_as(store, view, from_state, view.state.as_str(), now_ms);
}

/// Appends a row `from_state → to_state` about `view` to the alert history.
fn record_as(store: &Store, view: &AlertView, from_state: &str, to_state: &str, now_ms: i64) {
    let transition = AlertTransition {
        ts_ms: now_ms,
        rule: &view.rule,
        agent: &view.agent,
        pool: &view.pool,
        level: view.level.as_str(),
        from_state,
        to_state,
        value: view.value,
    };
    if let Err(error) = store.record_alert(&transition) {
        tracing::error!(message = "Alert history write failed.", %error);
    }
}

impl Actor for Alert {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.reload_silences();
        ctx.run_interval(EVALUATE_INTERVAL, |alert, _| {
            alert.evaluate(clock::now_ms())
        });
        ctx.run_interval(SILENCE_RELOAD, |alert, _| alert.reload_silences());
    }
}

// === impl Handler ===

impl Handler<ThresholdCrossed> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ThresholdCrossed, _ctx: &mut Context<Self>) {
        let key = (msg.rule.name.clone(), msg.agent.clone());
        let now = clock::now_ms();
        if msg.breached {
            let active = self
                .alerts
                .get(&key)
                .is_some_and(|(_, v)| v.state != AlertState::Resolved);
            if active {
                return;
            }
            let view = AlertView {
                id: self.new_id(),
                acked: None,
                silenced_by: Vec::new(),
                rule: msg.rule.name.clone(),
                agent: msg.agent,
                pool: msg.pool,
                level: msg.rule.level,
                state: AlertState::Pending,
                value: msg.value,
                since_ms: msg.ts_ms,
                fired_ms: None,
                resolved_ms: None,
            };
            record(&self.store, &view, "inactive", now);
            self.alerts.insert(key, (msg.rule, view));
            self.evaluate(now);
        } else if let Some((_, view)) = self.alerts.get_mut(&key) {
            view.value = msg.value;
            match view.state {
                AlertState::Firing => {
                    Self::transition(&self.store, view, AlertState::Resolved, now)
                }
                // A breach shorter than `for` never fired: it just goes away.
                AlertState::Pending => {
                    self.alerts.remove(&key);
                }
                AlertState::Resolved => {}
            }
        }
    }
}

impl Handler<AnomalyObserved> for Alert {
    type Result = ();

    /// An anomalous score fires `anomaly_<metric>` on the agent at once; it resolves after a
    /// quiet minute.
    fn handle(&mut self, msg: AnomalyObserved, _ctx: &mut Context<Self>) {
        let name = format!("anomaly_{}", msg.metric);
        let key = (name.clone(), msg.agent.clone());
        let now = clock::now_ms();
        self.anomaly_seen.insert(key.clone(), now);
        let active = self
            .alerts
            .get(&key)
            .is_some_and(|(_, v)| v.state != AlertState::Resolved);
        if active {
            if let Some((_, view)) = self.alerts.get_mut(&key) {
                view.value = msg.score;
            }
            return;
        }
        let rule = AlertRule {
            name: name.clone(),
            metric: msg.metric,
            above: msg.score,
            for_secs: 0,
            level: AlertLevel::Warning,
            pool: Some(msg.pool.clone()),
        };
        let mut view = AlertView {
            id: self.new_id(),
            acked: None,
            silenced_by: Vec::new(),
            rule: name,
            agent: msg.agent,
            pool: msg.pool,
            level: AlertLevel::Warning,
            state: AlertState::Pending,
            value: msg.score,
            since_ms: msg.ts_ms,
            fired_ms: None,
            resolved_ms: None,
        };
        record(&self.store, &view, "inactive", now);
        Self::transition(&self.store, &mut view, AlertState::Firing, now);
        self.alerts.insert(key, (rule, view));
    }
}

impl Handler<ForgetAgent> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let now = clock::now_ms();
        for ((_, agent), (_, view)) in self.alerts.iter_mut() {
            if *agent == msg.agent && view.state == AlertState::Firing {
                Self::transition(&self.store, view, AlertState::Resolved, now);
            }
        }
        self.alerts.retain(|(_, agent), (_, view)| {
            *agent != msg.agent || view.state != AlertState::Pending
        });
    }
}

impl Handler<AckAlert> for Alert {
    type Result = Option<AlertView>;

    fn handle(&mut self, msg: AckAlert, _ctx: &mut Context<Self>) -> Self::Result {
        let now = clock::now_ms();
        let (_, view) = self.alerts.values_mut().find(|(_, v)| v.id == msg.id)?;
        view.acked = Some((msg.by.clone(), now));
        tracing::info!(message = "Alert acknowledged.", rule = %view.rule, agent = %view.agent,
            by = %msg.by);
        // The history keeps the acknowledgement as a row of its own.
        record_as(&self.store, view, view.state.as_str(), "acknowledged", now);
        Some(view.clone())
    }
}

impl Handler<SilencesChanged> for Alert {
    type Result = ();

    fn handle(&mut self, _msg: SilencesChanged, _ctx: &mut Context<Self>) {
        self.reload_silences();
        self.mark_silenced(clock::now_ms());
    }
}

impl Handler<GetAlerts> for Alert {
    type Result = MessageResult<GetAlerts>;

    fn handle(&mut self, _msg: GetAlerts, _ctx: &mut Context<Self>) -> Self::Result {
        let mut alerts: Vec<AlertView> = self.alerts.values().map(|(_, v)| v.clone()).collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.since_ms));
        MessageResult(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::ChannelScores;

    #[actix::test]
    async fn an_anomaly_fires_at_once_and_is_kept_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let alert = Alert::new(Store::open(dir.path()).unwrap()).start();
        alert
            .send(AnomalyObserved {
                agent: "w-1".into(),
                pool: "w".into(),
                metric: "cpu_percent".into(),
                value: 95.0,
                score: 0.9,
                channels: ChannelScores::default(),
                ts_ms: clock::now_ms(),
            })
            .await
            .unwrap();
        let alerts = alert.send(GetAlerts).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].rule.as_str(), alerts[0].state),
            ("anomaly_cpu_percent", AlertState::Firing)
        );
    }
}
