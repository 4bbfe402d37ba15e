//! The agent actor: bounded buffers, crossings with hysteresis, supervision, detection.

use super::*;
use actix::{Addr, Supervisor};
use std::sync::{Arc, Mutex};

/// Panics inside the handler when a sample carries this metric.
const POISON: &str = "test_poison";

#[derive(Default)]
struct Sink {
    observed: SharedObserved,
    crossings: Arc<Mutex<Vec<ThresholdCrossed>>>,
    anomalies: Arc<Mutex<Vec<AnomalyObserved>>>,
    heartbeats: Arc<Mutex<Vec<Heartbeat>>>,
}
impl Handler<AnomalyObserved> for Sink {
    type Result = ();
    fn handle(&mut self, msg: AnomalyObserved, _: &mut Context<Self>) {
        self.anomalies.lock().unwrap().push(msg);
    }
}
impl Actor for Sink {
    type Context = Context<Self>;
}
impl Handler<Heartbeat> for Sink {
    type Result = ();
    fn handle(&mut self, msg: Heartbeat, _: &mut Context<Self>) {
        self.heartbeats.lock().unwrap().push(msg);
    }
}
impl Handler<ThresholdCrossed> for Sink {
    type Result = ();
    fn handle(&mut self, msg: ThresholdCrossed, _: &mut Context<Self>) {
        self.crossings.lock().unwrap().push(msg);
    }
}

fn sample(metric: &str, ts_ms: i64, value: f64) -> Sample {
    Sample {
        agent: "w-1".into(),
        metric: metric.into(),
        ts_ms,
        value,
    }
}

/// An agent actor of pool `w` under a policy with `alerts` (TOML) and 3-sample buffers.
fn start(sink: Sink, alerts: &str) -> Addr<AgentActor> {
    start_with_rollups(sink, alerts, None)
}

fn start_with_rollups(sink: Sink, alerts: &str, rollups: Option<RollupSink>) -> Addr<AgentActor> {
    start_on(sink, alerts, rollups, Clock::system())
}

fn start_on(
    sink: Sink,
    alerts: &str,
    rollups: Option<RollupSink>,
    clock: Clock,
) -> Addr<AgentActor> {
    let observed = sink.observed.clone();
    let sink = sink.start();
    let links = AgentLinks {
        observed,
        heartbeat: sink.clone().recipient(),
        crossings: sink.clone().recipient(),
        anomalies: vec![sink.recipient()],
        rollups,
    };
    let text = format!("[global]\nring_buffer_size = 3\n[pools.w]\n{alerts}");
    let policy = PolicyHandle::new(crate::policy::load_str("test.toml", &text).unwrap());
    Supervisor::start(move |_| {
        AgentActor::new("w-1".into(), "w".into(), policy, links, None).with_clock(clock)
    })
}

/// Records 300 calm CPU samples and a spike to 95% at `ts_ms` 300, and waits until the agent
/// actor has handled them.
async fn record_spike(agent: &Addr<AgentActor>) {
    let samples: Vec<Sample> = (0..300)
        .map(|i| sample("cpu_percent", i, 20.0 + (i % 5) as f64))
        .chain(std::iter::once(sample("cpu_percent", 300, 95.0)))
        .collect();
    agent.send(RecordSamples(samples)).await.unwrap();
    agent
        .send(GetSeries {
            metric: String::new(),
        })
        .await
        .unwrap();
}

#[actix::test]
async fn ring_buffers_are_bounded() {
    let agent = start(Sink::default(), "");
    let samples = (0..5).map(|i| sample("cpu_percent", i, i as f64)).collect();
    agent.send(RecordSamples(samples)).await.unwrap();
    let series = agent
        .send(GetSeries {
            metric: "cpu_percent".into(),
        })
        .await
        .unwrap();
    assert_eq!(series, vec![(2, 2.0), (3, 3.0), (4, 4.0)]);
}

/// The query for w-1's `queue_size` by minute.
fn queue_minutes() -> crate::store::SeriesQuery {
    crate::store::SeriesQuery {
        agent: "w-1".into(),
        metric: "queue_size".into(),
        since_ms: 0,
        until_ms: i64::MAX,
        step_ms: crate::analytics::rollup::MINUTE_MS,
        limit: 10,
    }
}

