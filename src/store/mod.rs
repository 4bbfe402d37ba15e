//! The durable store: an SQLite file (WAL) holding actions, their transition log, alert
//! history and per-minute metric rollups.
//!
//! Every transition of an action is one row of `action_log`, written in the same transaction
//! that changes the action's current state, so the log and the state never disagree.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::Clock;
use crate::domain::evidence::Evidence;
use crate::domain::{Action, ActionKind, ActionState, Proposal};

mod gate;
mod history;
mod log;
pub mod models;
pub mod overlay;
mod report;
mod rollup_writer;
mod rollups;
mod silences;

pub use history::{AlertHistoryFilter, AlertHistoryRow, AlertTransition, PolicyVersionRow};
pub use log::{LogEntry, LogFilter};
pub use rollup_writer::{RollupSink, RollupWriter};
pub use rollups::{RollupRow, SeriesPoint, SeriesQuery};

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "swarmpilot.db";

/// Test-only: while the file this variable names exists, every write to the store fails
/// (each commit is turned into a rollback), as on a full disk.
pub const FAULT_ENV: &str = "SWARMPILOT_TEST_FAIL_WRITES_WHILE";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column did not parse.
    #[error("corrupt stored value")]
    Json(#[from] serde_json::Error),
    /// A row names a state or kind this version does not know.
    #[error("the database names an unknown value: {0}")]
    UnknownName(#[from] crate::domain::UnknownName),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No action has this id.
    #[error("no action with id {0}")]
    NoSuchAction(i64),
}

/// Told every action log row once it is durable (the event stream's `actions` topic).
pub type TransitionHook = Arc<dyn Fn(LogEntry) + Send + Sync>;

/// A handle to the database; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// The database file, for readers on connections of their own.
    path: Arc<PathBuf>,
    clock: Clock,
    /// Shared by every clone, so it may be set after the store was handed out.
    hook: Arc<std::sync::OnceLock<TransitionHook>>,
}

/// Creates `dir` (and its parents) if needed, and makes it the owner's alone (0700).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(message = "Data directory was open to others; now 0700.",
            dir = %dir.display(), mode = format!("{mode:o}"));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes the database file, and its WAL and shared-memory files if they exist, 0600.
