//! The `rollups` table: one row per (agent, metric, minute) with the minute's min, max, mean,
//! count and p95, written in batches and read back re-aggregated to a coarser step.

use serde::Serialize;

use super::sql::{Value, values};
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

/// Milliseconds in an hour: the step of `rollup_hours`.
pub const HOUR_MS: i64 = 3_600_000;

/// Hours are kept this long at least, whatever the retention of minutes: two months, so a
/// monthly report has the month before it.
pub const HOURS_KEPT_MS: i64 = 62 * 24 * HOUR_MS;

impl Store {
    /// Writes finished minutes in one transaction, each also into its hour. A minute already
    /// stored (late samples, an actor restarted mid-minute) is merged: min of mins, max of
    /// maxes, count-weighted mean, summed counts, the larger p95; its hour counts it once.
    pub fn write_rollups(&self, rows: &[RollupRow]) -> Result<(), StoreError> {
        let minutes: Vec<Vec<Value>> = rows
            .iter()
            .map(|row| {
                let s = &row.summary;
                values![
                    &row.agent,
                    &row.metric,
                    s.minute_ms,
                    s.min,
                    s.max,
                    s.mean,
                    s.count,
                    s.p95
                ]
                .to_vec()
            })
            .collect();
        self.with_tx(|db| {
            let fresh = db.execute_each(
                "INSERT INTO rollups (agent, metric, minute_ms, min, max, mean, count, p95)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                &minutes,
            )?;
            let again: Vec<Vec<Value>> = minutes
                .iter()
                .zip(&fresh)
                .filter(|(_, inserted)| **inserted == 0)
                .map(|(minute, _)| minute.clone())
                .collect();
            db.execute_each(
                "UPDATE rollups SET
                    min = CASE WHEN ?4 < min THEN ?4 ELSE min END,
                    max = CASE WHEN ?5 > max THEN ?5 ELSE max END,
                    mean = (mean * count + CAST(?6 AS DOUBLE PRECISION) * ?7)
                           / (count + ?7),
                    count = count + ?7,
                    p95 = CASE WHEN p95 IS NULL OR ?8 > p95 THEN COALESCE(?8, p95)
                               ELSE p95 END
                 WHERE agent = ?1 AND metric = ?2 AND minute_ms = ?3",
                &again,
            )?;
            let hours: Vec<Vec<Value>> = rows
                .iter()
                .zip(&fresh)
                .map(|(row, inserted)| {
                    let s = &row.summary;
                    values![
                        &row.agent,
                        &row.metric,
                        s.minute_ms.div_euclid(HOUR_MS) * HOUR_MS,
                        &row.pool,
                        s.min,
                        s.max,
                        s.mean * s.count as f64,
                        s.count,
                        i64::from(*inserted == 1),
                        s.p95
                    ]
                    .to_vec()
                })
                .collect();
            db.execute_each(
                "INSERT INTO rollup_hours (agent, metric, hour_ms, pool, min, max, sum, count,
                                           minutes, p95)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (agent, metric, hour_ms) DO UPDATE SET
                    pool = excluded.pool,
                    min = CASE WHEN excluded.min < rollup_hours.min THEN excluded.min
                               ELSE rollup_hours.min END,
                    max = CASE WHEN excluded.max > rollup_hours.max THEN excluded.max
                               ELSE rollup_hours.max END,
                    sum = rollup_hours.sum + excluded.sum,
                    count = rollup_hours.count + excluded.count,
                    minutes = rollup_hours.minutes + excluded.minutes,
                    p95 = CASE WHEN rollup_hours.p95 IS NULL
                                 OR excluded.p95 > rollup_hours.p95
                               THEN COALESCE(excluded.p95, rollup_hours.p95)
                               ELSE rollup_hours.p95 END",
                &hours,
            )?;
            Ok(())
        })
    }

    /// The points of one series, each combining the minutes of one step, oldest first.
    pub fn read_series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let step = query.step_ms.max(1);
        let rows = self.with_db(|db| {
            db.query(
                "SELECT (minute_ms / ?5) * ?5 AS step_ms, MIN(min), MAX(max),
                        SUM(mean * count) / CAST(SUM(count) AS DOUBLE PRECISION),
                        CAST(SUM(count) AS BIGINT), MAX(p95)
                 FROM rollups
                 WHERE agent = ?1 AND metric = ?2 AND minute_ms >= ?3 AND minute_ms < ?4
                 GROUP BY step_ms ORDER BY step_ms LIMIT ?6",
                &values![
                    &query.agent,
                    &query.metric,
                    query.since_ms,
                    query.until_ms,
                    step,
                    query.limit
                ],
            )
        })?;
        rows.iter()
            .map(|row| {
                Ok(SeriesPoint {
                    ts_ms: row.get(0)?,
                    min: row.get(1)?,
                    max: row.get(2)?,
                    mean: row.get(3)?,
                    count: row.get(4)?,
                    p95: row.get(5)?,
                })
            })
            .collect()
    }

    /// Deletes the minutes that started before `cutoff_ms`, and the hours that ended
    /// [`HOURS_KEPT_MS`] before now or by `cutoff_ms`, whichever is earlier (a monthly
    /// report and the month before it need hours past a short retention); answers how many
    /// minutes.
    pub fn delete_rollups_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let hours_cutoff = cutoff_ms.min(self.clock.now_ms() - HOURS_KEPT_MS);
        let deleted = self.with_tx(|db| {
            db.execute(
                "DELETE FROM rollup_hours WHERE hour_ms + ?2 <= ?1",
                &values![hours_cutoff, HOUR_MS],
            )?;
            db.execute(
                "DELETE FROM rollups WHERE minute_ms < ?1",
                &values![cutoff_ms],
            )
        })?;
        Ok(deleted as usize)
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
        for place in super::super::tests::places() {
            minutes_are_read_back_and_combined_by_step_on(&place.open());
        }
    }

    fn minutes_are_read_back_and_combined_by_step_on(store: &Store) {
        assert_eq!(T0 % (2 * MINUTE_MS), 0);
        store
            .write_rollups(&[
                row(0, 1.0, 5.0, 3.0, 10, Some(5.0)),
                row(1, 2.0, 9.0, 6.0, 5, Some(8.0)),
                row(2, 4.0, 4.0, 4.0, 1, None),
            ])
            .unwrap();
        let by_minute = read(store, 0, 1);
        assert_eq!(by_minute.len(), 3);
        assert_eq!(by_minute[2].p95, None);
        assert_eq!(by_minute[1].ts_ms, T0 + MINUTE_MS);

        let by_two = read(store, 0, 2);
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
        assert_eq!(read(store, 1, 1).len(), 2);
    }

    #[test]
    fn a_minute_written_twice_is_merged() {
        for place in super::super::tests::places() {
            a_minute_written_twice_is_merged_on(&place.open());
        }
    }

    fn a_minute_written_twice_is_merged_on(store: &Store) {
        store
            .write_rollups(&[row(0, 2.0, 4.0, 3.0, 6, Some(4.0))])
            .unwrap();
        store
            .write_rollups(&[row(0, 1.0, 1.0, 1.0, 2, None)])
            .unwrap();
        let merged = read(store, 0, 1);
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
        for place in super::super::tests::places() {
            retention_deletes_old_minutes_only_on(&place.open());
        }
    }

    fn retention_deletes_old_minutes_only_on(store: &Store) {
        let rows: Vec<RollupRow> = (0..5).map(|m| row(m, 1.0, 1.0, 1.0, 1, None)).collect();
        store.write_rollups(&rows).unwrap();
        let deleted = store.delete_rollups_before(T0 + 3 * MINUTE_MS).unwrap();
        assert_eq!(deleted, 3);
        let left: Vec<i64> = read(store, 0, 1).iter().map(|p| p.ts_ms).collect();
        assert_eq!(left, [T0 + 3 * MINUTE_MS, T0 + 4 * MINUTE_MS]);
    }
}
