//! Throughput of the streaming forecaster on one series (target, issue 23: 200,000 points
//! per second on one core), horizon 12, on a daily wave with noise and steps: refits with
//! season detection and both grids every 128 points included.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use swarmpilot::analytics::forecast::{ForecastConfig, Forecaster};

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let noise = ((i * 7919 + 13) % 101) as f64 / 101.0 - 0.5;
            let step = if (i / 3000) % 2 == 1 { 4.0 } else { 0.0 };
            50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + noise + step
        })
        .collect()
}

fn forecast_throughput(c: &mut Criterion) {
    let values = series(20_000);
    let mut group = c.benchmark_group("forecast");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.sample_size(10);
    group.bench_function("one_series_20k_points_h12", |b| {
        b.iter(|| {
            let mut forecaster = Forecaster::new(ForecastConfig::default(), 12);
            let mut last = None;
            for &y in black_box(&values) {
                last = forecaster.update(y);
            }
            black_box(last)
        })
    });
    group.finish();
}

criterion_group!(benches, forecast_throughput);
criterion_main!(benches);
