//! The `rollups` table: one row per (agent, metric, minute) with the minute's min, max, mean,
//! count and p95, written in batches and read back re-aggregated to a coarser step.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::analytics::rollup::MinuteSummary;

/// One finished minute of one agent's metric, for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// Agent id.
    pub agent: String,
    /// The agent's pool when the minute was summed.
    pub pool: String,
    /// Metric name.
    pub metric: String,
    /// The minute.
    pub summary: MinuteSummary,
}

/// One point of a series read back: the minutes of one step, combined.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SeriesPoint {
    /// Start of the step, epoch milliseconds (a multiple of the step).
    pub ts_ms: i64,
    /// Smallest value of the step.
    pub min: f64,
    /// Largest value of the step.
    pub max: f64,
    /// Mean of the step's values (the minutes' means weighted by their counts).
    pub mean: f64,
    /// Number of values.
    pub count: u64,
    /// The largest p95 of the step's minutes (an upper bound of the step's own p95); `None`
    /// when no minute had enough values for one.
    pub p95: Option<f64>,
}

/// Which points to read.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Agent id.
    pub agent: String,
    /// Metric name.
    pub metric: String,
    /// Minutes starting at or after this, epoch milliseconds.
    pub since_ms: i64,
    /// Minutes starting before this, epoch milliseconds.
    pub until_ms: i64,
    /// Width of each point, milliseconds (a multiple of a minute).
    pub step_ms: i64,
    /// At most this many points, the oldest first.
    pub limit: usize,
}

