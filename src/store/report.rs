//! Reading what a report needs: each agent's metrics by step (the hours of `rollup_hours`, or
//! the minutes of `rollups` for windows up to two hours), response-time minutes, alert
//! transitions, action log rows and the silences in force, fed to a `ReportBuilder`.
//!
//! It reads on a connection of its own (on SQLite, WAL lets it read while the controller
//! writes), so a long report never holds up an action's write. Minutes are read by
//! primary-key range, one (agent, metric) at a time, with the pairs taken from the hours
//! that cover the window: a scan of the minute index would visit every agent's every metric.

use std::collections::BTreeMap;

use rusqlite::{Connection, OpenFlags};

use super::rollups::HOUR_MS;
use super::sql::{Db, Lite, values};
use super::{Backend, Store, StoreError};
use crate::domain::{Change, metric};
use crate::report::{AlertInput, LogInput, ReportBuilder, SilenceLine, StepInput, Window};

impl Store {
    /// Feeds `builder` everything in the store about its window and the one before.
    pub fn feed_report(&self, builder: &mut ReportBuilder) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite { path, .. } => {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                feed(&mut Lite(&conn), builder)?;
            }
            // The reader's connection, so no writer waits.
            Backend::Postgres { reader, .. } => {
                let mut reader = super::lock(reader);
                reader.reset();
                feed(&mut *reader, builder)?;
            }
        }
        let spec = builder.spec();
        let at = spec.window.until_ms.min(spec.generated_ms);
        for silence in self.silences()? {
            if silence.starts_ms <= at && silence.ends_ms > at {
                let matchers: Vec<String> = silence
                    .matchers
                    .iter()
                    .map(|m| {
                        format!(
                            "{}{}{}",
                            m.name,
                            if m.is_regex { "=~" } else { "=" },
                            m.value
                        )
                    })
                    .collect();
                builder.add_silence(SilenceLine {
                    id: silence.id,
                    matchers: matchers.join(", "),
                    ends_ms: silence.ends_ms,
                    comment: silence.comment,
                    created_by: silence.created_by,
                });
            }
        }
        Ok(())
    }
}

/// Feeds `builder` the steps, response-time minutes, alerts and log rows of its window.
fn feed(db: &mut dyn Db, builder: &mut ReportBuilder) -> Result<(), StoreError> {
    let (read, step_ms) = builder.read_window();
    if step_ms >= HOUR_MS {
        hour_steps(db, read, builder)?;
    } else {
        minutes(db, read, None, |pair, row| builder.add_step(row.with(pair)))?;
    }
    minutes(db, read, Some(metric::RESPONSE_TIME_MS), |pair, row| {
        let mean = row.sum / row.count.max(1) as f64;
        builder.add_response_minute(&pair.0, &pair.1, row.ts_ms, mean, row.count)
    })?;
    report_alerts(db, read, builder)?;
    report_log(db, read, builder)
}

