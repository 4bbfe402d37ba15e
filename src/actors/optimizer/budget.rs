//! The optimizer's budget step: each tick, what each pool with a `budget` spent goes into the
//! ledger (`decide::budget`) and burn-rate alerts go to the alert actor; a scale-out that
//! would take a pool's model cost past its budget is marked, so that it waits for a person.

use crate::actors::alert::{Alert, ControllerAlert};
use crate::decide::budget::{BudgetLedger, scale_out_breach};
use crate::domain::fleet::{AgentView, FleetSnapshot};
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::{Policy, PoolPolicy};

/// The agent key burn-rate alerts of `pool` are raised on.
pub fn alert_key(pool: &str) -> String {
    format!("pool:{pool}")
}

/// Sums `name` over the pool's agents that are not offline.
fn sum(agents: &[&AgentView], name: &str) -> f64 {
    agents
        .iter()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter_map(|a| a.metrics.get(name))
        .sum()
}

/// Records what every pool with a budget spends now and tells `alert` the burn-rate alerts
/// that start or stop firing.
pub(super) fn watch(
    ledger: &mut BudgetLedger,
    policy: &Policy,
    snapshot: &FleetSnapshot,
    alert: Option<&actix::Addr<Alert>>,
    now_ms: i64,
) {
    for (name, pool) in &policy.pools {
        let Some(budget) = &pool.budget else {
            continue;
        };
        let agents: Vec<&AgentView> = snapshot.views().filter(|a| &a.pool == name).collect();
        let money = sum(&agents, metric::COST_PER_HOUR) / 3600.0;
        let tokens = sum(&agents, metric::TOKENS_IN_PER_S) + sum(&agents, metric::TOKENS_OUT_PER_S);
        ledger.record_rates(name, money, tokens, now_ms);
        for change in ledger.evaluate(name, budget, now_ms) {
            tracing::warn!(message = "Budget burn.", pool = %name, alert = change.alert,
                firing = change.firing, burn_long = change.burn_long, burn_short = change.burn_short);
            if let Some(alert) = alert {
                alert.do_send(ControllerAlert {
                    name: change.alert,
                    level: change.level,
                    agent: alert_key(name),
                    pool: name.clone(),
                    firing: change.firing,
                    resolve_after_ms: None,
                });
            }
        }
    }
}

/// A pool's model cost per completed task (the agents' figures weighted by their
/// throughput; none when no task ended) and its throughput, tasks a second.
pub(super) fn cost_per_task(agents: &[&AgentView]) -> (Option<f64>, f64) {
    let throughput = sum(agents, metric::THROUGHPUT_PER_S);
    let (total, weight) = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter_map(|a| {
            let cost = a.metrics.get(metric::COST_PER_TASK)?;
            Some((
                cost,
                a.metrics
                    .get(metric::THROUGHPUT_PER_S)
                    .copied()
                    .unwrap_or(0.0),
            ))
        })
        .fold((0.0, 0.0), |(t, w), (c, tp)| (t + c * tp, w + tp));
    ((weight > 0.0).then(|| total / weight), throughput)
}

/// Marks `proposal` when it is a scale-out past the pool's budget, and says so in its reason.
pub(super) fn mark(proposal: &mut Proposal, pool: &PoolPolicy, agents: &[&AgentView]) {
    let Some(budget) = &pool.budget else {
        return;
    };
    // The cost of the pool's size, from the agents that report one: on a remote driver's
    // pool the size is the driver's, and not every agent need report.
    let Change::Scale { from, .. } = proposal.change else {
        return;
    };
    let costs: Vec<f64> = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter_map(|a| a.metrics.get(metric::COST_PER_HOUR).copied())
        .collect();
    let now = match costs.len() {
        0 => 0.0,
        n => costs.iter().sum::<f64>() / n as f64 * from as f64,
    };
    if let Some(breach) = scale_out_breach(&proposal.change, now, budget) {
        proposal.reason = format!(
            "{}; it would take the pool's model cost from {:.2} to {:.2} an hour, past its budget \
             of {:.2}: it waits for approval",
            proposal.reason,
            breach.cost_per_hour_now,
            breach.cost_per_hour_after,
            breach.allowed_per_hour
        );
        proposal.evidence.mark_over_budget(breach);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix::Actor;

    use super::*;
    use crate::actors::alert::{AlertState, GetAlerts};
    use crate::clock::Clock;
    use crate::store::Store;

    /// Drives `minutes` of ticks two seconds apart, the pool's one agent costing `per_hour`.
    async fn spend(
        ledger: &mut BudgetLedger,
        policy: &Policy,
        alert: &actix::Addr<Alert>,
        clock: &Clock,
        per_hour: f64,
        minutes: u64,
    ) {
        let mut agent = AgentView::blank("coder-1", "coders");
        agent.metrics.insert(metric::COST_PER_HOUR.into(), per_hour);
        let snapshot = FleetSnapshot::of(vec![agent]);
        for _ in 0..minutes * 30 {
            let now = clock.advance(Duration::from_secs(2));
            watch(ledger, policy, &snapshot, Some(alert), now);
        }
    }

    async fn state(alert: &actix::Addr<Alert>, rule: &str) -> Option<AlertState> {
        let alerts = alert.send(GetAlerts).await.unwrap();
        alerts
            .iter()
            .find(|a| a.rule == rule && a.agent == alert_key("coders"))
            .map(|a| a.state)
    }

    #[actix::test]
    async fn burn_rate_alerts_fire_and_resolve_on_a_driven_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(1_800_000_000_000);
        let alert = Alert::new(Store::open(dir.path()).unwrap().with_clock(clock.clone()))
            .with_clock(clock.clone())
            .start();
        let text = "[pools.coders]\nmin_agents = 0\ndriver = { type = \"none\" }\n\
                    budget = { cost_per_hour = 1.0 }\n";
        let policy = crate::policy::load_str("t.toml", text).unwrap().policy;
        let mut ledger = BudgetLedger::default();
        // Three times the budget's pace: within five minutes the fast burn fires.
        spend(&mut ledger, &policy, &alert, &clock, 3.0, 2).await;
        assert_eq!(
            state(&alert, "cost_burn_fast").await,
            None,
            "not after two minutes"
        );
        spend(&mut ledger, &policy, &alert, &clock, 3.0, 3).await;
        assert_eq!(
            state(&alert, "cost_burn_fast").await,
            Some(AlertState::Firing)
        );
        // The slow tier measures against at least half an hour: not yet.
        assert_eq!(state(&alert, "cost_burn_slow").await, None);
        // Spending stops: the short window clears the fast burn within five minutes.
        spend(&mut ledger, &policy, &alert, &clock, 0.0, 5).await;
        assert_eq!(
            state(&alert, "cost_burn_fast").await,
            Some(AlertState::Resolved)
        );
    }
}
