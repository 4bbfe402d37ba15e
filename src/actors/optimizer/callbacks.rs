//! Alert callbacks: the optimizer subscribes to the alert actor, as the monitors swarmpilot
//! replaces did with callbacks. A critical (or emergency) CPU alert on an agent of a pool the
//! controller runs proposes a scale-out at once, without waiting for the planner's next tick
//! or its settled readings; the risk gate still judges it, and a pool already busy refuses it.

use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};

use super::Optimizer;
use crate::actors::alert::{AlertChanged, AlertState};
use crate::actors::fleet::GetFleet;
use crate::analytics::scaling::RateLimit;
use crate::domain::evidence::{AlertScaleOutEvidence, Evidence};
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::AlertLevel;

/// How sure an alert-led scale-out is: one agent's sustained breach, not the pool's plan.
const ALERT_CONFIDENCE: f64 = 0.8;

impl Handler<AlertChanged> for Optimizer {
    type Result = ();

    fn handle(&mut self, msg: AlertChanged, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let alert = msg.alert;
        if alert.state != AlertState::Firing
            || alert.level < AlertLevel::Critical
            || msg.metric != metric::CPU_PERCENT
        {
            return;
        }
        let current = self.policy.current();
        let Some(pool) = current.policy.pool(&alert.pool) else {
            return;
        };
        if pool.observe_only() {
            return;
        }
        let fleet = self.fleet.clone();
        ctx.spawn(fleet.send(GetFleet).into_actor(self).map(
            move |snapshot, optimizer, _ctx| {
let _span = optimizer.span.clone().entered();
                let Ok(snapshot) = snapshot else { return };
                let policy = optimizer.policy.current();
                let Some(pool) = policy.policy.pool(&alert.pool) else {
                    return;
                };
                let agents: Vec<_> = snapshot
                    .views()
                    .filter(|a| a.pool == alert.pool)
                    .collect();
                if super::throttle::throttled(pool, &agents) {
                    tracing::info!(message = "Alert scale-out withheld: the pool's model provider throttles it.",
                        pool = %alert.pool, alert = %alert.rule);
                    return;
                }
                let current = agents.len();
                let cpu: Vec<f64> = agents
                    .iter()
                    .filter(|a| a.status != AgentStatus::Offline)
                    .filter_map(|a| a.metrics.get(metric::CPU_PERCENT).copied())
                    .collect();
                let mean = cpu.iter().sum::<f64>() / cpu.len().max(1) as f64;
                let target = pool.target_cpu_percent;
                // The HPA rule on the pool's mean, at least one more agent, within the rate
                // policy and the pool's bounds.
                let wanted = ((current as f64 * mean / target).ceil() as usize).max(current + 1);
                let limit = RateLimit::of(&pool.scale_up).highest(current);
                let to = wanted.min(limit).min(policy.policy.max_agents(pool));
                if to <= current {
                    return;
                }
                let mut proposal = Proposal {
                    pool: alert.pool.clone(),
                    change: Change::Scale { from: current, to },
                    reason: format!(
                        "{} alert {} on {} ({:.0}% CPU); pool mean {mean:.0}% vs target {target:.0}%",
                        alert.level.as_str(),
                        alert.rule,
                        alert.agent,
                        alert.value
                    ),
                    evidence: Evidence::AlertScaleOut(AlertScaleOutEvidence {
                        alert: alert.clone(),
                        agent_cpu_percent: cpu.clone(),
                        target_cpu_percent: target,
                        over_budget: None,
                    }),
                    confidence: ALERT_CONFIDENCE,
                    expected_effect: format!(
                        "{to} agents: mean agent CPU from {mean:.0}% to about {:.0}% (target {target:.0}%)",
                        mean * current as f64 / to as f64
                    ),
                };
                super::budget::mark(&mut proposal, pool, &agents);
                optimizer.propose(proposal);
            },
        ));
    }
}