#[actix::test]
async fn a_sample_of_a_later_minute_sends_the_finished_one_to_the_store() {
    use crate::analytics::rollup::MINUTE_MS;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let (rollups, _writer) = crate::store::RollupWriter::start(store.clone(), || 7).unwrap();
    let agent = start_with_rollups(Sink::default(), "", Some(rollups));
    let t0 = 1_700_000_040_000;
    // More samples than the ring holds: rollups see every one.
    let samples = (0..6)
        .map(|i| sample("queue_size", t0 + i * 1000, i as f64))
        .chain(std::iter::once(sample("queue_size", t0 + MINUTE_MS, 9.0)))
        .collect();
    agent.send(RecordSamples(samples)).await.unwrap();
    let query = queue_minutes();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let points = loop {
        let points = store.read_series(&query).unwrap();
        if !points.is_empty() || std::time::Instant::now() > deadline {
            break points;
        }
        actix::clock::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(points.len(), 1, "only the finished minute: {points:?}");
    let p = &points[0];
    assert_eq!(
        (p.ts_ms, p.count, p.min, p.max, p.mean),
        (t0, 6, 0.0, 5.0, 2.5)
    );
    assert_eq!(p.p95, Some(5.0));
}

#[actix::test]
async fn a_minute_is_handed_over_after_it_is_over_with_no_later_sample() {
    // The timer that hands it over runs on tokio's paused clock, which jumps ahead while idle;
    // the agent reads the time from a clock the test moves.
    tokio::time::pause();
    let t0 = 1_700_000_040_000;
    let clock = Clock::manual(t0 + 3_000);
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let (rollups, _writer) = crate::store::RollupWriter::start(store.clone(), || 7).unwrap();
    let agent = start_on(Sink::default(), "", Some(rollups.clone()), clock.clone());
    let samples = (0..3)
        .map(|i| sample("queue_size", t0 + i * 1000, i as f64))
        .collect();
    agent.send(RecordSamples(samples)).await.unwrap();
    let query = queue_minutes();
    // What the store holds once the writer has written every row handed over so far.
    let written = || {
        assert!(
            rollups.flush(std::time::Duration::from_secs(10)),
            "writer flushed"
        );
        store.read_series(&query).unwrap()
    };
    // Timers pass while the minute is not over: nothing is handed over.
    tokio::time::sleep(ROLLUP_FLUSH_EVERY * 3 + std::time::Duration::from_secs(5)).await;
    assert!(written().is_empty());
    // Once it is over (and its grace for late samples), the next timer hands it over.
    clock.advance(std::time::Duration::from_secs(70));
    tokio::time::sleep(ROLLUP_FLUSH_EVERY).await;
    let points = written();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!((points[0].ts_ms, points[0].count), (t0, 3));
}

/// The crossings (breached, value) an agent actor under `alerts` sends for `values` of
/// `cpu_percent`, one sample a millisecond.
async fn crossings_of(alerts: &str, values: &[f64]) -> Vec<(bool, f64)> {
    let sink = Sink::default();
    let crossings = sink.crossings.clone();
    let agent = start(sink, alerts);
    let samples = values
        .iter()
        .enumerate()
        .map(|(i, &v)| sample("cpu_percent", i as i64, v));
    agent.send(RecordSamples(samples.collect())).await.unwrap();
    agent
        .send(GetSeries {
            metric: String::new(),
        })
        .await
        .unwrap();
    let seen = crossings.lock().unwrap();
    seen.iter().map(|c| (c.breached, c.value)).collect()
}

#[actix::test]
async fn crossings_are_sent_once_per_change() {
    let rule = "[[alerts]]\nname = \"hot\"\nmetric = \"cpu_percent\"\nabove = 50\n";
    let seen = crossings_of(rule, &[10.0, 60.0, 70.0, 40.0, 30.0]).await;
    assert_eq!(seen, vec![(true, 60.0), (false, 40.0)]);
}

#[actix::test]
async fn hysteresis_holds_a_breach_until_the_value_falls_below_clear_below() {
    let rule = "[[alerts]]\nname = \"hot\"\nmetric = \"cpu_percent\"\nabove = 50\n\
                clear_below = 40\n";
    let seen = crossings_of(rule, &[60.0, 45.0, 55.0, 41.0, 39.0, 45.0]).await;
    assert_eq!(seen, vec![(true, 60.0), (false, 39.0)]);
}

#[actix::test]
async fn a_rule_on_an_anomaly_score_crosses_like_any_metric() {
    let sink = Sink::default();
    let crossings = sink.crossings.clone();
    let rule = "[anomaly]\nwarm_up_secs = 0\n[[alerts]]\nname = \"odd\"\n\
                metric = \"cpu_percent_anomaly_score\"\nabove = 0.5\n";
    let agent = start(sink, rule);
    record_spike(&agent).await;
    let seen = crossings.lock().unwrap().clone();
    // (The detector's first points, before it has a baseline, may cross too.)
    let spike = seen
        .iter()
        .find(|c| c.rule.name == "odd" && c.ts_ms == 300)
        .unwrap_or_else(|| panic!("the spike's score did not cross: {seen:?}"));
    assert!(spike.breached && spike.value > 0.5, "{spike:?}");
}

#[actix::test]
async fn a_panicking_actor_is_restarted_and_keeps_receiving_samples() {
    let sink = Sink::default();
    let observed = sink.observed.clone();
    let agent = start(sink, "");
    agent
        .send(RecordSamples(vec![sample("cpu_percent", 1, 5.0)]))
        .await
        .unwrap();

    // A poisoned sample makes `record` panic inside the handler (test-only hook).
    let poisoned = vec![sample(POISON, 2, 1.0)];
    agent.do_send(RecordSamples(poisoned));
    agent
        .send(RecordSamples(vec![sample("cpu_percent", 3, 7.0)]))
        .await
        .unwrap();

    let series = agent
        .send(GetSeries {
            metric: "cpu_percent".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        series,
        vec![(3, 7.0)],
        "restarted with fresh series, same mailbox"
    );
    let last = observed.read();
    assert_eq!((last.restarts, last.latest["cpu_percent"]), (1, 7.0));
}

#[actix::test]
async fn an_anomalous_value_is_reported_with_its_evidence() {
    let sink = Sink::default();
    let anomalies = sink.anomalies.clone();
    let observed = sink.observed.clone();
    let agent = start(sink, "[anomaly]\nwarm_up_secs = 0\n");
    record_spike(&agent).await;
    let reported = anomalies.lock().unwrap().clone();
    let spike = reported
        .iter()
        .find(|a| a.ts_ms == 300)
        .expect("the spike is reported");
    assert_eq!(
        (spike.metric.as_str(), spike.pool.as_str()),
        ("cpu_percent", "w")
    );
    assert!(
        spike.score >= 0.5 && spike.channels.spatial >= 0.5,
        "{spike:?}"
    );
    let last = observed.read();
    assert!(last.anomaly_scores.contains_key("cpu_percent"));
}

#[actix::test]
async fn a_backlog_of_old_samples_is_a_heartbeat_now() {
    let sink = Sink::default();
    let heartbeats = sink.heartbeats.clone();
    let observed = sink.observed.clone();
    let agent = start(sink, "");
    let before = crate::clock::now_ms();
    // Samples stamped an hour ago: the agent sends a backlog, or its clock is behind.
    let old = before - 3_600_000;
    agent
        .send(RecordSamples(vec![sample("cpu_percent", old, 5.0)]))
        .await
        .unwrap();
    let beat = heartbeats.lock().unwrap().pop().expect("a heartbeat");
    assert!(beat.ts_ms >= before, "{} < {before}", beat.ts_ms);
    assert_eq!(observed.read().last_sample_ms, old);
}

#[test]
fn a_series_stays_small_since_a_full_fleet_holds_100_000() {
    // 10,000 agents x 10 metrics: each byte here is 100 kB of the controller's memory.
    let size = std::mem::size_of::<super::Series>();
    assert!(size <= 248, "Series is {size} bytes (was 304)");
}
