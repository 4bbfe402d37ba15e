//! The key figures of an agent, a pool or the fleet, from a summed window.

use std::collections::BTreeMap;

use super::MINUTE_MS;
use super::build::{AgentSum, MetricSum, WindowSum};
use super::model::Kpis;
use super::quantile::LogHistogram;
use crate::domain::metric;

/// Whose figures to sum.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// Every agent but the host.
    Fleet,
    /// The agents of one pool.
    Pool(&'a str),
    /// One agent while in one pool.
    Agent(&'a str, &'a str),
}

impl Scope<'_> {
    fn keeps(self, id: &str, pool: &str) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Pool(p) => p == pool,
            Scope::Agent(a, p) => a == id && p == pool,
        }
    }
}

/// The key figures of the agents in `scope`.
pub(super) fn kpis(sum: &WindowSum, scope: Scope<'_>) -> Kpis {
    let mut response = LogHistogram::default();
    let (mut up, mut down) = (0.0, 0.0);
    let (mut error, mut cpu, mut agent_throughput) = Default::default();
    let mut any = false;
    let mut used = ModelUse::default();
    for (_, agent) in sum
        .agents
        .iter()
        .filter(|((id, pool), _)| scope.keeps(id, pool))
    {
        any = true;
        used.add(agent);
        response.merge(&agent.response);
        up += agent.up_minutes();
        down += agent.down_ms as f64 / MINUTE_MS as f64;
        for (name, total) in [
            (metric::ERROR_RATE, &mut error),
            (metric::CPU_PERCENT, &mut cpu),
            (metric::THROUGHPUT_PER_S, &mut agent_throughput),
        ] {
            let total: &mut MetricSum = total;
            if let Some(m) = agent.metrics.get(name) {
                total.sum += m.sum;
                total.count += m.count;
            }
        }
    }
    if !any {
        return Kpis::default();
    }
    let throughput = match scope {
        Scope::Agent(..) => agent_throughput.mean(),
        Scope::Pool(_) | Scope::Fleet => pool_throughput(sum, scope),
    };
    Kpis {
        availability_percent: (up + down > 0.0).then(|| 100.0 * up / (up + down)),
        response_time_p50_ms: response.quantile(0.50),
        response_time_p95_ms: response.quantile(0.95),
        response_time_p99_ms: response.quantile(0.99),
        error_rate_percent: error.mean(),
        throughput_per_s: throughput,
        utilisation_percent: cpu.mean(),
        agent_hours: up / 60.0,
        model_tokens: used.tokens,
        model_cost: used.cost,
        model_cost_per_task: used.cost_per_task(),
    }
}

/// Tokens, money and the tasks of the agents that report money, summed over agents, each
/// integrated over the time it was reported.
#[derive(Debug, Default)]
struct ModelUse {
    tokens: Option<f64>,
    cost: Option<f64>,
    tasks: f64,
}

impl ModelUse {
    fn add(&mut self, agent: &AgentSum) {
        let integral = |name: &str| agent.metrics.get(name).map(|m| m.integral_secs);
        for name in [metric::TOKENS_IN_PER_S, metric::TOKENS_OUT_PER_S] {
            if let Some(tokens) = integral(name) {
                *self.tokens.get_or_insert(0.0) += tokens;
            }
        }
        // Tasks count only where their cost is known, so agents that report none do not
        // dilute the cost per task.
        if let Some(money_hours) = integral(metric::COST_PER_HOUR) {
            *self.cost.get_or_insert(0.0) += money_hours / 3600.0;
            self.tasks += integral(metric::THROUGHPUT_PER_S).unwrap_or(0.0);
        }
    }

    /// Money per completed task, when money was spent and tasks completed.
    fn cost_per_task(&self) -> Option<f64> {
        self.cost
            .filter(|_| self.tasks >= 1.0)
            .map(|cost| cost / self.tasks)
    }
}

/// Mean over the steps with data of the summed `throughput_per_s` of the pools in `scope`.
fn pool_throughput(sum: &WindowSum, scope: Scope<'_>) -> Option<f64> {
    let mut per_step: BTreeMap<i64, f64> = BTreeMap::new();
    for ((pool, step), cells) in &sum.steps {
        if !scope.keeps("", pool) {
            continue;
        }
        if let Some(&(_, _, means)) = cells.metrics.get(metric::THROUGHPUT_PER_S) {
            *per_step.entry(*step).or_default() += means;
        }
    }
    (!per_step.is_empty()).then(|| per_step.values().sum::<f64>() / per_step.len() as f64)
}
