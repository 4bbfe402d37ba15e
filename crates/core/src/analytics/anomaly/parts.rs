//! The detector's building blocks: running windows, an EWMA baseline with a robust deviation,
//! window-against-window level and variance tests, spatial novelty, and Numenta's anomaly
//! likelihood, each O(1) per point.

use std::f64::consts::SQRT_2;

/// A fixed-size window keeping its running sum and sum of squares.
#[derive(Debug, Clone)]
pub struct Window {
    values: Vec<f64>,
    capacity: usize,
    next: usize,
    sum: f64,
    sum_squares: f64,
    pushes: u64,
}

/// Pushes after which the running sums are recomputed, so rounding errors cannot build up.
const RESUM_EVERY: u64 = 4096;

impl Window {
    /// An empty window of `capacity` values.
    pub fn new(capacity: usize) -> Self {
        Window {
            values: Vec::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
            next: 0,
            sum: 0.0,
            sum_squares: 0.0,
            pushes: 0,
        }
    }

    /// Adds `value`; returns the value it pushed out when full.
    pub fn push(&mut self, value: f64) -> Option<f64> {
        let evicted = if self.values.len() < self.capacity {
            self.values.push(value);
            None
        } else {
            let old = std::mem::replace(&mut self.values[self.next], value);
            self.sum -= old;
            self.sum_squares -= old * old;
            Some(old)
        };
        // A compare, not a `%`: this runs for every window of every watched point.
        self.next += 1;
        if self.next == self.capacity {
            self.next = 0;
        }
        self.sum += value;
        self.sum_squares += value * value;
        self.pushes += 1;
        if self.pushes.is_multiple_of(RESUM_EVERY) {
            self.sum = self.values.iter().sum();
            self.sum_squares = self.values.iter().map(|v| v * v).sum();
        }
        evicted
    }

    /// The oldest value held (0 when empty).
    pub fn oldest(&self) -> f64 {
        if self.is_full() {
            self.values[self.next]
        } else {
            self.values.first().copied().unwrap_or(0.0)
        }
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// True when it holds `capacity` values.
    pub fn is_full(&self) -> bool {
        self.values.len() == self.capacity
    }

    /// Mean of the values held (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.sum / self.values.len() as f64
        }
    }

    /// Population variance of the values held, never negative.
    pub fn variance(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        let mean = self.mean();
        (self.sum_squares / self.values.len() as f64 - mean * mean).max(0.0)
    }
}

/// Scores a value beyond the range seen so far by more than `tolerance` of its width: 0
/// inside, 0.5 up to 1 beyond, growing with the distance relative to the range. (Numenta's
/// HTM detector flags a value beyond its range by 5% of the range the same way.)
#[derive(Debug, Clone, Default)]
pub struct SpatialNovelty {
    tolerance: f64,
    range: Option<(f64, f64)>,
}

impl SpatialNovelty {
    /// A novelty test that ignores excursions within `tolerance` times the range's width.
    pub fn new(tolerance: f64) -> Self {
        SpatialNovelty {
            tolerance: tolerance.max(0.0),
            range: None,
        }
    }

    /// Scores `x` against the range before it, then widens the range.
    pub fn update(&mut self, x: f64) -> f64 {
        let Some((low, high)) = self.range else {
            self.range = Some((x, x));
            return 0.0;
        };
        let width = high - low;
        let mut score = 0.0;
        if width > 0.0 {
            let beyond = (x - high).max(low - x);
            let relative = beyond / width - self.tolerance;
            if beyond > 0.0 && relative > 0.0 {
                score = 0.5 + 0.5 * relative / (1.0 + relative);
            }
        }
        self.range = Some((low.min(x), high.max(x)));
        score
    }
}

/// An EWMA baseline; the raw score is the distance from it in units of the EW mean absolute
/// deviation (a robust spread that a single outlier barely moves).
#[derive(Debug, Clone)]
pub struct EwmaDeviation {
    mean_weight: f64,
    deviation_weight: f64,
    warm_up: u64,
    mean: Option<f64>,
    deviation: f64,
    seen: u64,
}

impl EwmaDeviation {
    /// A baseline with the given weights, silent for `warm_up` points.
    pub fn new(mean_weight: f64, deviation_weight: f64, warm_up: u64) -> Self {
        EwmaDeviation {
            mean_weight,
            deviation_weight,
            warm_up,
            mean: None,
            deviation: 0.0,
            seen: 0,
        }
    }

    /// Scores `x` against the baseline before it, then updates the baseline.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let index = self.seen;
        self.seen += 1;
        let Some(mean) = self.mean else {
            self.mean = Some(x);
            return None;
        };
        let distance = (x - mean).abs();
        let score = (index >= self.warm_up)
            .then(|| distance / (self.deviation + 1e-9 * (mean.abs() + 1e-9)));
        if index > 1 {
            self.deviation += self.deviation_weight * (distance - self.deviation);
        } else {
            self.deviation = distance;
        }
        self.mean = Some(mean + self.mean_weight * (x - mean));
        score
    }
}

/// What a recent window is compared on against the longer history before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    /// Difference of means in standard deviations of the history: a level shift.
    Level,
    /// Absolute log ratio of variances: the noise changed.
    Variance,
}

/// A running mean and variance that weigh every value alike until `span` values were seen,
/// then forget exponentially with an effective memory of about `span` values: a history
/// window's moments in three numbers instead of `span` values.
#[derive(Debug, Clone, Copy)]
pub struct EwMoments {
    span: f64,
    mean: f64,
    variance: f64,
    count: u64,
}

