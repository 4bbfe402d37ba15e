//! A pool's figures summed from its agents' latest samples: tasks (`tasks`) and model use
//! and cost (`models`), as `GET /api/v1/pools` shows them.

use schemars::JsonSchema;
use serde::Serialize;

use crate::actors::fleet::AgentView;
use crate::domain::genai::ErrorKind;
use crate::domain::{AgentStatus, metric};

/// A pool's task figures, from its reporting agents' latest samples.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PoolTasks {
    /// Tasks running, all agents together.
    pub active_tasks: f64,
    /// Tasks waiting, all agents together.
    pub queue_size: f64,
    /// Tasks ended per second, all agents together.
    pub throughput_per_s: f64,
    /// Error rate, percent: the agents' rates weighted by their throughput; `None` when no
    /// task ended in the agents' last intervals.
    pub error_rate: Option<f64>,
    /// Response time, milliseconds, weighted the same way.
    pub response_time_ms: Option<f64>,
}

/// The task figures of a pool's `members` (offline ones left out); `None` when none reports
/// tasks.
pub fn pool_tasks(members: &[&AgentView]) -> Option<PoolTasks> {
    let reporting: Vec<&AgentView> = members
        .iter()
        .copied()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter(|a| a.metrics.contains_key(metric::ACTIVE_TASKS))
        .collect();
    if reporting.is_empty() {
        return None;
    }
    let value = |a: &AgentView, name: &str| a.metrics.get(name).copied().unwrap_or(0.0);
    let sum = |name: &str| reporting.iter().map(|a| value(a, name)).sum::<f64>();
    let weighted = |name: &str| weighted(&reporting, name, metric::THROUGHPUT_PER_S);
    Some(PoolTasks {
        active_tasks: sum(metric::ACTIVE_TASKS),
        queue_size: sum(metric::QUEUE_SIZE),
        throughput_per_s: sum(metric::THROUGHPUT_PER_S),
        error_rate: weighted(metric::ERROR_RATE),
        response_time_ms: weighted(metric::RESPONSE_TIME_MS),
    })
}

/// A pool's model use and cost, from its reporting agents' latest samples.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PoolModels {
    /// Input tokens per second, all agents together.
    pub tokens_in_per_s: f64,
    /// Output tokens per second, all agents together.
    pub tokens_out_per_s: f64,
    /// What the pool's tokens cost an hour at the current rate; `None` when no model it uses
    /// has a price in `[genai]`.
    pub cost_per_hour: Option<f64>,
    /// Mean cost of a completed task: the agents' figures weighted by their throughput.
    pub cost_per_task: Option<f64>,
    /// The currency of the costs (`genai.currency`).
    pub currency: String,
    /// Model calls per second, all agents together.
    pub model_calls_per_s: f64,
    /// Mean model call duration, milliseconds, weighted by calls.
    pub model_latency_ms: Option<f64>,
    /// Failures per second by kind (`rate_limited`, `timeout`, `other`).
    pub errors_per_s: std::collections::BTreeMap<&'static str, f64>,
}

/// The model figures of a pool's `members` (offline ones left out), costs in `currency`;
/// `None` when none reports tokens, calls or failures by kind.
pub fn pool_models(members: &[&AgentView], currency: &str) -> Option<PoolModels> {
    let reporting: Vec<&AgentView> = members
        .iter()
        .copied()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter(|a| {
            [
                metric::TOKENS_IN_PER_S,
                metric::MODEL_CALLS_PER_S,
                metric::RATE_LIMITED_PER_S,
            ]
            .iter()
            .any(|name| a.metrics.contains_key(*name))
        })
        .collect();
    if reporting.is_empty() {
        return None;
    }
    let sum = |name: &str| {
        reporting
            .iter()
            .filter_map(|a| a.metrics.get(name))
            .sum::<f64>()
    };
    let any = |name: &str| reporting.iter().any(|a| a.metrics.contains_key(name));
    Some(PoolModels {
        tokens_in_per_s: sum(metric::TOKENS_IN_PER_S),
        tokens_out_per_s: sum(metric::TOKENS_OUT_PER_S),
        cost_per_hour: any(metric::COST_PER_HOUR).then(|| sum(metric::COST_PER_HOUR)),
        cost_per_task: weighted(&reporting, metric::COST_PER_TASK, metric::THROUGHPUT_PER_S),
        currency: currency.to_string(),
        model_calls_per_s: sum(metric::MODEL_CALLS_PER_S),
        model_latency_ms: weighted(
            &reporting,
            metric::MODEL_LATENCY_MS,
            metric::MODEL_CALLS_PER_S,
        ),
        errors_per_s: ErrorKind::ALL
            .iter()
            .map(|kind| (kind.name(), sum(kind.metric())))
            .collect(),
    })
}

