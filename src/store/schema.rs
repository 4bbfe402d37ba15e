//! The store's schema, as numbered migrations with one text per engine. Each database keeps
//! the versions it has applied in `schema_migrations`; opening a store applies the rest in
//! order, in one transaction each. Two controllers opening one PostgreSQL database at once
//! take turns (a transaction-scoped advisory lock).
//!
//! Migration 1 is the schema as it stood when migrations began. On SQLite it is written as
//! the steps that brought a file of any earlier version there (tables created if missing,
//! columns added, hours filled from minutes), so an old file opens as before.

use rusqlite::Connection;

use super::StoreError;
use super::pg::PgConn;
use super::sql::{Db, Lite, values};

/// The advisory lock key migrations hold on PostgreSQL ("swarmpil" in ASCII).
const MIGRATION_LOCK: i64 = 0x7377_6172_6d70_696c;

/// One step of the schema.
struct Migration {
    /// Its number; applied in increasing order.
    version: i64,
    /// What it does.
    name: &'static str,
    /// The step on SQLite.
    sqlite: fn(&Connection) -> Result<(), StoreError>,
    /// The step on PostgreSQL.
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "actions, log, alerts, policies, approvals, settings, silences, rollups",
        sqlite: sqlite_baseline,
        postgres: POSTGRES_BASELINE,
    },
    Migration {
        version: 2,
        name: "the leader's lease",
        sqlite: |conn| Ok(conn.execute_batch(LEASE_SCHEMA)?),
        postgres: LEASE_SCHEMA,
    },
    Migration {
        version: 3,
        name: "the term of the election that chose the lease's holder",
        sqlite: |conn| Ok(conn.execute_batch(LEASE_TERM)?),
        postgres: LEASE_TERM,
    },
];

/// The term of an outside election (a Kubernetes Lease's transitions) that made the holder
/// lead: a holder chosen in an older term cannot seize the row back (`lease.rs`).
const LEASE_TERM: &str = "ALTER TABLE leader_lease ADD COLUMN term BIGINT NOT NULL DEFAULT 0;";

/// The lease a leader holds, one row per election (`lease.rs`); its epoch fences a deposed
/// holder. SQLite keeps the table too, so both engines share one schema, but only
/// PostgreSQL elects.
const LEASE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leader_lease (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, address TEXT NOT NULL,
    epoch BIGINT NOT NULL, expires_ms BIGINT NOT NULL, renewed_ms BIGINT NOT NULL
);
";

const MIGRATION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL
);
";

/// Brings an SQLite file up to the newest schema.
pub(super) fn migrate_sqlite(conn: &mut Connection, now_ms: i64) -> Result<(), StoreError> {
    conn.execute_batch(MIGRATION_TABLE)?;
    for migration in MIGRATIONS {
        let tx = conn.transaction()?;
        apply_once(&mut Lite(&tx), migration, now_ms, "sqlite", |_| {
            (migration.sqlite)(&tx)
        })?;
        tx.commit()?;
    }
    Ok(())
}

/// Brings a PostgreSQL database up to the newest schema.
pub(super) fn migrate_postgres(conn: &mut PgConn, now_ms: i64) -> Result<(), StoreError> {
    for migration in MIGRATIONS {
        conn.transaction(|conn| {
            // A long migration by another controller is waited for, not timed out.
            conn.batch("SET LOCAL statement_timeout = 0")?;
            conn.execute("SELECT pg_advisory_xact_lock(?1)", &values![MIGRATION_LOCK])?;
            conn.batch(MIGRATION_TABLE)?;
            apply_once(conn, migration, now_ms, "postgres", |db| {
                db.batch(migration.postgres)
            })
        })?;
    }
    Ok(())
}

/// Runs `step` and records `migration` as applied, unless `db` says it was already.
fn apply_once(
    db: &mut dyn Db,
    migration: &Migration,
    now_ms: i64,
    engine: &str,
    step: impl FnOnce(&mut dyn Db) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let done: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            &values![migration.version],
        )?
        .get(0)?;
    if done {
        return Ok(());
    }
    step(db)?;
    db.execute(
        "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
        &values![migration.version, migration.name, now_ms],
    )?;
    tracing::info!(
        message = "Store schema migrated.",
        engine,
        version = migration.version,
        name = migration.name
    );
    Ok(())
}

/// Migration 1 on SQLite: every step an earlier version's file needs, each idempotent.
fn sqlite_baseline(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SQLITE_TABLES)?;
    add_columns(conn, "actions", ACTION_COLUMNS)?;
    add_columns(conn, "alert_history", ALERT_COLUMNS)?;
    backfill_hours(conn)?;
    Ok(())
}

/// Columns `actions` gained before migrations began, with their types.
const ACTION_COLUMNS: &[(&str, &str)] = &[
    ("risk", "TEXT"),
    ("expires_ms", "INTEGER"),
    ("verification", "TEXT"),
    ("expected_effect", "TEXT"),
];

