//! Alerts from what agent actors see: threshold crossings, anomaly observations, and agents
//! that are gone; `decide::alerts` moves the states, this actor records and tells.

use actix::{Context, Handler};

use super::Alert;
use crate::actors::messages::{AnomalyObserved, ForgetAgent, ThresholdCrossed};
use crate::decide::alerts::Crossing;

impl Handler<ThresholdCrossed> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ThresholdCrossed, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let crossing = Crossing {
            rule: msg.rule,
            agent: &msg.agent,
            pool: &msg.pool,
            value: msg.value,
            ts_ms: msg.ts_ms,
            breached: msg.breached,
        };
        let changes = self.book.crossed(crossing, now);
        // A new alert may be due at once, a resolved one is routed at once.
        let changed = !changes.is_empty();
        self.apply(changes, now);
        if changed {
            self.evaluate_soon(ctx);
        }
    }
}

impl Handler<AnomalyObserved> for Alert {
    type Result = ();

    /// An anomalous score fires `anomaly_<metric>` on the agent at once; it resolves after a
    /// quiet minute.
    fn handle(&mut self, AnomalyObserved(note): AnomalyObserved, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let changes = self.book.anomalous(&note, now);
        self.apply(changes, now);
    }
}

impl Handler<ForgetAgent> for Alert {
    type Result = ();

    fn handle(&mut self, msg: ForgetAgent, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let changes = self.book.forget(&msg.agent, now);
        self.apply(changes, now);
    }
}
