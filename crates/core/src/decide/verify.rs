//! Verification after an apply, in the manner of Argo Rollouts' analysis: the pool is
//! measured before the change, then checked every sampling interval for the policy's window
//! against success conditions; more failed checks than `failure_limit` roll it back.

use serde::{Deserialize, Serialize};

/// A p95 latency that rose by no more than this, milliseconds, has not got worse.
pub const LATENCY_NOISE_MS: f64 = 20.0;

use crate::analytics::stats;
use crate::domain::AgentStatus;
use crate::domain::fleet::{AgentView, FleetSnapshot};
use crate::policy::Verification;

mod restart;
pub use restart::check_restart;

/// Latency metric compared before and after, milliseconds.
const RESPONSE_TIME: &str = "response_time_ms";
/// CPU metric, percent of a core.
const CPU: &str = crate::domain::metric::CPU_PERCENT;
/// Error-rate metric, percent.
const ERROR_RATE: &str = "error_rate";

/// The pool as it was before the change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Agents of the pool then.
    pub agents: Vec<String>,
    /// Mean agent CPU, percent of a core.
    pub mean_cpu: Option<f64>,
    /// The hottest agent and its latest CPU reading, percent of a core.
    pub hottest: Option<(String, f64)>,
    /// 95th percentile of the agents' latest response times, milliseconds.
    pub p95_latency_ms: Option<f64>,
    /// Mean agent error rate, percent.
    pub error_rate: Option<f64>,
}

impl Baseline {
    /// Measures `pool` in a fleet snapshot.
    pub fn of(snapshot: &FleetSnapshot, pool: &str) -> Baseline {
        let members: Vec<&AgentView> = snapshot.views().filter(|a| a.pool == pool).collect();
        let values = |metric: &str| -> Vec<f64> {
            members
                .iter()
                .filter(|a| a.status != AgentStatus::Offline)
                .filter_map(|a| a.metrics.get(metric).copied())
                .filter(|v| v.is_finite())
                .collect()
        };
        let cpu: Vec<f64> = members.iter().filter_map(|a| a.cpu_smoothed).collect();
        let hottest = members
            .iter()
            .filter(|a| a.status != AgentStatus::Offline)
            .filter_map(|a| Some((a.id.clone(), *a.metrics.get(CPU)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let latency = values(RESPONSE_TIME);
        Baseline {
            agents: members.iter().map(|a| a.id.clone()).collect(),
            mean_cpu: stats::mean(&cpu),
            hottest,
            p95_latency_ms: stats::quantile(&latency, 0.95),
            error_rate: stats::mean(&values(ERROR_RATE)),
        }
    }
}

/// Which conditions judge a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// A change that adds capacity or moves a threshold: status, latency, error rate.
    Adding,
    /// A change that takes capacity away or moves load: the hottest agent's CPU too.
    Removing,
    /// A concurrency decrease against a throttling provider: status only. Its errors and
    /// latency are the provider's (they rise and fall with the load, not with the limit), and
    /// queueing for a turn is the point.
    Easing,
    /// A concurrency increase after throttling stopped: status, and an error rate not above
    /// both the limit and what it was before (refusals coming back roll it back).
    Pacing,
}

/// One check's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Conditions that failed, each a sentence.
    pub failed: Vec<String>,
    /// Conditions without data to judge.
    pub inconclusive: Vec<String>,
    /// What was measured.
    pub now: Baseline,
    /// A failure that decides at once, whatever the failure limit (a restarted agent that
    /// did not come back).
    pub decisive: bool,
}

/// The progress of one action's verification.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The pool.
    pub pool: String,
    /// Before the change.
    pub before: Baseline,
    /// When the window ends, epoch milliseconds.
    pub until_ms: i64,
    /// When the next check is due, epoch milliseconds.
    pub next_ms: i64,
    /// When new agents must be serving, epoch milliseconds.
    pub ready_by_ms: i64,
    /// Checks done.
    pub checks: u32,
    /// Checks failed, with the last failure's reasons.
    pub failures: Vec<String>,
    /// A check is running.
    pub running: bool,
    /// Which conditions judge the change.
    pub judge: Judge,
    /// The agent a restart restarted: judged on whether it came back (`restart.rs`).
    pub restarted: Option<String>,
}