/// Columns the alert history gained before migrations began.
const ALERT_COLUMNS: &[(&str, &str)] = &[
    ("metric", "TEXT NOT NULL DEFAULT ''"),
    ("threshold", "REAL"),
    ("message", "TEXT NOT NULL DEFAULT ''"),
];

/// Adds to `table` those of `columns` (name, SQL type) it lacks.
fn add_columns(conn: &Connection, table: &str, columns: &[(&str, &str)]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let have: Vec<String> = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (column, kind) in columns {
        if !have.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// Fills `rollup_hours` from the minutes of a file written before it existed (their pool is
/// unknown: empty).
fn backfill_hours(conn: &Connection) -> Result<(), StoreError> {
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
            [super::rollups::HOUR_MS],
        )?;
    }
    Ok(())
}

/// The tables of migration 1 on SQLite, as the first versions created them.
const SQLITE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS store_probe (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, pool TEXT NOT NULL, agent TEXT, state TEXT NOT NULL,
    change TEXT NOT NULL, inverse TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_state ON actions (state);
CREATE TABLE IF NOT EXISTS action_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL, action_id INTEGER NOT NULL REFERENCES actions (id),
    kind TEXT NOT NULL, pool TEXT NOT NULL, agent TEXT,
    from_state TEXT, to_state TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_log_ts ON action_log (ts_ms);
CREATE TABLE IF NOT EXISTS policy_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL, version TEXT NOT NULL, files TEXT NOT NULL, diff TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL, rule TEXT NOT NULL, agent TEXT NOT NULL, pool TEXT NOT NULL,
    level TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_history_ts ON alert_history (ts_ms);
CREATE TABLE IF NOT EXISTS approvals (
    action_id INTEGER NOT NULL REFERENCES actions (id), by_name TEXT NOT NULL,
    at_ms INTEGER NOT NULL, PRIMARY KEY (action_id, by_name)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL, comment TEXT NOT NULL,
    created_by TEXT NOT NULL, created_ms INTEGER NOT NULL
);
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

/// Migration 1 on PostgreSQL: the same tables, in its types.
const POSTGRES_BASELINE: &str = "
CREATE TABLE store_probe (id BIGINT PRIMARY KEY, ts_ms BIGINT NOT NULL);
CREATE TABLE actions (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL, pool TEXT NOT NULL, agent TEXT, state TEXT NOT NULL,
    change TEXT NOT NULL, inverse TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT NOT NULL,
    created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
    risk TEXT, expires_ms BIGINT, verification TEXT, expected_effect TEXT
);
CREATE INDEX actions_state ON actions (state);
CREATE TABLE action_log (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL, action_id BIGINT NOT NULL REFERENCES actions (id),
    kind TEXT NOT NULL, pool TEXT NOT NULL, agent TEXT,
    from_state TEXT, to_state TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL
);
CREATE INDEX action_log_ts ON action_log (ts_ms);
CREATE TABLE policy_versions (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL, version TEXT NOT NULL, files TEXT NOT NULL, diff TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE alert_history (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL, rule TEXT NOT NULL, agent TEXT NOT NULL, pool TEXT NOT NULL,
    level TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, metric TEXT NOT NULL DEFAULT '',
    threshold DOUBLE PRECISION, message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_history_ts ON alert_history (ts_ms);
CREATE TABLE approvals (
    action_id BIGINT NOT NULL REFERENCES actions (id), by_name TEXT NOT NULL,
    at_ms BIGINT NOT NULL, PRIMARY KEY (action_id, by_name)
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE silences (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, matchers TEXT NOT NULL,
    starts_ms BIGINT NOT NULL, ends_ms BIGINT NOT NULL, comment TEXT NOT NULL,
    created_by TEXT NOT NULL, created_ms BIGINT NOT NULL
);
CREATE TABLE rollups (
    agent TEXT NOT NULL, metric TEXT NOT NULL, minute_ms BIGINT NOT NULL,
    min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
    mean DOUBLE PRECISION NOT NULL, count BIGINT NOT NULL, p95 DOUBLE PRECISION,
    PRIMARY KEY (agent, metric, minute_ms)
);
CREATE INDEX rollups_minute ON rollups (minute_ms);
CREATE TABLE rollup_hours (
    agent TEXT NOT NULL, metric TEXT NOT NULL, hour_ms BIGINT NOT NULL, pool TEXT NOT NULL,
    min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
    sum DOUBLE PRECISION NOT NULL, count BIGINT NOT NULL, minutes BIGINT NOT NULL,
    p95 DOUBLE PRECISION,
    PRIMARY KEY (agent, metric, hour_ms)
);
CREATE INDEX rollup_hours_hour ON rollup_hours (hour_ms);
";
