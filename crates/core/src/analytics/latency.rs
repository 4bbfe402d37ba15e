//! A latency histogram with fixed buckets, updated lock-free from any thread and read as a
//! Prometheus histogram (cumulative buckets, sum and count).

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, seconds (Prometheus' client defaults).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations in buckets, their sum and count.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Cumulative count at or below each bound of [`BUCKETS`].
    pub cumulative: [u64; BUCKETS.len()],
    /// Sum of the observations, seconds.
    pub sum_secs: f64,
    /// Observations (the `+Inf` bucket).
    pub count: u64,
}

impl LatencyHistogram {
    /// Counts one observation of `secs`.
    pub fn observe(&self, secs: f64) {
        let secs = secs.max(0.0);
        if let Some(i) = BUCKETS.iter().position(|&le| secs <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram now.
    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0; BUCKETS.len()];
        let mut running = 0;
        for (slot, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            *slot = running;
        }
        Snapshot {
            cumulative,
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_count_takes_what_is_past_them() {
        let histogram = LatencyHistogram::default();
        for secs in [0.001, 0.02, 0.02, 3.0, 60.0] {
            histogram.observe(secs);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative[0], 1);
        assert_eq!(snapshot.cumulative[2], 3, "0.025 holds 0.001 and both 0.02");
        assert_eq!(
            snapshot.cumulative[BUCKETS.len() - 1],
            4,
            "60 s is past every bound"
        );
        assert_eq!(snapshot.count, 5);
        assert!((snapshot.sum_secs - 63.041).abs() < 1e-6);
    }
}
