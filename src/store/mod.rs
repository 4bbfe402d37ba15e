//! The durable store: actions, their transition log, alert history and per-minute metric
//! rollups, in an SQLite file (WAL; the default) or a PostgreSQL database (`[store] url`).
//!
//! Every transition of an action is one row of `action_log`, written in the same transaction
//! that changes the action's current state, so the log and the state never disagree. The
//! queries are written once (`sql.rs`); the schema is one list of migrations with a text per
//! engine (`schema.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::domain::evidence::Evidence;
use crate::domain::{Action, ActionKind, ActionState, Proposal};

mod gate;
mod history;
mod lease;
mod log;
pub mod models;
pub mod overlay;
#[cfg(test)]
mod parity_tests;
mod pg;
mod report;
mod rollup_writer;
mod rollups;
mod schema;
mod silences;
mod sql;
pub mod testing;

pub use history::{AlertHistoryFilter, AlertHistoryRow, AlertTransition, PolicyVersionRow};
pub use lease::{Leader, Lease};
pub use log::{LogEntry, LogFilter};
pub use rollup_writer::{RollupSink, RollupWriter};
pub use rollups::{RollupRow, SeriesPoint, SeriesQuery};
pub use sql::Engine;

use sql::{Db, Lite, Row, values};

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
    /// PostgreSQL failed, or could not be reached.
    #[error("PostgreSQL: {}", describe(.0))]
    Postgres(tokio_postgres::Error),
    /// The PostgreSQL connection is lost or cannot be made now.
    #[error("PostgreSQL: {0}")]
    Connection(String),
    /// The thread that drives the PostgreSQL connection could not start.
    #[error("cannot start the PostgreSQL connection's thread")]
    Runtime(#[source] std::io::Error),
    /// A stored JSON column did not parse.
    #[error("corrupt stored value")]
    Json(#[from] serde_json::Error),
    /// A column held a value of another type than its query reads.
    #[error("column {index}: {why}")]
    Column {
        /// The column's position in its query.
        index: usize,
        /// What it held instead.
        why: String,
    },
    /// A query that always answers a row answered none.
    #[error("the database answered no row")]
    NoRow,
    /// This controller's lease was taken by another (its epoch is given): it may not write.
    #[error("fenced: the lease of epoch {0} is no longer held")]
    Fenced(i64),
    /// The leader's lease needs the PostgreSQL store.
    #[error("leader election needs the PostgreSQL store ([store] url)")]
    NeedsPostgres,
    /// A write was refused on purpose (the test setting [`FAULT_ENV`]).
    #[error("writes are failing (test setting)")]
    WriteRefused,
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

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Postgres(error)
    }
}

/// A PostgreSQL error with the server's own message (its `Display` alone says "db error").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// Told every action log row once it is durable (the event stream's `actions` topic).
pub type TransitionHook = Arc<dyn Fn(LogEntry) + Send + Sync>;

/// Where the store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The SQLite file in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://user@host:port/db` (a password in it is used, but better kept out).
        url: String,
        /// The password, read from `password_env` or `password_file`.
        password: Option<String>,
    },
}

impl StoreTarget {
    /// The store `policy` names: its PostgreSQL database, with the password read from
    /// where it points, or else the SQLite file in `data_dir`.
    pub fn of(policy: &crate::policy::StorePolicy, data_dir: &Path) -> Result<StoreTarget, String> {
        let Some(url) = &policy.url else {
            return Ok(StoreTarget::Sqlite(data_dir.to_path_buf()));
        };
        let named = policy.password_env.is_some() || policy.password_file.is_some();
        let password = named
            .then(|| {
                crate::policy::read_secret(
                    policy.password_env.as_deref(),
                    policy.password_file.as_deref(),
                )
            })
            .transpose()
            .map_err(|why| format!("store password: {why}"))?;
        Ok(StoreTarget::Postgres {
            url: url.clone(),
            password,
        })
    }
}

/// A handle to the database; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    clock: Clock,
    /// Shared by every clone, so it may be set after the store was handed out.
    hook: Arc<std::sync::OnceLock<TransitionHook>>,
    /// The lease every write transaction checks first, once this controller leads.
    fence: Arc<std::sync::OnceLock<Lease>>,
}

