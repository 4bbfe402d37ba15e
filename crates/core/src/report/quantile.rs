//! Weighted quantiles in bounded memory: a histogram of logarithmic buckets, each 1% wide,
//! so a quantile is within 1% of the true one whatever the number of values. A bucket keeps
//! its values' weighted mean, which is the quantile given: exact when the bucket's values
//! are equal.

use std::collections::BTreeMap;

/// Relative width of a bucket.
const GAMMA: f64 = 1.01;

/// A histogram of positive values in buckets `[γ^(i-1), γ^i)`; zero and negative values in
/// one bucket of their own (they read back as 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogHistogram {
    /// Per bucket: total weight, and the sum of value × weight.
    buckets: BTreeMap<i32, (f64, f64)>,
    zero: f64,
    total: f64,
}

impl LogHistogram {
    /// Adds `value` with `weight`; ignores non-finite values and non-positive weights.
    pub fn add(&mut self, value: f64, weight: f64) {
        if !value.is_finite() || weight.is_nan() || weight <= 0.0 {
            return;
        }
        if value <= 0.0 {
            self.zero += weight;
        } else {
            let index = (value.ln() / GAMMA.ln()).ceil() as i32;
            let bucket = self.buckets.entry(index).or_default();
            bucket.0 += weight;
            bucket.1 += value * weight;
        }
        self.total += weight;
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LogHistogram) {
        for (&index, &(weight, sum)) in &other.buckets {
            let bucket = self.buckets.entry(index).or_default();
            bucket.0 += weight;
            bucket.1 += sum;
        }
        self.zero += other.zero;
        self.total += other.total;
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }

    /// The `q` quantile (0 to 1): the value below which a share `q` of the weight lies, as
    /// the mean of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.total;
        let mut seen = self.zero;
        if seen >= rank && self.zero > 0.0 {
            return Some(0.0);
        }
        let mean = |&(weight, sum): &(f64, f64)| sum / weight;
        for bucket in self.buckets.values() {
            seen += bucket.0;
            if seen >= rank {
                return Some(mean(bucket));
            }
        }
        self.buckets.values().next_back().map(mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = LogHistogram::default();
        for v in 1..=1000 {
            h.add(f64::from(v), 1.0);
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap();
            assert!((got / want - 1.0).abs() < 0.01, "q{q}: {got} vs {want}");
        }
    }

    #[test]
    fn weights_count_and_zero_has_its_bucket() {
        let mut h = LogHistogram::default();
        h.add(0.0, 3.0);
        h.add(100.0, 1.0);
        assert_eq!(h.quantile(0.5), Some(0.0));
        assert_eq!(h.quantile(0.99), Some(100.0));
        let mut other = LogHistogram::default();
        other.add(100.0, 10.0);
        h.merge(&other);
        assert_eq!(h.quantile(0.5), Some(100.0));
        assert!(LogHistogram::default().quantile(0.5).is_none());
    }
}
