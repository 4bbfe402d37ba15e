//! An error burst of one agent: its error rate has stayed above `error_burst_percent` for
//! `error_burst_secs` while the other agents of its pool, serving the same load, report
//! rates at or below it. The agent, not the load, is what fails: it is restarted.

use super::AgentWatcher;
use crate::domain::evidence::{ErrorBurstEvidence, ErrorBurstRule, Evidence};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::AgentRules;

impl AgentWatcher {
    /// A restart of the agent of the pool whose error burst has lasted longest, if one has
    /// lasted `error_burst_secs` alone; called on every tick, as it keeps when bursts began.
    pub fn burst(
        &mut self,
        pool: &str,
        agents: &[&AgentView],
        rules: &AgentRules,
        now_ms: i64,
    ) -> Option<Proposal> {
        let limit = rules.error_burst_percent;
        let rates: Vec<(&AgentView, f64)> = agents
            .iter()
            .filter(|a| a.status != AgentStatus::Offline)
            .filter_map(|a| Some((*a, a.metrics.get(metric::ERROR_RATE).copied()?)))
            .filter(|(_, rate)| rate.is_finite())
            .collect();
        let mut longest: Option<(&AgentView, f64, i64, f64)> = None;
        for &(agent, rate) in &rates {
            let watch = self.watches.entry(agent.id.clone()).or_default();
            // A new incarnation starts with a clean record.
            if rate <= limit
                || watch
                    .burst
                    .is_some_and(|(since, _)| since < agent.started_ms)
            {
                watch.burst = None;
            }
            if rate > limit {
                let (since, peak) = watch.burst.get_or_insert((now_ms, rate));
                *peak = peak.max(rate);
                if longest.is_none_or(|(_, _, s, _)| *since < s) {
                    longest = Some((agent, rate, *since, *peak));
                }
            }
        }
        if rules.error_burst_secs == 0 {
            return None;
        }
        let (agent, rate, since, peak) = longest?;
        let others: Vec<(&str, f64)> = rates
            .iter()
            .filter(|(a, _)| a.id != agent.id)
            .map(|(a, r)| (a.id.as_str(), *r))
            .collect();
        // Alone: someone else serves the pool's load without the errors.
        let alone = !others.is_empty() && others.iter().all(|&(_, r)| r <= limit);
        let lasted_secs = (now_ms - since) / 1000;
        if !alone || now_ms - since < rules.error_burst_secs as i64 * 1000 {
            return None;
        }
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::Restart {
                agent: agent.id.clone(),
            },
            reason: format!(
                "agent {} has failed more than {limit}% of its requests for {lasted_secs} s \
                 (now {rate:.1}%, peak {peak:.1}%) while the rest of its pool stayed below",
                agent.id
            ),
            evidence: Evidence::ErrorBurst(ErrorBurstEvidence {
                agent: agent.id.clone(),
                status: agent.status,
                error_rate: rate,
                peak_error_rate: peak,
                burst_secs: lasted_secs,
                pool_error_rates: others.iter().map(|&(id, r)| (id.to_string(), r)).collect(),
                rule: ErrorBurstRule {
                    error_burst_percent: limit,
                    error_burst_secs: rules.error_burst_secs,
                },
                anomalies: None,
            }),
            // Errors of one agent alone point at the agent; a restart may still not cure it.
            confidence: 0.7,
            expected_effect: format!(
                "agent {} starts again and fails no more than its pool; the tasks it is \
                 running now fail",
                agent.id
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, error_rate: f64) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.metrics.insert(metric::ERROR_RATE.into(), error_rate);
        view
    }

    /// Runs ticks 2 s apart with the error rates of a, b and c on each; the last proposal.
    fn check(ticks: &[[f64; 3]]) -> Option<Proposal> {
        let rules = AgentRules {
            error_burst_percent: 10.0,
            error_burst_secs: 10,
            ..AgentRules::default()
        };
        let mut watcher = AgentWatcher::default();
        let mut proposal = None;
        for (tick, rates) in ticks.iter().enumerate() {
            let agents = [
                view("a", rates[0]),
                view("b", rates[1]),
                view("c", rates[2]),
            ];
            let refs: Vec<&AgentView> = agents.iter().collect();
            proposal = watcher.burst("p", &refs, &rules, tick as i64 * 2000);
        }
        proposal
    }

    #[test]
    fn an_error_burst_of_one_agent_alone_restarts_it() {
        let burst = [[30.0, 1.0, 0.0]; 6];
        let proposal = check(&burst).unwrap();
        assert_eq!(proposal.change, Change::Restart { agent: "a".into() });
        let Evidence::ErrorBurst(evidence) = &proposal.evidence else {
            panic!("not an error burst: {:?}", proposal.evidence);
        };
        assert_eq!(evidence.burst_secs, 10);
        assert_eq!(evidence.pool_error_rates["b"], 1.0);
        assert!(proposal.reason.contains("for 10 s"), "{}", proposal.reason);

        // (what, error rates per tick)
        let quiet: [(&str, Vec<[f64; 3]>); 4] = [
            ("not long enough", vec![[30.0, 1.0, 0.0]; 5]),
            ("the whole pool fails: the load", vec![[30.0, 25.0, 0.0]; 6]),
            ("interrupted", {
                let mut ticks = vec![[30.0, 1.0, 0.0]; 6];
                ticks[3] = [5.0, 1.0, 0.0];
                ticks
            }),
            ("at the limit is not above it", vec![[10.0, 1.0, 0.0]; 6]),
        ];
        for (what, ticks) in quiet {
            assert!(check(&ticks).is_none(), "{what}");
        }
    }
}
