//! `AgentActor`: one per agent, supervised. Holds the agent's recent samples in bounded ring
//! buffers and its EWMA baselines, and emits threshold crossings, heartbeats and summaries.
//! Each series also sums up its current minute; finished minutes go to the rollup writer
//! (`store::RollupSink`), which writes them to the store off this actor's thread.
//!
//! A panic while handling a message is caught and turned into a stop, so the supervisor
//! restarts the actor with the same address and mailbox; the in-memory series start afresh.

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult, Recipient, Supervised};

mod anomaly;
mod observed;
mod rules;

use super::messages::{AnomalyObserved, Heartbeat, ThresholdCrossed};
use crate::analytics::ring::SeriesRing;
use crate::analytics::rollup::MinuteAccumulator;
use crate::analytics::stats::Ewma;
use crate::analytics::usage::price_token_rates;
use crate::clock::Clock;
use crate::domain::evidence::AnomalyNote;
use crate::domain::{Sample, metric};
use crate::policy::{ModelPrice, PolicyHandle};
use crate::store::models::ModelStore;
use crate::store::{RollupRow, RollupSink};
use anomaly::AnomalyWatch;
pub use observed::{FleetChanges, Observed, Readings, SharedObserved};
use rules::RuleBook;

/// The hasher of the per-sample maps: keyed with a random seed per process, and much
/// cheaper than SipHash on short names.
type FastHash = foldhash::fast::RandomState;

/// Rules on a watched metric's anomaly score name the metric with this suffix.
pub const ANOMALY_SCORE_SUFFIX: &str = "_anomaly_score";

/// Weight of each new CPU sample in the smoothed CPU.
const CPU_EWMA_ALPHA: f64 = 0.5;
/// How often minutes that are over are handed to the rollup writer, even without new samples.
const ROLLUP_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// How long after its end a minute still waits for samples that arrive late.
const ROLLUP_GRACE_MS: i64 = 5_000;

/// Where an agent actor sends what it observes.
#[derive(Clone)]
pub struct AgentLinks {
    /// Its latest readings, which the fleet's registry reads.
    pub observed: SharedObserved,
    /// Proof of life, for the health actor.
    pub heartbeat: Recipient<Heartbeat>,
    /// Threshold crossings, for the alert actor.
    pub crossings: Recipient<ThresholdCrossed>,
    /// Anomaly observations, for the alert actor and the optimizer.
    pub anomalies: Vec<Recipient<AnomalyObserved>>,
    /// Finished minutes, for the rollup writer; `None` keeps no rollups.
    pub rollups: Option<RollupSink>,
}

/// One metric of the agent: recent samples, the minute being summed up, and what the policy
/// does with it. Boxed in the agent's map, whose spare slots then cost a pointer rather than
/// a whole series.
struct Series {
    ring: SeriesRing,
    /// The newest value as it came (the ring may keep it as an `f32`).
    last: f64,
    minute: MinuteAccumulator,
    plan: Plan,
}

/// What the policy in force does with one metric's samples, worked out once per policy
/// version rather than once per sample.
#[derive(Debug, Clone)]
struct Plan {
    /// The rules on the metric, in the rule book.
    rules: Range<u32>,
    /// Whether a detector scores it.
    watched: bool,
    /// The rules on its anomaly score (`<metric>_anomaly_score`).
    score_rules: Range<u32>,
}

/// Samples for this agent.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordSamples(pub Vec<Sample>);

/// Hands every minute summed so far to the rollup writer, the current one too (later
/// samples of it merge into the stored row): before a report is built.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FinishMinutes;

/// Asks for the recent values of one metric, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(i64, f64)>")]
pub struct GetSeries {
    /// Metric name.
    pub metric: String,
}

/// One agent's actor.
pub struct AgentActor {
    /// The span every handler of this actor runs in.
    span: tracing::Span,
    clock: Clock,
    id: String,
    pool: String,
    policy: PolicyHandle,
    /// The policy version the rules, `capacity` and the plans were taken from.
    policy_version: String,
    /// The pool's rules and which are breached.
    book: RuleBook,
    capacity: usize,
    links: AgentLinks,
    /// By metric name.
    series: HashMap<String, Box<Series>, FastHash>,
    /// Finished minutes not yet handed to the rollup writer.
    finished: Vec<RollupRow>,
    /// The timer that hands over minutes once they are over, while one is being summed up.
    flush: Option<actix::SpawnHandle>,
    cpu: Ewma,
    restarts: u32,
    models: Option<ModelStore>,
    anomaly: AnomalyWatch,
    /// Metrics with a detector, and the score that is reported.
    watched: Vec<String>,
    report_above: f64,
    /// The price of the pool's model, for token rates that arrive without a cost.
    price: Option<ModelPrice>,
}

