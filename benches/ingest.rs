//! In-process ingestion throughput (issue 3, target: 1 million samples per second on one
//! core): batches of `IngestSamples`, as the collector sends them, through the real
//! `FleetSupervisor` to the real `AgentActor`s of 100 agents, under the shipped default policy.
//! Everything runs on the one thread of an actix System; a round trip through the fleet to
//! every agent (`GetAgentSeries`) ends each timed chunk, so the samples are in the ring
//! buffers, not just queued. Health, alert and collector links are sink actors; rollups are
//! summed per minute but not written (no `RollupSink`).

use std::time::{Duration, Instant};

use actix::{Actor, Addr, Context, Handler};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use swarmpilot::actors::fleet::{FleetLinks, FleetSupervisor, GetAgentSeries};
use swarmpilot::actors::messages::{
    AnomalyObserved, ForgetAgent, Heartbeat, IngestSamples, RegisterAgent, ThresholdCrossed,
    TrackAgent, WatchProcess,
};
use swarmpilot::domain::{AgentHandle, Sample};
use swarmpilot::policy::{DEFAULT_POLICY, PolicyHandle, load_str};

#[path = "common/mix.rs"]
mod mix;
use mix::WATCHED_MIX;

/// The allocator the binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AGENTS: usize = 100;
/// Batches sent between two checks that every agent has recorded them.
const BATCHES_PER_CHUNK: u64 = 20;

/// Ten metrics no detector watches.
const UNWATCHED_MIX: [&str; 10] = [
    "queue_size",
    "requests_per_sec",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "open_files",
    "threads",
    "gc_pause_ms",
    "cache_hit_ratio",
];

/// Takes every message the fleet and agent actors send elsewhere, and drops it.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

macro_rules! sink {
    ($($message:ty),*) => {$(
        impl Handler<$message> for Sink {
            type Result = ();
            fn handle(&mut self, _: $message, _: &mut Context<Self>) {}
        }
    )*};
}
sink!(
    WatchProcess,
    ForgetAgent,
    TrackAgent,
    Heartbeat,
    ThresholdCrossed,
    AnomalyObserved
);

/// A fleet under the default policy with `AGENTS` agents of the `external` pool.
fn start_fleet() -> Addr<FleetSupervisor> {
    let policy = PolicyHandle::new(load_str("default.toml", DEFAULT_POLICY).unwrap());
    let sink = Sink.start();
    let links = FleetLinks {
        watch: sink.clone().recipient(),
        forget: vec![sink.clone().recipient()],
        track: sink.clone().recipient(),
        heartbeat: sink.clone().recipient(),
        crossings: sink.clone().recipient(),
        anomalies: vec![sink.clone().recipient(), sink.recipient()],
        models: None,
        rollups: None,
        events: None,
    };
    let fleet = FleetSupervisor::new(policy, links).start();
    for i in 0..AGENTS {
        fleet.do_send(RegisterAgent {
            handle: AgentHandle {
                id: format!("agent-{i}"),
                pool: "external".into(),
                pid: None,
                endpoint: None,
                started_ms: 0,
            },
            startup_grace_secs: 6,
        });
    }
    fleet
}

/// One sampling round: every agent, every metric, at `round`'s timestamp (2 s apart).
fn batch(metrics: &[&str], round: u64) -> Vec<Sample> {
    let ts_ms = 1_700_000_000_000 + round as i64 * 2000;
    let mut samples = Vec::with_capacity(AGENTS * metrics.len());
    for a in 0..AGENTS {
        for (m, metric) in metrics.iter().enumerate() {
            // A daily-ish wave with deterministic noise, below every alert threshold.
            let noise = ((round as usize * 7919 + a * 131 + m * 17) % 101) as f64 / 101.0;
            let wave = (round as f64 * std::f64::consts::TAU / 300.0).sin();
            samples.push(Sample {
                agent: format!("agent-{a}"),
                metric: (*metric).to_string(),
                ts_ms,
                value: 30.0 + 10.0 * wave + 5.0 * noise,
            });
        }
    }
    samples
}

/// Waits until every agent has handled everything sent before; checks `metric` was recorded.
async fn settle(fleet: &Addr<FleetSupervisor>, metric: &str) {
    for a in 0..AGENTS {
        let series = fleet
            .send(GetAgentSeries {
                agent: format!("agent-{a}"),
                metric: metric.to_string(),
            })
            .await
            .unwrap();
        assert!(series.is_some_and(|s| !s.is_empty()), "nothing recorded");
    }
}

fn ingest(c: &mut Criterion) {
    let system = actix::System::new();
    let fleet = system.block_on(async { start_fleet() });
    let mut round = 0;
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements((AGENTS * WATCHED_MIX.len()) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, metrics) in [
        ("100_agents_x_10_metrics_4_watched", &WATCHED_MIX),
        ("100_agents_x_10_metrics_none_watched", &UNWATCHED_MIX),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCHES_PER_CHUNK);
                    left -= n;
                    // Samples are made before the clock starts, as the collector's input.
                    let batches: Vec<Vec<Sample>> = (0..n)
                        .map(|_| {
                            round += 1;
                            batch(metrics, round)
                        })
                        .collect();
                    elapsed += system.block_on(async {
                        let start = Instant::now();
                        for samples in batches {
                            fleet.do_send(IngestSamples(samples));
                        }
                        settle(&fleet, metrics[0]).await;
                        start.elapsed()
                    });
                }
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
