//! Loading policy files: every `*.toml` in a directory, merged in name order, then checked.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::Policy;

/// The shipped default policy, embedded so `demo` runs without any file.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");

/// One problem found in a policy, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// File the problem is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub col: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(line), Some(col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem that kept a policy from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// All problems found, in file order.
    pub errors: Vec<PolicyError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// Loads every `*.toml` file of `dir` (or the one file `dir` names), merged in name order.
pub fn load_dir(dir: &Path) -> Result<Policy, LoadError> {
    let files = policy_files(dir)?;
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path.display().to_string(), text)),
            Err(error) => return Err(single(path.display().to_string(), error.to_string())),
        }
    }
    load_sources(&sources)
}

/// Loads one policy document; `name` is used in error messages.
pub fn load_str(name: &str, text: &str) -> Result<Policy, LoadError> {
    load_sources(&[(name.to_string(), text.to_string())])
}

fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|error| single(dir.display().to_string(), error.to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(single(
            dir.display().to_string(),
            "no *.toml policy files in this directory".to_string(),
        ));
    }
    Ok(files)
}

fn single(file: String, message: String) -> LoadError {
    LoadError {
        errors: vec![PolicyError {
            file,
            line: None,
            col: None,
            message,
        }],
    }
}

fn load_sources(sources: &[(String, String)]) -> Result<Policy, LoadError> {
    let mut errors = Vec::new();
    let mut merged = toml::Table::new();
    for (name, text) in sources {
        // Each file must make sense alone, so its errors can point into it.
        if let Err(error) = toml::from_str::<Policy>(text) {
            errors.push(located(name, text, &error));
            continue;
        }
        match text.parse::<toml::Table>() {
            Ok(table) => merge(&mut merged, table),
            Err(error) => errors.push(located(name, text, &error)),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError { errors });
    }
    let label = sources
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let policy: Policy = toml::Value::Table(merged)
        .try_into()
        .map_err(|error: toml::de::Error| single(label.clone(), error.message().to_string()))?;
    let errors: Vec<PolicyError> = check(&policy)
        .into_iter()
        .map(|message| PolicyError {
            file: label.clone(),
            line: None,
            col: None,
            message,
        })
        .collect();
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(LoadError { errors })
    }
}

fn located(name: &str, text: &str, error: &toml::de::Error) -> PolicyError {
    let (line, col) = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (Some(line), Some(col))
        }
        None => (None, None),
    };
    PolicyError {
        file: name.to_string(),
        line,
        col,
        message: error.message().trim().to_string(),
    }
}

/// Tables merge key by key; arrays (such as `[[alerts]]`) concatenate; other values override.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(left)), toml::Value::Table(right)) => merge(left, right),
            (Some(toml::Value::Array(left)), toml::Value::Array(right)) => left.extend(right),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Checks that span fields: every problem at once, each naming its field.
fn check(policy: &Policy) -> Vec<String> {
    let mut errors = Vec::new();
    let interval = policy.global.sampling_interval_secs;
    if !(1..=10).contains(&interval) {
        errors.push(format!(
            "global.sampling_interval_secs: {interval} is outside 1-10 seconds"
        ));
    }
    if policy.global.ring_buffer_size == 0 {
        errors.push("global.ring_buffer_size: must be at least 1".to_string());
    }
    for (name, pool) in &policy.pools {
        if pool.min_agents > pool.max_agents {
            errors.push(format!(
                "pools.{name}.min_agents: {} is above max_agents {}",
                pool.min_agents, pool.max_agents
            ));
        }
        if pool.max_agents == 0 {
            errors.push(format!("pools.{name}.max_agents: must be at least 1"));
        }
        if !(pool.target_cpu_percent > 0.0 && pool.target_cpu_percent.is_finite()) {
            errors.push(format!(
                "pools.{name}.target_cpu_percent: must be a positive number"
            ));
        }
        if !(0.0..1.0).contains(&pool.tolerance) {
            errors.push(format!("pools.{name}.tolerance: must be in [0, 1)"));
        }
    }
    for (index, rule) in policy.alerts.iter().enumerate() {
        if let Some(pool) = &rule.pool
            && !policy.pools.contains_key(pool)
        {
            errors.push(format!(
                "alerts[{index}].pool: no pool named {pool:?} (rule {:?})",
                rule.name
            ));
        }
        if policy.alerts[..index].iter().any(|r| r.name == rule.name) {
            errors.push(format!(
                "alerts[{index}].name: {:?} is defined twice",
                rule.name
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: &str) {
        let error = load_str("p.toml", text).expect_err("policy should be rejected");
        let rendered = error.to_string();
        assert!(
            rendered.contains(expected),
            "expected {expected:?} in:\n{rendered}"
        );
    }

    #[test]
    fn default_policy_loads() {
        let policy = load_str("default.toml", DEFAULT_POLICY).unwrap();
        let worker = policy.pool("worker").expect("pool worker");
        assert_eq!((worker.min_agents, worker.max_agents), (2, 8));
        assert_eq!(policy.global.sampling_interval_secs, 2);
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        check_error(
            "[global]\nsampling_interval_secs = \"two\"\n",
            "p.toml:2:26:",
        );
        check_error(
            "[pools.w]\nmin_agentz = 1\n",
            "p.toml:2:1: unknown field `min_agentz`",
        );
        check_error("[global\n", "p.toml:1:");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        check_error(
            "[pools.w]\nmin_agents = 5\nmax_agents = 2\n",
            "pools.w.min_agents: 5 is above max_agents 2",
        );
        check_error(
            "[global]\nsampling_interval_secs = 30\n",
            "global.sampling_interval_secs: 30 is outside 1-10 seconds",
        );
        check_error(
            "[[alerts]]\nname = \"x\"\nmetric = \"cpu_percent\"\nabove = 1\npool = \"nope\"\n",
            "alerts[0].pool: no pool named \"nope\"",
        );
    }

    #[test]
    fn directory_files_merge_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("10-pools.toml"),
            "[pools.a]\nmax_agents = 3\n[[alerts]]\nname = \"one\"\nmetric = \"m\"\nabove = 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("20-override.toml"),
            "[pools.a]\nmax_agents = 4\n[[alerts]]\nname = \"two\"\nmetric = \"m\"\nabove = 2\n",
        )
        .unwrap();
        let policy = load_dir(dir.path()).unwrap();
        assert_eq!(policy.pool("a").unwrap().max_agents, 4);
        assert_eq!(policy.alerts.len(), 2);
    }
}
