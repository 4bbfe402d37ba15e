//! Per-minute rollups of one series: the min, max, mean, count and p95 of each minute's
//! values, summed up one sample at a time.
//!
//! A [`MinuteAccumulator`] holds the minute being summed. A sample of a later minute finishes
//! it; a sample of an earlier minute (late) comes back at once as a one-value summary, which
//! the store merges into the row already written for that minute.

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Fewest values a minute needs for its p95 to be given.
pub const P95_MIN_COUNT: u64 = 5;
/// Values kept per minute for the p95; beyond this, a uniform sample of this many is kept.
pub const MAX_MINUTE_VALUES: usize = 1024;

/// One finished minute of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteSummary {
    /// Start of the minute, epoch milliseconds (a multiple of 60,000).
    pub minute_ms: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Number of values.
    pub count: u64,
    /// 95th percentile (nearest rank); `None` with fewer than [`P95_MIN_COUNT`] values.
    pub p95: Option<f64>,
}

/// The minute being summed up for one series.
#[derive(Debug, Clone)]
pub struct MinuteAccumulator {
    /// Start of the current minute; `None` when nothing is being summed.
    minute_ms: Option<i64>,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
    /// The minute's values (a reservoir sample past `MAX_MINUTE_VALUES`), for the p95, as
    /// `f32`s (seven significant digits, as the ring buffers keep; half the memory for 100,000
    /// series). The vector is cleared, not dropped, between minutes, so its allocation is
    /// reused.
    values: Vec<f32>,
    /// xorshift64 state for the reservoir.
    rng: u64,
}

/// The start of the minute holding `ts_ms`.
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

// === impl MinuteAccumulator ===

impl Default for MinuteAccumulator {
    fn default() -> Self {
        MinuteAccumulator {
            minute_ms: None,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
            values: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl MinuteAccumulator {
    /// Adds one value; answers the minute this finished (the current one, when `ts_ms` is in a
    /// later minute), or a one-value summary when `ts_ms` is in an earlier minute.
    pub fn observe(&mut self, ts_ms: i64, value: f64) -> Option<MinuteSummary> {
        let minute = minute_of(ts_ms);
        match self.minute_ms {
            Some(current) if minute < current => {
                return Some(MinuteSummary {
                    minute_ms: minute,
                    min: value,
                    max: value,
                    mean: value,
                    count: 1,
                    p95: None,
                });
            }
            Some(current) if minute == current => {
                self.add(value);
                return None;
            }
            _ => {}
        }
        let finished = self.take();
        self.minute_ms = Some(minute);
        self.add(value);
        finished
    }

    /// Whether a minute is being summed up.
    pub fn is_open(&self) -> bool {
        self.minute_ms.is_some()
    }

    /// Finishes the current minute if it ended at or before `now_ms`.
    pub fn finish_before(&mut self, now_ms: i64) -> Option<MinuteSummary> {
        match self.minute_ms {
            Some(minute) if minute + MINUTE_MS <= now_ms => self.take(),
            _ => None,
        }
    }

    /// Finishes the current minute, whatever the time.
    pub fn take(&mut self) -> Option<MinuteSummary> {
        let minute_ms = self.minute_ms.take()?;
        let p95 = (self.count >= P95_MIN_COUNT).then(|| {
            // Nearest rank, as `stats::quantile`, without copying the values.
            let rank = (0.95 * self.values.len() as f64).ceil() as usize;
            let at = rank.saturating_sub(1).min(self.values.len() - 1);
            f64::from(*self.values.select_nth_unstable_by(at, f32::total_cmp).1)
        });
        let summary = MinuteSummary {
            minute_ms,
            min: self.min,
            max: self.max,
            mean: self.sum / self.count as f64,
            count: self.count,
            p95,
        };
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.sum = 0.0;
        self.count = 0;
        self.values.clear();
        Some(summary)
    }

    fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.count += 1;
        if self.values.len() < MAX_MINUTE_VALUES {
            self.values.push(value as f32);
            return;
        }
        // Algorithm R: the n-th value replaces a kept one with probability MAX / n, so the
        // kept values stay a uniform sample of the minute's.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = (self.rng % self.count) as usize;
        if slot < MAX_MINUTE_VALUES {
            self.values[slot] = value as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040_000; // a minute boundary

    #[test]
    fn a_later_minute_finishes_the_current_one() {
        let mut acc = MinuteAccumulator::default();
        assert_eq!(minute_of(T0 + 59_999), T0);
        for (i, v) in [4.0, 1.0, 7.0, 2.0, 6.0].into_iter().enumerate() {
            assert_eq!(acc.observe(T0 + i as i64 * 10_000, v), None);
        }
        let done = acc.observe(T0 + MINUTE_MS, 9.0).unwrap();
        assert_eq!(
            done,
            MinuteSummary {
                minute_ms: T0,
                min: 1.0,
                max: 7.0,
                mean: 4.0,
                count: 5,
                p95: Some(7.0),
            }
        );
        // The new minute holds only the value that opened it: too few for a p95.
        let next = acc.take().unwrap();
        assert_eq!(
            (next.minute_ms, next.count, next.p95),
            (T0 + MINUTE_MS, 1, None)
        );
        assert_eq!(acc.take(), None);
    }

    #[test]
    fn p95_is_the_nearest_rank_of_the_minute() {
        let mut acc = MinuteAccumulator::default();
        // 1..=100 shuffled by a stride: the p95 does not depend on the order.
        for i in 0..100 {
            acc.observe(T0 + i, ((i * 37) % 100 + 1) as f64);
        }
        let done = acc.finish_before(T0 + MINUTE_MS).unwrap();
        assert_eq!((done.p95, done.count, done.mean), (Some(95.0), 100, 50.5));
    }

    #[test]
    fn late_samples_come_back_alone_and_the_clock_finishes_minutes() {
        let mut acc = MinuteAccumulator::default();
        acc.observe(T0 + MINUTE_MS, 5.0);
        let late = acc.observe(T0 + 30_000, 3.0).unwrap();
        assert_eq!((late.minute_ms, late.count, late.mean), (T0, 1, 3.0));
        // Not finished while the minute runs; finished once it is over.
        assert_eq!(acc.finish_before(T0 + 2 * MINUTE_MS - 1), None);
        let done = acc.finish_before(T0 + 2 * MINUTE_MS).unwrap();
        assert_eq!((done.minute_ms, done.count), (T0 + MINUTE_MS, 1));
    }

    #[test]
    fn many_values_keep_a_bounded_sample_and_exact_moments() {
        let mut acc = MinuteAccumulator::default();
        let n = 20_000; // a multiple of 100, far beyond what is kept
        for i in 0..n {
            acc.observe(T0 + i % MINUTE_MS, (i % 100) as f64);
        }
        assert_eq!(acc.values.len(), MAX_MINUTE_VALUES);
        let done = acc.take().unwrap();
        assert_eq!((done.count, done.min, done.max), (n as u64, 0.0, 99.0));
        assert!((done.mean - 49.5).abs() < 1e-9);
        let p95 = done.p95.unwrap();
        assert!(
            (90.0..=99.0).contains(&p95),
            "p95 of a uniform sample: {p95}"
        );
    }
}
