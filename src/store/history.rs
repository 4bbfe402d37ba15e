//! The store's history tables: alert state transitions and effective policy versions.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::clock;

/// Columns the alert history gained after its first version.
pub(super) const ALERT_COLUMNS: &[(&str, &str)] = &[
    ("metric", "TEXT NOT NULL DEFAULT ''"),
    ("threshold", "REAL"),
    ("message", "TEXT NOT NULL DEFAULT ''"),
];

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
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO alert_history (ts_ms, rule, agent, pool, level, from_state, to_state,
                                            value, metric, threshold, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for alert in alerts {
                insert.execute(params![
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
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
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
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, ts_ms, rule, agent, pool, level, from_state, to_state, value,
                    metric, threshold, message
             FROM alert_history
             WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR agent = ?2)
               AND (?3 IS NULL OR pool = ?3) AND (?4 IS NULL OR seq < ?4)
             ORDER BY seq DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                filter.rule,
                filter.agent,
                filter.pool,
                filter.before_seq,
                filter.limit as i64
            ],
            |row| {
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
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        self.lock().execute(
            "INSERT INTO policy_versions (ts_ms, version, files, diff, actor)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                self.clock.now_ms(),
                version,
                serde_json::to_string(files)?,
                diff,
                actor
            ],
        )?;
        Ok(())
    }

    /// The policy versions that became effective, newest first.
    pub fn policy_versions(&self, limit: usize) -> Result<Vec<PolicyVersionRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, ts_ms, version, files, diff, actor FROM policy_versions
             ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], |row| {
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
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
