//! What the risk gate keeps: each action's risk assessment and expiry, approvals, the
//! verification baseline, the automation pause, and the counts the rate limits need.

use super::sql::{Db, marks, values};
use super::{Store, StoreError, read_actions};
use crate::analytics::risk::RiskAssessment;
use crate::domain::{Action, ActionKind, ActionState, Approval, Pause};

/// The approvals of one action, oldest first.
pub(super) fn approvals(db: &mut dyn Db, id: i64) -> Result<Vec<Approval>, StoreError> {
    db.query(
        "SELECT by_name, at_ms FROM approvals WHERE action_id = ?1 ORDER BY at_ms, by_name",
        &values![id],
    )?
    .iter()
    .map(|row| {
        Ok(Approval {
            by: row.get(0)?,
            at_ms: row.get(1)?,
        })
    })
    .collect()
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
        self.with_tx(|db| {
            db.execute(
                "UPDATE actions SET risk = ?1, expires_ms = ?2 WHERE id = ?3",
                &values![risk, expires_ms, id],
            )
        })?;
        Ok(())
    }

    /// Records `by`'s approval; returns false when `by` had already approved.
    pub fn add_approval(&self, id: i64, by: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let added = self.with_tx(|db| {
            db.execute(
                "INSERT INTO approvals (action_id, by_name, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                &values![id, by, now],
            )
        })?;
        Ok(added == 1)
    }

    /// Keeps what verification compares with (the pool before the change).
    pub fn set_verification(
        &self,
        id: i64,
        baseline: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.with_tx(|db| {
            db.execute(
                "UPDATE actions SET verification = ?1 WHERE id = ?2",
                &values![baseline.to_string(), id],
            )
        })?;
        Ok(())
    }

    /// The verification baseline of an action, if one was kept.
    pub fn verification(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let text = self.with_db(|db| {
            match db.query_opt(
                "SELECT verification FROM actions WHERE id = ?1",
                &values![id],
            )? {
                Some(row) => row.get::<Option<String>>(0),
                None => Ok(None),
            }
        })?;
        match text {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Every action now in one of `states`, oldest first.
    pub fn actions_in(&self, states: &[ActionState]) -> Result<Vec<Action>, StoreError> {
        // The index on `state` answers this; the actuator asks every second.
        let sql = format!(
            "SELECT id FROM actions WHERE state IN ({}) ORDER BY id",
            marks(1, states.len())
        );
        let params: Vec<_> = states.iter().map(|s| s.as_str().into()).collect();
        self.with_db(|db| {
            let ids = db.query(&sql, &params)?;
            read_actions(db, &ids)
        })
    }

    /// How many actions are in each state now.
    pub fn count_by_state(&self) -> Result<Vec<(ActionState, u64)>, StoreError> {
        self.with_db(|db| {
            db.query(
                "SELECT state, COUNT(*) FROM actions GROUP BY state ORDER BY state",
                &[],
            )?
            .iter()
            .map(|row| Ok((row.name(0)?, row.get(1)?)))
            .collect()
        })
    }

    /// How many actions of `pool` (of `kind`, when given) entered `state` since `since_ms`.
    pub fn count_entered(
        &self,
        pool: &str,
        kind: Option<ActionKind>,
        state: ActionState,
        since_ms: i64,
    ) -> Result<usize, StoreError> {
        let count: u64 = self.with_db(|db| {
            db.query_one(
                "SELECT COUNT(DISTINCT action_id) FROM action_log
                 WHERE pool = ?1 AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2)
                   AND to_state = ?3 AND ts_ms >= ?4",
                &values![pool, kind.map(ActionKind::as_str), state.as_str(), since_ms],
            )?
            .get(0)
        })?;
        Ok(count as usize)
    }

    /// How many actions of `pool` entered `applying` since `since_ms` and did not fail: the
    /// changes the hourly cap counts (failures back off on their own instead).
    pub fn count_changes(&self, pool: &str, since_ms: i64) -> Result<usize, StoreError> {
        let count: u64 = self.with_db(|db| {
            db.query_one(
                "SELECT COUNT(DISTINCT l.action_id) FROM action_log l
                 JOIN actions a ON a.id = l.action_id
                 WHERE l.pool = ?1 AND l.to_state = ?2 AND l.ts_ms >= ?3 AND a.state <> ?4",
                &values![
                    pool,
                    ActionState::Applying.as_str(),
                    since_ms,
                    ActionState::Failed.as_str()
                ],
            )?
            .get(0)
        })?;
        Ok(count as usize)
    }

    /// Whether automation is paused, and by whom and when.
    pub fn paused(&self) -> Result<Option<Pause>, StoreError> {
        let text = self.with_db(|db| {
            db.query_opt("SELECT value FROM settings WHERE key = 'paused'", &[])?
                .map(|row| row.get::<String>(0))
                .transpose()
        })?;
        match text {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// Pauses automation (`Some`, who and when) or resumes it (`None`); survives restarts.
    pub fn set_paused(&self, paused: Option<&Pause>) -> Result<(), StoreError> {
        let value = paused.map(serde_json::to_string).transpose()?;
        self.with_tx(|db| match value {
            Some(value) => db.execute(
                "INSERT INTO settings (key, value) VALUES ('paused', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &values![value],
            ),
            None => db.execute("DELETE FROM settings WHERE key = 'paused'", &[]),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActionState, Change, Proposal};

    #[test]
    fn approvals_pause_and_counts_survive_a_reopen() {
        for place in super::super::tests::places() {
            approvals_pause_and_counts_survive_a_reopen_on(&place);
        }
    }

    fn approvals_pause_and_counts_survive_a_reopen_on(place: &super::super::tests::Place) {
        let store = place.open();
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

        let store = place.open();
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
