//! What the controller remembers of each cumulative OTLP series between requests: its last
//! point, so a monotonic sum becomes a per-second rate and a cumulative histogram the
//! observations of the last interval.

use std::collections::HashMap;

use super::histogram::Buckets;

/// Series remembered at most; past this, series not heard from in an hour are forgotten.
const MAX_SERIES: usize = 50_000;
/// How long a series is remembered without a point once memory is full, milliseconds.
const FORGET_AFTER_MS: i64 = 3_600_000;

/// The last point of every cumulative series, by (agent, metric).
#[derive(Debug, Default)]
pub struct SeriesMemory {
    last: HashMap<(String, String), Last>,
}

#[derive(Debug)]
struct Last {
    ts_ms: i64,
    start_ns: u64,
    reading: Reading,
}

#[derive(Debug)]
enum Reading {
    Total(f64),
    Histogram(Buckets),
}

impl SeriesMemory {
    /// Remembers a cumulative monotonic total and answers its rate per second since the
    /// previous point of the series, if that point is comparable (same start, earlier, not
    /// higher: anything else is a reset or a point out of order).
    pub fn rate(
        &mut self,
        agent: &str,
        metric: &str,
        ts_ms: i64,
        start_ns: u64,
        total: f64,
    ) -> Option<f64> {
        let previous = self.remember(agent, metric, ts_ms, start_ns, Reading::Total(total))?;
        match previous.reading {
            Reading::Total(before) if total >= before => {
                Some((total - before) / ((ts_ms - previous.ts_ms) as f64 / 1000.0))
            }
            _ => None,
        }
    }

    /// Remembers a cumulative histogram and answers the observations since its previous
    /// point, or since the series' start when there is none to compare with.
    pub fn window(
        &mut self,
        agent: &str,
        metric: &str,
        ts_ms: i64,
        start_ns: u64,
        buckets: Buckets,
    ) -> Buckets {
        let current = buckets.clone();
        match self.remember(agent, metric, ts_ms, start_ns, Reading::Histogram(buckets)) {
            Some(Last {
                reading: Reading::Histogram(before),
                ..
            }) => current.since(&before).unwrap_or(current),
            _ => current,
        }
    }

    /// Remembers a cumulative count and sum and answers what they gained and over how many
    /// seconds: since the previous point of the run, or for its first point since its start
    /// time. `None` for a point out of order, after a reset, or first with no start time.
    pub fn delta(
        &mut self,
        agent: &str,
        key: &str,
        ts_ms: i64,
        start_ns: u64,
        (count, sum): (u64, f64),
    ) -> Option<(u64, f64, f64)> {
        let stale = self
            .last
            .get(&(agent.to_string(), key.to_string()))
            .is_some_and(|kept| kept.start_ns == start_ns && kept.ts_ms >= ts_ms);
        if stale {
            return None;
        }
        let totals = Buckets {
            count,
            sum: Some(sum),
            ..Buckets::default()
        };
        match self.remember(agent, key, ts_ms, start_ns, Reading::Histogram(totals)) {
            Some(Last {
                ts_ms: before_ms,
                reading: Reading::Histogram(before),
                ..
            }) => (count >= before.count).then(|| {
                let seconds = (ts_ms - before_ms) as f64 / 1000.0;
                (
                    count - before.count,
                    sum - before.sum.unwrap_or(0.0),
                    seconds,
                )
            }),
            Some(_) => None,
            None => {
                let start_ms = (start_ns / 1_000_000) as i64;
                (start_ns > 0 && start_ms < ts_ms)
                    .then(|| (count, sum, (ts_ms - start_ms) as f64 / 1000.0))
            }
        }
    }

    /// Stores the point; returns the previous one when it is of the same run (same start)
    /// and earlier. A point older than the one kept is not stored.
    fn remember(
        &mut self,
        agent: &str,
        metric: &str,
        ts_ms: i64,
        start_ns: u64,
        reading: Reading,
    ) -> Option<Last> {
        if self.last.len() >= MAX_SERIES {
            self.forget_before(ts_ms - FORGET_AFTER_MS);
        }
        let key = (agent.to_string(), metric.to_string());
        let point = Last {
            ts_ms,
            start_ns,
            reading,
        };
        match self.last.get_mut(&key) {
            Some(kept) if kept.start_ns == start_ns && kept.ts_ms >= ts_ms => None,
            Some(kept) => {
                let previous = std::mem::replace(kept, point);
                (previous.start_ns == start_ns).then_some(previous)
            }
            None => {
                self.last.insert(key, point);
                None
            }
        }
    }

    fn forget_before(&mut self, cutoff_ms: i64) {
        self.last.retain(|_, kept| kept.ts_ms >= cutoff_ms);
        if self.last.len() >= MAX_SERIES {
            // Every series is recent: start over rather than grow without bound.
            self.last.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_one_run_and_restart_after_a_reset() {
        let mut memory = SeriesMemory::default();
        assert_eq!(memory.rate("a", "m", 1_000, 7, 10.0), None);
        assert_eq!(memory.rate("a", "m", 3_000, 7, 30.0), Some(10.0));
        // Out of order: ignored, and the kept point stays.
        assert_eq!(memory.rate("a", "m", 2_000, 7, 20.0), None);
        assert_eq!(memory.rate("a", "m", 4_000, 7, 35.0), Some(5.0));
        // A new start time is a new run: no rate across it.
        assert_eq!(memory.rate("a", "m", 5_000, 9, 1.0), None);
        assert_eq!(memory.rate("a", "m", 6_000, 9, 3.0), Some(2.0));
        // A total going down without a new start is a reset too.
        assert_eq!(memory.rate("a", "m", 7_000, 9, 0.0), None);
        // Another agent's series is its own.
        assert_eq!(memory.rate("b", "m", 7_000, 9, 100.0), None);
    }

    #[test]
    fn deltas_are_gains_over_their_seconds() {
        let mut memory = SeriesMemory::default();
        // First point of a run: since its start (1 s before).
        let start_ns = 1_000_000_000;
        assert_eq!(
            memory.delta("a", "k", 2_000, start_ns, (4, 8.0)),
            Some((4, 8.0, 1.0))
        );
        assert_eq!(
            memory.delta("a", "k", 4_000, start_ns, (10, 20.0)),
            Some((6, 12.0, 2.0))
        );
        assert_eq!(
            memory.delta("a", "k", 3_000, start_ns, (7, 9.0)),
            None,
            "out of order"
        );
        assert_eq!(
            memory.delta("a", "k", 5_000, start_ns, (2, 1.0)),
            None,
            "a reset"
        );
        assert_eq!(
            memory.delta("b", "k", 5_000, 0, (2, 1.0)),
            None,
            "no start time"
        );
    }

    #[test]
    fn histogram_windows_are_differences() {
        let mut memory = SeriesMemory::default();
        let point = |counts: &[u64], sum: f64| Buckets {
            bounds: vec![1.0],
            counts: counts.to_vec(),
            count: counts.iter().sum(),
            sum: Some(sum),
        };
        let first = memory.window("a", "h", 1_000, 5, point(&[1, 1], 3.0));
        assert_eq!(first.count, 2, "the first window is since the start");
        let second = memory.window("a", "h", 2_000, 5, point(&[3, 1], 4.0));
        assert_eq!((second.counts, second.sum), (vec![2, 0], Some(1.0)));
    }
}
