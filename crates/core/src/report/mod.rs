//! Reports over a window of history: what the fleet did, what went wrong, what the
//! controller did about it, where it is heading and what to change.
//!
//! The store streams what it holds into a [`ReportBuilder`] (per-agent steps of each metric,
//! response-time minutes, alert transitions, action log rows, silences); [`ReportBuilder::finish`]
//! computes every section. No clock and no I/O: the window and `generated_ms` are handed in,
//! so the same history gives the same report.
//!
//! How the figures are made:
//! - availability: an agent's minutes with samples, over those plus the minutes an
//!   availability alert (`metric = availability`: offline, error) fired on it;
//! - response time p50/p95/p99: percentiles of the agents' per-minute mean response time,
//!   each minute weighted by its samples, from a log-bucket histogram (1% relative error);
//! - throughput: the pool's summed `throughput_per_s`, averaged over the steps it reported;
//! - trends: an ordinary least-squares line through a pool's per-step means (nalgebra), the
//!   slope's 95% confidence interval from Student's t with n - 2 degrees of freedom;
//!   "significant" means the interval excludes zero;
//! - agent-hours of scaling: each applied scale action's change in agents, times the hours
//!   until the pool's next applied scale action, its rollback, or the window's end.

mod advice;
mod build;
mod events;
mod findings;
mod input;
mod kpis;
mod model;
mod quantile;
mod summary;
mod trend;

#[cfg(test)]
mod tests;

use chrono::Datelike;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use build::{
    AlertInput, LogInput, PoolSettings, ReportBuilder, ReportSpec, RuleSettings, StepInput,
};
pub use events::describe;
pub use model::*;
pub use quantile::LogHistogram;
pub use trend::{LineFit, fit_line, student_t975};

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Which period a report covers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One hour.
    Hourly,
    /// One day.
    Daily,
    /// Seven days (a schedule reports weeks from Monday).
    Weekly,
    /// Thirty days (a schedule reports calendar months).
    Monthly,
    /// Since the controller started.
    Final,
}

/// A period name that is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown period `{0}`: expected hourly, daily, weekly, monthly or final")]
pub struct UnknownPeriod(pub String);

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 5] = [
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
        Period::Final,
    ];

    /// Its name, as the CLI, the API and the policy spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Final => "final",
        }
    }

    /// Its length; `None` for `final`, whose length is the controller's run.
    pub fn length_ms(self) -> Option<i64> {
        match self {
            Period::Hourly => Some(HOUR_MS),
            Period::Daily => Some(DAY_MS),
            Period::Weekly => Some(7 * DAY_MS),
            Period::Monthly => Some(30 * DAY_MS),
            Period::Final => None,
        }
    }

    /// The width of a step of a window's series: a minute for windows up to two hours, an
    /// hour beyond (what the store keeps pre-summed).
    pub fn step_for(window: Window) -> i64 {
        if window.until_ms - window.since_ms <= 2 * HOUR_MS {
            MINUTE_MS
        } else {
            HOUR_MS
        }
    }

    /// The last whole period that ended at or before `now_ms`, on UTC calendar boundaries
    /// (what a schedule reports on): the hour, the day, the week from Monday, the month from
    /// its first day; `None` for `final`.
    pub fn last_complete(self, now_ms: i64) -> Option<Window> {
        let day = now_ms.div_euclid(DAY_MS);
        let (since_ms, until_ms) = match self {
            Period::Hourly => {
                let until = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
                (until - HOUR_MS, until)
            }
            Period::Daily => ((day - 1) * DAY_MS, day * DAY_MS),
            Period::Weekly => {
                // 1970-01-05, day 4, was a Monday.
                let monday = (day - 4).div_euclid(7) * 7 + 4;
                ((monday - 7) * DAY_MS, monday * DAY_MS)
            }
            Period::Monthly => {
                let date = chrono::DateTime::from_timestamp_millis(now_ms)?.date_naive();
                let first = date.with_day(1)?;
                let before = first.pred_opt()?.with_day(1)?;
                let ms = |d: chrono::NaiveDate| {
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_millis())
                };
                (ms(before)?, ms(first)?)
            }
            Period::Final => return None,
        };
        Some(Window { since_ms, until_ms })
    }

    /// The period's length up to `until_ms` (`final`: from `started_ms`). A period of hours
    /// or more ends at the last whole hour, an hour at the last whole minute, so every step
    /// is complete and the window before is as long; `final` keeps the partial last minute.
    pub fn trailing(self, until_ms: i64, started_ms: i64) -> Window {
        match self.length_ms() {
            Some(length) => {
                let step = Period::step_for(Window {
                    since_ms: 0,
                    until_ms: length,
                });
                let until = until_ms.div_euclid(step) * step;
                Window {
                    since_ms: until - length,
                    until_ms: until,
                }
            }
            None => Window::aligned(started_ms.min(until_ms - MINUTE_MS), until_ms),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = UnknownPeriod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPeriod(s.to_string()))
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Window {
    /// The window from `since_ms` to `until_ms`, widened to whole minutes, then to whole
    /// steps (hours beyond two hours), since the store keeps minutes and hours.
    pub fn aligned(since_ms: i64, until_ms: i64) -> Window {
        let widen = |since: i64, until: i64, step: i64| Window {
            since_ms: since.div_euclid(step) * step,
            until_ms: (until.max(since + 1) - 1).div_euclid(step) * step + step,
        };
        let minutes = widen(since_ms, until_ms, MINUTE_MS);
        widen(
            minutes.since_ms,
            minutes.until_ms,
            Period::step_for(minutes),
        )
    }

    /// Its length, milliseconds.
    pub fn length_ms(self) -> i64 {
        self.until_ms - self.since_ms
    }

    /// Its length in hours.
    pub fn hours(self) -> f64 {
        self.length_ms() as f64 / HOUR_MS as f64
    }

    /// The window of the same length just before it.
    pub fn before(self) -> Window {
        Window {
            since_ms: self.since_ms - self.length_ms(),
            until_ms: self.since_ms,
        }
    }

    /// Whether `ts_ms` falls in it.
    pub fn contains(self, ts_ms: i64) -> bool {
        (self.since_ms..self.until_ms).contains(&ts_ms)
    }
}