impl AgentActor {
    /// Reads the time from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A new actor for agent `id` of `pool`, under the policy in `policy`.
    pub fn new(
        id: String,
        pool: String,
        policy: PolicyHandle,
        links: AgentLinks,
        models: Option<ModelStore>,
    ) -> Self {
        let span = tracing::info_span!("actor", actor = "agent", agent = %id, pool = %pool);
        AgentActor {
            span,
            clock: Clock::system(),
            anomaly: AnomalyWatch::new(&id, models.clone()),
            models,
            watched: Vec::new(),
            report_above: 1.0,
            price: None,
            id,
            pool,
            policy,
            policy_version: String::new(),
            book: RuleBook::default(),
            capacity: 1,
            links,
            series: HashMap::default(),
            finished: Vec::new(),
            flush: None,
            cpu: Ewma::new(CPU_EWMA_ALPHA),
            restarts: 0,
        }
    }

    /// Scores `sample`, whose metric is watched; reports an anomaly above the policy's
    /// level, and checks the rules on the score in `score_rules`.
    fn detect(&mut self, sample: &Sample, score_rules: Range<u32>) {
        let (score, channels) = self
            .anomaly
            .observe(&sample.metric, sample.value, sample.ts_ms);
        self.check_rules(score_rules, score, sample.ts_ms);
        if score < self.report_above {
            return;
        }
        let observation = AnomalyObserved(AnomalyNote {
            agent: self.id.clone(),
            pool: self.pool.clone(),
            metric: sample.metric.clone(),
            value: sample.value,
            score,
            channels,
            ts_ms: sample.ts_ms,
        });
        for recipient in &self.links.anomalies {
            recipient.do_send(observation.clone());
        }
    }

    /// Takes rules and buffer size from the policy when a new version is in force; alerts of
    /// rules that no longer exist are resolved.
    fn follow_policy(&mut self) {
        let current = self.policy.current();
        if current.version == self.policy_version {
            return;
        }
        self.policy_version = current.version.clone();
        let gone = self
            .book
            .replace(current.rules.get(&current.policy, &self.pool));
        self.capacity = current.policy.global.ring_buffer_size.max(1);
        self.watched = current.policy.anomaly.metrics.clone();
        self.report_above = current.policy.anomaly.report_above;
        let model = current
            .policy
            .pools
            .get(&self.pool)
            .and_then(|p| p.model.as_ref());
        self.price = current.policy.genai.pool_price(model).cloned();
        self.anomaly
            .set_warm_up(current.policy.anomaly.warm_up_secs);
        self.anomaly.retain(&self.watched);
        for (name, series) in self.series.iter_mut() {
            series.plan = plan(&self.book, &self.watched, name);
        }
        for rule in gone {
            self.links.crossings.do_send(ThresholdCrossed {
                value: f64::NAN,
                ts_ms: self.clock.now_ms(),
                rule,
                agent: self.id.clone(),
                pool: self.pool.clone(),
                breached: false,
            });
        }
    }

    fn record(&mut self, mut samples: Vec<Sample>) {
        self.follow_policy();
        if let Some(price) = &self.price {
            let priced = price_token_rates(&samples, price);
            samples.extend(priced);
        }
        let mut last_ts = 0;
        for sample in samples {
            if !sample.value.is_finite() {
                continue;
            }
            #[cfg(test)]
            self.panic_on_poison(&sample);
            last_ts = last_ts.max(sample.ts_ms);
            if sample.metric == metric::CPU_PERCENT {
                self.cpu.update(sample.value);
            }
            let Plan {
                rules,
                watched,
                score_rules,
            } = self.store(&sample);
            self.check_rules(rules, sample.value, sample.ts_ms);
            if watched {
                self.detect(&sample, score_rules);
            }
        }
        self.hand_over_rollups();
        if last_ts == 0 {
            return;
        }
        // Proof of life is the samples' arrival, not their timestamps: an agent that sends a
        // backlog, or whose clock is behind, is alive now.
        self.links.heartbeat.do_send(Heartbeat {
            agent: self.id.clone(),
            ts_ms: self.clock.now_ms(),
        });
        self.publish(last_ts);
    }

    /// Keeps `sample` in its series' ring and minute; answers the series' plan.
    fn store(&mut self, sample: &Sample) -> Plan {
        let series = match self.series.get_mut(&sample.metric) {
            Some(series) => series,
            None => self.series.entry(sample.metric.clone()).or_insert_with(|| {
                Box::new(Series {
                    ring: SeriesRing::default(),
                    last: sample.value,
                    minute: MinuteAccumulator::default(),
                    plan: plan(&self.book, &self.watched, &sample.metric),
                })
            }),
        };
        series.ring.push(sample.ts_ms, sample.value, self.capacity);
        series.last = sample.value;
        if let Some(summary) = series.minute.observe(sample.ts_ms, sample.value) {
            self.finished.push(RollupRow {
                agent: self.id.clone(),
                pool: self.pool.clone(),
                metric: sample.metric.clone(),
                summary,
            });
        }
        series.plan.clone()
    }

