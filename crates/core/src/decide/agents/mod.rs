//! Rules about single agents: a memory leak, an error burst of its own (`burst.rs`) or
//! anomalies of its own get the agent restarted; an agent that stays far hotter than its
//! pool gets less of the load.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::analytics::forecast::linear_trend;
use crate::domain::evidence::{
    AnomalousEvidence, AnomalyNote, Evidence, HotEvidence, LeakEvidence, LeakRule,
};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal, metric};
use crate::policy::AgentRules;

/// The least R² of a memory fit that counts as a leak: growth that is a straight line.
pub const LEAK_MIN_R2: f64 = 0.8;

/// How sure a leak's restart is, from its fit's R²: a straight line that fits well is good
/// evidence, never certainty (at most 0.8).
pub fn leak_confidence(r2: f64) -> f64 {
    (r2 * 0.8).clamp(0.0, 1.0)
}

mod burst;

/// What the rules remember about one agent.
#[derive(Debug, Default)]
struct Watch {
    /// (epoch ms, resident bytes), oldest first.
    memory: VecDeque<(i64, f64)>,
    /// Since when the agent has been hot, epoch ms.
    hot_since: Option<i64>,
    /// Since when its error rate has been above the burst threshold (epoch ms), and the
    /// highest rate seen since.
    burst: Option<(i64, f64)>,
}

/// The per-agent memory of the rules, for one controller.
#[derive(Debug, Default)]
pub struct AgentWatcher {
    watches: HashMap<String, Watch>,
}

pub use crate::domain::evidence::Growth;

impl AgentWatcher {
    /// Folds in the pool's agents as seen on this tick; forgets agents that are gone.
    pub fn observe(&mut self, agents: &[&AgentView], rules: &AgentRules, now_ms: i64) {
        let keep_ms = rules.leak_window_secs as i64 * 1000;
        for agent in agents {
            let watch = self.watches.entry(agent.id.clone()).or_default();
            // A new incarnation starts a new memory history.
            if watch
                .memory
                .front()
                .is_some_and(|&(at, _)| at < agent.started_ms)
            {
                watch.memory.clear();
            }
            if let Some(&bytes) = agent.metrics.get(metric::MEMORY_BYTES)
                && watch
                    .memory
                    .back()
                    .is_none_or(|&(at, _)| at < agent.last_sample_ms)
            {
                watch.memory.push_back((agent.last_sample_ms, bytes));
            }
            while watch
                .memory
                .front()
                .is_some_and(|&(at, _)| now_ms - at > keep_ms)
            {
                watch.memory.pop_front();
            }
        }
    }

    /// Forgets agents not in `alive`.
    pub fn retain(&mut self, alive: &[&AgentView]) {
        self.watches
            .retain(|id, _| alive.iter().any(|agent| &agent.id == id));
    }

    /// The agent's memory growth over the leak window, once the window is nearly full.
    pub fn growth(&self, agent: &str, rules: &AgentRules) -> Option<Growth> {
        let memory = &self.watches.get(agent)?.memory;
        let (first, last) = (memory.front()?.0, memory.back()?.0);
        let secs = (last - first) as f64 / 1000.0;
        if memory.len() < 5 || secs < rules.leak_window_secs as f64 * 0.8 {
            return None;
        }
        let values: Vec<f64> = memory.iter().map(|&(_, v)| v).collect();
        let (intercept, slope) = linear_trend(&values);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let (mut residual, mut total) = (0.0, 0.0);
        for (i, v) in values.iter().enumerate() {
            residual += (v - (intercept + slope * i as f64)).powi(2);
            total += (v - mean).powi(2);
        }
        let r2 = if total > 0.0 {
            1.0 - residual / total
        } else {
            0.0
        };
        let step_secs = secs / (values.len() - 1) as f64;
        let mb_per_min = slope / (1024.0 * 1024.0) * 60.0 / step_secs;
        Some(Growth {
            mb_per_min,
            r2,
            secs,
        })
    }

