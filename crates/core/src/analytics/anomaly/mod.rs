//! Streaming anomaly detection: one detector per series, one score in [0, 1] per point that
//! depends only on the points before it.
//!
//! Five channels look at each point: spatial novelty (a value beyond anything seen), an EWMA
//! baseline with a robust deviation, a level-shift and a variance-change test of a recent
//! window against the history before it, and a Netdata-style k-means model. Every channel but
//! the first goes through Numenta's anomaly likelihood, which turns its raw scores into "how
//! unusual is this, for this channel on this series". The score is the highest channel; after
//! a detection the detector holds its peace for a while, so one incident is one alarm.

mod kmeans;
mod parts;

use serde::{Deserialize, Serialize};

pub use kmeans::{KMeansConfig, KMeansDetector, TrainedKMeans};
pub use parts::{Contrast, EwmaDeviation, Likelihood, SpatialNovelty, Window, WindowContrast};

/// Every parameter of the detector; one set serves every series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// A new extreme counts as novel only beyond this share of the range seen: without it,
    /// stationary noise raises an alarm at its first new extreme after the warm-up, whose
    /// hold then hides a real fault for minutes.
    #[serde(default)]
    pub spatial_tolerance: f64,
    /// Weight of a new value in the EWMA mean.
    pub ewma_mean_weight: f64,
    /// Weight of a new absolute deviation in the EW deviation.
    pub ewma_deviation_weight: f64,
    /// Points before the EWMA channel scores.
    pub ewma_warm_up: u64,
    /// Recent window of the level-shift test.
    pub level_recent: usize,
    /// History window of the level-shift test.
    pub level_history: usize,
    /// Recent window of the variance test.
    pub variance_recent: usize,
    /// History window of the variance test.
    pub variance_history: usize,
    /// History needed before either window test scores.
    pub min_history: usize,
    /// The k-means model.
    pub kmeans: KMeansConfig,
    /// Raw scores averaged by the likelihood.
    pub likelihood_window: usize,
    /// Weight of new averages in the likelihood's long-run distribution.
    pub likelihood_weight: f64,
    /// Raw scores a channel needs before its likelihood speaks.
    pub likelihood_warm_up: u64,
    /// Points after a detection during which the score is held at 0.
    pub hold_after_detection: u64,
    /// A score at or above this is a detection (starts the hold).
    pub detection_level: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            spatial_tolerance: 0.02,
            ewma_mean_weight: 0.5,
            ewma_deviation_weight: 0.01,
            ewma_warm_up: 30,
            level_recent: 12,
            level_history: 480,
            variance_recent: 48,
            variance_history: 576,
            min_history: 60,
            kmeans: KMeansConfig::default(),
            likelihood_window: 20,
            likelihood_weight: 0.003,
            likelihood_warm_up: 100,
            hold_after_detection: 100,
            detection_level: 0.4,
        }
    }
}

/// What each channel said about the last point, for evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelScores {
    /// Spatial novelty.
    pub spatial: f64,
    /// EWMA deviation likelihood.
    pub ewma: f64,
    /// Level-shift likelihood.
    pub level: f64,
    /// Variance-change likelihood.
    pub variance: f64,
    /// k-means distance likelihood.
    pub kmeans: f64,
}

/// The streaming detector of one series.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    spatial: SpatialNovelty,
    ewma: EwmaDeviation,
    level: WindowContrast,
    variance: WindowContrast,
    kmeans: KMeansDetector,
    likelihoods: [Likelihood; 4],
    seen: u64,
    last_detection: Option<u64>,
    channels: ChannelScores,
}

