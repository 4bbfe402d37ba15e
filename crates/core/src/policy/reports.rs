//! `[reports]`: which reports the controller writes by itself, where, and who hears of them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Period;

/// Scheduled reports and the final report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportsPolicy {
    /// Periods to report on as each ends (UTC boundaries: hourly on the hour, the others at
    /// midnight): `hourly`, `daily`, `weekly`, `monthly`.
    #[serde(default)]
    pub periods: Vec<Period>,
    /// Where to write them: a directory, relative to the data directory unless absolute.
    #[serde(default = "default_dir")]
    pub dir: String,
    /// Forms to write: `text`, `json`, `csv`, `html`.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Channels to send each report's summary to.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Write a final report (since the start) when `serve` or `demo` stops.
    #[serde(default = "default_final", rename = "final")]
    pub final_report: bool,
}

fn default_dir() -> String {
    "reports".into()
}

fn default_formats() -> Vec<String> {
    vec!["html".into(), "json".into()]
}

const fn default_final() -> bool {
    true
}

impl Default for ReportsPolicy {
    fn default() -> Self {
        ReportsPolicy {
            periods: Vec::new(),
            dir: default_dir(),
            formats: default_formats(),
            channels: Vec::new(),
            final_report: default_final(),
        }
    }
}

/// The forms a report is written in.
pub const REPORT_FORMATS: [&str; 4] = ["text", "json", "csv", "html"];
