//! Task tracking for agents that report work rather than metrics: the book of open tasks and
//! what ended since the last tick, turned into samples once per sampling interval.
//!
//! A task is started (`start`), optionally queued first (`start` with `queued`, then a second
//! `start` without it when it begins to run), and ended (`end`, with `success`). Each
//! interval, every agent with tasks gets `active_tasks` (running now), `queue_size` (waiting
//! now), `throughput_per_s` (ended per second), and when some ended: `success_rate` and
//! `error_rate` (percent of those ended) and, for those ended by `end`, `response_time_ms`
//! (mean time from the first `start`, queueing included) and `response_time_p95_ms`.
//! A task open longer than the timeout ends as failed, with no response time.
//!
//! An end may also say what the task used of a model (`tokens_in`, `tokens_out`, `model`,
//! `provider`) and why it failed (`error_kind`): those give the agent `tokens_in_per_s`,
//! `tokens_out_per_s`, `errors_<kind>_per_s`, and when `[genai]` prices the model,
//! `cost_per_hour` and `cost_per_task` (the mean cost of the tasks ended in the interval).
//!
//! Pure and clocked by its caller: the `TaskTracker` actor owns the book, ticks it and sends
//! its samples to the fleet.

use std::collections::HashMap;

use crate::analytics::rollup::MinuteAccumulator;
use crate::analytics::usage::Usage;
use crate::domain::genai::ErrorKind;
use crate::domain::{Sample, metric};
use crate::policy::GenAiPolicy;

/// Longest task id accepted, bytes.
pub const MAX_TASK_ID_LEN: usize = 200;

/// Why a start or an end is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// The task is open already.
    #[error("task {task:?} is already open (started by agent {agent:?})")]
    Duplicate {
        /// Task id.
        task: String,
        /// The agent that started it.
        agent: String,
    },
    /// Another agent started the task.
    #[error("task {task:?} was started by agent {started_by:?}, not {agent:?}")]
    WrongAgent {
        /// Task id.
        task: String,
        /// The agent that started it.
        started_by: String,
        /// The agent that asked.
        agent: String,
    },
    /// No open task has this id.
    #[error(
        "no open task {task:?}: it was never started, has ended, or timed out after {timeout_secs} s"
    )]
    Unknown {
        /// Task id.
        task: String,
        /// The timeout in force.
        timeout_secs: u64,
    },
    /// The agent has as many open tasks as allowed.
    #[error(
        "agent {agent:?} has {open} open tasks, the most policy ingest.max_open_tasks_per_agent allows"
    )]
    TooMany {
        /// Agent id.
        agent: String,
        /// Its open tasks.
        open: usize,
    },
}

/// The limits a start or a tick runs under, from policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskLimits {
    /// Open tasks (running or queued) one agent may have.
    pub max_open_per_agent: usize,
    /// A task open this long ends as failed, seconds.
    pub timeout_secs: u64,
}

/// What an ended task says it used and why it failed, beyond success.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskUsage {
    /// Why it failed, when it did.
    pub error_kind: Option<ErrorKind>,
    /// Model input tokens it used.
    pub tokens_in: Option<f64>,
    /// Model output tokens it used.
    pub tokens_out: Option<f64>,
    /// The model it used.
    pub model: Option<String>,
    /// The model's provider.
    pub provider: Option<String>,
}

/// What a start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new task, running.
    Running,
    /// A new task, waiting to run.
    Queued,
    /// A queued task began to run.
    Begun,
}

/// The samples of one agent at a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReport {
    /// Agent id.
    pub agent: String,
    /// The pool its first start named, if any.
    pub pool: Option<String>,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// Open tasks by id, and per agent what happened since the last tick.
#[derive(Debug, Default)]
pub struct TaskBook {
    tasks: HashMap<String, OpenTask>,
    agents: HashMap<String, AgentTasks>,
}

#[derive(Debug)]
struct OpenTask {
    agent: String,
    started_ms: i64,
    queued: bool,
}

