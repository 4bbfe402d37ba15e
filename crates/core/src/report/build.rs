//! Summing the store's rows into a report: per-agent and per-pool accumulators for the window
//! and the one before, then the sections.

use std::collections::{BTreeMap, HashMap};

use super::Period;
use super::findings;
pub use super::input::{AlertInput, LogInput, PoolSettings, ReportSpec, RuleSettings, StepInput};
use super::model::*;
use super::quantile::LogHistogram;
use crate::domain::names::HOST_AGENT;

/// One metric of one agent, summed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MetricSum {
    pub sum: f64,
    pub count: u64,
    pub max: f64,
    pub p95: Option<f64>,
    /// The value integrated over the time it was reported: a step's mean times the seconds
    /// of its minutes with values (tokens from tokens a second, money from money an hour).
    pub integral_secs: f64,
}

impl MetricSum {
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// One agent over one window.
#[derive(Debug, Default)]
pub(super) struct AgentSum {
    pub pool: String,
    pub metrics: HashMap<String, MetricSum>,
    pub response: LogHistogram,
    /// Per step, the most minutes any metric had: minutes the agent reported.
    pub present: BTreeMap<i64, u32>,
    pub down_ms: i64,
}

impl AgentSum {
    pub fn up_minutes(&self) -> f64 {
        self.present.values().map(|&m| f64::from(m)).sum()
    }
}

/// One step of one pool: per metric, the summed values and the sum of agents' means.
#[derive(Debug, Default)]
pub(super) struct PoolStep {
    pub metrics: HashMap<String, (f64, u64, f64)>,
}

/// Everything summed over one window.
#[derive(Debug, Default)]
pub(super) struct WindowSum {
    /// By agent and the pool it was in (an agent moved between pools has one of each).
    pub agents: BTreeMap<(String, String), AgentSum>,
    pub steps: BTreeMap<(String, i64), PoolStep>,
}

/// Takes the store's rows for a window and the one before, then builds the report.
#[derive(Debug)]
pub struct ReportBuilder {
    pub(super) spec: ReportSpec,
    pub(super) step_ms: i64,
    pub(super) current: WindowSum,
    pub(super) previous: WindowSum,
    pub(super) host: BTreeMap<String, MetricSum>,
    pub(super) alerts: Vec<AlertInput>,
    pub(super) log: Vec<LogInput>,
    pub(super) silences: Vec<SilenceLine>,
}

impl ReportBuilder {
    /// A builder for `spec`; feed it the rows of [`ReportBuilder::read_window`].
    pub fn new(spec: ReportSpec) -> ReportBuilder {
        ReportBuilder {
            step_ms: Period::step_for(spec.window),
            spec,
            current: WindowSum::default(),
            previous: WindowSum::default(),
            host: BTreeMap::new(),
            alerts: Vec::new(),
            log: Vec::new(),
            silences: Vec::new(),
        }
    }

    /// What the report is on.
    pub fn spec(&self) -> &ReportSpec {
        &self.spec
    }

    /// Steps (minutes or hours) the store should read: this width, from here to there.
    pub fn read_window(&self) -> (Window, i64) {
        let window = self.spec.window;
        let read = Window {
            since_ms: window.before().since_ms,
            until_ms: window.until_ms,
        };
        (read, self.step_ms)
    }

    fn wanted(&self, pool: &str) -> bool {
        self.spec.pool.as_deref().is_none_or(|p| p == pool)
    }

    fn sum_for(&mut self, ts_ms: i64) -> Option<&mut WindowSum> {
        if self.spec.window.contains(ts_ms) {
            Some(&mut self.current)
        } else if self.spec.window.before().contains(ts_ms) {
            Some(&mut self.previous)
        } else {
            None
        }
    }

    /// Adds one step of one agent's metric.
    pub fn add_step(&mut self, row: StepInput<'_>) {
        if row.agent == HOST_AGENT {
            if self.spec.window.contains(row.ts_ms) {
                let host = self.host.entry(row.metric.to_string()).or_default();
                add_to(host, &row);
            }
            return;
        }
        if !self.wanted(row.pool) {
            return;
        }
        let step_ms = self.step_ms;
        let Some(sum) = self.sum_for(row.ts_ms) else {
            return;
        };
        let key = (row.agent.to_string(), row.pool.to_string());
        let agent = sum.agents.entry(key).or_default();
        agent.pool = row.pool.to_string();
        add_to(
            agent.metrics.entry(row.metric.to_string()).or_default(),
            &row,
        );
        let step = row.ts_ms.div_euclid(step_ms) * step_ms;
        let present = agent.present.entry(step).or_default();
        *present = (*present).max(row.minutes);
        if row.count > 0 {
            let pool = sum.steps.entry((row.pool.to_string(), step)).or_default();
            let cell = pool.metrics.entry(row.metric.to_string()).or_default();
            cell.0 += row.sum;
            cell.1 += row.count;
            cell.2 += row.sum / row.count as f64;
        }
    }

