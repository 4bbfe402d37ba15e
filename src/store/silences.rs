//! Silences, kept in the store so they survive restarts.

use super::sql::values;
use super::{Store, StoreError};
use crate::notify::{Matcher, Silence};

impl Store {
    /// Stores a new silence; returns it with its id.
    pub fn insert_silence(&self, mut silence: Silence) -> Result<Silence, StoreError> {
        let matchers = serde_json::to_string(&silence.matchers)?;
        silence.id = self.with_tx(|db| {
            db.query_one(
                "INSERT INTO silences (matchers, starts_ms, ends_ms, comment, created_by,
                                       created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                &values![
                    matchers,
                    silence.starts_ms,
                    silence.ends_ms,
                    &silence.comment,
                    &silence.created_by,
                    silence.created_ms
                ],
            )?
            .get(0)
        })?;
        Ok(silence)
    }

    /// Every silence, newest first.
    pub fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let rows = self.with_db(|db| {
            db.query(
                "SELECT id, matchers, starts_ms, ends_ms, comment, created_by, created_ms
                 FROM silences ORDER BY id DESC",
                &[],
            )
        })?;
        rows.iter()
            .map(|row| {
                let matchers: Vec<Matcher> = row.json(1)?;
                Ok(Silence {
                    id: row.get(0)?,
                    matchers,
                    starts_ms: row.get(2)?,
                    ends_ms: row.get(3)?,
                    comment: row.get(4)?,
                    created_by: row.get(5)?,
                    created_ms: row.get(6)?,
                })
            })
            .collect()
    }

    /// Ends a silence at `now_ms` (if it ends later); false when there is no such silence.
    pub fn expire_silence(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self.with_tx(|db| {
            db.execute(
                "UPDATE silences SET ends_ms = CASE WHEN ends_ms < ?1 THEN ends_ms ELSE ?1 END
                 WHERE id = ?2",
                &values![now_ms, id],
            )
        })?;
        Ok(changed == 1)
    }
}
