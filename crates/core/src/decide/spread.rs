//! Spreading a throttled pool across equivalent models. A provider's rate limit is per model,
//! so when the model some of a pool's agents call is refused while another model the policy
//! lists as equivalent is not, moving agents to it takes load off the limit without giving
//! up throughput, where lowering the concurrency would. One agent moves at a time (the
//! actuator's one action in flight per pool paces it), from the most throttled model to the
//! least, and only while the target then has no more agents than the source: the agents end
//! spread evenly, and a move never invites the move back (a lone agent stays where it is).

use std::collections::BTreeMap;

use crate::domain::evidence::{Evidence, ModelLoad, ModelThrottledEvidence};
use crate::domain::fleet::AgentView;
use crate::domain::{AgentStatus, Change, Proposal, metric};

/// How sure a spreading decision is: the provider said so, call by call.
const CONFIDENCE: f64 = 0.9;

/// The pool's agents grouped by the model each calls, with what each model's provider
/// refuses: agents in `assigned` call the model named there, the rest call `models[0]`, the
/// pool's own. Agents on a model no longer listed (the policy changed) are left out.
pub fn by_model(
    models: &[&str],
    assigned: &BTreeMap<String, String>,
    agents: &[&AgentView],
) -> BTreeMap<String, (ModelLoad, Vec<(String, f64)>)> {
    let mut out: BTreeMap<String, (ModelLoad, Vec<(String, f64)>)> = models
        .iter()
        .map(|m| (m.to_string(), (ModelLoad::default(), Vec::new())))
        .collect();
    for agent in agents.iter().filter(|a| a.status != AgentStatus::Offline) {
        let model = assigned.get(&agent.id).map_or(models[0], String::as_str);
        let refused = agent
            .metrics
            .get(metric::RATE_LIMITED_PER_S)
            .copied()
            .unwrap_or(0.0);
        let attempts = agent
            .metrics
            .get(metric::MODEL_CALLS_PER_S)
            .or_else(|| agent.metrics.get(metric::THROUGHPUT_PER_S))
            .copied()
            .unwrap_or(0.0);
        let Some((load, members)) = out.get_mut(model) else {
            continue;
        };
        load.agents += 1;
        load.rate_limited_per_s += refused;
        load.attempts_per_s += attempts;
        members.push((agent.id.clone(), percent(refused, attempts)));
    }
    for (load, _) in out.values_mut() {
        load.throttled_percent = percent(load.rate_limited_per_s, load.attempts_per_s);
    }
    out
}

/// The refused share of attempts, percent (100 when refusals come with none counted).
fn percent(refused: f64, attempts: f64) -> f64 {
    if refused <= 0.0 {
        0.0
    } else if attempts <= 0.0 {
        100.0
    } else {
        (100.0 * refused / attempts).min(100.0)
    }
}

