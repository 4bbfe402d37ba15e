//! Per-caller request rates: a token bucket for each caller, refilled at `per_sec` up to
//! `burst`, so that one token's holder cannot take the API from the others.

use std::collections::HashMap;

/// The buckets of every caller seen, keyed by the caller's name.
#[derive(Debug, Default)]
pub struct TokenBuckets {
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Requests it may still make now.
    left: f64,
    /// When `left` was last brought up to date, epoch milliseconds.
    at_ms: i64,
}

impl Bucket {
    /// What it holds at `now_ms`, refilled at `per_sec` since `at_ms` (never beyond `burst`).
    fn refilled(&self, now_ms: i64, per_sec: f64, burst: f64) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        (self.left + elapsed * per_sec / 1000.0).min(burst)
    }
}

impl TokenBuckets {
    /// Takes one request from `caller`'s bucket at `now_ms` under a rate of `per_sec` with
    /// `burst` at most; answers how many milliseconds to wait when it is empty. A rate of 0
    /// (or less) limits nothing.
    pub fn take(&mut self, caller: &str, now_ms: i64, per_sec: f64, burst: f64) -> Result<(), i64> {
        if per_sec <= 0.0 {
            return Ok(());
        }
        let burst = burst.max(1.0);
        let bucket = match self.buckets.get_mut(caller) {
            Some(bucket) => bucket,
            None => self.buckets.entry(caller.to_string()).or_insert(Bucket {
                left: burst,
                at_ms: now_ms,
            }),
        };
        bucket.left = bucket.refilled(now_ms, per_sec, burst);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.left >= 1.0 {
            bucket.left -= 1.0;
            return Ok(());
        }
        Err(((1.0 - bucket.left) * 1000.0 / per_sec).ceil() as i64)
    }

    /// Forgets callers whose buckets are full again by `now_ms` (they would start full).
    pub fn forget_full(&mut self, now_ms: i64, per_sec: f64, burst: f64) {
        let (per_sec, burst) = (per_sec.max(0.0), burst.max(1.0));
        self.buckets
            .retain(|_, b| b.refilled(now_ms, per_sec, burst) < burst);
    }

    /// Callers with a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// No caller has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_the_wait_is_told() {
        let mut buckets = TokenBuckets::default();
        for _ in 0..5 {
            assert_eq!(buckets.take("ops", 1_000, 2.0, 5.0), Ok(()));
        }
        // Empty: one request comes back every 500 ms at 2 a second.
        assert_eq!(buckets.take("ops", 1_000, 2.0, 5.0), Err(500));
        let wait = buckets.take("ops", 1_200, 2.0, 5.0).unwrap_err();
        assert!((300..=301).contains(&wait), "{wait}");
        assert_eq!(buckets.take("ops", 1_500, 2.0, 5.0), Ok(()));
        // Another caller has a bucket of its own.
        assert_eq!(buckets.take("viewer", 1_500, 2.0, 5.0), Ok(()));
        // Refilled, never beyond the burst.
        for _ in 0..5 {
            assert_eq!(buckets.take("ops", 60_000, 2.0, 5.0), Ok(()));
        }
        assert!(buckets.take("ops", 60_000, 2.0, 5.0).is_err());
        // A rate of 0 limits nothing.
        assert_eq!(buckets.take("ops", 60_000, 0.0, 5.0), Ok(()));
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut buckets = TokenBuckets::default();
        buckets.take("a", 0, 10.0, 10.0).unwrap();
        buckets.take("b", 900, 10.0, 10.0).unwrap();
        // Ten a second: one request comes back in 100 ms.
        buckets.forget_full(50, 10.0, 10.0);
        assert_eq!(buckets.len(), 2);
        buckets.forget_full(950, 10.0, 10.0);
        assert_eq!(buckets.len(), 1, "a is full again, b not yet");
    }
}
