//! An agent's anomaly watch: one streaming detector per watched metric, their latest
//! scores, and their trained models saved to and restored from the model store. A new
//! series only teaches its detector during the policy's warm-up: a starting worker's first
//! minutes are what is usual for it, not an anomaly.

use std::collections::{BTreeMap, HashMap};

use crate::analytics::anomaly::{
    ChannelScores, Detector, DetectorConfig, MODEL_FORMAT_VERSION, ModelFile,
};
use crate::store::models::ModelStore;

/// The detectors of one agent.
pub struct AnomalyWatch {
    agent: String,
    config: DetectorConfig,
    models: Option<ModelStore>,
    /// Each watched metric's detector and the time of its first value.
    detectors: HashMap<String, (Detector, i64), super::FastHash>,
    scores: BTreeMap<String, f64>,
    warm_up_ms: i64,
}

impl AnomalyWatch {
    /// No detectors yet; models are restored from `models` as metrics first appear.
    pub fn new(agent: &str, models: Option<ModelStore>) -> Self {
        AnomalyWatch {
            agent: agent.to_string(),
            config: DetectorConfig::default(),
            models,
            detectors: HashMap::default(),
            scores: BTreeMap::new(),
            warm_up_ms: 0,
        }
    }

    /// Seconds a new series only teaches its detector (policy `anomaly.warm_up_secs`).
    pub fn set_warm_up(&mut self, secs: u64) {
        self.warm_up_ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    }

    /// Scores one value of `metric` taken at `ts_ms`; returns the score and what each
    /// channel said (0 and nothing while the series warms up).
    pub fn observe(&mut self, metric: &str, value: f64, ts_ms: i64) -> (f64, ChannelScores) {
        let (detector, first_ms) = match self.detectors.get_mut(metric) {
            Some(entry) => entry,
            None => {
                let detector = self.restored(metric);
                self.detectors
                    .entry(metric.to_string())
                    .or_insert((detector, ts_ms))
            }
        };
        let warming = ts_ms.saturating_sub(*first_ms) < self.warm_up_ms;
        let score = if warming {
            detector.learn(value);
            0.0
        } else {
            detector.update(value)
        };
        // The metric's name is allocated once, not once per value.
        match self.scores.get_mut(metric) {
            Some(latest) => *latest = score,
            None => {
                self.scores.insert(metric.to_string(), score);
            }
        }
        let channels = if warming {
            ChannelScores::default()
        } else {
            detector.channels()
        };
        (score, channels)
    }

    /// A detector for `metric`, starting from its saved model when there is a usable one.
    fn restored(&self, metric: &str) -> Detector {
        let mut detector = Detector::new(self.config);
        let Some(models) = &self.models else {
            return detector;
        };
        match models.load(&self.agent, metric, &self.config) {
            Ok(Some(file)) => {
                tracing::debug!(message = "Anomaly model restored.", agent = %self.agent, metric);
                detector.restore_kmeans(file.model);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(message = "Anomaly model not used; it will be retrained.",
                    agent = %self.agent, metric, %error);
            }
        }
        detector
    }

    /// The latest score of each watched metric.
    pub fn scores(&self) -> &BTreeMap<String, f64> {
        &self.scores
    }

    /// Stops watching metrics no longer in `watched`.
    pub fn retain(&mut self, watched: &[String]) {
        self.detectors.retain(|metric, _| watched.contains(metric));
        self.scores.retain(|metric, _| watched.contains(metric));
    }

    /// Saves every trained model; failures are logged, never fatal.
    pub fn save(&self) {
        let Some(models) = &self.models else {
            return;
        };
        for (metric, (detector, _)) in &self.detectors {
            let Some(model) = detector.kmeans_model() else {
                continue;
            };
            let file = ModelFile {
                version: MODEL_FORMAT_VERSION,
                agent: self.agent.clone(),
                metric: metric.clone(),
                parameters: self.config.kmeans,
                model: model.clone(),
                created_ms: crate::clock::now_ms(),
            };
            if let Err(error) = models.save(&file) {
                tracing::warn!(message = "Cannot save an anomaly model.", agent = %self.agent, %error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trained_models_are_saved_and_restored_and_a_corrupt_one_is_retrained() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path());
        let mut watch = AnomalyWatch::new("w-1", Some(store.clone()));
        for i in 0..400 {
            watch.observe("cpu_percent", 20.0 + (i as f64 * 0.3).sin(), i);
        }
        watch.save();
        let saved = dir.path().join("w-1__cpu_percent.json");
        assert!(saved.is_file());

        let mut restarted = AnomalyWatch::new("w-1", Some(store.clone()));
        restarted.observe("cpu_percent", 20.0, 0);
        assert!(
            restarted.detectors["cpu_percent"]
                .0
                .kmeans_model()
                .is_some(),
            "restored"
        );

        std::fs::write(&saved, "not json").unwrap();
        let mut fresh = AnomalyWatch::new("w-1", Some(store));
        let (score, _) = fresh.observe("cpu_percent", 20.0, 0);
        assert_eq!(score, 0.0);
        assert!(
            fresh.detectors["cpu_percent"].0.kmeans_model().is_none(),
            "retrains from scratch"
        );
        assert_eq!(fresh.scores()["cpu_percent"], 0.0);
    }

    #[test]
    fn a_new_series_scores_nothing_until_its_warm_up_is_over() {
        let mut watch = AnomalyWatch::new("w-1", None);
        watch.set_warm_up(300);
        let mut loudest = 0.0f64;
        // Two seconds apart; every new high is spatially novel to a cold detector.
        for i in 0..150 {
            let (score, channels) = watch.observe("cpu_percent", i as f64, i * 2_000);
            loudest = loudest.max(score).max(channels.spatial);
        }
        assert_eq!(loudest, 0.0, "silent for 300 s");
        let (score, _) = watch.observe("cpu_percent", 1_000.0, 300_000);
        assert!(score >= 0.5, "speaks after it: {score}");
    }
}
