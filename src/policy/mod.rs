//! The policy as the controller uses it: the pure model and checks of `swarmpilot-core`,
//! plus reading the operator's files, answering the checks from this machine's environment,
//! and the handle through which every actor sees the version in force.
//!
//! Reads policy files; never writes one (the overlay is the store's, `store::overlay`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use swarmpilot_core::policy::*;

mod secrets;
pub use secrets::read_secret;

/// The machine the controller runs on, as the policy checks see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEnvironment;

impl Environment for OsEnvironment {
    fn var_is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some()
    }

    fn file_exists(&self, path: &str) -> bool {
        Path::new(path).is_file()
    }
}

/// Loads every `*.toml` file of `path` (or the one file `path` names), merged in name order.
pub fn load_dir(path: &Path) -> Result<LoadedPolicy, LoadError> {
    let sources = read_sources(path)?;
    load_sources(&sources)
}

/// Reads the policy files of `path` as `(name, text)` pairs, in name order.
pub fn read_sources(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let files = policy_files(path)?;
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file.display().to_string(), text)),
            Err(error) => return Err(unreadable(file.display().to_string(), error.to_string())),
        }
    }
    Ok(sources)
}

/// The `*.toml` files directly in `dir`, sorted; or `dir` itself when it is a file.
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|error| unreadable(dir.display().to_string(), error.to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(unreadable(
            dir.display().to_string(),
            "no *.toml policy files in this directory".to_string(),
        ));
    }
    Ok(files)
}

/// Loads `(name, text)` documents merged in the given order, checked on this machine.
pub fn load_sources(sources: &[(String, String)]) -> Result<LoadedPolicy, LoadError> {
    swarmpilot_core::policy::load_sources(sources, &OsEnvironment)
}

/// Loads one policy document, checked on this machine; `name` is used in messages.
pub fn load_str(name: &str, text: &str) -> Result<LoadedPolicy, LoadError> {
    swarmpilot_core::policy::load_str(name, text, &OsEnvironment)
}

/// Loads the embedded default policy and price table (`EMBEDDED_POLICY`).
pub fn load_embedded() -> Result<LoadedPolicy, LoadError> {
    let sources: Vec<(String, String)> = swarmpilot_core::policy::EMBEDDED_POLICY
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    load_sources(&sources)
}

/// `loaded` with the overlay `entries` applied, checked on this machine.
pub fn overlaid(
    loaded: LoadedPolicy,
    entries: Vec<OverlayEntry>,
) -> Result<LoadedPolicy, LoadError> {
    swarmpilot_core::policy::overlaid(loaded, entries, &OsEnvironment)
}

/// The policy in force, shared by every actor; swapped atomically on reload.
#[derive(Clone)]
pub struct PolicyHandle {
    current: Arc<ArcSwap<LoadedPolicy>>,
}

impl PolicyHandle {
    /// A handle holding `loaded`.
    pub fn new(loaded: LoadedPolicy) -> Self {
        PolicyHandle {
            current: Arc::new(ArcSwap::from_pointee(loaded)),
        }
    }

    /// The version in force now.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        self.current.load_full()
    }

    /// The sampling interval in force.
    pub fn sampling_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.current.load().policy.global.sampling_interval_secs)
    }

    /// Puts `loaded` in force; every later `current()` sees it.
    pub fn replace(&self, loaded: LoadedPolicy) {
        self.current.store(Arc::new(loaded));
    }
}

#[cfg(test)]
mod tests;