fn hour_steps(
    db: &mut dyn Db,
    read: Window,
    builder: &mut ReportBuilder,
) -> Result<(), StoreError> {
    db.for_each(
        "SELECT agent, pool, metric, hour_ms, min, max, sum, count, minutes, p95
         FROM rollup_hours WHERE hour_ms >= ?1 AND hour_ms < ?2",
        &values![read.since_ms, read.until_ms],
        &mut |row| {
            let (agent, pool, metric): (String, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            builder.add_step(StepInput {
                agent: &agent,
                pool: &pool,
                metric: &metric,
                ts_ms: row.get(3)?,
                min: row.get(4)?,
                max: row.get(5)?,
                sum: row.get(6)?,
                count: row.get(7)?,
                minutes: row.get::<i64>(8)?.clamp(0, 60) as u32,
                p95: row.get(9)?,
            });
            Ok(())
        },
    )
}

/// Calls `visit` with each minute in `read` of every (agent, pool, metric) the hours name,
/// or of `only` that metric; a minute carries its agent's pool in that hour.
fn minutes(
    db: &mut dyn Db,
    read: Window,
    only: Option<&str>,
    mut visit: impl FnMut(&(String, String, String), MinuteRow),
) -> Result<(), StoreError> {
    let first_hour = read.since_ms.div_euclid(HOUR_MS) * HOUR_MS;
    // Per (agent, metric), the pool of each hour (agents rarely change pools).
    let mut series: BTreeMap<(String, String), BTreeMap<i64, String>> = BTreeMap::new();
    db.for_each(
        "SELECT agent, metric, hour_ms, pool FROM rollup_hours
         WHERE hour_ms >= ?1 AND hour_ms < ?2
           AND (CAST(?3 AS TEXT) IS NULL OR metric = ?3)",
        &values![first_hour, read.until_ms, only],
        &mut |row| {
            series
                .entry((row.get(0)?, row.get(1)?))
                .or_default()
                .insert(row.get(2)?, row.get(3)?);
            Ok(())
        },
    )?;
    for ((agent, metric), pools) in series {
        let keys: BTreeMap<&str, (String, String, String)> = pools
            .values()
            .map(|pool| {
                let key = (agent.clone(), pool.clone(), metric.clone());
                (pool.as_str(), key)
            })
            .collect();
        db.for_each(
            "SELECT minute_ms, min, max, mean, count, p95 FROM rollups
             WHERE agent = ?1 AND metric = ?2 AND minute_ms >= ?3 AND minute_ms < ?4",
            &values![&agent, &metric, read.since_ms, read.until_ms],
            &mut |row| {
                let ts_ms: i64 = row.get(0)?;
                let hour = ts_ms.div_euclid(HOUR_MS) * HOUR_MS;
                let Some(key) = pools.get(&hour).and_then(|pool| keys.get(pool.as_str())) else {
                    return Ok(());
                };
                let count: u64 = row.get(4)?;
                visit(
                    key,
                    MinuteRow {
                        ts_ms,
                        min: row.get(1)?,
                        max: row.get(2)?,
                        sum: row.get::<f64>(3)? * count as f64,
                        count,
                        p95: row.get(5)?,
                    },
                );
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// How far before the rows read an alert may have started and still be open in them.
const ALERT_LOOKBACK_MS: i64 = 35 * 24 * HOUR_MS;

/// The alert transitions in `read`, after each alert's last state before it (within
/// [`ALERT_LOOKBACK_MS`]) when that was pending or firing: an outage that began before the
/// window still counts in it.
fn report_alerts(
    db: &mut dyn Db,
    read: Window,
    builder: &mut ReportBuilder,
) -> Result<(), StoreError> {
    let lookback = read.since_ms - ALERT_LOOKBACK_MS;
    db.for_each(
        "SELECT 0 AS part, seq, ts_ms, rule, agent, pool, level, to_state, metric
         FROM alert_history
         WHERE seq IN (SELECT MAX(seq) FROM alert_history WHERE ts_ms >= ?3 AND ts_ms < ?1
                       GROUP BY rule, agent)
           AND to_state IN ('pending', 'firing')
         UNION ALL
         SELECT 1 AS part, seq, ts_ms, rule, agent, pool, level, to_state, metric
         FROM alert_history WHERE ts_ms >= ?1 AND ts_ms < ?2
         ORDER BY part, seq",
        &values![read.since_ms, read.until_ms, lookback],
        &mut |row| {
            builder.add_alert(AlertInput {
                ts_ms: row.get(2)?,
                rule: row.get(3)?,
                agent: row.get(4)?,
                pool: row.get(5)?,
                level: row.get(6)?,
                to_state: row.get(7)?,
                metric: row.get(8)?,
            });
            Ok(())
        },
    )
}

fn report_log(
    db: &mut dyn Db,
    read: Window,
    builder: &mut ReportBuilder,
) -> Result<(), StoreError> {
    db.for_each(
        "SELECT l.ts_ms, l.action_id, l.kind, l.pool, l.agent, l.to_state, l.actor, a.change
         FROM action_log l JOIN actions a ON a.id = l.action_id
         WHERE l.ts_ms >= ?1 AND l.ts_ms < ?2 ORDER BY l.seq",
        &values![read.since_ms, read.until_ms],
        &mut |row| {
            let change: Change = row.json(7)?;
            builder.add_log(LogInput {
                ts_ms: row.get(0)?,
                action_id: row.get(1)?,
                kind: row.get(2)?,
                pool: row.get(3)?,
                agent: row.get(4)?,
                to_state: row.get(5)?,
                actor: row.get(6)?,
                change,
            });
            Ok(())
        },
    )
}

/// One minute of one series, summed.
struct MinuteRow {
    ts_ms: i64,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
    p95: Option<f64>,
}

impl MinuteRow {
    fn with<'a>(&self, pair: &'a (String, String, String)) -> StepInput<'a> {
        StepInput {
            agent: &pair.0,
            pool: &pair.1,
            metric: &pair.2,
            ts_ms: self.ts_ms,
            min: self.min,
            max: self.max,
            sum: self.sum,
            count: self.count,
            minutes: 1,
            p95: self.p95,
        }
    }
}

impl Store {
    /// Whether any agent's rollups fall in `window`: a scheduled report missed while the
    /// controller was down is worth writing only then.
    pub fn has_rollups(&self, window: Window) -> Result<bool, StoreError> {
        let first_hour = window.since_ms.div_euclid(HOUR_MS) * HOUR_MS;
        self.with_db(|db| {
            db.query_one(
                "SELECT EXISTS (SELECT 1 FROM rollup_hours WHERE hour_ms >= ?1 AND hour_ms < ?2)",
                &values![first_hour, window.until_ms],
            )?
            .get(0)
        })
    }
}