/// Checks `pool` in `snapshot` against the conditions; `starting_ok` is whether agents may
/// still be starting (before the start-up grace ends). The CPU condition judges only changes
/// that take capacity away or move load (`Judge::Removing`): a scale-out that has not yet
/// cooled a pool under rising load must not be undone for it.
pub fn check(
    before: &Baseline,
    snapshot: &FleetSnapshot,
    pool: &str,
    conditions: &Verification,
    starting_ok: bool,
    judge: Judge,
) -> Verdict {
    let now = Baseline::of(snapshot, pool);
    let mut verdict = Verdict::default();
    statuses(snapshot, pool, starting_ok, &mut verdict);
    if judge == Judge::Easing {
        verdict.now = now;
        return verdict;
    }
    if judge == Judge::Pacing {
        let before = before.error_rate.unwrap_or(0.0);
        match now.error_rate {
            Some(rate) if rate > conditions.max_error_rate && rate > before + 1.0 => {
                verdict.failed.push(format!(
                    "error rate {rate:.1}% is above {:.1}% and above {before:.1}% before",
                    conditions.max_error_rate
                ))
            }
            Some(_) => {}
            None => verdict.inconclusive.push("no error rate".into()),
        }
        verdict.now = now;
        return verdict;
    }
    match &now.hottest {
        _ if judge != Judge::Removing => {}
        Some((agent, cpu)) if *cpu > conditions.max_cpu_percent => verdict.failed.push(format!(
            "agent {agent} at {cpu:.0}% CPU is above {:.0}%",
            conditions.max_cpu_percent
        )),
        Some(_) => {}
        None => verdict.inconclusive.push("no CPU reading".into()),
    }
    match (before.p95_latency_ms, now.p95_latency_ms) {
        // A rise of a few milliseconds is noise on a busy host, whatever its ratio.
        (Some(was), Some(is))
            if is > was * conditions.max_p95_latency_ratio && is - was > LATENCY_NOISE_MS =>
        {
            verdict.failed.push(format!(
                "p95 latency {is:.0} ms is above {:.0}% of {was:.0} ms before",
                conditions.max_p95_latency_ratio * 100.0
            ))
        }
        (Some(_), Some(_)) => {}
        _ => verdict
            .inconclusive
            .push("no latency before and after".into()),
    }
    match now.error_rate {
        Some(rate) if rate > conditions.max_error_rate => verdict.failed.push(format!(
            "error rate {rate:.1}% is above {:.1}%",
            conditions.max_error_rate
        )),
        Some(_) => {}
        None => verdict.inconclusive.push("no error rate".into()),
    }
    verdict.now = now;
    verdict
}

