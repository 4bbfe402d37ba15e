//! Risk scoring: how dangerous an action is, from the policy's factors, and the class that
//! decides whether it applies by itself, waits for approval, or is refused.

use serde::{Deserialize, Serialize};

use crate::domain::{ActionKind, Change};
use crate::policy::{Automation, RiskMode, RiskPolicy};

/// What the scorer knows about an action and its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskInput<'a> {
    /// The change.
    pub change: &'a Change,
    /// Agents in the pool now.
    pub pool_size: usize,
    /// Agents the change disrupts (stopped, restarted, or whose traffic moves); an offline
    /// agent restarted disrupts nothing.
    pub disrupted: usize,
    /// How sure the evidence is, 0..1 (1 for a person's request).
    pub confidence: f64,
    /// Similar actions (same pool and kind) rolled back within the policy's history window.
    pub recent_rollbacks: usize,
}

/// One factor's share of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RiskFactor {
    /// The factor's name.
    pub name: String,
    /// Its value before weighting, 0..1.
    pub value: f64,
    /// What it adds to the score.
    pub contribution: f64,
}

/// A scored action: the score, its class, what the class allows, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RiskAssessment {
    /// 0 (harmless) to 1.
    pub score: f64,
    /// `low`, `medium`, `high` or `critical`.
    pub class: String,
    /// What the policy lets the controller do with this class.
    pub mode: RiskMode,
    /// The parts of the score.
    pub factors: Vec<RiskFactor>,
}

impl std::fmt::Display for RiskAssessment {
    /// Score and class, e.g. `0.59 medium`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} {}", self.score, self.class)
    }
}

/// Scores an action with the policy's weights and maps the score to a class and the mode
/// the policy gives it (a class the policy does not map waits for approval).
pub fn assess(input: &RiskInput<'_>, automation: &Automation) -> RiskAssessment {
    let policy = &automation.risk;
    let kind = input.change.kind();
    let base = match kind {
        ActionKind::Scale => policy.kind.scale,
        ActionKind::Redistribute => policy.kind.redistribute,
        ActionKind::Restart => policy.kind.restart,
        ActionKind::AdjustThreshold => policy.kind.adjust_threshold,
        ActionKind::AdjustConcurrency => policy.kind.adjust_concurrency,
        ActionKind::SwitchModel => policy.kind.switch_model,
    };
    let blast = if input.pool_size == 0 {
        0.0
    } else {
        input.disrupted as f64 / input.pool_size as f64
    };
    let parts = [
        ("kind", 1.0, base),
        ("blast_radius", blast.clamp(0.0, 1.0), policy.blast_radius),
        ("size", change_size(input.change), policy.size),
        (
            "low_confidence",
            (1.0 - input.confidence).clamp(0.0, 1.0),
            policy.confidence,
        ),
        (
            "recent_rollbacks",
            (input.recent_rollbacks as f64).min(1.0),
            policy.history,
        ),
    ];
    let factors: Vec<RiskFactor> = parts
        .into_iter()
        .map(|(name, value, weight)| RiskFactor {
            name: name.to_string(),
            value,
            contribution: value * weight,
        })
        .collect();
    let score = factors
        .iter()
        .map(|f| f.contribution)
        .sum::<f64>()
        .clamp(0.0, 1.0);
    let class = classify(score, policy);
    let mode = automation
        .risk_classes
        .get(class)
        .copied()
        .unwrap_or(RiskMode::Approval);
    RiskAssessment {
        score,
        class: class.to_string(),
        mode,
        factors,
    }
}

/// The class of a score: the first whose upper bound it is below.
pub fn classify(score: f64, policy: &RiskPolicy) -> &'static str {
    if score < policy.low_below {
        "low"
    } else if score < policy.medium_below {
        "medium"
    } else if score < policy.high_below {
        "high"
    } else {
        "critical"
    }
}

