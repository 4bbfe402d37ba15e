//! Benchmarks of the hot pure paths: the scaling decision and the ring-buffer quantile.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use swarmpilot::analytics::scaling::{RateLimit, Scaler, ScalingConfig};
use swarmpilot::analytics::stats::quantile;

fn scaling_decision(c: &mut Criterion) {
    let mut scaler = Scaler::new(ScalingConfig {
        min_agents: 2,
        max_agents: 64,
        target: 30.0,
        tolerance: 0.1,
        scale_down_window_ms: 300_000,
        scale_up: RateLimit::HPA_UP,
        scale_down: RateLimit::HPA_DOWN,
    });
    let mut now = 0i64;
    c.bench_function("scaler_decide_with_full_window", |b| {
        b.iter(|| {
            now += 2_000;
            let observed = 20.0 + (now % 7_000) as f64 / 100.0;
            black_box(scaler.decide(now, 8, black_box(observed)))
        })
    });
}

fn p95_of_window(c: &mut Criterion) {
    let values: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
    c.bench_function("p95_of_1000_latencies", |b| {
        b.iter(|| black_box(quantile(black_box(&values), 0.95)))
    });
}

criterion_group!(benches, scaling_decision, p95_of_window);
criterion_main!(benches);