#[derive(Debug, Default)]
struct AgentTasks {
    pool: Option<String>,
    running: usize,
    queued: usize,
    /// Tasks ended since the last tick, failed ones (timeouts included) among them.
    ended: u64,
    failed: u64,
    /// Durations of the tasks ended by `end` since the last tick (the accumulator's minute is
    /// unused: it serves as a bounded summary of one interval).
    durations: MinuteAccumulator,
    /// Model usage of the tasks ended since the last tick.
    usage: Usage,
    /// Reported with nothing open and nothing ended once: forgotten at the next tick.
    idle: bool,
}

/// Why a task id is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskIdError {
    /// The id is empty.
    #[error("task id is empty")]
    Empty,
    /// The id is longer than [`MAX_TASK_ID_LEN`].
    #[error("task id is longer than {MAX_TASK_ID_LEN} bytes")]
    TooLong,
    /// The id holds whitespace or control characters.
    #[error("task id contains whitespace or control characters")]
    Characters,
}

/// Why a task id is refused, if it is.
pub fn check_task_id(task: &str) -> Result<(), TaskIdError> {
    if task.is_empty() {
        return Err(TaskIdError::Empty);
    }
    if task.len() > MAX_TASK_ID_LEN {
        return Err(TaskIdError::TooLong);
    }
    if task.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TaskIdError::Characters);
    }
    Ok(())
}

// === impl TaskBook ===

impl TaskBook {
    /// Starts `task` for `agent` at `now_ms` (queued, or running), or begins a queued one.
    pub fn start(
        &mut self,
        task: &str,
        agent: &str,
        pool: Option<&str>,
        queued: bool,
        now_ms: i64,
        limits: TaskLimits,
    ) -> Result<Started, TaskError> {
        if let Some(open) = self.tasks.get_mut(task) {
            if open.agent != agent {
                return Err(TaskError::WrongAgent {
                    task: task.into(),
                    started_by: open.agent.clone(),
                    agent: agent.into(),
                });
            }
            // Only a queued task may be started again, and only to run.
            if queued || !open.queued {
                return Err(TaskError::Duplicate {
                    task: task.into(),
                    agent: agent.into(),
                });
            }
            open.queued = false;
            if let Some(tasks) = self.agents.get_mut(agent) {
                tasks.queued -= 1;
                tasks.running += 1;
            }
            return Ok(Started::Begun);
        }
        let tasks = self.agents.entry(agent.to_string()).or_default();
        let open = tasks.running + tasks.queued;
        if open >= limits.max_open_per_agent {
            return Err(TaskError::TooMany {
                agent: agent.into(),
                open,
            });
        }
        if tasks.pool.is_none() {
            tasks.pool = pool.map(str::to_string);
        }
        tasks.idle = false;
        if queued {
            tasks.queued += 1;
        } else {
            tasks.running += 1;
        }
        self.tasks.insert(
            task.to_string(),
            OpenTask {
                agent: agent.to_string(),
                started_ms: now_ms,
                queued,
            },
        );
        Ok(if queued {
            Started::Queued
        } else {
            Started::Running
        })
    }

    /// Ends `task` of `agent` at `now_ms`, with what it `used` (priced by `genai`); answers its
    /// duration in milliseconds.
    #[allow(clippy::too_many_arguments)]
    pub fn end(
        &mut self,
        task: &str,
        agent: &str,
        success: bool,
        used: &TaskUsage,
        genai: &GenAiPolicy,
        now_ms: i64,
        timeout_secs: u64,
    ) -> Result<i64, TaskError> {
        let unknown = || TaskError::Unknown {
            task: task.into(),
            timeout_secs,
        };
        let started_by = &self.tasks.get(task).ok_or_else(unknown)?.agent;
        if started_by != agent {
            return Err(TaskError::WrongAgent {
                task: task.into(),
                started_by: started_by.clone(),
                agent: agent.into(),
            });
        }
        let open = self.tasks.remove(task).ok_or_else(unknown)?;
        let duration_ms = (now_ms - open.started_ms).max(0);
        let tasks = self.agents.entry(open.agent).or_default();
        tasks.close(open.queued, !success);
        tasks.durations.observe(0, duration_ms as f64);
        if let Some(kind) = used.error_kind {
            tasks.usage.add_errors(kind, 1.0);
        }
        if used.tokens_in.is_some() || used.tokens_out.is_some() {
            let (tokens_in, tokens_out) = (
                used.tokens_in.unwrap_or(0.0),
                used.tokens_out.unwrap_or(0.0),
            );
            let cost = used.model.as_deref().and_then(|model| {
                genai.cost(used.provider.as_deref(), model, tokens_in, tokens_out)
            });
            tasks.usage.add_tokens(tokens_in, tokens_out, cost);
        }
        Ok(duration_ms)
    }