/// How big the change is relative to what it changes, 0..1.
fn change_size(change: &Change) -> f64 {
    let relative = match change {
        Change::Scale { from, to } => from.abs_diff(*to) as f64 / (*from).max(1) as f64,
        Change::Restart { .. } => 0.0,
        // One agent's calls go to another model: as much as the model changes, all of them.
        Change::SwitchModel { .. } => 1.0,
        Change::AdjustConcurrency { from, to } => from.abs_diff(*to) as f64 / (*from).max(1) as f64,
        Change::AdjustThreshold { from, to, .. } => (to - from).abs() / from.abs().max(1.0),
        Change::Redistribute { from, to } => {
            // The share of the load that moves: 1 when all of it goes elsewhere.
            let (was, will) = (shares(from), shares(to));
            let moved: f64 = will
                .iter()
                .map(|(agent, share)| (share - was.get(agent).copied().unwrap_or(0.0)).abs())
                .sum();
            moved / 2.0
        }
    };
    relative.clamp(0.0, 1.0)
}

/// Weights as shares of one.
fn shares(
    weights: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<&str, f64> {
    let total: f64 = weights.values().filter(|w| w.is_finite()).sum();
    weights
        .iter()
        .map(|(agent, w)| (agent.as_str(), if total > 0.0 { w / total } else { 0.0 }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(change: &Change, pool_size: usize, disrupted: usize) -> RiskInput<'_> {
        RiskInput {
            change,
            pool_size,
            disrupted,
            confidence: 0.9,
            recent_rollbacks: 0,
        }
    }

    #[test]
    fn a_small_scale_out_is_low_and_a_live_restart_of_a_small_pool_is_medium() {
        let policy = Automation::default();
        let out = Change::Scale { from: 2, to: 3 };
        let low = assess(&input(&out, 2, 0), &policy);
        // 0.05 kind + 0.2 × 0.5 size + 0.3 × 0.1 confidence.
        assert!((low.score - 0.18).abs() < 1e-9, "{low:?}");
        assert_eq!(low.class, "low");
        assert_eq!(low.mode, RiskMode::Auto);
        let restart = Change::Restart {
            agent: "w-1".into(),
        };
        let mut live = input(&restart, 2, 1);
        live.confidence = 0.7;
        let medium = assess(&live, &policy);
        // 0.4 kind + 0.3 × 0.5 blast + 0.3 × 0.3 confidence.
        assert!((medium.score - 0.64).abs() < 1e-9, "{medium:?}");
        assert_eq!(medium.class, "medium");
        assert_eq!(medium.mode, RiskMode::Approval);
    }

    #[test]
    fn a_recent_rollback_raises_the_class() {
        let policy = Automation::default();
        let out = Change::Scale { from: 2, to: 6 };
        let mut first = input(&out, 2, 0);
        assert_eq!(assess(&first, &policy).class, "low");
        first.recent_rollbacks = 1;
        let again = assess(&first, &policy);
        assert_eq!(again.class, "medium", "{again:?}");
        assert!(
            again
                .factors
                .iter()
                .any(|f| f.name == "recent_rollbacks" && f.value == 1.0)
        );
    }

    #[test]
    fn a_large_scale_in_weighs_its_blast_radius() {
        let policy = Automation::default();
        let small = Change::Scale { from: 8, to: 7 };
        let large = Change::Scale { from: 8, to: 1 };
        let small = assess(&input(&small, 8, 1), &policy);
        let large = assess(&input(&large, 8, 7), &policy);
        assert!(large.score > small.score + 0.3, "{small:?} {large:?}");
    }

    #[test]
    fn scores_are_capped_and_classified_by_bounds() {
        let policy = Automation::default();
        let risk = &policy.risk;
        assert_eq!(classify(0.0, risk), "low");
        assert_eq!(classify(risk.low_below, risk), "medium");
        assert_eq!(classify(0.95, risk), "critical");
        let mut strict = policy.clone();
        strict.risk_classes.remove("critical");
        let change = Change::Scale { from: 1, to: 1 };
        let _ = assess(&input(&change, 1, 0), &strict);
        let change = Change::Restart { agent: "a".into() };
        let mut worst = input(&change, 1, 1);
        worst.confidence = 0.0;
        worst.recent_rollbacks = 5;
        let scored = assess(&worst, &policy);
        assert_eq!(scored.score, 1.0);
        assert_eq!(scored.mode, RiskMode::Forbidden);
        assert_eq!(
            assess(&worst, &strict).mode,
            RiskMode::Approval,
            "unmapped class waits"
        );
    }
}