impl Detector {
    /// A fresh detector.
    pub fn new(config: DetectorConfig) -> Self {
        let likelihood = || {
            Likelihood::new(
                config.likelihood_window,
                config.likelihood_weight,
                config.likelihood_warm_up,
                1e-4,
            )
        };
        Detector {
            config,
            spatial: SpatialNovelty::new(config.spatial_tolerance),
            ewma: EwmaDeviation::new(
                config.ewma_mean_weight,
                config.ewma_deviation_weight,
                config.ewma_warm_up,
            ),
            level: WindowContrast::new(
                Contrast::Level,
                config.level_recent,
                config.level_history,
                config.min_history,
            ),
            variance: WindowContrast::new(
                Contrast::Variance,
                config.variance_recent,
                config.variance_history,
                config.min_history,
            ),
            kmeans: KMeansDetector::new(config.kmeans),
            likelihoods: [likelihood(), likelihood(), likelihood(), likelihood()],
            seen: 0,
            last_detection: None,
            channels: ChannelScores::default(),
        }
    }

    /// Scores `x` from the points before it; returns the anomaly score in [0, 1].
    pub fn update(&mut self, x: f64) -> f64 {
        let best = self.step(x);
        let index = self.seen - 1;
        let holding = self
            .last_detection
            .is_some_and(|at| index - at < self.config.hold_after_detection);
        if holding {
            return 0.0;
        }
        if best >= self.config.detection_level {
            self.last_detection = Some(index);
        }
        best.clamp(0.0, 1.0)
    }

    /// Learns from `x` without scoring it: the warm-up of a new series, whose first points
    /// say what is usual rather than what is not. Starts no hold.
    pub fn learn(&mut self, x: f64) {
        self.step(x);
    }

    /// Folds `x` into every channel; returns the highest channel score.
    fn step(&mut self, x: f64) -> f64 {
        let raw = [
            self.ewma.update(x),
            self.level.update(x),
            self.variance.update(x),
            self.kmeans.update(x),
        ];
        let mut likely = [0.0; 4];
        for ((raw, likelihood), out) in raw.iter().zip(&mut self.likelihoods).zip(&mut likely) {
            if let Some(raw) = raw {
                *out = likelihood.update(*raw);
            }
        }
        self.channels = ChannelScores {
            spatial: self.spatial.update(x),
            ewma: likely[0],
            level: likely[1],
            variance: likely[2],
            kmeans: likely[3],
        };
        self.seen += 1;
        likely.iter().copied().fold(self.channels.spatial, f64::max)
    }

    /// Points seen, learnt or scored.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// What each channel said about the last point.
    pub fn channels(&self) -> ChannelScores {
        self.channels
    }

    /// The k-means model, once trained.
    pub fn kmeans_model(&self) -> Option<&TrainedKMeans> {
        self.kmeans.model()
    }

    /// Starts from a model trained before (e.g. loaded after a restart) instead of waiting
    /// for enough points to train one.
    pub fn restore_kmeans(&mut self, model: TrainedKMeans) {
        self.kmeans.restore(model);
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }
}

/// Version of the model file format; files of another version are retrained, not read.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// A trained k-means model as persisted under `models/`: enough to score again after a
/// restart, and to tell whether it still fits the running configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Format version, [`MODEL_FORMAT_VERSION`].
    pub version: u32,
    /// The series: agent id.
    pub agent: String,
    /// The series: metric name.
    pub metric: String,
    /// The k-means parameters it was trained with.
    pub parameters: KMeansConfig,
    /// Centroids, training-distance percentile and how many vectors it saw.
    pub model: TrainedKMeans,
    /// When it was written, epoch milliseconds.
    pub created_ms: i64,
}

impl ModelFile {
    /// Why this file cannot be used with `config`, if it cannot.
    pub fn incompatibility(&self, config: &DetectorConfig) -> Option<String> {
        if self.version != MODEL_FORMAT_VERSION {
            return Some(format!(
                "format version {} (expected {MODEL_FORMAT_VERSION})",
                self.version
            ));
        }
        if self.parameters != config.kmeans {
            return Some("trained with other k-means parameters".to_string());
        }
        let width = config.kmeans.lags + 1;
        let well_formed = self.model.centroids.len() == 2
            && self
                .model
                .centroids
                .iter()
                .all(|c| c.len() == width && c.iter().all(|v| v.is_finite()))
            && self.model.scale.is_finite()
            && self.model.scale > 0.0;
        (!well_formed).then(|| "centroids or scale are malformed".to_string())
    }
}

