//! Silences, kept in SQLite so they survive restarts.

use rusqlite::params;

use super::{Store, StoreError};
use crate::notify::{Matcher, Silence};

/// The silences table.
pub(super) const SILENCE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL, comment TEXT NOT NULL,
    created_by TEXT NOT NULL, created_ms INTEGER NOT NULL
);
";

impl Store {
    /// Stores a new silence; returns it with its id.
    pub fn insert_silence(&self, mut silence: Silence) -> Result<Silence, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO silences (matchers, starts_ms, ends_ms, comment, created_by, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                serde_json::to_string(&silence.matchers)?,
                silence.starts_ms,
                silence.ends_ms,
                silence.comment,
                silence.created_by,
                silence.created_ms
            ],
        )?;
        silence.id = conn.last_insert_rowid();
        Ok(silence)
    }

    /// Every silence, newest first.
    pub fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, matchers, starts_ms, ends_ms, comment, created_by, created_ms
             FROM silences ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        let mut silences = Vec::new();
        for row in rows {
            let (id, matchers, starts_ms, ends_ms, comment, created_by, created_ms) = row?;
            let matchers: Vec<Matcher> = serde_json::from_str(&matchers)?;
            silences.push(Silence {
                id,
                matchers,
                starts_ms,
                ends_ms,
                comment,
                created_by,
                created_ms,
            });
        }
        Ok(silences)
    }

    /// Ends a silence at `now_ms` (if it ends later); false when there is no such silence.
    pub fn expire_silence(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE silences SET ends_ms = MIN(ends_ms, ?1) WHERE id = ?2",
            params![now_ms, id],
        )?;
        Ok(changed == 1)
    }
}