/// `name` over `agents`, each agent's value weighted by its `weight` metric; `None` when the
/// weights add up to nothing.
fn weighted(agents: &[&AgentView], name: &str, weight: &str) -> Option<f64> {
    let (total, weights) = agents
        .iter()
        .filter_map(|a| {
            Some((
                a.metrics.get(name)?,
                a.metrics.get(weight).copied().unwrap_or(0.0),
            ))
        })
        .fold((0.0, 0.0), |(t, w), (v, by)| (t + v * by, w + by));
    (weights > 0.0).then(|| total / weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, status: AgentStatus, metrics: &[(&str, f64)]) -> AgentView {
        let mut agent = AgentView::blank(id, "p");
        agent.status = status;
        agent.metrics = metrics.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        agent
    }

    #[test]
    fn pool_figures_sum_counts_and_weight_rates_by_throughput() {
        let a = member(
            "a",
            AgentStatus::Active,
            &[
                ("active_tasks", 2.0),
                ("queue_size", 1.0),
                ("throughput_per_s", 3.0),
                ("error_rate", 10.0),
                ("response_time_ms", 100.0),
            ],
        );
        // Idle: its old error rate weighs nothing.
        let b = member(
            "b",
            AgentStatus::Active,
            &[
                ("active_tasks", 1.0),
                ("throughput_per_s", 0.0),
                ("error_rate", 90.0),
            ],
        );
        let c = member(
            "c",
            AgentStatus::Active,
            &[
                ("throughput_per_s", 1.0),
                ("error_rate", 50.0),
                ("active_tasks", 0.0),
                ("response_time_ms", 300.0),
            ],
        );
        let offline = member("d", AgentStatus::Offline, &[("active_tasks", 9.0)]);
        let figures = pool_tasks(&[&a, &b, &c, &offline]).unwrap();
        assert_eq!(
            figures,
            PoolTasks {
                active_tasks: 3.0,
                queue_size: 1.0,
                throughput_per_s: 4.0,
                error_rate: Some(20.0),
                response_time_ms: Some(150.0),
            }
        );
        assert_eq!(
            pool_tasks(&[&member("e", AgentStatus::Active, &[("cpu_percent", 1.0)])]),
            None
        );
    }

    #[test]
    fn pool_model_figures_sum_rates_and_weight_costs_and_latency() {
        let a = member(
            "a",
            AgentStatus::Active,
            &[
                (metric::TOKENS_IN_PER_S, 100.0),
                (metric::TOKENS_OUT_PER_S, 10.0),
                (metric::COST_PER_HOUR, 2.0),
                (metric::COST_PER_TASK, 0.01),
                (metric::THROUGHPUT_PER_S, 3.0),
                (metric::MODEL_CALLS_PER_S, 1.0),
                (metric::MODEL_LATENCY_MS, 400.0),
                (metric::RATE_LIMITED_PER_S, 0.5),
            ],
        );
        let b = member(
            "b",
            AgentStatus::Active,
            &[
                (metric::TOKENS_IN_PER_S, 50.0),
                (metric::COST_PER_TASK, 0.05),
                (metric::THROUGHPUT_PER_S, 1.0),
                (metric::MODEL_CALLS_PER_S, 3.0),
                (metric::MODEL_LATENCY_MS, 800.0),
            ],
        );
        let figures = pool_models(&[&a, &b], "EUR").unwrap();
        assert_eq!(figures.tokens_in_per_s, 150.0);
        assert_eq!(figures.cost_per_hour, Some(2.0));
        assert_eq!(figures.cost_per_task, Some(0.02));
        assert_eq!(figures.model_latency_ms, Some(700.0));
        assert_eq!(figures.errors_per_s["rate_limited"], 0.5);
        assert_eq!(figures.currency, "EUR");
        assert_eq!(
            pool_models(&[&member("c", AgentStatus::Active, &[])], "EUR"),
            None
        );
    }
}