/// Scores a whole series, point by point, as the streaming detector would.
pub fn score_series(values: &[f64], config: DetectorConfig) -> Vec<f64> {
    let mut detector = Detector::new(config);
    values.iter().map(|&x| detector.update(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daily-like wave with a little deterministic noise.
    fn wave(i: usize) -> f64 {
        let noise = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
        10.0 + 5.0 * (i as f64 * std::f64::consts::TAU / 96.0).sin() + 0.3 * noise
    }

    #[test]
    fn scores_stay_in_range_and_flag_a_spike_once() {
        let mut values: Vec<f64> = (0..2000).map(wave).collect();
        values[1500] += 40.0;
        values[1501] += 40.0;
        let scores = score_series(&values, DetectorConfig::default());
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        assert!(scores[1500] >= 0.5, "spike scored {}", scores[1500]);
        assert_eq!(
            scores[1501..1600].iter().copied().fold(0.0, f64::max),
            0.0,
            "held after it"
        );
        let quiet = scores[800..1500].iter().filter(|&&s| s >= 0.5).count();
        assert!(quiet <= 2, "{quiet} false alarms on the regular wave");
    }

    /// A worker's metric sampled every 2 s: `base` with deterministic noise of `spread`.
    fn sampled(base: f64, spread: f64, n: usize) -> Vec<f64> {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                base + spread * (unit - 0.5)
            })
            .collect()
    }

    /// Points from `fault` to the first score of at least 0.5, for a live detector that
    /// warmed up for 300 s (150 points at 2 s) as the policy's default says; no score before
    /// the fault may reach 0.5.
    fn points_to_detect(values: &[f64], fault: usize) -> Option<usize> {
        let mut detector = Detector::new(DetectorConfig::default());
        let mut first = None;
        for (i, &x) in values.iter().enumerate() {
            if i < 150 {
                detector.learn(x);
                continue;
            }
            let score = detector.update(x);
            assert!(i >= fault || score < 0.5, "false alarm at {i}: {score}");
            if i >= fault && score >= 0.5 && first.is_none() {
                first = Some(i - fault);
            }
        }
        first
    }

    #[test]
    fn a_threefold_response_time_step_is_detected_within_two_minutes() {
        // 20 minutes of 20 +- 3 ms, then every task takes three times as long.
        let fault = 600;
        let mut values = sampled(20.0, 6.0, fault + 120);
        values[fault..].iter_mut().for_each(|v| *v *= 3.0);
        let points = points_to_detect(&values, fault).expect("detected");
        println!("step detected {} s after it began", points * 2);
        assert!(points * 2 < 120, "{} s after the step", points * 2);
    }

    #[test]
    fn a_memory_leak_of_3_mb_per_second_is_detected_within_two_minutes() {
        // 40 MB of 16 GB (0.25%) +- 0.01%, then 6 MB more every 2 s sample.
        let fault = 600;
        let mut values = sampled(0.25, 0.02, fault + 120);
        for (k, v) in values[fault..].iter_mut().enumerate() {
            *v += (k + 1) as f64 * 6.0 / 16_384.0 * 100.0;
        }
        let points = points_to_detect(&values, fault).expect("detected");
        println!("leak detected {} s after it began", points * 2);
        assert!(points * 2 < 120, "{} s after the leak began", points * 2);
    }

    #[test]
    fn a_score_depends_only_on_points_before_it() {
        let values: Vec<f64> = (0..1200).map(wave).collect();
        let full = score_series(&values, DetectorConfig::default());
        let prefix = score_series(&values[..900], DetectorConfig::default());
        assert_eq!(full[..900], prefix[..]);
    }
}
