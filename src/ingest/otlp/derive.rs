//! The samples derived from the added-up points of one request: the value itself, the rate
//! of a monotonic sum, and a histogram's count, sum, mean and p95 over its window.

use std::collections::BTreeMap;

use super::histogram::Buckets;
use super::series::SeriesMemory;
use crate::domain::Sample;

/// The points of one (agent, metric, time), attribute sets added together.
#[derive(Debug)]
pub(super) enum Sum {
    /// Gauge or sum points: their total.
    Number {
        total: f64,
        start_ns: u64,
        kind: NumberKind,
    },
    /// Histogram points: their buckets added.
    Histogram {
        buckets: Buckets,
        start_ns: u64,
        cumulative: bool,
    },
}

/// What kind of numbers a point holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NumberKind {
    /// A gauge.
    Gauge,
    /// A sum, a counter when monotonic.
    Sum { monotonic: bool, cumulative: bool },
}

/// The samples of `sums`, keyed by (agent, metric, time), in that order.
pub(super) fn samples(
    sums: BTreeMap<(String, String, i64), Sum>,
    memory: &mut SeriesMemory,
) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(sums.len());
    for ((agent, name, ts_ms), sum) in sums {
        let mut push = |metric: String, value: f64| {
            samples.push(Sample {
                agent: agent.clone(),
                metric,
                ts_ms,
                value,
            });
        };
        match sum {
            Sum::Number {
                total,
                kind: NumberKind::Gauge,
                ..
            }
            | Sum::Number {
                total,
                kind: NumberKind::Sum {
                    monotonic: false, ..
                },
                ..
            } => {
                push(name, total);
            }
            Sum::Number {
                total,
                start_ns,
                kind:
                    NumberKind::Sum {
                        monotonic: true,
                        cumulative,
                    },
            } => {
                let rate = if cumulative {
                    memory.rate(&agent, &name, ts_ms, start_ns, total)
                } else {
                    // A delta covers its own interval, from its start time.
                    let start_ms = (start_ns / 1_000_000) as i64;
                    (start_ns > 0 && ts_ms > start_ms)
                        .then(|| total / ((ts_ms - start_ms) as f64 / 1000.0))
                };
                if let Some(rate) = rate {
                    push(format!("{name}_per_s"), rate);
                }
                push(name, total);
            }
            Sum::Histogram {
                buckets,
                start_ns,
                cumulative,
            } => {
                let window = if cumulative {
                    memory.window(&agent, &name, ts_ms, start_ns, buckets)
                } else {
                    buckets
                };
                push(format!("{name}_count"), window.count as f64);
                if let Some(sum) = window.sum {
                    push(format!("{name}_sum"), sum);
                    if window.count > 0 {
                        push(format!("{name}_mean"), sum / window.count as f64);
                    }
                }
                if let Some(p95) = window.quantile(0.95) {
                    push(format!("{name}_p95"), p95);
                }
            }
        }
    }
    samples
}
