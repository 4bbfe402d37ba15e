//! What the risk gate keeps: each action's risk assessment and expiry, approvals, the
//! verification baseline, the automation pause, and the counts the rate limits need.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, read_action};
use crate::analytics::risk::RiskAssessment;
use crate::domain::{Action, ActionKind, ActionState, Approval, Pause};

const GATE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    action_id INTEGER NOT NULL REFERENCES actions (id), by_name TEXT NOT NULL,
    at_ms INTEGER NOT NULL, PRIMARY KEY (action_id, by_name)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Columns added to `actions` after its first version, with their types.
const ACTION_COLUMNS: [(&str, &str); 4] = [
    ("risk", "TEXT"),
    ("expires_ms", "INTEGER"),
    ("verification", "TEXT"),
    ("expected_effect", "TEXT"),
];

/// Brings a database of any earlier version up to date.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(GATE_SCHEMA)?;
    super::add_columns(conn, "actions", &ACTION_COLUMNS)
}

/// The approvals of one action, oldest first.
pub(super) fn approvals(conn: &Connection, id: i64) -> Result<Vec<Approval>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT by_name, at_ms FROM approvals WHERE action_id = ?1 ORDER BY at_ms")?;
    let rows = stmt.query_map(params![id], |row| {
        Ok(Approval {
            by: row.get(0)?,
            at_ms: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Records the gate's risk assessment and, for a pending approval, its expiry.
    pub fn set_risk(
        &self,
        id: i64,
        risk: &RiskAssessment,
        expires_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let risk = serde_json::to_string(risk)?;
        self.lock().execute(
            "UPDATE actions SET risk = ?1, expires_ms = ?2 WHERE id = ?3",
            params![risk, expires_ms, id],
        )?;
        Ok(())
    }

    /// Records `by`'s approval; returns false when `by` had already approved.
    pub fn add_approval(&self, id: i64, by: &str) -> Result<bool, StoreError> {
        let added = self.lock().execute(
            "INSERT OR IGNORE INTO approvals (action_id, by_name, at_ms) VALUES (?1, ?2, ?3)",
            params![id, by, self.clock.now_ms()],
        )?;
        Ok(added == 1)
    }

    /// Keeps what verification compares with (the pool before the change).
    pub fn set_verification(
        &self,
        id: i64,
        baseline: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE actions SET verification = ?1 WHERE id = ?2",
            params![baseline.to_string(), id],
        )?;
        Ok(())
    }

    /// The verification baseline of an action, if one was kept.
    pub fn verification(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<Option<String>> = self
            .lock()
            .query_row(
                "SELECT verification FROM actions WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()?;
        match text.flatten() {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Every action now in one of `states`, oldest first.
    pub fn actions_in(&self, states: &[ActionState]) -> Result<Vec<Action>, StoreError> {
        let conn = self.lock();
        // The index on `state` answers this; the actuator asks every second.
        let marks = vec!["?"; states.len()].join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT id FROM actions WHERE state IN ({marks}) ORDER BY id"
        ))?;
        let ids: Vec<i64> = stmt
            .query_map(
                rusqlite::params_from_iter(states.iter().map(|s| s.as_str())),
                |row| row.get(0),
            )?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .filter_map(|id| read_action(&conn, id).transpose())
            .collect()
    }

    /// How many actions are in each state now.
    pub fn count_by_state(&self) -> Result<Vec<(ActionState, u64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM actions GROUP BY state")?;
        let counts: Vec<(String, u64)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect::<Result<_, _>>()?;
        counts
            .into_iter()
            .map(|(state, count)| Ok((state.parse()?, count)))
            .collect()
    }

    /// How many actions of `pool` (of `kind`, when given) entered `state` since `since_ms`.
    pub fn count_entered(
        &self,
        pool: &str,
        kind: Option<ActionKind>,
        state: ActionState,
        since_ms: i64,
    ) -> Result<usize, StoreError> {
        let count: i64 = self.lock().query_row(
            "SELECT COUNT(DISTINCT action_id) FROM action_log
             WHERE pool = ?1 AND (?2 IS NULL OR kind = ?2) AND to_state = ?3 AND ts_ms >= ?4",
            params![pool, kind.map(ActionKind::as_str), state.as_str(), since_ms],
            |row| row.get(0),
        )?;
        Ok(count as usize)
    }

    /// How many actions of `pool` entered `applying` since `since_ms` and did not fail: the
    /// changes the hourly cap counts (failures back off on their own instead).
    pub fn count_changes(&self, pool: &str, since_ms: i64) -> Result<usize, StoreError> {
        let count: i64 = self.lock().query_row(
            "SELECT COUNT(DISTINCT l.action_id) FROM action_log l
             JOIN actions a ON a.id = l.action_id
             WHERE l.pool = ?1 AND l.to_state = ?2 AND l.ts_ms >= ?3 AND a.state <> ?4",
            params![
                pool,
                ActionState::Applying.as_str(),
                since_ms,
                ActionState::Failed.as_str()
            ],
            |row| row.get(0),
        )?;
        Ok(count as usize)
    }

    /// Whether automation is paused, and by whom and when.
    pub fn paused(&self) -> Result<Option<Pause>, StoreError> {
        let text: Option<String> = self
            .lock()
            .query_row(
                "SELECT value FROM settings WHERE key = 'paused'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        match text {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Pauses automation (`Some`, who and when) or resumes it (`None`); survives restarts.
    pub fn set_paused(&self, paused: Option<&Pause>) -> Result<(), StoreError> {
        let conn = self.lock();
        match paused {
            Some(value) => conn.execute(
                "INSERT INTO settings (key, value) VALUES ('paused', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![serde_json::to_string(value)?],
            )?,
            None => conn.execute("DELETE FROM settings WHERE key = 'paused'", [])?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActionState, Change, Proposal};

    #[test]
    fn approvals_pause_and_counts_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let proposal = Proposal {
            pool: "p".into(),
            change: Change::Restart { agent: "a".into() },
            reason: "r".into(),
            evidence: crate::domain::evidence::Evidence::empty(),
            confidence: 1.0,
            expected_effect: String::new(),
        };
        let action = store.insert_action(&proposal, "auto").unwrap();
        store
            .set_risk(
                action.id,
                &RiskAssessment {
                    score: 0.5,
                    class: "medium".into(),
                    mode: crate::policy::RiskMode::Approval,
                    factors: Vec::new(),
                },
                Some(42),
            )
            .unwrap();
        assert!(store.add_approval(action.id, "ann").unwrap());
        assert!(
            !store.add_approval(action.id, "ann").unwrap(),
            "twice is once"
        );
        store
            .transition(action.id, ActionState::PendingApproval, "gate", "auto")
            .unwrap();
        store
            .set_paused(Some(&Pause {
                paused: true,
                by: "root".into(),
                since: "2026-01-01T00:00:00.000Z".into(),
            }))
            .unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let read = store.action(action.id).unwrap().unwrap();
        assert_eq!(read.expires_ms, Some(42));
        assert_eq!(read.risk.as_ref().map(|r| r.score), Some(0.5));
        assert_eq!(read.approvals.len(), 1);
        assert_eq!(read.approvals[0].by, "ann");
        assert_eq!(
            store
                .actions_in(&[ActionState::PendingApproval])
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .count_entered("p", None, ActionState::PendingApproval, 0)
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .count_entered(
                    "p",
                    Some(ActionKind::Scale),
                    ActionState::PendingApproval,
                    0
                )
                .unwrap(),
            0
        );
        assert_eq!(store.paused().unwrap().map(|p| p.by), Some("root".into()));
        store.set_paused(None).unwrap();
        assert!(store.paused().unwrap().is_none());
    }
}
