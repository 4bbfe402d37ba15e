//! A k-means anomaly model in the manner of Netdata's detector: feature vectors of recent
//! values (differenced, smoothed, lagged), k = 2 clusters from linfa-clustering trained on a
//! rolling window and retrained on a schedule, and the distance to the nearest centroid
//! scaled by a high percentile of the training distances.

use half::bf16;
use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::{KMeans, KMeansInit};
use std::collections::VecDeque;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::parts::Window;

thread_local! {
    /// A rayon pool whose one thread is this one. linfa's k-means runs each assignment step
    /// with rayon; from a thread outside any pool, every step is handed to the global pool's
    /// threads and waited for, which cost more than the steps themselves on 1,000 points and
    /// woke the other core on every retraining. Inside this pool the steps run here, inline.
    static INLINE: Option<rayon::ThreadPool> = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .ok();
}

/// The knobs of the k-means model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KMeansConfig {
    /// Difference over this many points (0: raw values).
    pub diff: usize,
    /// Moving-average width applied to the differences.
    pub smooth: usize,
    /// Lagged values in each feature vector besides the current one.
    pub lags: usize,
    /// Feature vectors kept for training.
    pub train_window: usize,
    /// Points between retrainings.
    pub retrain_every: usize,
    /// Feature vectors needed before the first training.
    pub min_train: usize,
    /// Lloyd iterations per training.
    pub iterations: u64,
    /// Percentile of training distances that maps to a raw score of 1.
    pub percentile: f64,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig {
            diff: 1,
            smooth: 1,
            lags: 5,
            train_window: 1000,
            retrain_every: 250,
            min_train: 200,
            iterations: 10,
            percentile: 99.0,
        }
    }
}

/// A trained model: what persists under `models/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedKMeans {
    /// The two centroids, each `lags + 1` long.
    pub centroids: Vec<Vec<f64>>,
    /// The training-distance percentile that scales distances.
    pub scale: f64,
    /// Feature vectors it was trained on.
    pub trained_on: usize,
}

/// The streaming k-means detector of one series.
#[derive(Debug, Clone)]
pub struct KMeansDetector {
    config: KMeansConfig,
    raw: Window,
    diffs: Window,
    /// The newest `lags + 1` smoothed differences, oldest first: the current feature.
    smoothed: Vec<f64>,
    /// The last `train_window + lags` smoothed differences, oldest first: every training
    /// feature vector is `lags + 1` consecutive ones, so they are kept once, not once per
    /// vector, and as `bf16` (8 significant bits, about 2.4 digits: a difference needs no
    /// more to be clustered, and `bf16` keeps `f32`'s range, so a byte counter's jump does
    /// not overflow). The current feature is rounded the same way. This is most of the
    /// detector's memory: 2 KB at the defaults.
    history: VecDeque<bf16>,
    since_training: usize,
    model: Option<TrainedKMeans>,
}

impl KMeansDetector {
    /// An untrained detector.
    pub fn new(config: KMeansConfig) -> Self {
        KMeansDetector {
            config,
            raw: Window::new(config.diff + 1),
            diffs: Window::new(config.smooth.max(1)),
            smoothed: Vec::with_capacity(config.lags + 2),
            // Grown as points come: a new series does not hold a full window from its start.
            history: VecDeque::new(),
            since_training: 0,
            model: None,
        }
    }

    /// The current model, if trained.
    pub fn model(&self) -> Option<&TrainedKMeans> {
        self.model.as_ref()
    }

    /// Uses `model` until the next scheduled retraining.
    pub fn restore(&mut self, model: TrainedKMeans) {
        self.model = Some(model);
        self.since_training = 0;
    }

