//! A restart's verification. A restart takes one agent away for a moment and brings it back:
//! while it starts, the others carry its load, and how hot or slow they run then is expected;
//! once it serves, the pool as a whole runs as hot as its load makes it (a pool that cannot
//! scale out while the restart is in flight stays hot), which is not the restart's doing
//! either. So a restart is judged on the agent it restarted, against its peers under the same
//! load: it must come back (serve within its grace, not offline, no errors), and once it
//! serves it must not run hotter, slower or with more errors than the pool's limits *and*
//! its peers (a restart that left it spinning, or broken). Every other agent is judged on its
//! status only.

use super::{LATENCY_NOISE_MS, RESPONSE_TIME, Verdict, statuses};
use crate::analytics::stats;
use crate::domain::AgentStatus;
use crate::domain::fleet::{AgentView, FleetSnapshot};
use crate::policy::Verification;

/// Ratio to its peers' mean CPU above which a restarted agent runs hotter than they do.
const PEER_CPU_RATIO: f64 = 1.5;

/// Checks the restart of `agent` of `pool` in `snapshot`; `starting_ok` is whether it may
/// still be starting (before its start-up grace ends), `before` the pool's p95 latency
/// before the restart.
pub fn check_restart(
    before_p95_ms: Option<f64>,
    snapshot: &FleetSnapshot,
    pool: &str,
    agent: &str,
    conditions: &Verification,
    starting_ok: bool,
) -> Verdict {
    let mut verdict = Verdict {
        now: super::Baseline::of(snapshot, pool),
        ..Verdict::default()
    };
    statuses(snapshot, pool, starting_ok, &mut verdict);
    let members = || snapshot.agents.iter().filter(|a| a.pool == pool);
    let Some(restarted) = members().find(|a| a.id == agent) else {
        verdict
            .failed
            .push(format!("restarted agent {agent} is not in the fleet"));
        return verdict;
    };
    if restarted.status == AgentStatus::Starting || restarted.status == AgentStatus::Offline {
        // Judged above by its status; its load only once it serves.
        verdict
            .inconclusive
            .push(format!("load not judged while {agent} starts"));
        return verdict;
    }
    let peers: Vec<&AgentView> = members()
        .filter(|a| a.id != agent && a.status != AgentStatus::Offline)
        .collect();
    let peer_values = |metric: &str| -> Vec<f64> {
        peers
            .iter()
            .filter_map(|a| a.metrics.get(metric).copied())
            .filter(|v| v.is_finite())
            .collect()
    };
    let own = |metric: &str| {
        restarted
            .metrics
            .get(metric)
            .copied()
            .filter(|v| v.is_finite())
    };
    let cpu_metric = crate::domain::metric::CPU_PERCENT;
    match (own(cpu_metric), stats::mean(&peer_values(cpu_metric))) {
        (Some(cpu), peers) if cpu > conditions.max_cpu_percent
            && peers.is_none_or(|mean| cpu > mean * PEER_CPU_RATIO) =>
        {
            verdict.failed.push(format!(
                "restarted agent {agent} at {cpu:.0}% CPU is above {:.0}% and hotter than its peers{}",
                conditions.max_cpu_percent,
                peers.map_or(String::new(), |mean| format!(" ({mean:.0}%)"))
            ))
        }
        (Some(_), _) => {}
        (None, _) => verdict.inconclusive.push(format!("no CPU reading of {agent}")),
    }
    let peers_p95 = stats::quantile(&peer_values(RESPONSE_TIME), 0.95);
    match own(RESPONSE_TIME) {
        Some(latency) => {
            let ratio = conditions.max_p95_latency_ratio;
            let slower = |than: f64| latency > than * ratio && latency - than > LATENCY_NOISE_MS;
            if before_p95_ms.is_some_and(slower) && peers_p95.is_none_or(slower) {
                verdict.failed.push(format!(
                    "restarted agent {agent} answers in {latency:.0} ms, above {:.0}% of the pool's p95 before and of its peers'",
                    ratio * 100.0
                ));
            }
        }
        None => verdict.inconclusive.push(format!("no latency of {agent}")),
    }
    let peers_errors = stats::mean(&peer_values(super::ERROR_RATE));
    if let Some(rate) = own(super::ERROR_RATE)
        && rate > conditions.max_error_rate
        && peers_errors.is_none_or(|mean| rate > mean + 1.0)
    {
        verdict.failed.push(format!(
            "restarted agent {agent} has an error rate of {rate:.1}%, above {:.1}% and its peers'",
            conditions.max_error_rate
        ));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, status: AgentStatus, cpu: f64, latency: Option<f64>) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.status = status;
        view.metrics
            .insert(crate::domain::metric::CPU_PERCENT.into(), cpu);
        if let Some(latency) = latency {
            view.metrics.insert(RESPONSE_TIME.to_string(), latency);
        }
        view
    }

    fn fleet(agents: Vec<AgentView>) -> FleetSnapshot {
        FleetSnapshot {
            agents,
            ..FleetSnapshot::default()
        }
    }

    fn judge(agents: Vec<AgentView>, starting_ok: bool) -> Verdict {
        let conditions = Verification::default();
        check_restart(
            Some(40.0),
            &fleet(agents),
            "p",
            "b",
            &conditions,
            starting_ok,
        )
    }

    #[test]
    fn while_it_starts_the_peers_carrying_its_load_are_not_judged() {
        // b restarts: a carries its load, hot and slow, as expected for a moment.
        let early = judge(
            vec![
                agent("a", AgentStatus::Busy, 99.0, Some(500.0)),
                agent("b", AgentStatus::Starting, 0.0, None),
            ],
            true,
        );
        assert!(early.failed.is_empty(), "{early:?}");
        assert_eq!(early.inconclusive, ["load not judged while b starts"]);
        // Past its grace, still starting: the restart failed.
        let late = judge(
            vec![
                agent("a", AgentStatus::Busy, 99.0, Some(500.0)),
                agent("b", AgentStatus::Starting, 0.0, None),
            ],
            false,
        );
        assert_eq!(
            late.failed,
            ["agent b is not serving after its start-up grace"]
        );
        // Gone, or offline again: failed at once.
        assert!(
            !judge(vec![agent("a", AgentStatus::Active, 10.0, None)], true)
                .failed
                .is_empty()
        );
        let offline = judge(
            vec![
                agent("a", AgentStatus::Active, 10.0, None),
                agent("b", AgentStatus::Offline, 0.0, None),
            ],
            true,
        );
        assert_eq!(offline.failed, ["agent b is offline"]);
    }

    #[test]
    fn once_it_serves_it_is_judged_against_its_peers_under_the_same_load() {
        // The whole pool hot and slow under its load: b like its peers passes.
        let loaded = judge(
            vec![
                agent("a", AgentStatus::Busy, 57.0, Some(300.0)),
                agent("b", AgentStatus::Active, 55.0, Some(280.0)),
            ],
            true,
        );
        assert!(loaded.failed.is_empty(), "{loaded:?}");
        // b spinning (far hotter than a) or far slower than both before and its peers fails.
        let spinning = judge(
            vec![
                agent("a", AgentStatus::Active, 20.0, Some(40.0)),
                agent("b", AgentStatus::Active, 99.0, Some(45.0)),
            ],
            true,
        );
        assert_eq!(spinning.failed.len(), 1, "{spinning:?}");
        assert!(spinning.failed[0].contains("99% CPU"), "{spinning:?}");
        let slow = judge(
            vec![
                agent("a", AgentStatus::Active, 20.0, Some(40.0)),
                agent("b", AgentStatus::Active, 20.0, Some(400.0)),
            ],
            true,
        );
        assert_eq!(slow.failed.len(), 1, "{slow:?}");
        assert!(slow.failed[0].contains("400 ms"), "{slow:?}");
        // A peer's own trouble is judged by its status only.
        let peer_hot = judge(
            vec![
                agent("a", AgentStatus::Busy, 99.0, Some(900.0)),
                agent("b", AgentStatus::Active, 20.0, Some(40.0)),
            ],
            true,
        );
        assert!(peer_hot.failed.is_empty(), "{peer_hot:?}");
    }
}
