//! Throughput of the streaming anomaly detector (target: 500,000 points per second on one
//! core), on a realistic series: a daily wave with noise, steps and spikes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use swarmpilot::analytics::anomaly::{DetectorConfig, score_series};

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let noise = ((i * 7919 + 13) % 101) as f64 / 101.0 - 0.5;
            let step = if (i / 3000) % 2 == 1 { 4.0 } else { 0.0 };
            let spike = if i % 4999 == 0 { 25.0 } else { 0.0 };
            50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + noise + step + spike
        })
        .collect()
}

fn detector_throughput(c: &mut Criterion) {
    let values = series(100_000);
    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.sample_size(10);
    group.bench_function("score_100k_points", |b| {
        b.iter(|| black_box(score_series(black_box(&values), DetectorConfig::default())))
    });
    group.finish();
}

criterion_group!(benches, detector_throughput);
criterion_main!(benches);