/// Fails `verdict` for every agent of `pool` that is offline, reports errors, or is still
/// starting once `starting_ok` is over.
fn statuses(snapshot: &FleetSnapshot, pool: &str, starting_ok: bool, verdict: &mut Verdict) {
    for agent in snapshot.agents.iter().filter(|a| a.pool == pool) {
        match agent.status {
            AgentStatus::Offline => verdict
                .failed
                .push(format!("agent {} is offline", agent.id)),
            AgentStatus::Error => verdict
                .failed
                .push(format!("agent {} reports errors", agent.id)),
            AgentStatus::Starting if !starting_ok => verdict.failed.push(format!(
                "agent {} is not serving after its start-up grace",
                agent.id
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn agent(id: &str, status: AgentStatus, cpu: f64, latency: Option<f64>) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.status = status;
        view.metrics.insert(CPU.to_string(), cpu);
        if let Some(latency) = latency {
            view.metrics.insert(RESPONSE_TIME.to_string(), latency);
        }
        view.cpu_smoothed = Some(cpu);
        view
    }

    fn fleet(agents: Vec<AgentView>) -> FleetSnapshot {
        FleetSnapshot::of(agents)
    }

    #[test]
    fn a_healthy_pool_passes_and_missing_data_is_inconclusive() {
        let conditions = Verification::default();
        let before = Baseline::of(
            &fleet(vec![agent("a", AgentStatus::Active, 40.0, None)]),
            "p",
        );
        let after = fleet(vec![
            agent("a", AgentStatus::Active, 30.0, None),
            agent("b", AgentStatus::Starting, 0.0, None),
        ]);
        let verdict = check(&before, &after, "p", &conditions, true, Judge::Removing);
        assert!(verdict.failed.is_empty(), "{verdict:?}");
        assert_eq!(verdict.inconclusive.len(), 2, "{verdict:?}");
        let late = check(&before, &after, "p", &conditions, false, Judge::Removing);
        assert_eq!(late.failed.len(), 1, "{late:?}");
    }

    #[test]
    fn hot_agents_slower_answers_and_offline_agents_fail() {
        let conditions = Verification::default();
        let before = Baseline::of(
            &fleet(vec![agent("a", AgentStatus::Active, 40.0, Some(100.0))]),
            "p",
        );
        let after = fleet(vec![
            agent("a", AgentStatus::Busy, 99.0, Some(150.0)),
            agent("b", AgentStatus::Offline, 95.0, Some(100.0)),
        ]);
        let verdict = check(&before, &after, "p", &conditions, true, Judge::Removing);
        assert_eq!(verdict.failed.len(), 3, "{verdict:?}");
        let grown = check(&before, &after, "p", &conditions, true, Judge::Adding);
        assert_eq!(
            grown.failed.len(),
            2,
            "a scale-out is not judged on CPU: {grown:?}"
        );
        assert!(verdict.failed.iter().any(|f| f.contains("CPU")));
        assert!(verdict.failed.iter().any(|f| f.contains("p95 latency")));
        assert!(verdict.failed.iter().any(|f| f.contains("offline")));
    }

    #[test]
    fn an_error_rate_above_the_limit_fails_and_one_at_or_below_passes() {
        let conditions = Verification {
            max_error_rate: 5.0,
            ..Verification::default()
        };
        let with_errors = |rates: &[f64]| {
            let agents = rates
                .iter()
                .enumerate()
                .map(|(i, rate)| {
                    let mut view = agent(&format!("a{i}"), AgentStatus::Active, 10.0, None);
                    view.metrics.insert(ERROR_RATE.to_string(), *rate);
                    view
                })
                .collect();
            fleet(agents)
        };
        let before = Baseline::of(&with_errors(&[1.0, 1.0]), "p");
        assert_eq!(before.error_rate, Some(1.0));
        // The pool's mean is judged: 2 and 12 make 7%, above 5%.
        let verdict = check(
            &before,
            &with_errors(&[2.0, 12.0]),
            "p",
            &conditions,
            false,
            Judge::Adding,
        );
        assert_eq!(
            verdict.failed,
            ["error rate 7.0% is above 5.0%"],
            "{verdict:?}"
        );
        // One agent's errors within a healthy pool mean, or exactly the limit, pass.
        for rates in [[0.0, 9.0], [5.0, 5.0]] {
            let verdict = check(
                &before,
                &with_errors(&rates),
                "p",
                &conditions,
                false,
                Judge::Adding,
            );
            assert!(verdict.failed.is_empty(), "{rates:?}: {verdict:?}");
            assert!(!verdict.inconclusive.iter().any(|i| i.contains("error")));
        }
    }

    #[test]
    fn a_latency_rise_of_a_few_milliseconds_is_noise() {
        let conditions = Verification::default();
        let before = Baseline::of(
            &fleet(vec![agent("a", AgentStatus::Active, 20.0, Some(25.0))]),
            "p",
        );
        // 25 to 40 ms is 160% but 15 ms: noise; 25 to 60 ms is a real rise.
        for (after_ms, fails) in [(40.0, false), (60.0, true)] {
            let after = fleet(vec![agent("a", AgentStatus::Active, 20.0, Some(after_ms))]);
            let verdict = check(&before, &after, "p", &conditions, true, Judge::Removing);
            let latency = verdict.failed.iter().any(|f| f.contains("p95 latency"));
            assert_eq!(latency, fails, "{after_ms} ms: {verdict:?}");
        }
    }

    #[test]
    fn a_concurrency_change_is_judged_by_errors_against_before() {
        let conditions = Verification::default();
        let with_errors = |rate: f64, latency: f64| {
            let mut view = agent("a", AgentStatus::Active, 90.0, Some(latency));
            view.metrics.insert(ERROR_RATE.to_string(), rate);
            fleet(vec![view])
        };
        let before = Baseline::of(&with_errors(60.0, 100.0), "p");
        // Still throttled, slower (tasks wait their turn), hot: not the change's doing.
        let same = check(
            &before,
            &with_errors(55.0, 400.0),
            "p",
            &conditions,
            true,
            Judge::Pacing,
        );
        assert!(same.failed.is_empty(), "{same:?}");
        let worse = check(
            &before,
            &with_errors(80.0, 100.0),
            "p",
            &conditions,
            true,
            Judge::Pacing,
        );
        assert_eq!(worse.failed.len(), 1, "{worse:?}");
        // Judged as a change that adds capacity, the same pool fails on its errors alone.
        let adding = check(
            &before,
            &with_errors(55.0, 100.0),
            "p",
            &conditions,
            true,
            Judge::Adding,
        );
        assert!(!adding.failed.is_empty());
    }
}
