//! The managed overlay's file in the data directory: the thresholds set by
//! `adjust_threshold` actions (`policy::OverlayEntry`), read at every load and written
//! atomically when an action sets or removes one.

use std::path::Path;

use crate::policy::{OVERLAY_FILE, OverlayEntry};

/// Errors reading or writing the overlay.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The file could not be read or written.
    #[error("cannot access the policy overlay {path}")]
    Io {
        /// The overlay file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid overlay.
    #[error("the policy overlay {path} is corrupt")]
    Corrupt {
        /// The overlay file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the overlay of `data_dir`; no file means no entries.
pub fn read_overlay(data_dir: &Path) -> Result<Vec<OverlayEntry>, OverlayError> {
    let path = data_dir.join(OVERLAY_FILE);
    let display = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| OverlayError::Corrupt {
            path: display,
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(OverlayError::Io {
            path: display,
            source,
        }),
    }
}

/// Writes the overlay of `data_dir` atomically (a temporary file renamed over it).
pub fn write_overlay(data_dir: &Path, entries: &[OverlayEntry]) -> Result<(), OverlayError> {
    let path = data_dir.join(OVERLAY_FILE);
    let io = |source| OverlayError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = serde_json::to_string_pretty(entries).map_err(|source| OverlayError::Corrupt {
        path: path.display().to_string(),
        source,
    })?;
    let temporary = data_dir.join(format!("{OVERLAY_FILE}.tmp"));
    std::fs::write(&temporary, text).map_err(io)?;
    std::fs::rename(&temporary, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rule: &str, above: f64) -> OverlayEntry {
        OverlayEntry {
            action_id: 7,
            rule: rule.into(),
            above,
            previous: 0.0,
            created_ms: 0,
        }
    }

    #[test]
    fn overlay_file_round_trips_and_reports_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_overlay(dir.path()).unwrap().is_empty());
        write_overlay(dir.path(), &[entry("hot", 75.0)]).unwrap();
        assert_eq!(read_overlay(dir.path()).unwrap(), [entry("hot", 75.0)]);
        std::fs::write(dir.path().join(OVERLAY_FILE), "{not json").unwrap();
        assert!(matches!(
            read_overlay(dir.path()),
            Err(OverlayError::Corrupt { .. })
        ));
    }
}