pub(super) const ROLLUP_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollups (
    agent TEXT NOT NULL, metric TEXT NOT NULL, minute_ms INTEGER NOT NULL,
    min REAL NOT NULL, max REAL NOT NULL, mean REAL NOT NULL, count INTEGER NOT NULL, p95 REAL,
    PRIMARY KEY (agent, metric, minute_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollups_minute ON rollups (minute_ms);
CREATE TABLE IF NOT EXISTS rollup_hours (
    agent TEXT NOT NULL, metric TEXT NOT NULL, hour_ms INTEGER NOT NULL, pool TEXT NOT NULL,
    min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,
    minutes INTEGER NOT NULL, p95 REAL,
    PRIMARY KEY (agent, metric, hour_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_hours_hour ON rollup_hours (hour_ms);
";

/// Milliseconds in an hour: the step of `rollup_hours`.
pub const HOUR_MS: i64 = 3_600_000;

/// Hours are kept this long at least, whatever the retention of minutes: two months, so a
/// monthly report has the month before it.
pub const HOURS_KEPT_MS: i64 = 62 * 24 * HOUR_MS;

/// Fills `rollup_hours` from the minutes of a database written before it existed (their pool
/// is unknown: empty).
pub(super) fn backfill_hours(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let empty: bool = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM rollup_hours) AND EXISTS (SELECT 1 FROM rollups)",
        [],
        |row| row.get(0),
    )?;
    if empty {
        conn.execute(
            "INSERT INTO rollup_hours (agent, metric, hour_ms, pool, min, max, sum, count,
                                       minutes, p95)
             SELECT agent, metric, (minute_ms / ?1) * ?1, '', MIN(min), MAX(max),
                    SUM(mean * count), SUM(count), COUNT(*), MAX(p95)
             FROM rollups GROUP BY agent, metric, (minute_ms / ?1) * ?1",
            params![HOUR_MS],
        )?;
    }
    Ok(())
}

impl Store {
    /// Writes finished minutes in one transaction, each also into its hour. A minute already
    /// stored (late samples, an actor restarted mid-minute) is merged: min of mins, max of
    /// maxes, count-weighted mean, summed counts, the larger p95; its hour counts it once.
    pub fn write_rollups(&self, rows: &[RollupRow]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut fresh = tx.prepare_cached(
                "INSERT OR IGNORE INTO rollups (agent, metric, minute_ms, min, max, mean, count,
                                                p95)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut hour = tx.prepare_cached(
                "INSERT INTO rollup_hours (agent, metric, hour_ms, pool, min, max, sum, count,
                                           minutes, p95)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (agent, metric, hour_ms) DO UPDATE SET
                    pool = excluded.pool,
                    min = MIN(min, excluded.min),
                    max = MAX(max, excluded.max),
                    sum = sum + excluded.sum,
                    count = count + excluded.count,
                    minutes = minutes + excluded.minutes,
                    p95 = CASE WHEN p95 IS NULL THEN excluded.p95
                               WHEN excluded.p95 IS NULL THEN p95
                               ELSE MAX(p95, excluded.p95) END",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO rollups (agent, metric, minute_ms, min, max, mean, count, p95)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (agent, metric, minute_ms) DO UPDATE SET
                    min = MIN(min, excluded.min),
                    max = MAX(max, excluded.max),
                    mean = (mean * count + excluded.mean * excluded.count)
                           / (count + excluded.count),
                    count = count + excluded.count,
                    p95 = CASE WHEN p95 IS NULL THEN excluded.p95
                               WHEN excluded.p95 IS NULL THEN p95
                               ELSE MAX(p95, excluded.p95) END",
            )?;
            for row in rows {
                let s = &row.summary;
                let values = params![
                    row.agent,
                    row.metric,
                    s.minute_ms,
                    s.min,
                    s.max,
                    s.mean,
                    s.count as i64,
                    s.p95
                ];
                let new_minute = fresh.execute(values)? == 1;
                if !new_minute {
                    insert.execute(values)?;
                }
                hour.execute(params![
                    row.agent,
                    row.metric,
                    s.minute_ms.div_euclid(HOUR_MS) * HOUR_MS,
                    row.pool,
                    s.min,
                    s.max,
                    s.mean * s.count as f64,
                    s.count as i64,
                    i64::from(new_minute),
                    s.p95
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The points of one series, each combining the minutes of one step, oldest first.
    pub fn read_series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT (minute_ms / ?5) * ?5 AS step_ms, MIN(min), MAX(max),
                    SUM(mean * count) / SUM(count), SUM(count), MAX(p95)
             FROM rollups
             WHERE agent = ?1 AND metric = ?2 AND minute_ms >= ?3 AND minute_ms < ?4
             GROUP BY step_ms ORDER BY step_ms LIMIT ?6",
        )?;
        let step = query.step_ms.max(1);
        let rows = stmt.query_map(
            params![
                query.agent,
                query.metric,
                query.since_ms,
                query.until_ms,
                step,
                query.limit as i64
            ],
            |row| {
                Ok(SeriesPoint {
                    ts_ms: row.get(0)?,
                    min: row.get(1)?,
                    max: row.get(2)?,
                    mean: row.get(3)?,
                    count: row.get::<_, i64>(4)? as u64,
                    p95: row.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the minutes that started before `cutoff_ms`, and the hours that ended
    /// [`HOURS_KEPT_MS`] before now or by `cutoff_ms`, whichever is earlier (a monthly
    /// report and the month before it need hours past a short retention); answers how many
    /// minutes.
    pub fn delete_rollups_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let hours_cutoff = cutoff_ms.min(self.clock.now_ms() - HOURS_KEPT_MS);
        let conn = self.lock();
        conn.execute(
            "DELETE FROM rollup_hours WHERE hour_ms + ?2 <= ?1",
            params![hours_cutoff, HOUR_MS],
        )?;
        Ok(conn.execute(
            "DELETE FROM rollups WHERE minute_ms < ?1",
            params![cutoff_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::rollup::MINUTE_MS;

    const T0: i64 = 1_700_000_040_000; // a multiple of two minutes

    fn row(minute: i64, min: f64, max: f64, mean: f64, count: u64, p95: Option<f64>) -> RollupRow {
        RollupRow {
            agent: "a-1".into(),
            pool: "p".into(),
            metric: "queue_size".into(),
            summary: MinuteSummary {
                minute_ms: T0 + minute * MINUTE_MS,
                min,
                max,
                mean,
                count,
                p95,
            },
        }
    }

    fn read(store: &Store, since: i64, step_minutes: i64) -> Vec<SeriesPoint> {
        store
            .read_series(&SeriesQuery {
                agent: "a-1".into(),
                metric: "queue_size".into(),
                since_ms: T0 + since * MINUTE_MS,
                until_ms: T0 + 100 * MINUTE_MS,
                step_ms: step_minutes * MINUTE_MS,
                limit: 100,
            })
            .unwrap()
    }

    #[test]
    fn minutes_are_read_back_and_combined_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(T0 % (2 * MINUTE_MS), 0);
        store
            .write_rollups(&[
                row(0, 1.0, 5.0, 3.0, 10, Some(5.0)),
                row(1, 2.0, 9.0, 6.0, 5, Some(8.0)),
                row(2, 4.0, 4.0, 4.0, 1, None),
            ])
            .unwrap();
        let by_minute = read(&store, 0, 1);
        assert_eq!(by_minute.len(), 3);
        assert_eq!(by_minute[2].p95, None);
        assert_eq!(by_minute[1].ts_ms, T0 + MINUTE_MS);

        let by_two = read(&store, 0, 2);
        assert_eq!(
            by_two,
            vec![
                SeriesPoint {
                    ts_ms: T0,
                    min: 1.0,
                    max: 9.0,
                    mean: 4.0, // (3 × 10 + 6 × 5) / 15
                    count: 15,
                    p95: Some(8.0),
                },
                SeriesPoint {
                    ts_ms: T0 + 2 * MINUTE_MS,
                    min: 4.0,
                    max: 4.0,
                    mean: 4.0,
                    count: 1,
                    p95: None,
                },
            ]
        );
        // `since` drops earlier minutes; another metric has nothing.
        assert_eq!(read(&store, 1, 1).len(), 2);
    }

    #[test]
    fn a_minute_written_twice_is_merged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_rollups(&[row(0, 2.0, 4.0, 3.0, 6, Some(4.0))])
            .unwrap();
        store
            .write_rollups(&[row(0, 1.0, 1.0, 1.0, 2, None)])
            .unwrap();
        let merged = read(&store, 0, 1);
        assert_eq!(
            (
                merged[0].min,
                merged[0].max,
                merged[0].mean,
                merged[0].count
            ),
            (1.0, 4.0, 2.5, 8)
        );
        assert_eq!(merged[0].p95, Some(4.0));
    }

    #[test]
    fn retention_deletes_old_minutes_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rows: Vec<RollupRow> = (0..5).map(|m| row(m, 1.0, 1.0, 1.0, 1, None)).collect();
        store.write_rollups(&rows).unwrap();
        let deleted = store.delete_rollups_before(T0 + 3 * MINUTE_MS).unwrap();
        assert_eq!(deleted, 3);
        let left: Vec<i64> = read(&store, 0, 1).iter().map(|p| p.ts_ms).collect();
        assert_eq!(left, [T0 + 3 * MINUTE_MS, T0 + 4 * MINUTE_MS]);
    }
}