/// The move of one agent of `pool` from its most throttled model (refused share at least
/// `threshold_percent`) to the least throttled equivalent (under half of it) that has at
/// least two agents fewer; `None` when no model is throttled or none can take an agent.
pub fn plan(
    pool: &str,
    models: &[&str],
    assigned: &BTreeMap<String, String>,
    agents: &[&AgentView],
    threshold_percent: f64,
) -> Option<Proposal> {
    if models.len() < 2 {
        return None;
    }
    let groups = by_model(models, assigned, agents);
    let (source, (from, members)) = groups
        .iter()
        .filter(|(_, (load, members))| {
            load.rate_limited_per_s > 0.0
                && load.throttled_percent >= threshold_percent
                && !members.is_empty()
        })
        .max_by(|a, b| a.1.0.throttled_percent.total_cmp(&b.1.0.throttled_percent))?;
    let (target, (to, _)) = models
        .iter()
        .filter(|m| *m != source)
        .filter_map(|m| groups.get_key_value(*m))
        .filter(|(_, (load, _))| {
            load.throttled_percent < threshold_percent / 2.0 && load.agents + 2 <= from.agents
        })
        .min_by(|a, b| {
            (a.1.0.throttled_percent, a.1.0.agents)
                .partial_cmp(&(b.1.0.throttled_percent, b.1.0.agents))
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    let (agent, agent_percent) = members
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))?;
    let loads: BTreeMap<String, ModelLoad> = groups
        .iter()
        .map(|(m, (load, _))| (m.clone(), load.clone()))
        .collect();
    Some(Proposal {
        pool: pool.to_string(),
        change: Change::SwitchModel {
            agent: agent.clone(),
            from: source.clone(),
            to: target.clone(),
        },
        reason: format!(
            "the provider refuses {:.0}% of {source}'s calls for its rate limit ({agent}: \
             {agent_percent:.0}%) while the equivalent {target} refuses {:.0}%: {agent} moves \
             to {target}",
            from.throttled_percent, to.throttled_percent
        ),
        evidence: Evidence::ModelThrottled(ModelThrottledEvidence {
            models: loads,
            throttle_percent: threshold_percent,
            anomalies: None,
        }),
        confidence: CONFIDENCE,
        expected_effect: format!(
            "{} agents on {source}, {} on {target}: fewer refused calls at the same concurrency",
            from.agents - 1,
            to.agents + 1
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, refused: f64, calls: f64) -> AgentView {
        let mut view = AgentView::blank(id, "coders");
        view.metrics = [
            (metric::RATE_LIMITED_PER_S.to_string(), refused),
            (metric::MODEL_CALLS_PER_S.to_string(), calls),
        ]
        .into_iter()
        .collect();
        view
    }

    const MODELS: [&str; 2] = ["small-a", "small-b"];

    #[test]
    fn a_throttled_models_most_refused_agent_moves_to_the_quiet_equivalent() {
        let fleet = [
            agent("c-1", 1.0, 10.0),
            agent("c-2", 5.0, 10.0),
            agent("c-3", 0.0, 10.0),
        ];
        let agents: Vec<&AgentView> = fleet.iter().collect();
        let mut assigned = BTreeMap::new();
        // small-a: 6 of 30 refused (20%), three agents; small-b: none.
        let proposal = plan("coders", &MODELS, &assigned, &agents, 5.0).expect("a move");
        assert_eq!(
            proposal.change,
            Change::SwitchModel {
                agent: "c-2".into(),
                from: "small-a".into(),
                to: "small-b".into()
            }
        );
        let Evidence::ModelThrottled(evidence) = &proposal.evidence else {
            panic!("{:?}", proposal.evidence);
        };
        assert_eq!(evidence.models["small-a"].agents, 3);
        assert_eq!(evidence.models["small-a"].throttled_percent, 20.0);
        assert_eq!(evidence.models["small-b"].agents, 0);
        // Once c-2 has moved, two against one: a second move would only turn it round.
        assigned.insert("c-2".to_string(), "small-b".to_string());
        let fleet2 = [
            agent("c-1", 3.0, 10.0),
            agent("c-2", 0.0, 10.0),
            agent("c-3", 3.0, 10.0),
        ];
        let agents2: Vec<&AgentView> = fleet2.iter().collect();
        assert_eq!(plan("coders", &MODELS, &assigned, &agents2, 5.0), None);
    }

    #[test]
    fn no_move_below_the_threshold_onto_a_throttled_model_or_without_an_equivalent() {
        let fleet = [agent("c-1", 0.2, 10.0), agent("c-2", 0.2, 10.0)];
        let agents: Vec<&AgentView> = fleet.iter().collect();
        let none = BTreeMap::new();
        assert_eq!(plan("p", &MODELS, &none, &agents, 5.0), None, "2% refused");
        assert_eq!(
            plan("p", &MODELS[..1], &none, &agents, 1.0),
            None,
            "one model"
        );
        // Both models throttled: nowhere to go.
        let fleet = [agent("c-1", 5.0, 10.0), agent("c-2", 5.0, 10.0)];
        let agents: Vec<&AgentView> = fleet.iter().collect();
        let split = BTreeMap::from([("c-2".to_string(), "small-b".to_string())]);
        assert_eq!(plan("p", &MODELS, &split, &agents, 5.0), None);
        // A lone throttled agent stays: moving it would only move the throttling, and the
        // next tick would move it back.
        let lone = [agent("c-1", 5.0, 10.0)];
        let agents: Vec<&AgentView> = lone.iter().collect();
        assert_eq!(plan("p", &MODELS, &none, &agents, 5.0), None);
        // One on each model, one throttled: no move back and forth.
        let pair = [agent("c-1", 5.0, 10.0), agent("c-2", 0.0, 10.0)];
        let agents: Vec<&AgentView> = pair.iter().collect();
        assert_eq!(plan("p", &MODELS, &split, &agents, 5.0), None);
        // An agent on a model the policy no longer lists counts on none of them.
        let stale = BTreeMap::from([("c-1".to_string(), "gone".to_string())]);
        let groups = by_model(&MODELS, &stale, &agents);
        assert_eq!(groups["small-a"].0.agents, 1, "c-2 only");
    }
}