    /// Updates the readings the registry sees.
    fn publish(&self, last_ts: i64) {
        let mut observed = self.links.observed.lock();
        let (mut ring_points, mut ring_bytes) = (0, 0);
        for (name, series) in &self.series {
            observed.latest.set(name, series.last);
            ring_points += series.ring.len();
            ring_bytes += series.ring.heap_bytes();
        }
        observed.ring_points = ring_points;
        observed.ring_bytes = ring_bytes;
        for (name, &score) in self.anomaly.scores() {
            observed.anomaly_scores.set(name, score);
        }
        observed
            .anomaly_scores
            .retain(|name| self.anomaly.scores().contains_key(name));
        observed.cpu_smoothed = self.cpu.value();
        observed.last_sample_ms = observed.last_sample_ms.max(last_ts);
        observed.restarts = self.restarts;
    }

    /// Finishes the minutes that ended before `now_ms` (all of them when `None`) and hands
    /// them, with those finished by samples, to the rollup writer.
    fn finish_minutes(&mut self, now_ms: Option<i64>) {
        for (name, series) in self.series.iter_mut() {
            let summary = match now_ms {
                Some(now_ms) => series.minute.finish_before(now_ms - ROLLUP_GRACE_MS),
                None => series.minute.take(),
            };
            if let Some(summary) = summary {
                self.finished.push(RollupRow {
                    agent: self.id.clone(),
                    pool: self.pool.clone(),
                    metric: name.clone(),
                    summary,
                });
            }
        }
        self.hand_over_rollups();
    }

    /// Hands over minutes once they are over, every `ROLLUP_FLUSH_EVERY` while one is being
    /// summed up: a silent agent has no timer (10,000 of them woke 1,000 times a second).
    fn flush_later(&mut self, ctx: &mut Context<Self>) {
        if self.flush.is_some() || !self.series.values().any(|s| s.minute.is_open()) {
            return;
        }
        self.flush = Some(ctx.run_later(ROLLUP_FLUSH_EVERY, |agent, ctx| {
            let _span = agent.span.clone().entered();
            agent.flush = None;
            agent.finish_minutes(Some(agent.clock.now_ms()));
            agent.flush_later(ctx);
        }));
    }

    fn hand_over_rollups(&mut self) {
        if self.finished.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.finished);
        if let Some(sink) = &self.links.rollups {
            sink.send(rows);
        }
    }

    /// Fault injection for the supervision test: a sample named `test_poison` panics.
    #[cfg(test)]
    fn panic_on_poison(&self, sample: &Sample) {
        assert!(sample.metric != "test_poison", "poisoned sample");
    }

    /// Checks `value` against the rules in `span` and tells the alert actor of changes.
    fn check_rules(&mut self, span: Range<u32>, value: f64, ts_ms: i64) {
        let AgentActor {
            book,
            links,
            id,
            pool,
            ..
        } = self;
        book.check(span, value, |rule, breached| {
            links.crossings.do_send(ThresholdCrossed {
                rule: rule.clone(),
                agent: id.clone(),
                pool: pool.clone(),
                value,
                ts_ms,
                breached,
            });
        });
    }
}

/// What the policy does with `metric`: its rules in `book`, whether it is in `watched`, and
/// the rules on its anomaly score.
fn plan(book: &RuleBook, watched: &[String], metric: &str) -> Plan {
    let watched = watched.iter().any(|m| m == metric);
    Plan {
        rules: book.span(metric),
        watched,
        score_rules: if watched {
            book.span(&format!("{metric}{ANOMALY_SCORE_SUFFIX}"))
        } else {
            0..0
        },
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let every = self
            .policy
            .current()
            .policy
            .anomaly
            .save_models_every_secs
            .max(1);
        ctx.run_interval(std::time::Duration::from_secs(every), |agent, _| {
            let _span = agent.span.clone().entered();
            agent.anomaly.save()
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.anomaly.save();
        self.finish_minutes(None);
    }
}

impl Supervised for AgentActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The state that panicked may be inconsistent: keep identity, drop the series.
        self.restarts += 1;
        // The minutes being summed are lost too; what was finished is already written.
        self.series.clear();
        self.finished.clear();
        // A restart drops the context's timers.
        self.flush = None;
        self.links.observed.lock().latest.clear();
        // Detectors restart from their last saved models.
        self.anomaly = AnomalyWatch::new(&self.id, self.models.clone());
        self.policy_version.clear();
        self.cpu = Ewma::new(CPU_EWMA_ALPHA);
        tracing::warn!(message = "Agent actor restarted.", agent = %self.id, restarts = self.restarts);
    }
}

// === impl Handler ===

impl Handler<FinishMinutes> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: FinishMinutes, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.finish_minutes(None);
    }
}

impl Handler<RecordSamples> for AgentActor {
    type Result = ();

    fn handle(&mut self, msg: RecordSamples, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if catch_unwind(AssertUnwindSafe(|| self.record(msg.0))).is_err() {
            tracing::error!(message = "Agent actor panicked; restarting.", agent = %self.id);
            actix::ActorContext::stop(ctx);
            return;
        }
        self.flush_later(ctx);
    }
}

impl Handler<GetSeries> for AgentActor {
    type Result = MessageResult<GetSeries>;

    fn handle(&mut self, msg: GetSeries, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(
            self.series
                .get(&msg.metric)
                .map(|series| series.ring.points())
                .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests;