/// The connection of one engine.
enum Backend {
    Sqlite {
        conn: Mutex<Connection>,
        /// The database file, for readers on connections of their own.
        path: PathBuf,
    },
    Postgres {
        conn: Box<Mutex<pg::PgConn>>,
        /// A second connection, for reports: a long read never holds up an action's write.
        reader: Box<Mutex<pg::PgConn>>,
        /// While this file exists writes fail ([`FAULT_ENV`]).
        fault: Option<PathBuf>,
    },
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

/// Locks `mutex`; a panic while it was held left the database consistent (an SQLite
/// transaction rolls back when dropped; a PostgreSQL one is rolled back by the next use of
/// its connection), so a poisoned lock is safe to keep using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let mut conn = Connection::open(&path)?;
        // SQLite gives its WAL and shared-memory files the database file's mode.
        private_files(&path).map_err(|source| StoreError::Dir {
            path: path.clone(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate_sqlite(&mut conn, Clock::system().now_ms())?;
        if let Some(path) = fault_file() {
            conn.commit_hook(Some(move || path.exists()))?;
        }
        Ok(Store::on(Backend::Sqlite {
            conn: Mutex::new(conn),
            path,
        }))
    }

    /// Connects to a PostgreSQL database and brings its schema up to date.
    pub fn connect(url: &str, password: Option<&str>) -> Result<Store, StoreError> {
        let mut conn = pg::PgConn::connect(url, password)?;
        schema::migrate_postgres(&mut conn, Clock::system().now_ms())?;
        let reader = pg::PgConn::connect(url, password)?;
        Ok(Store::on(Backend::Postgres {
            conn: Box::new(Mutex::new(conn)),
            reader: Box::new(Mutex::new(reader)),
            fault: fault_file(),
        }))
    }

    /// Opens the store `target` names.
    pub fn open_target(target: &StoreTarget) -> Result<Store, StoreError> {
        match target {
            StoreTarget::Sqlite(dir) => Store::open(dir),
            StoreTarget::Postgres { url, password } => Store::connect(url, password.as_deref()),
        }
    }

    fn on(backend: Backend) -> Store {
        Store {
            backend: Arc::new(backend),
            clock: Clock::system(),
            hook: Arc::default(),
            fence: Arc::default(),
        }
    }

    /// Which engine holds the data.
    pub fn engine(&self) -> Engine {
        match *self.backend {
            Backend::Sqlite { .. } => Engine::Sqlite,
            Backend::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Runs `f` on the connection, each statement on its own (reads, single writes).
    fn with_db<R>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match &*self.backend {
            Backend::Sqlite { conn, .. } => f(&mut Lite(&lock(conn))),
            Backend::Postgres { conn, .. } => {
                let mut conn = lock(conn);
                conn.reset();
                f(&mut *conn)
            }
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn with_tx<R>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match &*self.backend {
            Backend::Sqlite { conn, .. } => {
                let mut conn = lock(conn);
                let tx = conn.transaction()?;
                let out = f(&mut Lite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres { conn, fault, .. } => lock(conn).transaction(|conn| {
                let out = f(conn)?;
                if fault.as_ref().is_some_and(|path| path.exists()) {
                    return Err(StoreError::WriteRefused);
                }
                // Last before the commit, so the lease row is share-locked only that long
                // (a renewal waits for it) and still from the check through the commit.
                if let Some(lease) = self.fence.get() {
                    lease::check_fence(conn, lease)?;
                }
                Ok(out)
            }),
        }
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
        let now = self.clock.now_ms();
        self.with_tx(|db| {
            db.execute(
                "INSERT INTO store_probe (id, ts_ms) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET ts_ms = excluded.ts_ms",
                &values![now],
            )
        })?;
        Ok(())
    }

    /// Records a new action in state `proposed`, with its first log row.
    pub fn insert_action(&self, proposal: &Proposal, actor: &str) -> Result<Action, StoreError> {
        let now = self.clock.now_ms();
        let kind = proposal.change.kind();
        let agent = proposal.change.agent().map(str::to_string);
        let inverse = proposal.change.inverse();
        let (id, seq) = self.with_tx(|db| {
            let id: i64 = db
                .query_one(
                    "INSERT INTO actions (kind, pool, agent, state, change, inverse, reason,
                                          evidence, created_ms, updated_ms, expected_effect)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10) RETURNING id",
                    &values![
                        kind.as_str(),
                        &proposal.pool,
                        agent.as_deref(),
                        ActionState::Proposed.as_str(),
                        serde_json::to_string(&proposal.change)?,
                        serde_json::to_string(&inverse)?,
                        &proposal.reason,
                        serde_json::to_string(&proposal.evidence)?,
                        now,
                        &proposal.expected_effect,
                    ],
                )?
                .get(0)?;
            let seq = insert_log(
                db,
                LogRow {
                    ts_ms: now,
                    action_id: id,
                    kind: kind.as_str(),
                    pool: &proposal.pool,
                    agent: agent.as_deref(),
                    from_state: None,
                    to_state: ActionState::Proposed.as_str(),
                    reason: &proposal.reason,
                    actor,
                },
            )?;
            Ok((id, seq))
        })?;
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
        let (mut action, seq) = self.with_tx(|db| {
            let action = read_action(db, id)?.ok_or(StoreError::NoSuchAction(id))?;
            db.execute(
                "UPDATE actions SET state = ?1, updated_ms = ?2 WHERE id = ?3",
                &values![to.as_str(), now, id],
            )?;
            let seq = insert_log(
                db,
                LogRow {
                    ts_ms: now,
                    action_id: id,
                    kind: action.kind.as_str(),
                    pool: &action.pool,
                    agent: action.agent.as_deref(),
                    from_state: Some(action.state.as_str()),
                    to_state: to.as_str(),
                    reason,
                    actor,
                },
            )?;
            Ok((action, seq))
        })?;
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
        self.with_db(|db| read_action(db, id))
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
        self.with_db(|db| {
            let ids = db.query(
                "SELECT id FROM actions WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1)
                   AND (CAST(?3 AS BIGINT) IS NULL OR id < ?3)
                 ORDER BY id DESC LIMIT ?2",
                &values![state.map(ActionState::as_str), limit, before],
            )?;
            read_actions(db, &ids)
        })
    }
}

/// The fault file [`FAULT_ENV`] names, if set.
fn fault_file() -> Option<PathBuf> {
    let path = std::env::var_os(FAULT_ENV).map(PathBuf::from)?;
    tracing::warn!(message = "Store writes fail while a file exists (test setting).",
        path = %path.display());
    Some(path)
}

/// One row of `action_log` to write.
struct LogRow<'a> {
    ts_ms: i64,
    action_id: i64,
    kind: &'a str,
    pool: &'a str,
    agent: Option<&'a str>,
    from_state: Option<&'a str>,
    to_state: &'a str,
    reason: &'a str,
    actor: &'a str,
}

/// Appends `row` to the log; answers its sequence number.
fn insert_log(db: &mut dyn Db, row: LogRow<'_>) -> Result<i64, StoreError> {
    db.query_one(
        "INSERT INTO action_log (ts_ms, action_id, kind, pool, agent, from_state, to_state,
                                 reason, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq",
        &values![
            row.ts_ms,
            row.action_id,
            row.kind,
            row.pool,
            row.agent,
            row.from_state,
            row.to_state,
            row.reason,
            row.actor
        ],
    )?
    .get(0)
}

/// The actions whose ids are the first column of `ids`, in that order.
fn read_actions(db: &mut dyn Db, ids: &[Row]) -> Result<Vec<Action>, StoreError> {
    let mut actions = Vec::with_capacity(ids.len());
    for row in ids {
        if let Some(action) = read_action(db, row.get(0)?)? {
            actions.push(action);
        }
    }
    Ok(actions)
}

fn read_action(db: &mut dyn Db, id: i64) -> Result<Option<Action>, StoreError> {
    let Some(row) = db.query_opt(
        "SELECT kind, pool, agent, state, change, inverse, reason, evidence, created_ms,
                updated_ms, risk, expires_ms, expected_effect
         FROM actions WHERE id = ?1",
        &values![id],
    )?
    else {
        return Ok(None);
    };
    let risk = match row.get::<Option<String>>(10)? {
        Some(text) => serde_json::from_str(&text)?,
        None => None,
    };
    // A row whose evidence has a shape this version does not know (a newer version wrote it)
    // still reads; its text stays in the database as it was.
    let evidence = serde_json::from_str(&row.get::<String>(7)?).unwrap_or_else(|error| {
        tracing::warn!(message = "Evidence of unknown shape.", action = id, %error);
        Evidence::empty()
    });
    Ok(Some(Action {
        id,
        kind: row.name::<ActionKind>(0)?,
        pool: row.get(1)?,
        agent: row.get(2)?,
        state: row.name::<ActionState>(3)?,
        change: row.json(4)?,
        inverse: row.json(5)?,
        reason: row.get(6)?,
        evidence,
        expected_effect: row.get::<Option<String>>(12)?.unwrap_or_default(),
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        risk,
        expires_ms: row.get(11)?,
        approvals: gate::approvals(db, id)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Change;
    use crate::domain::evidence::RequestedEvidence;

    /// A store that can be opened again and again: in an SQLite directory, or in a
    /// PostgreSQL database of the test server.
    pub(super) struct Place {
        target: StoreTarget,
        _dir: Option<tempfile::TempDir>,
    }

    impl Place {
        /// Opens (again) the store of this place.
        pub(super) fn open(&self) -> Store {
            Store::open_target(&self.target).unwrap()
        }
    }

    /// A new, empty place on each engine: every store test runs on both.
    pub(super) fn places() -> [Place; 2] {
        let dir = tempfile::tempdir().unwrap();
        [
            Place {
                target: StoreTarget::Sqlite(dir.path().to_path_buf()),
                _dir: Some(dir),
            },
            Place {
                target: StoreTarget::Postgres {
                    url: testing::TestServer::shared().fresh_database(),
                    password: None,
                },
                _dir: None,
            },
        ]
    }

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
        for place in places() {
            every_transition_is_a_log_row_and_survives_reopen_on(&place);
        }
    }

    fn every_transition_is_a_log_row_and_survives_reopen_on(place: &Place) {
        let store = place.open();
        let action = store.insert_action(&proposal(), "auto").unwrap();
        store
            .transition(action.id, ActionState::Applying, "starting agents", "auto")
            .unwrap();
        store
            .transition(action.id, ActionState::Applied, "4 agents ready", "auto")
            .unwrap();
        drop(store);

        let store = place.open();
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
        for place in places() {
            log_filters_by_pool_and_kind_on(place.open());
        }
    }

    fn log_filters_by_pool_and_kind_on(store: Store) {
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
