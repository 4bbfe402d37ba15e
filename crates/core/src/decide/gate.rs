//! The risk gate's decisions: whether policy holds an automatic proposal back (cooldown, the
//! hourly cap, a like action waiting for people or recently refused by them), how many agents
//! a change disrupts, and which mode an assessment leaves.

use crate::analytics::risk::RiskAssessment;
use crate::domain::{Action, ActionState, Change};
use crate::policy::{Automation, RiskMode};

/// Why policy holds an automatic proposal back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Hold {
    /// The pool's last action finished less than `cooldown_secs` ago.
    #[error("pool {pool} is cooling down for {secs} s more")]
    CoolingDown {
        /// The pool.
        pool: String,
        /// Seconds left, rounded up.
        secs: i64,
    },
    /// The pool had the policy's cap of actions in the last hour.
    #[error("pool {pool} had {max} actions in the last hour, the policy's cap")]
    RateLimited {
        /// The pool.
        pool: String,
        /// The cap.
        max: u32,
    },
    /// A like action on the pool waits for approval.
    #[error("action {id} of the same kind on pool {pool} is waiting for approval")]
    AwaitingApproval {
        /// The pool.
        pool: String,
        /// The waiting action.
        id: i64,
    },
    /// People refused (or let expire) a like action less than `refusal_hold_secs` ago.
    #[error("the same change was {state} as action {id} less than {secs} s ago")]
    RecentlyRefused {
        /// The refused action.
        id: i64,
        /// `rejected` or `expired`.
        state: ActionState,
        /// The hold, seconds.
        secs: u64,
    },
}

/// Whether two changes of a pool are alike: same kind and target, same direction.
pub fn alike(a: &Change, b: &Change) -> bool {
    match (a, b) {
        (Change::Scale { from: f1, to: t1 }, Change::Scale { from: f2, to: t2 }) => {
            (t1 > f1) == (t2 > f2)
        }
        (Change::Restart { agent: a1 }, Change::Restart { agent: a2 }) => a1 == a2,
        (Change::AdjustThreshold { rule: r1, .. }, Change::AdjustThreshold { rule: r2, .. }) => {
            r1 == r2
        }
        (Change::Redistribute { .. }, Change::Redistribute { .. }) => true,
        (
            Change::AdjustConcurrency { from: f1, to: t1 },
            Change::AdjustConcurrency { from: f2, to: t2 },
        ) => (t1 > f1) == (t2 > f2),
        (Change::SwitchModel { agent: a1, .. }, Change::SwitchModel { agent: a2, .. }) => a1 == a2,
        _ => false,
    }
}

/// Holds an automatic action on `pool` while it cools down after the last one (finished at
/// `last_finished_ms`) or when `applied_last_hour` reached the hourly cap.
pub fn pace(
    pool: &str,
    last_finished_ms: Option<i64>,
    applied_last_hour: usize,
    automation: &Automation,
    now_ms: i64,
) -> Result<(), Hold> {
    if let Some(last) = last_finished_ms {
        let left = last + automation.cooldown_secs as i64 * 1000 - now_ms;
        if left > 0 {
            return Err(Hold::CoolingDown {
                pool: pool.to_string(),
                secs: (left + 999) / 1000,
            });
        }
    }
    if applied_last_hour >= automation.max_actions_per_hour as usize {
        return Err(Hold::RateLimited {
            pool: pool.to_string(),
            max: automation.max_actions_per_hour,
        });
    }
    Ok(())
}

/// Holds an automatic `change` on `pool` while a like action in `waiting_or_refused` (actions
/// pending approval, rejected or expired) waits for people, or was refused by them less than
/// the policy's refusal hold ago.
pub fn held_for_people(
    pool: &str,
    change: &Change,
    waiting_or_refused: &[Action],
    automation: &Automation,
    now_ms: i64,
) -> Result<(), Hold> {
    let hold_ms = automation.refusal_hold_secs as i64 * 1000;
    for other in waiting_or_refused {
        if other.pool != pool || !alike(&other.change, change) {
            continue;
        }
        if other.state == ActionState::PendingApproval {
            return Err(Hold::AwaitingApproval {
                pool: pool.to_string(),
                id: other.id,
            });
        }
        if now_ms - other.updated_ms < hold_ms {
            return Err(Hold::RecentlyRefused {
                id: other.id,
                state: other.state,
                secs: automation.refusal_hold_secs,
            });
        }
    }
    Ok(())
}

