//! What a pool's planner is fed on each tick, in the units of its target per agent: the
//! summed CPU of its agents, or the pool input its policy's `scale_on` names (read with
//! PromQL by the scraper into `PoolInputs`). A missing, failed or stale input is no load:
//! the pool holds rather than scale on a number nobody can vouch for.

use std::collections::BTreeMap;

use crate::domain::fleet::AgentView;
use crate::domain::pool::InputState;
use crate::domain::pool::PoolActivity;
use crate::domain::{AgentStatus, metric};
use crate::policy::{Policy, PoolPolicy};

/// An input read longer ago than this many sampling intervals (plus its query's timeout) is
/// stale: the scraper queries every interval, so two missed rounds mean it is not answering.
const STALE_INTERVALS: i64 = 2;

/// What a pool scales on; a planner fed one basis is not fed another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The summed CPU of its agents, percent of one core.
    Cpu,
    /// The named pool input.
    Input(String),
}

/// The pool's load on this tick.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolLoad {
    /// The summed CPU of its agents; `None` without any reading.
    Cpu(Option<f64>),
    /// A pool input read with PromQL.
    Input(InputReading),
}

pub use crate::domain::evidence::InputReading;

impl PoolLoad {
    /// The load of pool `name` now: its `scale_on` input, else its agents' CPU.
    pub fn of(
        policy: &Policy,
        name: &str,
        pool: &PoolPolicy,
        agents: &[&AgentView],
        inputs: &BTreeMap<(String, String), InputState>,
        interval_ms: i64,
        now_ms: i64,
    ) -> PoolLoad {
        let Some(scale_on) = &pool.scale_on else {
            return PoolLoad::Cpu(pool_cpu(agents));
        };
        let query = policy
            .ingest
            .promql
            .iter()
            .find(|q| q.pool == name && q.input == scale_on.input);
        let state = inputs.get(&(name.to_string(), scale_on.input.clone()));
        let max_age = STALE_INTERVALS * interval_ms + query.map_or(0, |q| q.timeout_ms as i64);
        let (value, missing) = match state {
            None => (None, Some("not read yet".to_string())),
            Some(InputState {
                last_error: Some(error),
                ..
            }) => (None, Some(format!("the last query failed: {error}"))),
            Some(InputState { value: None, .. }) => (None, Some("not read yet".to_string())),
            Some(state) if now_ms - state.read_ms > max_age => (
                None,
                Some(format!(
                    "stale: read {:.1} s ago",
                    (now_ms - state.read_ms) as f64 / 1000.0
                )),
            ),
            Some(state) => (state.value, None),
        };
        PoolLoad::Input(InputReading {
            input: scale_on.input.clone(),
            value,
            query: query.map(|q| q.query.clone()),
            target_per_agent: scale_on.target_per_agent,
            read_ms: state.filter(|s| s.read_ms > 0).map(|s| s.read_ms),
            missing,
        })
    }

    /// The total load to plan for, in the units of the target per agent.
    pub fn total(&self) -> Option<f64> {
        match self {
            PoolLoad::Cpu(total) => *total,
            PoolLoad::Input(reading) => reading.value,
        }
    }

    /// How many agents carry this load: on an input, the size the pool's remote driver
    /// reports (the agents may report nothing themselves: a pool seen only through PromQL
    /// aggregates); on CPU, the agents that report it. `None` while a remote driver has not
    /// yet said its size: a change planned from a guess could shrink the pool.
    pub fn size(
        &self,
        pool: &PoolPolicy,
        reporting: usize,
        activity: &PoolActivity,
    ) -> Option<usize> {
        let remote = matches!(
            pool.driver,
            crate::policy::DriverConfig::Http { .. }
                | crate::policy::DriverConfig::Kubernetes { .. }
        );
        match (self, activity.driver_size) {
            (_, None) if remote => None,
            (PoolLoad::Input(_), Some(size)) => Some(size),
            _ => Some(reporting),
        }
    }

    /// What the load is measured in.
    pub fn basis(&self) -> Basis {
        match self {
            PoolLoad::Cpu(_) => Basis::Cpu,
            PoolLoad::Input(reading) => Basis::Input(reading.input.clone()),
        }
    }

    /// True once the load was measured a whole interval after the pool's last change, so a
    /// decision never acts on load measured before the previous action took effect. On CPU
    /// that needs a reading from every agent; an input is one reading for the whole pool
    /// (its agents may report nothing themselves, as pods whose metrics live in Prometheus).
    pub fn settled(&self, agents: &[&AgentView], activity: PoolActivity, interval_ms: i64) -> bool {
        let Some(changed_ms) = activity.last_finished_ms else {
            return true;
        };
        match self {
            PoolLoad::Cpu(_) => agents.iter().all(|agent| {
                cpu_reading(agent).is_some() && agent.last_sample_ms >= changed_ms + interval_ms
            }),
            PoolLoad::Input(reading) => reading.read_ms.is_some_and(|read_ms| {
                reading.value.is_some() && read_ms >= changed_ms + interval_ms
            }),
        }
    }
}

/// The latest CPU reading of an agent that is not offline.
pub fn cpu_reading(agent: &AgentView) -> Option<f64> {
    if agent.status == AgentStatus::Offline {
        return None;
    }
    agent.metrics.get(metric::CPU_PERCENT).copied()
}

/// The pool's total CPU: the mean of the agents with a reading, counted for every agent that
/// is not offline (one still starting is taken to be as busy as the others); `None` without
/// any reading.
fn pool_cpu(agents: &[&AgentView]) -> Option<f64> {
    let readings: Vec<f64> = agents.iter().filter_map(|a| cpu_reading(a)).collect();
    if readings.is_empty() {
        return None;
    }
    let mean = readings.iter().sum::<f64>() / readings.len() as f64;
    let serving = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Offline)
        .count();
    Some(mean * serving as f64)
}