    /// Adds one minute of an agent's response time (mean of `count` values), for percentiles.
    pub fn add_response_minute(
        &mut self,
        agent: &str,
        pool: &str,
        ts_ms: i64,
        mean: f64,
        count: u64,
    ) {
        if !self.wanted(pool) || agent == HOST_AGENT {
            return;
        }
        if let Some(sum) = self.sum_for(ts_ms) {
            let key = (agent.to_string(), pool.to_string());
            let agent = sum.agents.entry(key).or_default();
            agent.pool = pool.to_string();
            agent.response.add(mean, count as f64);
        }
    }

    /// Adds one alert transition (any order).
    pub fn add_alert(&mut self, alert: AlertInput) {
        if self.wanted(&alert.pool) {
            self.alerts.push(alert);
        }
    }

    /// Adds one action log row (any order).
    pub fn add_log(&mut self, row: LogInput) {
        if self.wanted(&row.pool) {
            self.log.push(row);
        }
    }

    /// Adds a silence in force at the end of the window.
    pub fn add_silence(&mut self, silence: SilenceLine) {
        self.silences.push(silence);
    }

    /// Builds every section.
    pub fn finish(mut self) -> Report {
        self.alerts.sort_by_key(|a| a.ts_ms);
        self.log.sort_by_key(|r| (r.ts_ms, r.action_id));
        let end = self.spec.window.until_ms.min(self.spec.generated_ms);
        let before = self.spec.window.before();
        down_time(
            &mut self.current,
            &self.alerts,
            self.spec.window.since_ms,
            end,
        );
        down_time(
            &mut self.previous,
            &self.alerts,
            before.since_ms,
            before.until_ms,
        );
        findings::report(&self)
    }
}

fn add_to(sum: &mut MetricSum, row: &StepInput<'_>) {
    if row.count == 0 {
        return;
    }
    sum.max = if sum.count == 0 {
        row.max
    } else {
        sum.max.max(row.max)
    };
    sum.sum += row.sum;
    sum.count += row.count;
    sum.integral_secs += row.sum / row.count as f64 * f64::from(row.minutes) * 60.0;
    sum.p95 = match (sum.p95, row.p95) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// Adds to each agent the time an availability alert fired on it within `[since, until)`;
/// overlapping alerts on one agent (offline and error at once) count once.
fn down_time(sum: &mut WindowSum, alerts: &[AlertInput], since: i64, until: i64) {
    let mut open: HashMap<(&str, &str), (i64, &str)> = HashMap::new();
    let mut spans: BTreeMap<(String, String), Vec<(i64, i64)>> = BTreeMap::new();
    let mut add = |agent: &str, pool: &str, from: i64, to: i64| {
        let (from, to) = (from.max(since), to.min(until));
        if to > from {
            let key = (agent.to_string(), pool.to_string());
            spans.entry(key).or_default().push((from, to));
        }
    };
    for alert in alerts.iter().filter(|a| a.metric == "availability") {
        let key = (alert.rule.as_str(), alert.agent.as_str());
        match alert.to_state.as_str() {
            "firing" => {
                open.entry(key)
                    .or_insert((alert.ts_ms, alert.pool.as_str()));
            }
            "resolved" => {
                // Firing since before the rows read: counted from the window's start.
                let (from, _) = open.remove(&key).unwrap_or((since, ""));
                add(key.1, &alert.pool, from, alert.ts_ms);
            }
            _ => {}
        }
    }
    for ((_, agent), (from, pool)) in open {
        add(agent, pool, from, until);
    }
    for (key, mut intervals) in spans {
        intervals.sort_unstable();
        let (mut total, mut reach) = (0, i64::MIN);
        for (from, to) in intervals {
            let from = from.max(reach);
            if to > from {
                total += to - from;
            }
            reach = reach.max(to);
        }
        let pool = key.1.clone();
        let entry = sum.agents.entry(key).or_default();
        entry.pool = pool;
        entry.down_ms += total;
    }
}
