//! The managed overlay: threshold changes made by the controller's own `adjust_threshold`
//! actions. They never touch the operator's files; they are kept in the data directory,
//! applied on top of the files at every load, and removed when their action is rolled back.

use serde::{Deserialize, Serialize};

use super::check::{Severity, check};
use super::environment::Environment;
use super::load::{LoadError, LoadedPolicy, PolicyError, version_of};
use super::model::Policy;

/// File name of the overlay inside the data directory.
pub const OVERLAY_FILE: &str = "policy-overlay.json";

/// One threshold set by an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OverlayEntry {
    /// The action that set it (its provenance).
    pub action_id: i64,
    /// The rule whose threshold it sets: an `[[alerts]]` name, a profile rule
    /// `<profile>_<metric>_<level>` or a default rule `<metric>_<level>`.
    pub rule: String,
    /// The threshold in force while the entry exists.
    pub above: f64,
    /// The threshold the operator's files give.
    pub previous: f64,
    /// When it was set, epoch milliseconds.
    pub created_ms: i64,
}

/// The threshold `rule` has in `policy`, if the rule exists.
pub fn threshold(policy: &Policy, rule: &str) -> Option<f64> {
    if let Some(alert) = policy.alerts.iter().find(|a| a.name == rule) {
        return Some(alert.above);
    }
    level_rules(policy)
        .find(|(name, _, _, _)| name == rule)
        .and_then(|(_, profile, metric, level)| {
            let levels = match &profile {
                Some(profile) => policy.profiles.get(profile)?.thresholds.get(&metric)?,
                None => policy.alert_defaults.thresholds.get(&metric)?,
            };
            levels
                .levels()
                .into_iter()
                .find(|(l, _)| l.as_str() == level)
                .map(|(_, v)| v)
        })
}

/// Applies `entries` to `policy`; returns the rules that no longer exist (entries ignored).
pub fn apply_overlay(policy: &mut Policy, entries: &[OverlayEntry]) -> Vec<String> {
    let mut missing = Vec::new();
    for entry in entries {
        if let Some(alert) = policy.alerts.iter_mut().find(|a| a.name == entry.rule) {
            alert.above = entry.above;
            continue;
        }
        let target = level_rules(policy).find(|(name, _, _, _)| *name == entry.rule);
        let slot = target.and_then(|(_, profile, metric, level)| {
            let levels = match &profile {
                Some(profile) => policy
                    .profiles
                    .get_mut(profile)?
                    .thresholds
                    .get_mut(&metric)?,
                None => policy.alert_defaults.thresholds.get_mut(&metric)?,
            };
            Some(match level {
                "info" => &mut levels.info,
                "warning" => &mut levels.warning,
                "critical" => &mut levels.critical,
                _ => &mut levels.emergency,
            })
        });
        match slot {
            Some(slot) => *slot = Some(entry.above),
            None => missing.push(entry.rule.clone()),
        }
    }
    missing
}

/// `loaded` with `entries` applied: the version is recomputed, rules that no longer exist
/// become warnings, and a result that breaks a check across fields is refused.
pub fn overlaid(
    mut loaded: LoadedPolicy,
    entries: Vec<OverlayEntry>,
    env: &dyn Environment,
) -> Result<LoadedPolicy, LoadError> {
    if entries.is_empty() {
        return Ok(loaded);
    }
    let diagnostic = |severity, message: String| PolicyError {
        severity,
        file: OVERLAY_FILE.to_string(),
        line: None,
        col: None,
        field: None,
        message,
    };
    for rule in apply_overlay(&mut loaded.policy, &entries) {
        let message = format!("rule {rule:?} no longer exists; its overlay entry is ignored");
        loaded.warnings.push(diagnostic(Severity::Warning, message));
    }
    let errors: Vec<PolicyError> = check(&loaded.policy, env)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| {
            diagnostic(
                Severity::Error,
                format!("{}: {}", p.path.join("."), p.message),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(LoadError {
            errors,
            warnings: loaded.warnings,
        });
    }
    loaded.version = version_of(&loaded.policy);
    loaded.overlay = entries;
    Ok(loaded)
}

/// Every level rule a profile or the defaults imply: (rule name, profile or `None` for the
/// defaults, metric, level). A default rule is shared by every pool that uses it.
fn level_rules(
    policy: &Policy,
) -> impl Iterator<Item = (String, Option<String>, String, &'static str)> + '_ {
    let profiles = policy.profiles.iter().flat_map(|(profile, p)| {
        p.thresholds.iter().flat_map(move |(metric, levels)| {
            levels.levels().into_iter().map(move |(level, _)| {
                let name = format!("{profile}_{metric}_{}", level.as_str());
                (name, Some(profile.clone()), metric.clone(), level.as_str())
            })
        })
    });
    let defaults = policy
        .alert_defaults
        .thresholds
        .iter()
        .flat_map(|(metric, levels)| {
            levels.levels().into_iter().map(move |(level, _)| {
                let name = format!("{metric}_{}", level.as_str());
                (name, None, metric.clone(), level.as_str())
            })
        });
    profiles.chain(defaults)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "[[alerts]]\nname = \"hot\"\nmetric = \"cpu_percent\"\nabove = 70\n\
        [profiles.po.thresholds.cpu_percent]\nwarning = 60\ncritical = 80\n";

    fn entry(rule: &str, above: f64) -> OverlayEntry {
        OverlayEntry {
            action_id: 7,
            rule: rule.into(),
            above,
            previous: 0.0,
            created_ms: 0,
        }
    }

    #[test]
    fn overlay_sets_alert_and_profile_thresholds() {
        let mut policy = crate::policy::load::load_bare("p.toml", POLICY)
            .unwrap()
            .policy;
        assert_eq!(threshold(&policy, "po_cpu_percent_warning"), Some(60.0));
        let missing = apply_overlay(
            &mut policy,
            &[
                entry("hot", 75.0),
                entry("po_cpu_percent_warning", 65.0),
                entry("gone", 1.0),
            ],
        );
        assert_eq!(missing, ["gone"]);
        assert_eq!(threshold(&policy, "hot"), Some(75.0));
        assert_eq!(threshold(&policy, "po_cpu_percent_warning"), Some(65.0));
    }
}
