//! Reading the action log: filtered, newest first, a page at a time.

use super::sql::values;
use super::{Store, StoreError};
use crate::clock;
use crate::domain::{ActionKind, ActionState, Change};

/// One row of the action log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Row number, increasing.
    pub seq: i64,
    /// Epoch milliseconds of the transition.
    pub ts_ms: i64,
    /// RFC 3339 form of `ts_ms`.
    pub time: String,
    /// The action.
    pub action_id: i64,
    /// Its kind.
    pub kind: ActionKind,
    /// Its pool.
    pub pool: String,
    /// Its agent, when it targets one.
    pub agent: Option<String>,
    /// State before; `None` for the first row.
    pub from_state: Option<ActionState>,
    /// State after.
    pub to_state: ActionState,
    /// Why the transition happened.
    pub reason: String,
    /// Who caused it: `auto` or a user.
    pub actor: String,
    /// The action's change.
    pub change: Change,
    /// The exact change that undoes it; `None` for a restart.
    pub inverse: Option<Change>,
}

/// Filters for reading the log, newest first.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only rows at or after this epoch millisecond.
    pub since_ms: Option<i64>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only actions on this agent (restarts name theirs).
    pub agent: Option<String>,
    /// Only this action kind.
    pub kind: Option<ActionKind>,
    /// Only rows entering this state.
    pub status: Option<ActionState>,
    /// Only rows older than this row number (the next page).
    pub before_seq: Option<i64>,
    /// At most this many rows.
    pub limit: usize,
}

impl Store {
    /// Log rows matching `filter`, newest first.
    pub fn log(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        let rows = self.with_db(|db| {
            db.query(
                "SELECT l.seq, l.ts_ms, l.action_id, l.kind, l.pool, l.agent, l.from_state,
                        l.to_state, l.reason, l.actor, a.change, a.inverse
                 FROM action_log l JOIN actions a ON a.id = l.action_id
                 WHERE (CAST(?1 AS BIGINT) IS NULL OR l.ts_ms >= ?1)
                   AND (CAST(?2 AS TEXT) IS NULL OR l.pool = ?2)
                   AND (CAST(?3 AS TEXT) IS NULL OR l.kind = ?3)
                   AND (CAST(?4 AS TEXT) IS NULL OR l.to_state = ?4)
                   AND (CAST(?5 AS BIGINT) IS NULL OR l.seq < ?5)
                   AND (CAST(?7 AS TEXT) IS NULL OR l.agent = ?7)
                 ORDER BY l.seq DESC LIMIT ?6",
                &values![
                    filter.since_ms,
                    filter.pool.as_deref(),
                    filter.kind.map(ActionKind::as_str),
                    filter.status.map(ActionState::as_str),
                    filter.before_seq,
                    filter.limit,
                    filter.agent.as_deref()
                ],
            )
        })?;
        rows.iter()
            .map(|row| {
                let ts_ms: i64 = row.get(1)?;
                Ok(LogEntry {
                    seq: row.get(0)?,
                    ts_ms,
                    time: clock::rfc3339(ts_ms),
                    action_id: row.get(2)?,
                    kind: row.name(3)?,
                    pool: row.get(4)?,
                    agent: row.get(5)?,
                    from_state: row
                        .get::<Option<String>>(6)?
                        .map(|name| name.parse())
                        .transpose()?,
                    to_state: row.name(7)?,
                    reason: row.get(8)?,
                    actor: row.get(9)?,
                    change: row.json(10)?,
                    inverse: row.json(11)?,
                })
            })
            .collect()
    }
}