impl EwMoments {
    /// Moments with an effective memory of `span` values.
    pub fn new(span: f64) -> Self {
        EwMoments {
            span: span.max(1.0),
            mean: 0.0,
            variance: 0.0,
            count: 0,
        }
    }

    /// Folds in `x`.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let weight = (1.0 / self.span).max(1.0 / self.count as f64);
        let delta = x - self.mean;
        self.mean += weight * delta;
        self.variance = (1.0 - weight) * (self.variance + weight * delta * delta);
    }

    /// Values folded in.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean (0 before any value).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The variance, never negative.
    pub fn variance(&self) -> f64 {
        self.variance.max(0.0)
    }
}

/// A recent window and the history before it (values leave the first for the second).
#[derive(Debug, Clone)]
pub struct WindowContrast {
    contrast: Contrast,
    recent: Window,
    history: EwMoments,
    min_history: u64,
}

impl WindowContrast {
    /// Compares the last `recent` values with the history before them, remembered over about
    /// `history` values.
    pub fn new(contrast: Contrast, recent: usize, history: usize, min_history: usize) -> Self {
        WindowContrast {
            contrast,
            recent: Window::new(recent),
            history: EwMoments::new(history as f64),
            min_history: min_history as u64,
        }
    }

    /// Adds `x` and scores the recent window against the history.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if let Some(old) = self.recent.push(x) {
            self.history.push(old);
        }
        if self.history.count() < self.min_history || !self.recent.is_full() {
            return None;
        }
        let (mean, variance) = (self.history.mean(), self.history.variance());
        Some(match self.contrast {
            Contrast::Level => (self.recent.mean() - mean).abs() / (variance + 1e-12).sqrt(),
            Contrast::Variance => {
                let epsilon = 1e-6 * (mean.abs() + 1e-3).powi(2) + 1e-12;
                ((self.recent.variance() + epsilon) / (variance + epsilon))
                    .ln()
                    .abs()
            }
        })
    }
}

/// Numenta's anomaly likelihood, streaming: how unlikely the mean of the last raw scores is
/// under their long-run distribution, log-scaled to [0, 1] (0.5 is a tail of 1e-5).
#[derive(Debug, Clone)]
pub struct Likelihood {
    recent: Window,
    warm_up: u64,
    min_deviation: f64,
    averages: EwMoments,
}

impl Likelihood {
    /// Averages `recent` raw scores; the long-run mean and variance move with `weight`.
    pub fn new(recent: usize, weight: f64, warm_up: u64, min_deviation: f64) -> Self {
        Likelihood {
            recent: Window::new(recent),
            warm_up,
            min_deviation,
            averages: EwMoments::new(1.0 / weight.max(1e-12)),
        }
    }

    /// Folds in one raw score and returns the likelihood score (0 while warming up).
    pub fn update(&mut self, raw: f64) -> f64 {
        self.recent.push(raw);
        let average = self.recent.mean();
        let mut score = 0.0;
        if self.averages.count() >= self.warm_up {
            let deviation = self.averages.variance().sqrt().max(self.min_deviation);
            let tail = 0.5 * libm::erfc((average - self.averages.mean()) / (deviation * SQRT_2));
            score = ((tail + 1e-10).ln() / 1e-10f64.ln()).clamp(0.0, 1.0);
        }
        self.averages.push(average);
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_running_moments_of_its_values() {
        let mut window = Window::new(3);
        assert_eq!(window.push(1.0), None);
        window.push(2.0);
        window.push(3.0);
        assert_eq!(window.push(4.0), Some(1.0));
        assert_eq!(window.mean(), 3.0);
        assert!((window.variance() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn spatial_novelty_scores_only_new_extremes() {
        let mut spatial = SpatialNovelty::default();
        let scores: Vec<f64> = [0.0, 10.0, 5.0, 20.0]
            .iter()
            .map(|&x| spatial.update(x))
            .collect();
        assert_eq!(scores[..3], [0.0, 0.0, 0.0]);
        // 10 beyond a range of 10: relative 1 -> 0.5 + 0.5 * 1/2.
        assert_eq!(scores[3], 0.75);
    }

    #[test]
    fn a_level_shift_stands_out_against_the_history() {
        let mut level = WindowContrast::new(Contrast::Level, 4, 50, 20);
        let noise = |i: usize| (i % 5) as f64 * 0.1;
        let before: Vec<f64> = (0..60).filter_map(|i| level.update(noise(i))).collect();
        let after: Vec<f64> = (60..64)
            .filter_map(|i| level.update(5.0 + noise(i)))
            .collect();
        let calm = before.iter().copied().fold(0.0, f64::max);
        assert!(
            after.last().unwrap() > &(10.0 * calm.max(0.1)),
            "{calm} vs {after:?}"
        );
    }

    #[test]
    fn likelihood_is_high_only_for_unusual_scores() {
        let mut likelihood = Likelihood::new(5, 0.01, 50, 1e-4);
        let usual: Vec<f64> = (0..200)
            .map(|i| likelihood.update(1.0 + (i % 3) as f64 * 0.1))
            .collect();
        assert!(
            usual[150..].iter().all(|&s| s < 0.3),
            "{:?}",
            &usual[150..160]
        );
        let spike = (0..5).map(|_| likelihood.update(10.0)).fold(0.0, f64::max);
        assert!(spike > 0.9, "{spike}");
    }
}