    /// Folds in `x`; returns the raw score (distance over the training percentile) once a
    /// model exists and a feature vector is complete.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !self.feature(x) {
            return None;
        }
        let feature = &self.smoothed;
        let score = self
            .model
            .as_ref()
            .map(|model| nearest_distance(&model.centroids, feature) / model.scale);
        if self.history.len() >= self.config.train_window.max(1) + self.config.lags {
            self.history.pop_front();
        }
        let newest = feature.last().copied().unwrap_or_default();
        self.history.push_back(bf16::from_f64(newest));
        self.since_training += 1;
        let due = self.model.is_none() || self.since_training >= self.config.retrain_every;
        if self.vectors() >= self.config.min_train && due {
            self.train();
        }
        score
    }

    /// Complete feature vectors the history holds.
    fn vectors(&self) -> usize {
        (self.history.len() + 1).saturating_sub(self.config.lags + 1)
    }

    /// Takes `x` into the feature vector (`smoothed`): lagged, smoothed differences; true
    /// once it is complete.
    fn feature(&mut self, x: f64) -> bool {
        self.raw.push(x);
        if !self.raw.is_full() {
            return false;
        }
        let oldest = self.raw.oldest();
        let change = if self.config.diff == 0 { x } else { x - oldest };
        self.diffs.push(change);
        if !self.diffs.is_full() {
            return false;
        }
        if self.smoothed.len() == self.config.lags + 1 {
            self.smoothed.remove(0);
        }
        // At the history's precision: a feature is scored as the training vectors were
        // taken, so the scale (a percentile of training distances) and a score's distance
        // carry the same rounding.
        self.smoothed
            .push(bf16::from_f64(self.diffs.mean()).to_f64());
        self.smoothed.len() == self.config.lags + 1
    }

    fn train(&mut self) {
        self.since_training = 0;
        let width = self.config.lags + 1;
        let rows = self.vectors();
        // The training matrix lives only while training: steady-state memory is the history.
        let history = &self.history;
        let observations = Array2::from_shape_fn((rows, width), |(row, column)| {
            history[row + column].to_f64()
        });
        // Later trainings start from the current centroids: they converge in a few steps
        // instead of ten, which keeps retraining cheap enough for every series.
        let init = match &self.model {
            Some(model) => Array2::from_shape_vec(
                (model.centroids.len(), width),
                model.centroids.iter().flatten().copied().collect(),
            )
            .map(KMeansInit::Precomputed)
            .unwrap_or(KMeansInit::KMeansPlusPlus),
            None => KMeansInit::KMeansPlusPlus,
        };
        let dataset = DatasetBase::from(observations.view());
        let fit = || {
            KMeans::params(2)
                .n_runs(1)
                .init_method(init)
                .max_n_iterations(self.config.iterations)
                .fit(&dataset)
        };
        // Run where this thread is the pool's, or (already in another pool) as rayon would.
        let fitted = INLINE.with(|pool| match pool {
            Some(pool) => pool.install(fit),
            None => fit(),
        });
        let Ok(fitted) = fitted else {
            // Degenerate data (e.g. a flat line) keeps the previous model, if any.
            return;
        };
        let centroids: Vec<Vec<f64>> = fitted
            .centroids()
            .outer_iter()
            .map(|c| c.to_vec())
            .collect();
        let mut distances: Vec<f64> = observations
            .outer_iter()
            .map(|feature| nearest_distance(&centroids, feature.as_slice().unwrap_or(&[])))
            .collect();
        let scale = percentile(&mut distances, self.config.percentile).max(1e-12);
        self.model = Some(TrainedKMeans {
            centroids,
            scale,
            trained_on: rows,
        });
    }
}

fn nearest_distance(centroids: &[Vec<f64>], feature: &[f64]) -> f64 {
    centroids
        .iter()
        .map(|c| {
            c.iter()
                .zip(feature)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
        })
        .fold(f64::INFINITY, f64::min)
        .sqrt()
}

/// The `p`-th percentile (0..=100) with linear interpolation between ranks; reorders
/// `values`, selecting the two ranks rather than sorting.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let position = (values.len() - 1) as f64 * (p / 100.0).clamp(0.0, 1.0);
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let (_, &mut low, higher) = values.select_nth_unstable_by(below, f64::total_cmp);
    let high = if above == below {
        low
    } else {
        higher.iter().copied().fold(f64::INFINITY, f64::min)
    };
    low + (high - low) * (position - below as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut values = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut values, 50.0), 2.5);
        assert_eq!(percentile(&mut values, 100.0), 4.0);
        assert_eq!(percentile(&mut values, 0.0), 1.0);
        let mut many: Vec<f64> = (0..1000).rev().map(f64::from).collect();
        // numpy.percentile(range(1000), 99) == 989.01
        assert!((percentile(&mut many, 99.0) - 989.01).abs() < 1e-9);
    }

    #[test]
    fn a_break_in_the_pattern_scores_far_above_the_pattern() {
        let mut detector = KMeansDetector::new(KMeansConfig::default());
        let wave = |i: usize| ((i as f64) * 0.3).sin();
        let usual: Vec<f64> = (0..600).filter_map(|i| detector.update(wave(i))).collect();
        assert!(detector.model().is_some());
        let calm = usual.iter().copied().fold(0.0, f64::max);
        let broken = detector.update(wave(600) + 3.0).unwrap();
        assert!(broken > 2.0 * calm, "{broken} vs {calm}");
    }
}
