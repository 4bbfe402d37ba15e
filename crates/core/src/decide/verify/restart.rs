//! A restart's verification. A restart takes one agent away for a moment and brings it back:
//! while it starts, the others carry its load, and how hot or slow they run then is expected;
//! once it serves, the pool runs as hot as its load makes it (a pool that cannot scale out
//! while the restart is in flight stays hot), which is not the restart's doing either. So a
//! restart is judged on whether the agent it restarted came back: it must serve within its
//! start-up grace and stay up, and an agent that is gone, or still starting or offline once
//! its grace is over, fails the restart at once (`decisive`), whatever the failure limit.
//! Every agent's status is judged as after any change (offline or reporting errors fails a
//! check). The restarted agent's load is not judged: the fleet keeps an agent's readings
//! across a restart, so until the new process reports each metric, what it shows may be the
//! old process's; the health rules (hot agents, error bursts, anomalies) judge it from then on.

use super::{Verdict, statuses};
use crate::domain::AgentStatus;
use crate::domain::fleet::FleetSnapshot;

/// Checks the restart of `agent` of `pool` in `snapshot`; `starting_ok` is whether it may
/// still be starting (before its start-up grace ends).
pub fn check_restart(
    snapshot: &FleetSnapshot,
    pool: &str,
    agent: &str,
    starting_ok: bool,
) -> Verdict {
    let mut verdict = Verdict {
        now: super::Baseline::of(snapshot, pool),
        ..Verdict::default()
    };
    statuses(snapshot, pool, starting_ok, &mut verdict);
    let restarted = snapshot
        .agents
        .iter()
        .find(|a| a.pool == pool && a.id == agent);
    let back = match restarted.map(|a| a.status) {
        None => Some(format!("restarted agent {agent} is not in the fleet")),
        Some(AgentStatus::Starting | AgentStatus::Offline) if starting_ok => {
            verdict
                .inconclusive
                .push(format!("{agent} is not serving yet"));
            None
        }
        Some(status @ (AgentStatus::Starting | AgentStatus::Offline)) => Some(format!(
            "restarted agent {agent} did not come back within its start-up grace ({})",
            if status == AgentStatus::Offline {
                "offline"
            } else {
                "still starting"
            }
        )),
        Some(_) => None,
    };
    if let Some(why) = back {
        verdict.failed.push(why);
        verdict.decisive = true;
    }
    verdict.inconclusive.push(format!(
        "the load of {agent} is judged by the health rules, not by its restart"
    ));
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fleet::AgentView;

    fn agent(id: &str, status: AgentStatus, cpu: f64) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.status = status;
        view.metrics
            .insert(crate::domain::metric::CPU_PERCENT.into(), cpu);
        view
    }

    fn judge(agents: Vec<AgentView>, starting_ok: bool) -> Verdict {
        let snapshot = FleetSnapshot::of(agents);
        check_restart(&snapshot, "p", "b", starting_ok)
    }

    #[test]
    fn while_it_starts_the_peers_carrying_its_load_are_not_judged_on_it() {
        // b restarts: a carries its load, hot, as expected for a moment.
        let early = judge(
            vec![
                agent("a", AgentStatus::Busy, 99.0),
                agent("b", AgentStatus::Starting, 0.0),
            ],
            true,
        );
        assert!(early.failed.is_empty(), "{early:?}");
        assert!(!early.decisive);
        assert!(
            early.inconclusive[0].contains("b is not serving yet"),
            "{early:?}"
        );
        // Back and serving, in a pool hot under its load: passes.
        let back = judge(
            vec![
                agent("a", AgentStatus::Busy, 99.0),
                agent("b", AgentStatus::Busy, 97.0),
            ],
            true,
        );
        assert!(back.failed.is_empty() && !back.decisive, "{back:?}");
    }

    #[test]
    fn one_that_does_not_come_back_fails_at_once() {
        for status in [AgentStatus::Starting, AgentStatus::Offline] {
            let late = judge(
                vec![
                    agent("a", AgentStatus::Active, 10.0),
                    agent("b", status, 0.0),
                ],
                false,
            );
            assert!(late.decisive, "{status:?}: {late:?}");
            assert!(
                late.failed.iter().any(|f| f.contains("did not come back")),
                "{late:?}"
            );
        }
        let gone = judge(vec![agent("a", AgentStatus::Active, 10.0)], true);
        assert!(gone.decisive, "{gone:?}");
        // A peer's trouble fails a check, as after any change, but decides nothing alone.
        let peer = judge(
            vec![
                agent("a", AgentStatus::Offline, 0.0),
                agent("b", AgentStatus::Active, 10.0),
            ],
            true,
        );
        assert_eq!(peer.failed, ["agent a is offline"]);
        assert!(!peer.decisive);
    }
}