/// Whether `change` replaces capacity the pool lacks below its `min_agents`: a scale up
/// from fewer than the minimum, or a restart of an agent that is `down` while fewer than the
/// minimum run. Such a change is never held by the cooldown or the hourly cap.
pub fn restores_minimum(change: &Change, running: usize, min_agents: usize, down: bool) -> bool {
    match change {
        Change::Scale { from, to } => to > from && *from < min_agents,
        Change::Restart { .. } => down && running < min_agents,
        Change::AdjustThreshold { .. }
        | Change::Redistribute { .. }
        | Change::AdjustConcurrency { .. }
        | Change::SwitchModel { .. } => false,
    }
}

/// How many of a pool's `pool_size` agents `change` takes out of service: scaled in, restarted
/// (the whole pool when the driver restarts by rollout; none when the agent is already
/// `down`), or given a different load weight.
pub fn disrupted(
    change: &Change,
    pool_size: usize,
    whole_pool_restarts: bool,
    down: bool,
) -> usize {
    match change {
        Change::Scale { from, to } => from.saturating_sub(*to),
        Change::Restart { .. } if whole_pool_restarts => pool_size,
        Change::Restart { .. } => usize::from(!down),
        Change::Redistribute { from, to } => to
            .iter()
            .filter(|(agent, w)| (from.get(*agent).copied().unwrap_or(1.0) - **w).abs() > 1e-9)
            .count(),
        // Every agent keeps serving, at a different pace (or on another model).
        Change::AdjustThreshold { .. }
        | Change::AdjustConcurrency { .. }
        | Change::SwitchModel { .. } => 0,
    }
}

/// The assessment with its mode as policy leaves it: a change whose kind is not in
/// `auto_apply` needs an approval even when its risk would let it through.
pub fn under_policy(
    mut assessment: RiskAssessment,
    automation: &Automation,
    kind: &str,
) -> RiskAssessment {
    if assessment.mode == RiskMode::Auto && !automation.auto_apply.iter().any(|k| k == kind) {
        assessment.mode = RiskMode::Approval;
    }
    assessment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_changes_share_kind_target_and_direction() {
        assert!(alike(
            &Change::Scale { from: 2, to: 3 },
            &Change::Scale { from: 2, to: 5 }
        ));
        assert!(!alike(
            &Change::Scale { from: 2, to: 3 },
            &Change::Scale { from: 3, to: 2 }
        ));
    }

    #[test]
    fn cooldown_and_the_hourly_cap_refuse_automatic_applies() {
        let automation = Automation {
            cooldown_secs: 30,
            max_actions_per_hour: 2,
            ..Automation::default()
        };
        let now = 10_000_000;
        // (what, last finished, applied in the last hour, the refusal)
        let table = [
            ("never acted", None, 0, None),
            ("cooled down", Some(now - 30_000), 1, None),
            (
                "cooling down",
                Some(now - 18_500),
                0,
                Some("pool web is cooling down for 12 s more"),
            ),
            (
                "at the cap",
                Some(now - 60_000),
                2,
                Some("pool web had 2 actions in the last hour, the policy's cap"),
            ),
        ];
        for (what, last, applied, refusal) in table {
            let verdict = pace("web", last, applied, &automation, now);
            assert_eq!(
                verdict.as_ref().err().map(ToString::to_string).as_deref(),
                refusal,
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_restart_disrupts_one_agent_none_when_down_and_all_by_rollout() {
        let restart = Change::Restart {
            agent: "w-1".into(),
        };
        assert_eq!(disrupted(&restart, 4, false, false), 1);
        assert_eq!(disrupted(&restart, 4, false, true), 0);
        assert_eq!(disrupted(&restart, 4, true, false), 4);
        assert_eq!(
            disrupted(&Change::Scale { from: 5, to: 3 }, 5, false, false),
            2
        );
        assert_eq!(
            disrupted(&Change::Scale { from: 3, to: 5 }, 3, false, false),
            0
        );
    }

    #[test]
    fn only_changes_that_restore_the_minimum_skip_the_pacing() {
        let restart = Change::Restart {
            agent: "w-1".into(),
        };
        for (change, running, min, down, expected) in [
            (Change::Scale { from: 1, to: 2 }, 1, 2, false, true),
            (Change::Scale { from: 2, to: 3 }, 2, 2, false, false),
            (Change::Scale { from: 1, to: 0 }, 1, 2, false, false),
            (restart.clone(), 1, 2, true, true),
            (restart.clone(), 1, 2, false, false),
            (restart, 2, 2, true, false),
        ] {
            assert_eq!(
                restores_minimum(&change, running, min, down),
                expected,
                "{change:?} running {running} min {min} down {down}"
            );
        }
    }
}
