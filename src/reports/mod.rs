//! Reports on the controller's history, built from the store (minute and hour rollups, the
//! alert history, the action log) and never from live memory, so a report after a restart is
//! complete. `swarmpilot_core::report` computes the sections; this module asks the store,
//! takes the pools and rules from the policy, and renders text, JSON, CSV and HTML (charts
//! as inline SVG). The API's `GET /api/v1/reports/{period}`, `swarmpilot report`, the
//! schedule (`schedule.rs`) and the final report at shutdown all come through here.

mod charts;
mod html;
pub mod schedule;
pub mod tables;
pub mod text;

use std::path::{Path, PathBuf};

use crate::policy::PolicyHandle;
use crate::report::{
    Period, PoolSettings, Report, ReportBuilder, ReportSpec, RuleSettings, Window,
};
use crate::store::{Store, StoreError};

pub use html::html;
pub use text::{csv, text};

/// A form a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text.
    Text,
    /// JSON, everything with units.
    Json,
    /// CSV, one block per table.
    Csv,
    /// One HTML page with inline SVG charts.
    Html,
}

impl Format {
    /// Every form.
    pub const ALL: [Format; 4] = [Format::Text, Format::Json, Format::Csv, Format::Html];

    /// Its name, as `--format` and `format=` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }

    /// The file extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            other => other.as_str(),
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown format `{s}`: expected text, json, csv or html"))
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// The period.
    pub period: Period,
    /// Start of the window; by default one period before its end.
    pub since_ms: Option<i64>,
    /// End of the window; by default now.
    pub until_ms: Option<i64>,
    /// Only this pool.
    pub pool: Option<String>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The window ends before it starts.
    #[error("`since` must be before `until`")]
    EmptyWindow,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ReportRequest {
    /// The window asked for, given the time now and the controller's start.
    pub fn window(&self, now_ms: i64, started_ms: i64) -> Result<Window, ReportError> {
        if self.since_ms.is_none() && self.until_ms.is_none() {
            return Ok(self.period.trailing(now_ms, started_ms));
        }
        let until = self.until_ms.unwrap_or(now_ms);
        let since = self.since_ms.unwrap_or_else(|| {
            self.period
                .length_ms()
                .map_or(started_ms, |length| until - length)
        });
        if since >= until {
            return Err(ReportError::EmptyWindow);
        }
        Ok(Window::aligned(since, until))
    }
}

/// Builds the report `request` asks for from `store`, with the pools and rules of `policy`.
pub fn build(
    store: &Store,
    policy: &PolicyHandle,
    request: &ReportRequest,
    now_ms: i64,
    started_ms: i64,
) -> Result<Report, ReportError> {
    let window = request.window(now_ms, started_ms)?;
    let current = policy.current();
    let policy = &current.policy;
    let mut rules = Vec::new();
    for name in policy.pools.keys() {
        for rule in current.rules.get(policy, name).iter() {
            rules.push(RuleSettings {
                name: rule.name.clone(),
                metric: rule.metric.clone(),
                above: rule.above,
                pool: Some(name.clone()),
            });
        }
    }
    let spec = ReportSpec {
        period: request.period,
        window,
        generated_ms: now_ms,
        pool: request.pool.clone(),
        pools: policy
            .pools
            .iter()
            .map(|(name, p)| PoolSettings {
                name: name.clone(),
                min_agents: p.min_agents,
                max_agents: p.max_agents,
                target_cpu_percent: p.target_cpu_percent,
                tolerance: p.tolerance,
            })
            .collect(),
        rules,
        currency: policy.genai.currency.clone(),
    };
    let mut builder = ReportBuilder::new(spec);
    store.feed_report(&mut builder)?;
    Ok(builder.finish())
}

/// `report` in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        // A report is plain data; serializing it cannot fail.
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Csv => csv(report),
        Format::Html => html(report),
    }
}

/// The file stem of `report`: `daily-20261206T1400Z` (its window's start, UTC).
pub fn file_stem(report: &Report) -> String {
    stem(report.period, report.window.since_ms)
}

/// The file stem of the report on `period` from `since_ms`.
pub fn stem(period: Period, since_ms: i64) -> String {
    let start = crate::domain::time::rfc3339(since_ms);
    let compact: String = start
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(13)
        .collect();
    format!("{period}-{compact}Z")
}

/// Writes `report` into `dir` in each of `formats`; answers the files written.
pub fn write_files(
    report: &Report,
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>, ReportError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    let mut written = Vec::new();
    for &format in formats {
        let path = dir.join(format!("{}.{}", file_stem(report), format.extension()));
        write_whole(&path, &render(report, format)).map_err(failed(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `text` to a file beside `path`, then renames it there: a reader (or a process
/// that exits midway) never sees half a report.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// Writes each table of `report` as its own CSV file in `dir`; answers the files written.
pub fn write_csv_tables(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    let mut written = Vec::new();
    for table in tables::tables(report) {
        let path = dir.join(format!("{}.csv", table.name));
        write_whole(&path, &text::csv_table(&table, false)).map_err(failed(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
