//! Loading policy: every `*.toml` in a directory, merged in name order, checked against the
//! schema and then as a whole. Every problem is reported at once as `file:line:col: message`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::check::{Severity, check};
use super::environment::Environment;
use super::model::Policy;
use super::schema::{Structure, check_document, display_path};

/// The shipped default policy, embedded so `demo` runs without any file.
pub const DEFAULT_POLICY: &str = include_str!("../../../../policies/default.toml");
/// The shipped model price table, embedded beside [`DEFAULT_POLICY`].
pub const DEFAULT_PRICES: &str = include_str!("../../../../policies/genai-prices.toml");
/// The files `demo` and `serve` load when given no policy directory: (name, text).
pub const EMBEDDED_POLICY: [(&str, &str); 2] = [
    ("policies/default.toml (embedded)", DEFAULT_POLICY),
    ("policies/genai-prices.toml (embedded)", DEFAULT_PRICES),
];
/// The policy `swarmpilot replay` uses when given none.
pub const REPLAY_POLICY: &str = include_str!("../../../../policies/replay/policy.toml");

/// One problem found in a policy, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PolicyError {
    /// Error or warning.
    pub severity: Severity,
    /// File the problem is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub col: Option<usize>,
    /// Dotted path of the field, when the problem is about one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.field {
            Some(field) if !field.is_empty() => {
                write!(f, ": {severity}: {field}: {}", self.message)
            }
            _ => write!(f, ": {severity}: {}", self.message),
        }
    }
}

/// Every error (and warning) that kept a policy from loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// The errors, in file order.
    pub errors: Vec<PolicyError>,
    /// Warnings found along the way.
    pub warnings: Vec<PolicyError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// A policy that loaded, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedPolicy {
    /// The effective policy.
    pub policy: Policy,
    /// A short hash of the effective policy; equal policies have equal versions.
    pub version: String,
    /// The files it was merged from, in order.
    pub files: Vec<String>,
    /// Suspicious but legal settings.
    pub warnings: Vec<PolicyError>,
    /// Thresholds set by the controller's own actions, applied on top of the files.
    pub overlay: Vec<super::overlay::OverlayEntry>,
    /// Each pool's rules, shared by its agent actors.
    #[serde(skip)]
    pub rules: super::rules_cache::RulesCache,
}

/// Loads one policy document; `name` is used in messages.
pub fn load_str(name: &str, text: &str, env: &dyn Environment) -> Result<LoadedPolicy, LoadError> {
    load_sources(&[(name.to_string(), text.to_string())], env)
}

/// `load_str` where no environment variable is set and no file exists: the core's tests.
#[cfg(test)]
pub(crate) fn load_bare(name: &str, text: &str) -> Result<LoadedPolicy, LoadError> {
    load_str(name, text, &super::ListedEnvironment::default())
}

/// The error of a policy that could not be read at all: `message` about `file`.
pub fn unreadable(file: String, message: String) -> LoadError {
    LoadError {
        errors: vec![PolicyError {
            severity: Severity::Error,
            file,
            line: None,
            col: None,
            field: None,
            message,
        }],
        warnings: Vec::new(),
    }
}

struct Source<'a> {
    name: &'a str,
    text: &'a str,
    document: Spanned<DeTable<'a>>,
}

/// Loads `(name, text)` documents merged in the given order.
pub fn load_sources(
    sources: &[(String, String)],
    env: &dyn Environment,
) -> Result<LoadedPolicy, LoadError> {
    let schema = Structure::of_policy();
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    // Structural problems are pruned from the merged document, so the checks across fields
    // still run on the rest and every problem is reported in one go.
    let mut merged = toml::Table::new();
    let mut pruned_arrays: Vec<Vec<String>> = Vec::new();
    for (name, text) in sources {
        match DeTable::parse(text) {
            Ok(document) => {
                let findings = check_document(&schema, &document);
                if let Ok(mut table) = text.parse::<toml::Table>() {
                    let mut paths: Vec<&Vec<String>> = findings.iter().map(|f| &f.path).collect();
                    // Highest indices first, so one removal does not shift the next.
                    paths.sort_by(|a, b| b.cmp(a));
                    for path in paths {
                        if let Some(array) = prune(&mut table, path) {
                            pruned_arrays.push(array);
                        }
                    }
                    merge(&mut merged, table);
                }
                for finding in findings {
                    let field = Some(finding.field);
                    let span = Some(finding.span);
                    errors.push(at(
                        Severity::Error,
                        name,
                        text,
                        span,
                        field,
                        finding.message,
                    ));
                }
                parsed.push(Source {
                    name,
                    text,
                    document,
                });
            }
            Err(error) => {
                let message = error.message().trim().to_string();
                errors.push(at(Severity::Error, name, text, error.span(), None, message));
            }
        }
    }
    let files: Vec<String> = sources.iter().map(|(name, _)| name.clone()).collect();
    let policy: Policy = match toml::Value::Table(merged).try_into() {
        Ok(policy) => policy,
        // The structural errors already say what is wrong.
        Err(_) if !errors.is_empty() => {
            return Err(LoadError {
                errors,
                warnings: Vec::new(),
            });
        }
        Err(error) => {
            let error: toml::de::Error = error;
            return Err(unreadable(
                files.join(", "),
                error.message().trim().to_string(),
            ));
        }
    };

    let mut warnings = Vec::new();
    for problem in check(&policy, env) {
        // Items removed from an array shift the indices after them: skip what they would
        // mislocate.
        if pruned_arrays
            .iter()
            .any(|array| problem.path.starts_with(array))
        {
            continue;
        }
        let (source, span) = locate(&parsed, &problem.path);
        let (name, text) = source.map_or((files.join(", "), ""), |s| (s.name.to_string(), s.text));
        let diagnostic = at(
            problem.severity,
            &name,
            text,
            span,
            Some(display_path(&problem.path)),
            problem.message,
        );
        match problem.severity {
            Severity::Error => errors.push(diagnostic),
            Severity::Warning => warnings.push(diagnostic),
        }
    }
    if !errors.is_empty() {
        // In file order, then by position, whichever pass found them.
        let rank = |e: &PolicyError| {
            let file = files
                .iter()
                .position(|f| *f == e.file)
                .unwrap_or(usize::MAX);
            (file, e.line, e.col)
        };
        errors.sort_by_key(rank);
        return Err(LoadError { errors, warnings });
    }
    Ok(LoadedPolicy {
        version: version_of(&policy),
        policy,
        files,
        warnings,
        overlay: Vec::new(),
        rules: Default::default(),
    })
}