    /// Whether `agent` has tasks in the book.
    pub fn knows(&self, agent: &str) -> bool {
        self.agents.contains_key(agent)
    }

    /// Drops `agent` and its open tasks (its samples were refused).
    pub fn forget(&mut self, agent: &str) {
        self.agents.remove(agent);
        self.tasks.retain(|_, open| open.agent != agent);
    }

    /// Open tasks, all agents together.
    pub fn open_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Ends tasks open for longer than the timeout as failed, then answers each agent's
    /// samples for the `elapsed_ms` since the last tick, and starts a new interval.
    pub fn tick(&mut self, now_ms: i64, elapsed_ms: i64, timeout_secs: u64) -> Vec<AgentReport> {
        let deadline = now_ms - timeout_secs as i64 * 1000;
        let agents = &mut self.agents;
        self.tasks.retain(|_, open| {
            if open.started_ms > deadline {
                return true;
            }
            if let Some(tasks) = agents.get_mut(&open.agent) {
                tasks.close(open.queued, true);
            }
            false
        });
        let seconds = elapsed_ms.max(1) as f64 / 1000.0;
        let mut reports = Vec::with_capacity(self.agents.len());
        self.agents.retain(|agent, tasks| {
            let quiet = tasks.running == 0 && tasks.queued == 0 && tasks.ended == 0;
            if quiet && tasks.idle {
                return false;
            }
            tasks.idle = quiet;
            let at = |name: &str, value: f64| Sample {
                agent: agent.clone(),
                metric: name.to_string(),
                ts_ms: now_ms,
                value,
            };
            let mut samples = vec![
                at(metric::ACTIVE_TASKS, tasks.running as f64),
                at(metric::QUEUE_SIZE, tasks.queued as f64),
                at(metric::THROUGHPUT_PER_S, tasks.ended as f64 / seconds),
            ];
            if tasks.ended > 0 {
                let error_rate = 100.0 * tasks.failed as f64 / tasks.ended as f64;
                samples.push(at(metric::ERROR_RATE, error_rate));
                samples.push(at(metric::SUCCESS_RATE, 100.0 - error_rate));
            }
            if let Some(durations) = tasks.durations.take() {
                samples.push(at(metric::RESPONSE_TIME_MS, durations.mean));
                if let Some(p95) = durations.p95 {
                    samples.push(at(metric::RESPONSE_TIME_P95_MS, p95));
                }
            }
            tasks.usage.samples(agent, now_ms, seconds, &mut samples);
            if tasks.usage.priced && tasks.ended > 0 {
                samples.push(at(
                    metric::COST_PER_TASK,
                    tasks.usage.cost / tasks.ended as f64,
                ));
            }
            tasks.usage = tasks.usage.next_interval();
            tasks.ended = 0;
            tasks.failed = 0;
            reports.push(AgentReport {
                agent: agent.clone(),
                pool: tasks.pool.clone(),
                samples,
            });
            true
        });
        reports.sort_by(|a, b| a.agent.cmp(&b.agent));
        reports
    }
}

// === impl AgentTasks ===

impl AgentTasks {
    fn close(&mut self, queued: bool, failed: bool) {
        if queued {
            self.queued = self.queued.saturating_sub(1);
        } else {
            self.running = self.running.saturating_sub(1);
        }
        self.ended += 1;
        if failed {
            self.failed += 1;
        }
    }
}

#[cfg(test)]
mod tests;
