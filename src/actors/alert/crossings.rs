//! Alerts from what agent actors see: threshold crossings (`pending`, then `firing` after the
//! rule's `for`, `keep_firing_for` on the way out), anomaly observations, and agents that are
//! gone.

use actix::{Context, Handler};

use super::{Alert, AlertState, AlertView, record};
use crate::actors::messages::{AnomalyObserved, ForgetAgent, ThresholdCrossed};
use crate::policy::{AlertLevel, AlertRule};

impl Handler<ThresholdCrossed> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ThresholdCrossed, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let key = (msg.rule.name.clone(), msg.agent.clone());
        let now = self.clock.now_ms();
        if msg.breached {
            // Breached again while `keep_firing_for` ran: it never stopped firing.
            self.clearing.remove(&key);
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
            self.evaluate_soon(ctx);
        } else if let Some((rule, view)) = self.alerts.get_mut(&key) {
            view.value = msg.value;
            match view.state {
                AlertState::Firing if rule.keep_firing_for_secs > 0 => {
                    self.clearing.entry(key).or_insert(now);
                }
                AlertState::Firing => {
                    self.transition(&key, AlertState::Resolved, now);
                    self.evaluate_soon(ctx);
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
    fn handle(&mut self, AnomalyObserved(msg): AnomalyObserved, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let name = format!("anomaly_{}", msg.metric);
        let key = (name.clone(), msg.agent.clone());
        let now = self.clock.now_ms();
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
            keep_firing_for_secs: 0,
            clear_below: None,
            cooldown_secs: 0,
        };
        let view = AlertView {
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
        self.alerts.insert(key.clone(), (rule, view));
        self.transition(&key, AlertState::Firing, now);
    }
}

impl Handler<ForgetAgent> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let firing: Vec<(String, String)> = self
            .alerts
            .iter()
            .filter(|((_, agent), (_, view))| {
                *agent == msg.agent && view.state == AlertState::Firing
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in firing {
            self.transition(&key, AlertState::Resolved, now);
        }
        self.alerts.retain(|(_, agent), (_, view)| {
            *agent != msg.agent || view.state != AlertState::Pending
        });
    }
}
