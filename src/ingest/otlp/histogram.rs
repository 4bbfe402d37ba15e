//! Explicit-bucket histograms: the observations of a window (a cumulative point minus the one
//! before it) and quantiles estimated from the buckets the way Prometheus' `histogram_quantile`
//! does.

/// The buckets of one histogram point: `counts[i]` observations in `(bounds[i-1], bounds[i]]`,
/// the last one above every bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// Upper bounds, strictly increasing.
    pub bounds: Vec<f64>,
    /// One count per bucket: `bounds.len() + 1` of them, or none at all.
    pub counts: Vec<u64>,
    /// Observations in all buckets.
    pub count: u64,
    /// Sum of the observations, when the sender recorded it.
    pub sum: Option<f64>,
}

/// The buckets of an exponential histogram point, as OTLP sends them.
#[derive(Debug, Clone, Copy)]
pub struct Exponential<'a> {
    /// Resolution: bucket `i` holds (base^i, base^(i+1)] with base = 2^(2^-scale).
    pub scale: i32,
    /// Observations within `zero_threshold` of zero.
    pub zero_count: u64,
    /// Half width of the zero bucket.
    pub zero_threshold: f64,
    /// Index of the first positive bucket and the counts from it.
    pub positive: (i32, &'a [u64]),
    /// Index of the first negative bucket (mirrored) and the counts from it.
    pub negative: (i32, &'a [u64]),
    /// Observations in all buckets.
    pub count: u64,
    /// Sum of the observations, when recorded.
    pub sum: Option<f64>,
}

/// Why a histogram point cannot be read: the field at fault and the reason.
pub type BucketError = (&'static str, String);

/// Why two attribute sets of one histogram cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeRefusal {
    /// Their bucket bounds differ.
    Bounds,
    /// Their counts add up to more than 2^64 - 1.
    Overflow,
}

impl Buckets {
    /// Explicit buckets with the boundaries of an exponential histogram (empty buckets fill
    /// the gaps between them, so each keeps its own lower bound), checked.
    pub fn from_exponential(histogram: &Exponential) -> Result<Buckets, BucketError> {
        if !(-10..=20).contains(&histogram.scale) {
            return Err((
                "scale",
                format!("scale {} is outside -10 to 20", histogram.scale),
            ));
        }
        let boundary = |index: i64| (index as f64 / 2f64.powi(histogram.scale)).exp2();
        let mut buckets = Buckets {
            bounds: Vec::new(),
            counts: Vec::new(),
            count: histogram.count,
            sum: histogram.sum,
        };
        // Negative bucket i holds [-base^(i+1), -base^i): the most negative comes first.
        let (offset, negative) = histogram.negative;
        for (k, &count) in negative.iter().enumerate().rev() {
            let index = i64::from(offset) + k as i64;
            buckets.push_range(-boundary(index + 1), -boundary(index), count);
        }
        if histogram.zero_count > 0 {
            let threshold = histogram.zero_threshold.abs();
            let lower = if negative.is_empty() { 0.0 } else { -threshold };
            buckets.push_range(lower, threshold, histogram.zero_count);
        }
        let (offset, positive) = histogram.positive;
        for (k, &count) in positive.iter().enumerate() {
            let index = i64::from(offset) + k as i64;
            buckets.push_range(boundary(index), boundary(index + 1), count);
        }
        if !buckets.bounds.is_empty() {
            // Nothing lies above the last boundary.
            buckets.counts.push(0);
        }
        buckets.check()?;
        Ok(buckets)
    }

    /// Appends the bucket (lower, upper] holding `count`; one overlapping the last bucket is
    /// added to it.
    fn push_range(&mut self, lower: f64, upper: f64, count: u64) {
        match self.bounds.last() {
            Some(&last) if last >= upper => {
                if let Some(kept) = self.counts.last_mut() {
                    // Saturates rather than wraps: `check` then refuses counts this large.
                    *kept = kept.saturating_add(count);
                }
                return;
            }
            Some(&last) if last >= lower => {}
            // A gap before this bucket, or the first bucket: an empty bucket up to `lower`.
            _ if lower < upper => {
                self.bounds.push(lower);
                self.counts.push(0);
            }
            _ => {}
        }
        self.bounds.push(upper);
        self.counts.push(count);
    }

    /// Checks the shape OTLP requires: increasing finite bounds, one more count than bounds,
    /// counts adding up to `count`.
    pub fn check(&self) -> Result<(), BucketError> {
        if self.bounds.iter().any(|b| !b.is_finite()) {
            return Err(("explicitBounds", "bounds must be finite numbers".into()));
        }
        if self.bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err((
                "explicitBounds",
                "bounds must be strictly increasing".into(),
            ));
        }
        if !self.counts.is_empty() && self.counts.len() != self.bounds.len() + 1 {
            return Err((
                "bucketCounts",
                format!(
                    "{} bucket counts for {} bounds (expected {})",
                    self.counts.len(),
                    self.bounds.len(),
                    self.bounds.len() + 1
                ),
            ));
        }
        let total = self
            .counts
            .iter()
            .try_fold(0u64, |acc, &c| acc.checked_add(c));
        if !self.counts.is_empty() && total != Some(self.count) {
            return Err((
                "count",
                format!(
                    "count {} is not the sum of the bucket counts ({})",
                    self.count,
                    total.map_or("overflow".to_string(), |t| t.to_string())
                ),
            ));
        }
        if let Some(sum) = self.sum {
            crate::ingest::check_value(sum).map_err(|r| ("sum", r.to_string()))?;
        }
        Ok(())
    }

    /// Adds `other` (another attribute set of the same metric and time), or says why the
    /// two cannot be added; `self` is unchanged then.
    pub fn merge(&mut self, other: &Buckets) -> Result<(), MergeRefusal> {
        let count = self
            .count
            .checked_add(other.count)
            .ok_or(MergeRefusal::Overflow)?;
        if self.counts.is_empty() {
            self.bounds.clone_from(&other.bounds);
            self.counts.clone_from(&other.counts);
        } else if !other.counts.is_empty() {
            if self.bounds != other.bounds {
                return Err(MergeRefusal::Bounds);
            }
            // Both totals are checked against their counts, so no bucket overflows when
            // the totals do not.
            for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
                *mine += theirs;
            }
        }
        self.count = count;
        self.sum = match (self.sum, other.sum) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// The observations since `earlier`, a previous point of the same cumulative series;
    /// `None` when they are not comparable (other bounds, or a count went down: a reset).
    pub fn since(&self, earlier: &Buckets) -> Option<Buckets> {
        if self.bounds != earlier.bounds
            || self.counts.len() != earlier.counts.len()
            || self.count < earlier.count
            || self.counts.iter().zip(&earlier.counts).any(|(a, b)| a < b)
        {
            return None;
        }
        Some(Buckets {
            bounds: self.bounds.clone(),
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(a, b)| a - b)
                .collect(),
            count: self.count - earlier.count,
            sum: match (self.sum, earlier.sum) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            },
        })
    }

    /// The `q` quantile (0 to 1), interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does: the first bucket starts at 0 (when its bound is positive), and a
    /// rank in the bucket above every bound answers the highest bound. `None` without
    /// observations or bounds.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 || self.bounds.is_empty() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let Some(&upper) = self.bounds.get(i) else {
                    // The overflow bucket has no upper bound.
                    return self.bounds.last().copied();
                };
                let lower = match i {
                    0 if upper <= 0.0 => return Some(upper),
                    0 => 0.0,
                    _ => self.bounds[i - 1],
                };
                let within = (rank - below as f64) / count as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += count;
        }
        self.bounds.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(bounds: &[f64], counts: &[u64]) -> Buckets {
        Buckets {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            count: counts.iter().sum(),
            sum: Some(0.0),
        }
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        // 100 observations: 50 in (0, 10], 40 in (10, 20], 10 in (20, 50].
        let b = buckets(&[10.0, 20.0, 50.0], &[50, 40, 10, 0]);
        // rank 95 lies in (20, 50], 5 of its 10 in: halfway.
        assert_eq!(b.quantile(0.95), Some(35.0));
        // rank 50 ends the first bucket, which starts at 0.
        assert_eq!(b.quantile(0.5), Some(10.0));
        assert_eq!(b.quantile(0.25), Some(5.0));
        // A rank in the overflow bucket answers the highest bound.
        let over = buckets(&[10.0, 20.0], &[1, 1, 8]);
        assert_eq!(over.quantile(0.95), Some(20.0));
        assert_eq!(buckets(&[], &[5]).quantile(0.95), None);
        assert_eq!(buckets(&[1.0], &[0, 0]).quantile(0.95), None);
        // A first bound at or below zero is answered as it is.
        assert_eq!(buckets(&[-1.0, 1.0], &[4, 0, 0]).quantile(0.5), Some(-1.0));
    }

    #[test]
    fn exponential_buckets_keep_their_boundaries() {
        // Scale 0: base 2. Positive buckets 1 and 2 hold (2, 4] and (4, 8]; negative bucket 0
        // holds [-2, -1); 3 zeros.
        let positive = [6, 2];
        let negative = [1];
        let buckets = Buckets::from_exponential(&Exponential {
            scale: 0,
            zero_count: 3,
            zero_threshold: 0.0,
            positive: (1, &positive),
            negative: (0, &negative),
            count: 12,
            sum: Some(40.0),
        })
        .unwrap();
        assert_eq!(buckets.bounds, [-2.0, -1.0, 0.0, 2.0, 4.0, 8.0]);
        assert_eq!(buckets.counts, [0, 1, 3, 0, 6, 2, 0]);
        // Rank 11.4 of 12: in (4, 8], 1.4 of its 2 in.
        let p95 = buckets.quantile(0.95).unwrap();
        assert!((p95 - 6.8).abs() < 1e-9, "{p95}");

        // Scale 1: base √2; bucket -1 holds (1/√2, 1].
        let only = [4];
        let fine = Buckets::from_exponential(&Exponential {
            scale: 1,
            zero_count: 0,
            zero_threshold: 0.0,
            positive: (-1, &only),
            negative: (0, &[]),
            count: 4,
            sum: None,
        })
        .unwrap();
        assert_eq!(fine.bounds.len(), 2);
        assert!((fine.bounds[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        assert_eq!(fine.bounds[1], 1.0);

        let wrong_count = Exponential {
            count: 5,
            ..Exponential {
                scale: 1,
                zero_count: 0,
                zero_threshold: 0.0,
                positive: (-1, &only),
                negative: (0, &[]),
                count: 4,
                sum: None,
            }
        };
        assert_eq!(
            Buckets::from_exponential(&wrong_count).unwrap_err().0,
            "count"
        );
        let too_fine = Exponential {
            scale: 21,
            ..wrong_count
        };
        assert_eq!(Buckets::from_exponential(&too_fine).unwrap_err().0, "scale");
    }

    #[test]
    fn windows_merges_and_shapes() {
        let earlier = buckets(&[1.0, 2.0], &[1, 2, 3]);
        let later = buckets(&[1.0, 2.0], &[2, 2, 5]);
        let window = later.since(&earlier).unwrap();
        assert_eq!((window.counts.clone(), window.count), (vec![1, 0, 2], 3));
        assert_eq!(earlier.since(&later), None, "a count going down is a reset");

        let mut merged = earlier.clone();
        assert_eq!(merged.merge(&later), Ok(()));
        assert_eq!(merged.counts, vec![3, 4, 8]);
        assert_eq!(
            merged.merge(&buckets(&[5.0], &[1, 1])),
            Err(MergeRefusal::Bounds)
        );
        // Found by the otlp_protobuf fuzz target: two attribute sets whose counts add up
        // past u64 wrapped silently (and panicked with overflow checks on).
        let huge = buckets(&[1.0, 2.0], &[u64::MAX - 2, 1, 1]);
        let before = merged.clone();
        assert_eq!(merged.merge(&huge), Err(MergeRefusal::Overflow));
        assert_eq!(merged, before, "unchanged when refused");

        assert!(buckets(&[1.0, 2.0], &[1, 1, 1]).check().is_ok());
        assert_eq!(
            buckets(&[2.0, 1.0], &[1, 1, 1]).check().unwrap_err().0,
            "explicitBounds"
        );
        assert_eq!(
            buckets(&[1.0], &[1, 1, 1]).check().unwrap_err().0,
            "bucketCounts"
        );
        let mut wrong_count = buckets(&[1.0], &[1, 1]);
        wrong_count.count = 3;
        assert_eq!(wrong_count.check().unwrap_err().0, "count");
        wrong_count.count = 2;
        wrong_count.sum = Some(f64::NAN);
        assert_eq!(
            wrong_count.check().unwrap_err(),
            ("sum", "value is NaN".into())
        );
    }
}
