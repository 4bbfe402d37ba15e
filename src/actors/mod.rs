//! The actors of the controller, one module each, with the messages they share.
//!
//! They exchange typed messages along the path
//! `Collector → FleetSupervisor → AgentActor → {Health, Alert, FleetSupervisor}` and
//! `Optimizer → Actuator → driver`, as `ARCHITECTURE.md` draws it.

pub mod actuator;
pub mod agent;
pub mod alert;
pub mod events;
pub mod fleet;
pub mod health;
pub mod host_readings;
pub mod messages;
pub mod optimizer;
pub mod policy;
pub mod reporter;
pub mod sources;
pub mod tasks;

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, SpawnHandle};

use crate::policy::PolicyHandle;

/// An actor that works once per sampling interval of the policy in force.
pub trait SamplingTick: Actor<Context = Context<Self>> {
    /// The policy whose interval it follows.
    fn policy(&self) -> &PolicyHandle;
    /// Where its running tick and that tick's interval are kept.
    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)>;
    /// The work of one tick.
    fn tick(&mut self, ctx: &mut Context<Self>);
}

/// (Re)starts `actor`'s tick on the interval in force; after each tick, a reloaded policy
/// with another interval restarts it.
pub fn schedule_sampling<A: SamplingTick>(actor: &mut A, ctx: &mut Context<A>) {
    if let Some((running, _)) = actor.ticker().take() {
        ctx.cancel_future(running);
    }
    let interval = actor.policy().sampling_interval();
    let handle = ctx.run_interval(interval, |actor: &mut A, ctx| {
        actor.tick(ctx);
        let current = actor.ticker().as_ref().map(|(_, every)| *every);
        if current != Some(actor.policy().sampling_interval()) {
            schedule_sampling(actor, ctx);
        }
    });
    *actor.ticker() = Some((handle, interval));
}
