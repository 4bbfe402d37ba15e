//! `TaskTracker`: owns the book of open tasks (`ingest::tasks`) that agents report through
//! `POST /api/v1/tasks/{id}/start|end`, ticks it every sampling interval (timeouts, then each
//! agent's samples) and sends the samples to the fleet with `AdmitSamples`.
//!
//! An agent's first start is admitted at once (its `active_tasks` and `queue_size` go to the
//! fleet before the start is answered), so a start for an agent the fleet refuses is refused
//! too, and the book never holds tasks of an agent that is not monitored.

use std::collections::HashMap;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, Recipient, SpawnHandle,
    WrapFuture,
};

use super::messages::AdmitSamples;
use super::{SamplingTick, schedule_sampling};
use crate::clock::Clock;
use crate::domain::{Sample, metric};
use crate::ingest::tasks::{Started, TaskBook, TaskError, TaskLimits, TaskUsage};
use crate::policy::PolicyHandle;

/// Why a start or an end was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// The book refused it.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The fleet refused the agent (unknown agents rejected, or no such pool).
    #[error("{0}")]
    Refused(String),
    /// The fleet did not answer.
    #[error("the fleet is unavailable")]
    Fleet,
}

/// Starts a task, or begins a queued one.
#[derive(Debug, Message)]
#[rtype(result = "Result<Started, TrackError>")]
pub struct StartTask {
    /// Task id.
    pub task: String,
    /// Agent id.
    pub agent: String,
    /// The pool an agent met for the first time joins.
    pub pool: Option<String>,
    /// The task waits to run.
    pub queued: bool,
}

/// Ends a task; answers its duration in milliseconds.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, TrackError>")]
pub struct EndTask {
    /// Task id.
    pub task: String,
    /// Agent id; must be the one that started it.
    pub agent: String,
    /// Whether it succeeded.
    pub success: bool,
    /// What it used of a model, and why it failed.
    pub used: TaskUsage,
}

/// The task tracker.
pub struct TaskTracker {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    book: TaskBook,
    policy: PolicyHandle,
    fleet: Recipient<AdmitSamples>,
    last_tick_ms: i64,
    ticker: Option<(SpawnHandle, Duration)>,
}

impl TaskTracker {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.last_tick_ms = clock.now_ms();
        self.clock = clock;
        self
    }

    /// A tracker with no tasks that reports to `fleet`.
    pub fn new(policy: PolicyHandle, fleet: Recipient<AdmitSamples>) -> Self {
        TaskTracker {
            span: tracing::info_span!("actor", actor = "tasks"),
            clock: Clock::system(),
            book: TaskBook::default(),
            policy,
            fleet,
            last_tick_ms: crate::clock::now_ms(),
            ticker: None,
        }
    }

    fn limits(&self) -> TaskLimits {
        let current = self.policy.current();
        TaskLimits {
            max_open_per_agent: current.policy.ingest.max_open_tasks_per_agent.max(1),
            timeout_secs: current.policy.ingest.task_timeout_secs.max(1),
        }
    }
}

impl Actor for TaskTracker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        schedule_sampling(self, ctx);
    }
}

impl SamplingTick for TaskTracker {
    fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    fn ticker(&mut self) -> &mut Option<(SpawnHandle, Duration)> {
        &mut self.ticker
    }

    /// Times out overdue tasks and sends every agent's samples of the interval to the fleet.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let now = self.clock.now_ms();
        let elapsed = now - self.last_tick_ms;
        self.last_tick_ms = now;
        let reports = self.book.tick(now, elapsed, self.limits().timeout_secs);
        if reports.is_empty() {
            return;
        }
        let mut pools = HashMap::new();
        let mut samples = Vec::new();
        for report in reports {
            if let Some(pool) = report.pool {
                pools.insert(report.agent, pool);
            }
            samples.extend(report.samples);
        }
        let admit = self.fleet.send(AdmitSamples {
            samples,
            pools,
            by: None,
        });
        actix::AsyncContext::spawn(
            ctx,
            admit.into_actor(self).map(|reply, tracker, _| {
                let _span = tracker.span.clone().entered();
                match reply {
                    Ok(refused) => {
                        // The policy changed under the agent (pool gone, unknown agents
                        // rejected): its tasks are dropped with it.
                        for refusal in refused {
                            tracing::warn!(
                                message = "Task samples refused; the agent's tasks are dropped.",
                                agent = %refusal.agent,
                                reason = %refusal.reason
                            );
                            tracker.book.forget(&refusal.agent);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(message = "Fleet gone; task samples lost.", %error)
                    }
                }
            }),
        );
    }
}

// === impl Handler ===

impl Handler<StartTask> for TaskTracker {
    type Result = AtomicResponse<Self, Result<Started, TrackError>>;

    /// Records the start; an agent new to the book is admitted by the fleet first, with no
    /// other message handled meanwhile, so the answer says whether it was.
    fn handle(&mut self, msg: StartTask, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let first = !self.book.knows(&msg.agent);
        let now = self.clock.now_ms();
        let limits = self.limits();
        let started = match self.book.start(
            &msg.task,
            &msg.agent,
            msg.pool.as_deref(),
            msg.queued,
            now,
            limits,
        ) {
            Ok(started) => started,
            Err(error) => {
                return AtomicResponse::new(Box::pin(actix::fut::ready(Err(error.into()))));
            }
        };
        if !first {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(started))));
        }
        let (running, queued) = if msg.queued { (0.0, 1.0) } else { (1.0, 0.0) };
        let sample = |name: &str, value: f64| Sample {
            agent: msg.agent.clone(),
            metric: name.to_string(),
            ts_ms: now,
            value,
        };
        let samples = vec![
            sample(metric::ACTIVE_TASKS, running),
            sample(metric::QUEUE_SIZE, queued),
        ];
        let pools = msg
            .pool
            .map(|pool| HashMap::from([(msg.agent.clone(), pool)]))
            .unwrap_or_default();
        let agent = msg.agent;
        let admit = self.fleet.send(AdmitSamples {
            samples,
            pools,
            by: None,
        });
        AtomicResponse::new(Box::pin(admit.into_actor(self).map(
            move |reply, tracker, _| {
                let _span = tracker.span.clone().entered();
                let refusal = match reply {
                    Ok(refused) => match refused.into_iter().next() {
                        None => return Ok(started),
                        Some(refusal) => TrackError::Refused(refusal.reason),
                    },
                    Err(_) => TrackError::Fleet,
                };
                tracker.book.forget(&agent);
                Err(refusal)
            },
        )))
    }
}

impl Handler<EndTask> for TaskTracker {
    type Result = Result<i64, TrackError>;

    fn handle(&mut self, msg: EndTask, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let timeout_secs = self.limits().timeout_secs;
        let now = self.clock.now_ms();
        let policy = self.policy.current();
        Ok(self.book.end(
            &msg.task,
            &msg.agent,
            msg.success,
            &msg.used,
            &policy.policy.genai,
            now,
            timeout_secs,
        )?)
    }
}