fn private_files(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

impl Store {
    /// Stamps rows with `clock`'s time instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (creating if needed) the database in `data_dir`; the directory is the owner's
    /// alone (0700) and the database files are read and written by the owner only (0600).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        private_dir(data_dir).map_err(|source| StoreError::Dir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        // SQLite gives its WAL and shared-memory files the database file's mode.
        private_files(&path).map_err(|source| StoreError::Dir {
            path: path.clone(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        gate::migrate(&conn)?;
        add_columns(&conn, "alert_history", history::ALERT_COLUMNS)?;
        conn.execute_batch(silences::SILENCE_SCHEMA)?;
        conn.execute_batch(rollups::ROLLUP_SCHEMA)?;
        rollups::backfill_hours(&conn)?;
        if let Some(path) = std::env::var_os(FAULT_ENV).map(PathBuf::from) {
            tracing::warn!(message = "Store writes fail while a file exists (test setting).",
                path = %path.display());
            conn.commit_hook(Some(move || path.exists()))?;
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            clock: Clock::system(),
            hook: Arc::default(),
        })
    }

    /// Tells `hook` every action log row from now on, once it is durable (set once).
    pub fn on_transition(&self, hook: TransitionHook) {
        let _ = self.hook.set(hook);
    }

    /// Hands log row `seq` to the hook, if one is set.
    fn announce(&self, seq: i64) {
        let Some(hook) = self.hook.get() else {
            return;
        };
        let filter = LogFilter {
            before_seq: Some(seq + 1),
            limit: 1,
            ..LogFilter::default()
        };
        match self.log(&filter) {
            Ok(mut rows) if !rows.is_empty() => hook(rows.remove(0)),
            Ok(_) => {}
            Err(error) => tracing::warn!(message = "Cannot read a new log row back.", seq, %error),
        }
    }

    /// Writes one row, to learn whether the store takes writes now.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT OR REPLACE INTO store_probe (id, ts_ms) VALUES (1, ?1)",
            params![self.clock.now_ms()],
        )?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a new action in state `proposed`, with its first log row.
    pub fn insert_action(&self, proposal: &Proposal, actor: &str) -> Result<Action, StoreError> {
        let now = self.clock.now_ms();
        let kind = proposal.change.kind();
        let agent = proposal.change.agent().map(str::to_string);
        let inverse = proposal.change.inverse();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO actions (kind, pool, agent, state, change, inverse, reason, evidence,
                                  created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                kind.as_str(),
                proposal.pool,
                agent,
                ActionState::Proposed.as_str(),
                serde_json::to_string(&proposal.change)?,
                serde_json::to_string(&inverse)?,
                proposal.reason,
                serde_json::to_string(&proposal.evidence)?,
                now,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE actions SET expected_effect = ?1 WHERE id = ?2",
            params![proposal.expected_effect, id],
        )?;
        insert_log(
            &tx,
            now,
            id,
            kind.as_str(),
            &proposal.pool,
            agent.as_deref(),
            None,
            ActionState::Proposed.as_str(),
            &proposal.reason,
            actor,
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        // The row is read back for the hook under the lock again.
        drop(conn);
        self.announce(seq);
        tracing::info!(
            message = "Action proposed.",
            action = id,
            pool = %proposal.pool,
            agent = agent.as_deref().unwrap_or("-"),
            kind = kind.as_str(),
            %actor,
            reason = %proposal.reason,
        );
        Ok(Action {
            id,
            kind,
            pool: proposal.pool.clone(),
            agent,
            state: ActionState::Proposed,
            change: proposal.change.clone(),
            inverse,
            reason: proposal.reason.clone(),
            evidence: proposal.evidence.clone(),
            expected_effect: proposal.expected_effect.clone(),
            created_ms: now,
            updated_ms: now,
            risk: None,
            expires_ms: None,
            approvals: Vec::new(),
        })
    }

    /// Moves an action to `to`, logging the transition with its reason and actor.
    pub fn transition(
        &self,
        id: i64,
        to: ActionState,
        reason: &str,
        actor: &str,
    ) -> Result<Action, StoreError> {
        let now = self.clock.now_ms();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut action = read_action(&tx, id)?.ok_or(StoreError::NoSuchAction(id))?;
        tx.execute(
            "UPDATE actions SET state = ?1, updated_ms = ?2 WHERE id = ?3",
            params![to.as_str(), now, id],
        )?;
        insert_log(
            &tx,
            now,
            id,
            action.kind.as_str(),
            &action.pool,
            action.agent.as_deref(),
            Some(action.state.as_str()),
            to.as_str(),
            reason,
            actor,
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        // The row is read back for the hook under the lock again.
        drop(conn);
        self.announce(seq);
        // Every transition of every action passes here, once it is durable.
        tracing::info!(
            message = "Action transition.",
            action = id,
            pool = %action.pool,
            agent = action.agent.as_deref().unwrap_or("-"),
            kind = action.kind.as_str(),
            from = action.state.as_str(),
            to = to.as_str(),
            %actor,
            %reason,
        );
        action.state = to;
        action.updated_ms = now;
        Ok(action)
    }

    /// One action by id.
    pub fn action(&self, id: i64) -> Result<Option<Action>, StoreError> {
        read_action(&self.lock(), id)
    }

    /// Actions, newest first, optionally only those in `state`.
    pub fn actions(
        &self,
        state: Option<ActionState>,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        self.actions_before(state, None, limit)
    }

    /// Actions older than action `before` (all when none), newest first, optionally only
    /// those in `state`: a page of them.
    pub fn actions_before(
        &self,
        state: Option<ActionState>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id FROM actions WHERE (?1 IS NULL OR state = ?1) AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?2",
        )?;
        let ids: Vec<i64> = stmt
            .query_map(
                params![state.map(ActionState::as_str), limit as i64, before],
                |row| row.get(0),
            )?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .filter_map(|id| read_action(&conn, id).transpose())
            .collect()
    }
}

const SCHEMA: &str = "
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
CREATE INDEX IF NOT EXISTS action_log_ts ON action_log (ts_ms);
";

/// Adds to `table` those of `columns` (name, SQL type) it lacks: a store written by an
/// older version gains them on open.
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

#[allow(clippy::too_many_arguments)]
fn insert_log(
    conn: &Connection,
    ts_ms: i64,
    action_id: i64,
    kind: &str,
    pool: &str,
    agent: Option<&str>,
    from_state: Option<&str>,
    to_state: &str,
    reason: &str,
    actor: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO action_log (ts_ms, action_id, kind, pool, agent, from_state, to_state,
                                 reason, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            ts_ms, action_id, kind, pool, agent, from_state, to_state, reason, actor
        ],
    )?;
    Ok(())
}

pub(super) fn read_action(conn: &Connection, id: i64) -> Result<Option<Action>, StoreError> {
    let row = conn
        .query_row(
            "SELECT kind, pool, agent, state, change, inverse, reason, evidence, created_ms,
                    updated_ms, risk, expires_ms, expected_effect
             FROM actions WHERE id = ?1",
            params![id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, i64>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<i64>>(11)?,
                    row.get::<_, Option<String>>(12)?,
                ))
            },
        )
        .optional()?;
    let Some((
        kind,
        pool,
        agent,
        state,
        change,
        inverse,
        reason,
        evidence,
        created,
        updated,
        risk,
        expires_ms,
        expected_effect,
    )) = row
    else {
        return Ok(None);
    };
    let risk = match risk {
        Some(text) => serde_json::from_str(&text)?,
        None => None,
    };
    // A row whose evidence has a shape this version does not know (a newer version wrote it)
    // still reads; its text stays in the database as it was.
    let evidence = serde_json::from_str(&evidence).unwrap_or_else(|error| {
        tracing::warn!(message = "Evidence of unknown shape.", action = id, %error);
        Evidence::empty()
    });
    Ok(Some(Action {
        id,
        kind: kind.parse::<ActionKind>()?,
        pool,
        agent,
        state: state.parse::<ActionState>()?,
        change: serde_json::from_str(&change)?,
        inverse: serde_json::from_str(&inverse)?,
        reason,
        evidence,
        expected_effect: expected_effect.unwrap_or_default(),
        created_ms: created,
        updated_ms: updated,
        risk,
        expires_ms,
        approvals: gate::approvals(conn, id)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Change;
    use crate::domain::evidence::RequestedEvidence;

    fn proposal() -> Proposal {
        Proposal {
            pool: "worker".into(),
            change: Change::Scale { from: 2, to: 4 },
            reason: "cpu 60% above target 30%".into(),
            evidence: Evidence::Requested(RequestedEvidence {
                requested_by: "test".into(),
            }),
            confidence: 1.0,
            expected_effect: "twice the capacity".into(),
        }
    }

    #[test]
    fn the_data_directory_and_the_database_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new").join("data");
        let store = Store::open(&data).unwrap();
        store.insert_action(&proposal(), "auto").unwrap();
        assert_eq!(mode(&data), 0o700);
        for file in ["swarmpilot.db", "swarmpilot.db-wal", "swarmpilot.db-shm"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        drop(store);
        // A directory and a database made open to others are closed again on the next open.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("swarmpilot.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&data).unwrap();
        assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));
    }

    #[test]
    fn every_transition_is_a_log_row_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let action = store.insert_action(&proposal(), "auto").unwrap();
        store
            .transition(action.id, ActionState::Applying, "starting agents", "auto")
            .unwrap();
        store
            .transition(action.id, ActionState::Applied, "4 agents ready", "auto")
            .unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let stored = store.action(action.id).unwrap().unwrap();
        assert_eq!(stored.state, ActionState::Applied);
        assert_eq!(stored.inverse, Some(Change::Scale { from: 4, to: 2 }));
        let log = store
            .log(&LogFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let states: Vec<(Option<&str>, &str)> = log
            .iter()
            .map(|e| (e.from_state.map(ActionState::as_str), e.to_state.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                (Some("applying"), "applied"),
                (Some("proposed"), "applying"),
                (None, "proposed")
            ]
        );
    }

    #[test]
    fn log_filters_by_pool_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_action(&proposal(), "auto").unwrap();
        let by_pool = |pool: &str| LogFilter {
            pool: Some(pool.into()),
            limit: 10,
            ..Default::default()
        };
        let rows = store.log(&by_pool("worker")).unwrap();
        assert_eq!(rows.len(), 1);
        // Each row carries its action's change and the inverse that undoes it.
        assert_eq!(
            (&rows[0].change, &rows[0].inverse),
            (
                &Change::Scale { from: 2, to: 4 },
                &Some(Change::Scale { from: 4, to: 2 })
            )
        );
        assert_eq!(store.log(&by_pool("other")).unwrap().len(), 0);
        let restarts = LogFilter {
            kind: Some(ActionKind::Restart),
            limit: 10,
            ..Default::default()
        };
        assert!(store.log(&restarts).unwrap().is_empty());
        let on_agent = LogFilter {
            agent: Some("worker-1".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(
            store.log(&on_agent).unwrap().is_empty(),
            "a scale names no agent"
        );
        let restart = Proposal {
            change: Change::Restart {
                agent: "worker-1".into(),
            },
            ..proposal()
        };
        store.insert_action(&restart, "auto").unwrap();
        let rows = store.log(&on_agent).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].agent.as_deref(), Some("worker-1"));
        assert!(matches!(
            store.transition(99, ActionState::Applied, "", "auto"),
            Err(StoreError::NoSuchAction(99))
        ));
    }
}
