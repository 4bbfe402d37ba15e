//! The store's history tables: alert state transitions and effective policy versions.

use serde::Serialize;

use super::sql::values;
use super::{Store, StoreError};
use crate::clock;

/// One alert state change, as recorded in the alert history.
#[derive(Debug, Clone)]
pub struct AlertTransition<'a> {
    /// Epoch milliseconds.
    pub ts_ms: i64,
    /// Rule name.
    pub rule: &'a str,
    /// Agent the alert is about.
    pub agent: &'a str,
    /// That agent's pool.
    pub pool: &'a str,
    /// Severity name.
    pub level: &'a str,
    /// State before.
    pub from_state: &'a str,
    /// State after.
    pub to_state: &'a str,
    /// The value that caused the change.
    pub value: f64,
    /// The metric its rule watches.
    pub metric: &'a str,
    /// Its rule's threshold, if the rule is one.
    pub threshold: Option<f64>,
    /// What the alert means.
    pub message: &'a str,
}

impl Store {
    /// Appends one alert state transition to the alert history.
    pub fn record_alert(&self, alert: &AlertTransition<'_>) -> Result<(), StoreError> {
        self.record_alerts(std::slice::from_ref(alert))
    }

    /// Appends alert state transitions to the alert history in one transaction: a storm of
    /// them costs one commit, not one each.
    pub fn record_alerts(&self, alerts: &[AlertTransition<'_>]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        self.with_tx(|db| {
            for alert in alerts {
                db.execute(
                    "INSERT INTO alert_history (ts_ms, rule, agent, pool, level, from_state,
                                                to_state, value, metric, threshold, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    &values![
                        alert.ts_ms,
                        alert.rule,
                        alert.agent,
                        alert.pool,
                        alert.level,
                        alert.from_state,
                        alert.to_state,
                        alert.value,
                        alert.metric,
                        alert.threshold,
                        alert.message
                    ],
                )?;
            }
            Ok(())
        })
    }
}

/// One row of the alert history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertHistoryRow {
    /// Row number, increasing.
    pub seq: i64,
    /// Epoch milliseconds.
    pub ts_ms: i64,
    /// RFC 3339 form of `ts_ms`.
    pub time: String,
    /// Rule name.
    pub rule: String,
    /// Agent the alert is about.
    pub agent: String,
    /// That agent's pool.
    pub pool: String,
    /// Severity name.
    pub level: String,
    /// State before.
    pub from_state: String,
    /// State after (`acknowledged` for an acknowledgement).
    pub to_state: String,
    /// The value that caused the change.
    pub value: f64,
    /// The metric its rule watches (empty in rows written before it was recorded).
    pub metric: String,
    /// Its rule's threshold, if the rule is one.
    pub threshold: Option<f64>,
    /// What the alert means (empty in rows written before it was recorded).
    pub message: String,
}

/// Which alert history rows to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertHistoryFilter {
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only rows older than this row number (the next page).
    pub before_seq: Option<i64>,
    /// At most this many rows.
    pub limit: usize,
}

impl Store {
    /// Alert history rows matching `filter`, newest first.
    pub fn alert_history(
        &self,
        filter: &AlertHistoryFilter,
    ) -> Result<Vec<AlertHistoryRow>, StoreError> {
        let rows = self.with_db(|db| {
            db.query(
                "SELECT seq, ts_ms, rule, agent, pool, level, from_state, to_state, value,
                        metric, threshold, message
                 FROM alert_history
                 WHERE (CAST(?1 AS TEXT) IS NULL OR rule = ?1)
                   AND (CAST(?2 AS TEXT) IS NULL OR agent = ?2)
                   AND (CAST(?3 AS TEXT) IS NULL OR pool = ?3)
                   AND (CAST(?4 AS BIGINT) IS NULL OR seq < ?4)
                 ORDER BY seq DESC LIMIT ?5",
                &values![
                    filter.rule.as_deref(),
                    filter.agent.as_deref(),
                    filter.pool.as_deref(),
                    filter.before_seq,
                    filter.limit
                ],
            )
        })?;
        rows.iter()
            .map(|row| {
                let ts_ms: i64 = row.get(1)?;
                Ok(AlertHistoryRow {
                    seq: row.get(0)?,
                    ts_ms,
                    time: clock::rfc3339(ts_ms),
                    rule: row.get(2)?,
                    agent: row.get(3)?,
                    pool: row.get(4)?,
                    level: row.get(5)?,
                    from_state: row.get(6)?,
                    to_state: row.get(7)?,
                    value: row.get(8)?,
                    metric: row.get(9)?,
                    threshold: row.get(10)?,
                    message: row.get(11)?,
                })
            })
            .collect()
    }
}

/// One policy version that became effective.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PolicyVersionRow {
    /// Row number, increasing.
    pub seq: i64,
    /// Epoch milliseconds when it became effective.
    pub ts_ms: i64,
    /// RFC 3339 form of `ts_ms`.
    pub time: String,
    /// The policy's version hash.
    pub version: String,
    /// The files it was merged from.
    pub files: Vec<String>,
    /// Unified diff against the version before it (empty for the first).
    pub diff: String,
    /// What made it effective: `startup`, `watcher` or a user.
    pub actor: String,
}

impl Store {
    /// Records that a policy version became effective.
    pub fn record_policy_version(
        &self,
        version: &str,
        files: &[String],
        diff: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let files = serde_json::to_string(files)?;
        self.with_tx(|db| {
            db.execute(
                "INSERT INTO policy_versions (ts_ms, version, files, diff, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                &values![now, version, files, diff, actor],
            )
        })?;
        Ok(())
    }

    /// The policy versions that became effective, newest first.
    pub fn policy_versions(&self, limit: usize) -> Result<Vec<PolicyVersionRow>, StoreError> {
        let rows = self.with_db(|db| {
            db.query(
                "SELECT seq, ts_ms, version, files, diff, actor FROM policy_versions
                 ORDER BY seq DESC LIMIT ?1",
                &values![limit],
            )
        })?;
        rows.iter()
            .map(|row| {
                let ts_ms: i64 = row.get(1)?;
                let files: String = row.get(3)?;
                Ok(PolicyVersionRow {
                    seq: row.get(0)?,
                    ts_ms,
                    time: clock::rfc3339(ts_ms),
                    version: row.get(2)?,
                    files: serde_json::from_str(&files).unwrap_or_default(),
                    diff: row.get(4)?,
                    actor: row.get(5)?,
                })
            })
            .collect()
    }
}