/// Removes the value at `path` (its table, for a bad `type` tag or a missing field) so the
/// rest of the document can still be checked; returns the array's path if an item of an
/// array was removed.
fn prune(table: &mut toml::Table, path: &[String]) -> Option<Vec<String>> {
    let path = match path.last() {
        Some(last) if last == "type" => &path[..path.len() - 1],
        _ => path,
    };
    let mut root = toml::Value::Table(std::mem::take(table));
    let removed_from = remove_at(&mut root, path, &mut Vec::new());
    if let toml::Value::Table(pruned) = root {
        *table = pruned;
    }
    removed_from
}

fn remove_at(
    value: &mut toml::Value,
    path: &[String],
    walked: &mut Vec<String>,
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let index = first
        .strip_prefix('[')
        .and_then(|i| i.trim_end_matches(']').parse::<usize>().ok());
    if rest.is_empty() {
        return match (value, index) {
            (toml::Value::Array(items), Some(i)) if i < items.len() => {
                items.remove(i);
                Some(walked.clone())
            }
            (toml::Value::Table(table), None) => {
                table.remove(first.as_str());
                None
            }
            _ => None,
        };
    }
    let child = match (value, index) {
        (toml::Value::Array(items), Some(i)) => items.get_mut(i)?,
        (toml::Value::Table(table), None) => table.get_mut(first.as_str())?,
        _ => return None,
    };
    walked.push(first.clone());
    remove_at(child, rest, walked)
}

/// A short, stable hash of the effective policy.
pub fn version_of(policy: &Policy) -> String {
    let canonical = serde_json::to_string(policy).unwrap_or_default();
    // SipHash with fixed keys: the same policy always gets the same version.
    let mut hasher = std::hash::DefaultHasher::new();
    canonical.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn at(
    severity: Severity,
    file: &str,
    text: &str,
    span: Option<Range<usize>>,
    field: Option<String>,
    message: String,
) -> PolicyError {
    let (line, col) = match span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            (Some(line), Some(col))
        }
        None => (None, None),
    };
    PolicyError {
        severity,
        file: file.to_string(),
        line,
        col,
        field,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
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

/// Which file and span a field path of the merged policy comes from. Arrays concatenate in
/// file order, so an index is counted across files; a key comes from the last file that sets
/// it (or, if none does, the last that sets the deepest part of its path).
fn locate<'a>(
    sources: &'a [Source<'a>],
    path: &[String],
) -> (Option<&'a Source<'a>>, Option<Range<usize>>) {
    if let Some(position) = path.iter().position(|s| s.starts_with('[')) {
        let mut index: usize = path[position]
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .unwrap_or(0);
        for source in sources {
            let length = match navigate(&source.document, &path[..position]) {
                (depth, Some(DeValue::Array(items)), _) if depth == position => items.len(),
                _ => 0,
            };
            if index < length {
                let mut local = path.to_vec();
                local[position] = format!("[{index}]");
                let (_, _, span) = navigate(&source.document, &local);
                return (Some(source), Some(span));
            }
            index -= length;
        }
        return (None, None);
    }
    let mut best: Option<(usize, &Source<'_>, Range<usize>)> = None;
    for source in sources {
        let (depth, _, span) = navigate(&source.document, path);
        if best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            best = Some((depth, source, span));
        }
    }
    match best {
        Some((_, source, span)) => (Some(source), Some(span)),
        None => (None, None),
    }
}

/// Follows `path` as far as it goes: how deep, the value reached, and its span.
fn navigate<'d, 'i>(
    document: &'d Spanned<DeTable<'i>>,
    path: &[String],
) -> (usize, Option<&'d DeValue<'i>>, Range<usize>) {
    let mut span = 0..0;
    let mut table = Some(document.get_ref());
    let mut current: Option<&'d DeValue<'i>> = None;
    for (depth, segment) in path.iter().enumerate() {
        let next: Option<&'d Spanned<DeValue<'i>>> = if let Some(index) = segment.strip_prefix('[')
        {
            let index: usize = index.trim_end_matches(']').parse().unwrap_or(usize::MAX);
            match current {
                Some(DeValue::Array(items)) => items.get(index),
                _ => None,
            }
        } else {
            table.and_then(|t| {
                t.iter()
                    .find(|(k, _)| k.get_ref().as_ref() == segment.as_str())
                    .map(|(_, v)| v)
            })
        };
        let Some(next) = next else {
            return (depth, current, span);
        };
        span = next.span();
        current = Some(next.get_ref());
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    (path.len(), current, span)
}
