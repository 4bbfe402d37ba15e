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
//! Pure and clocked by its caller: the `TaskTracker` actor owns the book, ticks it and sends
//! its samples to the fleet.

use std::collections::HashMap;

use crate::analytics::rollup::MinuteAccumulator;
use crate::domain::{Sample, metric};

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
    /// Reported with nothing open and nothing ended once: forgotten at the next tick.
    idle: bool,
}

/// Why a task id is refused, if it is.
pub fn check_task_id(task: &str) -> Result<(), String> {
    if task.is_empty() {
        return Err("task id is empty".into());
    }
    if task.len() > MAX_TASK_ID_LEN {
        return Err(format!("task id is longer than {MAX_TASK_ID_LEN} bytes"));
    }
    if task.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("task id contains whitespace or control characters".into());
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

    /// Ends `task` of `agent` at `now_ms`; answers its duration in milliseconds.
    pub fn end(
        &mut self,
        task: &str,
        agent: &str,
        success: bool,
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
mod tests {
    use super::*;

    const LIMITS: TaskLimits = TaskLimits {
        max_open_per_agent: 3,
        timeout_secs: 10,
    };

    fn values(report: &AgentReport) -> Vec<(&str, f64)> {
        report
            .samples
            .iter()
            .map(|s| (s.metric.as_str(), s.value))
            .collect()
    }

    #[test]
    fn an_interval_gives_response_time_throughput_and_rates() {
        let mut book = TaskBook::default();
        for (i, task) in ["t1", "t2", "t3", "t4"].into_iter().enumerate() {
            let agent = if i < 3 { "a" } else { "b" };
            book.start(task, agent, Some("ext"), false, 0, LIMITS)
                .unwrap();
        }
        assert_eq!(book.end("t1", "a", true, 100, 10), Ok(100));
        assert_eq!(book.end("t2", "a", false, 300, 10), Ok(300));
        let reports = book.tick(2000, 2000, 10);
        assert_eq!(reports.len(), 2);
        assert_eq!(
            (reports[0].agent.as_str(), reports[0].pool.as_deref()),
            ("a", Some("ext"))
        );
        assert_eq!(
            values(&reports[0]),
            [
                ("active_tasks", 1.0),
                ("queue_size", 0.0),
                ("throughput_per_s", 1.0),
                ("error_rate", 50.0),
                ("success_rate", 50.0),
                ("response_time_ms", 200.0),
            ]
        );
        // b ended nothing: no rates, no response time.
        assert_eq!(
            values(&reports[1]),
            [
                ("active_tasks", 1.0),
                ("queue_size", 0.0),
                ("throughput_per_s", 0.0)
            ]
        );
        // The next interval starts afresh.
        let next = book.tick(4000, 2000, 10);
        assert_eq!(values(&next[0])[2], ("throughput_per_s", 0.0));
    }

    #[test]
    fn a_queued_task_waits_then_runs_and_its_wait_counts_in_response_time() {
        let mut book = TaskBook::default();
        assert_eq!(
            book.start("t", "a", None, true, 0, LIMITS),
            Ok(Started::Queued)
        );
        assert_eq!(
            values(&book.tick(1000, 1000, 10)[0])[..2],
            [("active_tasks", 0.0), ("queue_size", 1.0)]
        );
        assert_eq!(
            book.start("t", "a", None, false, 1500, LIMITS),
            Ok(Started::Begun)
        );
        assert_eq!(
            values(&book.tick(2000, 1000, 10)[0])[..2],
            [("active_tasks", 1.0), ("queue_size", 0.0)]
        );
        // Beginning twice is a duplicate; so is queueing again.
        assert!(matches!(
            book.start("t", "a", None, false, 1600, LIMITS),
            Err(TaskError::Duplicate { .. })
        ));
        assert!(matches!(
            book.start("t", "a", None, true, 1600, LIMITS),
            Err(TaskError::Duplicate { .. })
        ));
        assert_eq!(book.end("t", "a", true, 2500, 10), Ok(2500));
    }

    #[test]
    fn a_task_open_past_the_timeout_ends_as_failed() {
        let mut book = TaskBook::default();
        book.start("slow", "a", None, false, 0, LIMITS).unwrap();
        book.start("fast", "a", None, false, 5_000, LIMITS).unwrap();
        // Not yet: ten seconds are not over.
        assert_eq!(
            values(&book.tick(9_999, 1000, 10)[0])[0],
            ("active_tasks", 2.0)
        );
        let report = book.tick(10_000, 1000, 10);
        assert_eq!(
            values(&report[0]),
            [
                ("active_tasks", 1.0),
                ("queue_size", 0.0),
                ("throughput_per_s", 1.0),
                ("error_rate", 100.0),
                ("success_rate", 0.0),
            ]
        );
        assert!(matches!(
            book.end("slow", "a", true, 10_001, 10),
            Err(TaskError::Unknown { .. })
        ));
        assert_eq!(book.open_tasks(), 1);
    }

    #[test]
    fn errors_name_what_is_wrong_and_the_cap_holds() {
        let mut book = TaskBook::default();
        book.start("t1", "a", None, false, 0, LIMITS).unwrap();
        assert!(matches!(
            book.start("t1", "b", None, false, 0, LIMITS),
            Err(TaskError::WrongAgent { .. })
        ));
        assert!(matches!(
            book.end("t1", "b", true, 0, 10),
            Err(TaskError::WrongAgent { .. })
        ));
        assert!(matches!(
            book.end("nope", "a", true, 0, 10),
            Err(TaskError::Unknown { .. })
        ));
        book.start("t2", "a", None, true, 0, LIMITS).unwrap();
        book.start("t3", "a", None, false, 0, LIMITS).unwrap();
        assert_eq!(
            book.start("t4", "a", None, false, 0, LIMITS),
            Err(TaskError::TooMany {
                agent: "a".into(),
                open: 3
            })
        );
        // Another agent has its own cap; an end makes room.
        assert!(book.start("t4", "b", None, false, 0, LIMITS).is_ok());
        book.end("t1", "a", true, 1, 10).unwrap();
        assert!(book.start("t5", "a", None, false, 0, LIMITS).is_ok());
        assert!(check_task_id("job-42").is_ok());
        assert!(check_task_id("a b").is_err());
        assert!(check_task_id("").is_err());
    }

    #[test]
    fn an_idle_agent_reports_zeros_once_then_is_forgotten() {
        let mut book = TaskBook::default();
        book.start("t", "a", None, false, 0, LIMITS).unwrap();
        book.end("t", "a", true, 10, 10).unwrap();
        assert_eq!(book.tick(1000, 1000, 10).len(), 1);
        let zeros = book.tick(2000, 1000, 10);
        assert_eq!(
            values(&zeros[0]),
            [
                ("active_tasks", 0.0),
                ("queue_size", 0.0),
                ("throughput_per_s", 0.0)
            ]
        );
        assert!(book.tick(3000, 1000, 10).is_empty());
        assert!(!book.knows("a"));
    }
}