    /// A restart of the agent of the pool that leaks fastest, if one does.
    pub fn leak(&self, pool: &str, agents: &[&AgentView], rules: &AgentRules) -> Option<Proposal> {
        let (agent, growth) = agents
            .iter()
            .filter(|a| a.status != AgentStatus::Offline)
            .filter_map(|a| Some((*a, self.growth(&a.id, rules)?)))
            .filter(|(_, g)| g.mb_per_min >= rules.leak_mb_per_min && g.r2 >= LEAK_MIN_R2)
            .max_by(|a, b| a.1.mb_per_min.total_cmp(&b.1.mb_per_min))?;
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::Restart {
                agent: agent.id.clone(),
            },
            reason: format!(
                "agent {} leaks memory: +{:.0} MB/min steadily for {:.0} s (R² {:.2})",
                agent.id, growth.mb_per_min, growth.secs, growth.r2
            ),
            evidence: Evidence::Leak(LeakEvidence {
                agent: agent.id.clone(),
                status: agent.status,
                memory_bytes: agent.metrics.get(metric::MEMORY_BYTES).copied(),
                growth,
                rule: LeakRule {
                    leak_mb_per_min: rules.leak_mb_per_min,
                    leak_window_secs: rules.leak_window_secs,
                },
                anomalies: None,
            }),
            confidence: leak_confidence(growth.r2),
            expected_effect: format!(
                "agent {} starts again with fresh memory; the tasks it is running now fail",
                agent.id
            ),
        })
    }

    /// A restart of the agent whose anomalies persist while the rest of its pool has none:
    /// the agent, not the load, is what is wrong.
    pub fn anomalous(
        pool: &str,
        agents: &[&AgentView],
        seen: &[&AnomalyNote],
        rules: &AgentRules,
        now_ms: i64,
    ) -> Option<Proposal> {
        if rules.anomaly_count == 0 {
            return None;
        }
        let since = now_ms - rules.anomaly_window_secs as i64 * 1000;
        let mut counts: BTreeMap<&str, Vec<&AnomalyNote>> = BTreeMap::new();
        for observed in seen.iter().filter(|o| o.ts_ms >= since) {
            // Only what this incarnation did counts.
            let current = agents
                .iter()
                .find(|a| a.id == observed.agent)
                .is_some_and(|a| observed.ts_ms >= a.started_ms);
            if current {
                counts
                    .entry(observed.agent.as_str())
                    .or_default()
                    .push(observed);
            }
        }
        let [(agent, observations)] =
            <[_; 1]>::try_from(counts.into_iter().collect::<Vec<_>>()).ok()?;
        if observations.len() < rules.anomaly_count {
            return None;
        }
        let view = agents.iter().find(|a| a.id == agent)?;
        let metrics: Vec<&str> = observations.iter().map(|o| o.metric.as_str()).collect();
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::Restart {
                agent: agent.to_string(),
            },
            reason: format!(
                "agent {agent} had {} anomalies in {} s ({}) while the rest of its pool had none",
                observations.len(),
                rules.anomaly_window_secs,
                metrics.join(", ")
            ),
            evidence: Evidence::Anomalous(AnomalousEvidence {
                agent: agent.to_string(),
                status: view.status,
                anomalies: observations.iter().map(|a| (*a).clone()).collect(),
            }),
            // Anomalies say something is odd, not what: a restart is a guess.
            confidence: 0.6,
            expected_effect: format!("agent {agent} starts again and behaves like its pool"),
        })
    }

    /// Less load for an agent that has stayed far hotter than its pool: its weight is cut
    /// so that its share of the work brings it to the pool's mean.
    pub fn hot(
        &mut self,
        pool: &str,
        agents: &[&AgentView],
        weights: &BTreeMap<String, f64>,
        target: f64,
        rules: &AgentRules,
        now_ms: i64,
    ) -> Option<Proposal> {
        let cpu: Vec<(&AgentView, f64)> = agents
            .iter()
            .filter(|a| {
                matches!(
                    a.status,
                    AgentStatus::Active | AgentStatus::Busy | AgentStatus::Idle
                )
            })
            .filter_map(|a| Some((*a, a.metrics.get(metric::CPU_PERCENT).copied()?)))
            .collect();
        if cpu.len() < 2 {
            return None;
        }
        let mean = cpu.iter().map(|(_, c)| c).sum::<f64>() / cpu.len() as f64;
        let mut hottest: Option<(&AgentView, f64, i64)> = None;
        for (agent, load) in &cpu {
            let watch = self.watches.entry(agent.id.clone()).or_default();
            if *load >= mean * rules.hot_ratio && *load > target {
                let since = *watch.hot_since.get_or_insert(now_ms);
                if hottest.is_none_or(|(_, l, _)| *load > l) {
                    hottest = Some((agent, *load, since));
                }
            } else {
                watch.hot_since = None;
            }
        }
        let (agent, load, since) = hottest?;
        if now_ms - since < rules.hot_secs as i64 * 1000 {
            return None;
        }
        let from: BTreeMap<String, f64> = cpu
            .iter()
            .map(|(a, _)| (a.id.clone(), weights.get(&a.id).copied().unwrap_or(1.0)))
            .collect();
        let mut to = from.clone();
        let cut = (mean / load).clamp(0.1, 1.0);
        if let Some(weight) = to.get_mut(&agent.id) {
            *weight = (*weight * cut * 100.0).round() / 100.0;
        }
        Some(Proposal {
            pool: pool.to_string(),
            change: Change::Redistribute { from, to },
            reason: format!(
                "agent {} has run at {load:.0}% CPU, {:.1}× the pool's mean {mean:.0}%, for {} s",
                agent.id,
                load / mean.max(0.1),
                (now_ms - since) / 1000
            ),
            evidence: Evidence::Hot(HotEvidence {
                agent: agent.id.clone(),
                cpu_percent: load,
                pool_mean_cpu_percent: mean,
                weight_cut_to: cut,
                anomalies: None,
            }),
            confidence: 0.8,
            expected_effect: format!(
                "agent {} from {load:.0}% CPU to about the pool's mean {mean:.0}%",
                agent.id
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, at: i64, memory_mb: f64, cpu: f64) -> AgentView {
        let mut view = AgentView::blank(id, "p");
        view.last_sample_ms = at;
        let bytes = memory_mb * 1024.0 * 1024.0;
        view.metrics.insert(metric::MEMORY_BYTES.into(), bytes);
        view.metrics.insert(metric::CPU_PERCENT.into(), cpu);
        view.cpu_smoothed = Some(cpu);
        view
    }

    #[test]
    fn a_steady_rise_is_a_leak_and_a_flat_line_is_not() {
        let rules = AgentRules::default();
        let mut watcher = AgentWatcher::default();
        for tick in 0..=20 {
            let at = tick * 2000;
            // 3 MB every 2 s is 90 MB a minute; the neighbour stays at 50 MB with noise.
            let leaky = view("leaky", at, 40.0 + 3.0 * tick as f64, 10.0);
            let steady = view("steady", at, 50.0 + (tick % 3) as f64, 10.0);
            watcher.observe(&[&leaky, &steady], &rules, at);
        }
        let growth = watcher.growth("leaky", &rules).unwrap();
        assert!((growth.mb_per_min - 90.0).abs() < 1.0, "{growth:?}");
        assert!(growth.r2 > 0.99);
        let (leaky, steady) = (
            view("leaky", 40_000, 100.0, 10.0),
            view("steady", 40_000, 50.0, 10.0),
        );
        let proposal = watcher.leak("p", &[&leaky, &steady], &rules).unwrap();
        assert_eq!(
            proposal.change,
            Change::Restart {
                agent: "leaky".into()
            }
        );
        assert!(proposal.confidence > 0.75 && proposal.confidence <= 0.8);
        assert!(watcher.growth("steady", &rules).unwrap().mb_per_min < 10.0);
    }

    #[test]
    fn an_agent_hot_for_long_enough_gets_less_weight() {
        let rules = AgentRules::default();
        let mut watcher = AgentWatcher::default();
        let weights = BTreeMap::new();
        let mut proposal = None;
        for tick in 0..=12 {
            let at = tick * 2000;
            let agents = [
                view("a", at, 50.0, 90.0),
                view("b", at, 50.0, 30.0),
                view("c", at, 50.0, 30.0),
            ];
            let refs: Vec<&AgentView> = agents.iter().collect();
            proposal = watcher.hot("p", &refs, &weights, 50.0, &rules, at);
            if tick < 10 {
                assert!(proposal.is_none(), "not hot for 20 s yet at tick {tick}");
            }
        }
        let Change::Redistribute { from, to } = proposal.unwrap().change else {
            panic!("a redistribute");
        };
        assert_eq!(from["a"], 1.0);
        // Mean 50 over a's 90: its weight is cut to 0.56.
        assert!((to["a"] - 0.56).abs() < 1e-9, "{to:?}");
        assert_eq!(to["b"], 1.0);
    }

    #[test]
    fn anomalies_of_one_agent_alone_restart_it_and_a_pool_wide_change_does_not() {
        let rules = AgentRules::default();
        let observed = |agent: &str, at: i64| AnomalyNote {
            agent: agent.into(),
            pool: "p".into(),
            metric: "cpu_percent".into(),
            value: 99.0,
            score: 0.9,
            channels: Default::default(),
            ts_ms: at,
        };
        let (a, b) = (view("a", 0, 50.0, 10.0), view("b", 0, 50.0, 10.0));
        let agents = [&a, &b];
        let lone = [
            observed("a", 1_000),
            observed("a", 2_000),
            observed("a", 3_000),
        ];
        let refs: Vec<&AnomalyNote> = lone.iter().collect();
        let proposal = AgentWatcher::anomalous("p", &agents, &refs, &rules, 4_000).unwrap();
        assert_eq!(proposal.change, Change::Restart { agent: "a".into() });
        assert_eq!(proposal.confidence, 0.6);
        // Two of three is not enough; the neighbour's anomaly makes it the pool's, not a's.
        assert!(AgentWatcher::anomalous("p", &agents, &refs[..2], &rules, 4_000).is_none());
        let shared = [
            observed("a", 1_000),
            observed("a", 2_000),
            observed("a", 3_000),
            observed("b", 3_500),
        ];
        let refs: Vec<&AnomalyNote> = shared.iter().collect();
        assert!(AgentWatcher::anomalous("p", &agents, &refs, &rules, 4_000).is_none());
        // Old news, or from before a restart, does not count.
        let late = 4_000 + rules.anomaly_window_secs as i64 * 1000;
        let refs: Vec<&AnomalyNote> = lone.iter().collect();
        assert!(AgentWatcher::anomalous("p", &agents, &refs, &rules, late).is_none());
    }
}
