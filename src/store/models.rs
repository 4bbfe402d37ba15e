//! Trained anomaly models on disk: one versioned JSON file per (agent, metric) under
//! `DATA_DIR/models/`. A corrupt or incompatible file is reported, never a crash.

use std::path::{Path, PathBuf};

use crate::analytics::anomaly::{DetectorConfig, ModelFile};

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing failed.
    #[error("cannot access model file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a model file.
    #[error("model file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file is a model, but not one the running detector can use.
    #[error("model file {path} is incompatible: {reason}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The directory of model files.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// Models kept in `dir` (created on first save).
    pub fn new(dir: &Path) -> Self {
        ModelStore {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, agent: &str, metric: &str) -> PathBuf {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        self.dir
            .join(format!("{}__{}.json", safe(agent), safe(metric)))
    }

    /// The model of (agent, metric), if one was saved and fits `config`.
    pub fn load(
        &self,
        agent: &str,
        metric: &str,
        config: &DetectorConfig,
    ) -> Result<Option<ModelFile>, ModelError> {
        let path = self.path(agent, metric);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ModelError::Io { path, source }),
        };
        let file: ModelFile = serde_json::from_str(&text).map_err(|e| ModelError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(reason) = file.incompatibility(config) {
            return Err(ModelError::Incompatible { path, reason });
        }
        Ok(Some(file))
    }

    /// Writes a model atomically (temporary file, then rename).
    pub fn save(&self, file: &ModelFile) -> Result<(), ModelError> {
        let path = self.path(&file.agent, &file.metric);
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let text = serde_json::to_string_pretty(file).map_err(|e| ModelError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::{Detector, MODEL_FORMAT_VERSION};

    fn trained() -> (DetectorConfig, ModelFile) {
        let config = DetectorConfig::default();
        let mut detector = Detector::new(config);
        for i in 0..400 {
            detector.update((i as f64 * 0.2).sin());
        }
        let file = ModelFile {
            version: MODEL_FORMAT_VERSION,
            agent: "worker-1".into(),
            metric: "cpu_percent".into(),
            parameters: config.kmeans,
            model: detector.kmeans_model().unwrap().clone(),
            created_ms: 1,
        };
        (config, file)
    }

    #[test]
    fn saved_models_load_back_and_bad_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path());
        let (config, file) = trained();
        assert!(
            store
                .load("worker-1", "cpu_percent", &config)
                .unwrap()
                .is_none()
        );
        store.save(&file).unwrap();
        assert_eq!(
            store.load("worker-1", "cpu_percent", &config).unwrap(),
            Some(file.clone())
        );

        let path = dir.path().join("worker-1__cpu_percent.json");
        std::fs::write(&path, "{\"version\": 1, \"agent\":").unwrap();
        assert!(matches!(
            store.load("worker-1", "cpu_percent", &config),
            Err(ModelError::Corrupt { .. })
        ));

        let old = ModelFile {
            version: 0,
            ..file.clone()
        };
        store.save(&old).unwrap();
        let error = store
            .load("worker-1", "cpu_percent", &config)
            .unwrap_err()
            .to_string();
        assert!(error.contains("format version 0"), "{error}");

        let mut other = config;
        other.kmeans.lags = 3;
        store.save(&file).unwrap();
        assert!(matches!(
            store.load("worker-1", "cpu_percent", &other),
            Err(ModelError::Incompatible { .. })
        ));
    }
}
