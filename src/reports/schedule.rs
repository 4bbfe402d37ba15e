//! Reports the controller writes by itself: each scheduled period as it ends (`[reports]`
//! in the policy), and the final one when it stops. Where they go, which are due, and a
//! summary for the channels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Format, ReportError, ReportRequest};
use crate::notify::Notification;
use crate::policy::{Policy, PolicyHandle};
use crate::report::{Period, Report, Window};
use crate::store::Store;

/// The directory reports are written to: `[reports] dir`, under `data_dir` unless absolute.
pub fn report_dir(policy: &Policy, data_dir: &Path) -> PathBuf {
    let dir = Path::new(&policy.reports.dir);
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        data_dir.join(dir)
    }
}

/// The forms the policy asks for (unknown names were refused when it loaded).
pub fn formats(policy: &Policy) -> Vec<Format> {
    policy
        .reports
        .formats
        .iter()
        .filter_map(|name| name.parse().ok())
        .collect()
}

/// The scheduled periods whose last complete window at `now_ms` ends after the one each
/// last reported (`done`, by period); the windows are theirs.
pub fn due(periods: &[Period], done: &BTreeMap<Period, i64>, now_ms: i64) -> Vec<(Period, Window)> {
    periods
        .iter()
        .filter_map(|&period| {
            let window = period.last_complete(now_ms)?;
            let last = done.get(&period).copied().unwrap_or(i64::MIN);
            (window.until_ms > last).then_some((period, window))
        })
        .collect()
}

/// Builds the report on `window` and writes it where the policy says; answers the report and
/// the files.
pub fn write_report(
    store: &Store,
    policy: &PolicyHandle,
    data_dir: &Path,
    period: Period,
    window: Window,
    now_ms: i64,
) -> Result<(Report, Vec<PathBuf>), ReportError> {
    let request = ReportRequest {
        period,
        since_ms: Some(window.since_ms),
        until_ms: Some(window.until_ms),
        pool: None,
    };
    let report = super::build(store, policy, &request, now_ms, window.since_ms)?;
    let current = policy.current();
    let dir = report_dir(&current.policy, data_dir);
    let files = super::write_files(&report, &dir, &formats(&current.policy))?;
    Ok((report, files))
}

/// The final report (from `started_ms` to `now_ms`), when the policy asks for one.
pub fn write_final(
    store: &Store,
    policy: &PolicyHandle,
    data_dir: &Path,
    started_ms: i64,
    now_ms: i64,
) -> Result<Option<(Report, Vec<PathBuf>)>, ReportError> {
    if !policy.current().policy.reports.final_report {
        return Ok(None);
    }
    let window = Period::Final.trailing(now_ms, started_ms);
    write_report(store, policy, data_dir, Period::Final, window, now_ms).map(Some)
}

/// A report's summary as a message for the channels, naming the files.
pub fn notification(report: &Report, files: &[PathBuf]) -> Notification {
    let mut text = report.summary.join("\n");
    if !files.is_empty() {
        text.push_str("\n\nFiles:");
        for file in files {
            text.push_str(&format!("\n  {}", file.display()));
        }
    }
    let fleet = report.kpis.first();
    Notification {
        labels: BTreeMap::from([
            ("report".to_string(), report.period.to_string()),
            ("level".to_string(), "info".to_string()),
        ]),
        title: format!(
            "swarmpilot {} report from {}",
            report.period,
            crate::domain::time::rfc3339(report.window.since_ms)
        ),
        text,
        details: serde_json::json!({
            "period": report.period,
            "window": report.window,
            "fleet": fleet,
            "alerts_fired": report.alerts.fired,
            "actions": report.actions.by_state,
            "opportunities": report.opportunities.len(),
        }),
        resolved: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::HOUR_MS;

    /// 2026-12-01T00:00:00Z.
    const T0: i64 = 1_796_083_200_000;

    #[test]
    fn a_period_is_due_once_when_it_ends() {
        let periods = [Period::Hourly, Period::Daily];
        let mut done = BTreeMap::new();
        // Just after midnight, both ended; once noted, neither is due until the next end.
        let now = T0 + 60_000;
        let due_now = due(&periods, &done, now);
        assert_eq!(due_now.len(), 2);
        assert_eq!(
            due_now[1].1,
            Window {
                since_ms: T0 - 24 * HOUR_MS,
                until_ms: T0
            }
        );
        for (period, window) in due_now {
            done.insert(period, window.until_ms);
        }
        assert!(due(&periods, &done, now + 30 * 60_000).is_empty());
        let next = due(&periods, &done, T0 + HOUR_MS + 1);
        assert_eq!(
            next,
            vec![(
                Period::Hourly,
                Window {
                    since_ms: T0,
                    until_ms: T0 + HOUR_MS
                }
            )]
        );
    }
}
