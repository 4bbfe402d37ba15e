//! Level rules: the thresholds every pool is watched with unless its profile says otherwise
//! (`[alert_defaults]`, shipped with the defaults of the monitors swarmpilot replaces), and
//! how a pool's rules are assembled from explicit rules, defaults and its profile.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::Policy;
use super::rules::{AlertRule, LevelThresholds, Profile};

/// Thresholds and timing every pool gets, metric by metric, unless its profile sets its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertDefaults {
    /// Whether pools get these rules at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds a threshold must be breached before its alert fires.
    #[serde(default = "default_for_secs")]
    pub for_secs: u64,
    /// Seconds a firing alert keeps firing after the value falls back (Prometheus'
    /// `keep_firing_for`), so a value hovering at the threshold does not flap.
    #[serde(default = "default_keep_firing_for_secs")]
    pub keep_firing_for_secs: u64,
    /// Hysteresis: a breached level clears only when the value falls this many percent below
    /// its threshold.
    #[serde(default = "default_hysteresis_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub hysteresis_percent: f64,
    /// Seconds after an alert resolves before the same alert may fire again.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Availability alerts: `agent_offline` (critical), `heartbeat_missed` and
    /// `agent_unhealthy` (a failing scrape or WebSocket, or an agent reporting `error`).
    #[serde(default = "yes")]
    pub availability: bool,
    /// Per-metric thresholds at each level; a profile's entry for a metric replaces this one.
    #[serde(default = "default_thresholds")]
    pub thresholds: BTreeMap<String, LevelThresholds>,
}

const fn yes() -> bool {
    true
}
const fn default_for_secs() -> u64 {
    30
}
const fn default_keep_firing_for_secs() -> u64 {
    10
}
const fn default_hysteresis_percent() -> f64 {
    5.0
}

/// The monitors' defaults: CPU 70/85/95 %, memory 80/90/95 %, response time 5/10/30 s, error
/// rate 5/10/20 %.
fn default_thresholds() -> BTreeMap<String, LevelThresholds> {
    let levels = |warning, critical, emergency| LevelThresholds {
        info: None,
        warning: Some(warning),
        critical: Some(critical),
        emergency: Some(emergency),
    };
    [
        ("cpu_percent", levels(70.0, 85.0, 95.0)),
        ("memory_percent", levels(80.0, 90.0, 95.0)),
        ("response_time_ms", levels(5_000.0, 10_000.0, 30_000.0)),
        ("error_rate", levels(5.0, 10.0, 20.0)),
    ]
    .into_iter()
    .map(|(metric, levels)| (metric.to_string(), levels))
    .collect()
}

impl Default for AlertDefaults {
    fn default() -> Self {
        AlertDefaults {
            enabled: true,
            for_secs: default_for_secs(),
            keep_firing_for_secs: default_keep_firing_for_secs(),
            hysteresis_percent: default_hysteresis_percent(),
            cooldown_secs: 0,
            availability: true,
            thresholds: default_thresholds(),
        }
    }
}

impl Policy {
    /// Every threshold rule that applies to agents of `pool`: the explicit rules, then one
    /// rule per metric and level, from the pool's profile (named `<profile>_<metric>_<level>`)
    /// or else the defaults (named `<metric>_<level>`). Timing comes from the profile where
    /// it sets it, else from the defaults.
    pub fn rules_for_pool(&self, pool: &str) -> Vec<AlertRule> {
        let mut rules: Vec<AlertRule> = self
            .alerts
            .iter()
            .filter(|rule| rule.pool.as_deref().is_none_or(|p| p == pool))
            .cloned()
            .collect();
        let defaults = &self.alert_defaults;
        let profile = self
            .pools
            .get(pool)
            .and_then(|p| p.profile.as_ref())
            .and_then(|name| self.profiles.get(name).map(|profile| (name, profile)));
        let (none, unnamed) = (Profile::default(), String::new());
        let (profile_name, profile) = profile.unwrap_or((&unnamed, &none));
        let mut metrics: BTreeMap<&String, (String, &LevelThresholds)> = BTreeMap::new();
        if defaults.enabled {
            for (metric, levels) in &defaults.thresholds {
                metrics.insert(metric, (metric.clone(), levels));
            }
        }
        for (metric, levels) in &profile.thresholds {
            metrics.insert(metric, (format!("{profile_name}_{metric}"), levels));
        }
        let hysteresis = profile
            .hysteresis_percent
            .unwrap_or(defaults.hysteresis_percent);
        for (metric, (stem, levels)) in metrics {
            for (level, above) in levels.levels() {
                rules.push(AlertRule {
                    name: format!("{stem}_{}", level.as_str()),
                    metric: metric.clone(),
                    above,
                    for_secs: profile.for_secs.unwrap_or(defaults.for_secs),
                    keep_firing_for_secs: profile
                        .keep_firing_for_secs
                        .unwrap_or(defaults.keep_firing_for_secs),
                    clear_below: (hysteresis > 0.0).then(|| above * (1.0 - hysteresis / 100.0)),
                    cooldown_secs: profile.cooldown_secs.unwrap_or(defaults.cooldown_secs),
                    level,
                    pool: Some(pool.to_string()),
                });
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::load::load_bare;

    fn rules(text: &str, pool: &str) -> Vec<(String, f64, u64, Option<f64>)> {
        let policy = load_bare("t.toml", text).unwrap().policy;
        policy
            .rules_for_pool(pool)
            .into_iter()
            .map(|r| (r.name, r.above, r.for_secs, r.clear_below))
            .collect()
    }

    #[test]
    fn every_pool_gets_the_monitors_defaults() {
        let got = rules("[pools.w]\n", "w");
        let names: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu_percent_warning",
                "cpu_percent_critical",
                "cpu_percent_emergency",
                "error_rate_warning",
                "error_rate_critical",
                "error_rate_emergency",
                "memory_percent_warning",
                "memory_percent_critical",
                "memory_percent_emergency",
                "response_time_ms_warning",
                "response_time_ms_critical",
                "response_time_ms_emergency",
            ]
        );
        assert_eq!(
            got[1],
            ("cpu_percent_critical".into(), 85.0, 30, Some(80.75))
        );
        assert_eq!(got[11].1, 30_000.0);
    }

    #[test]
    fn a_profile_overrides_a_metric_and_the_timing() {
        let text = r#"
[pools.w]
profile = "architect"
[pools.v]
[profiles.architect]
for_secs = 10
hysteresis_percent = 0
[profiles.architect.thresholds.cpu_percent]
warning = 60
critical = 80
"#;
        let got = rules(text, "w");
        let cpu: Vec<_> = got.iter().filter(|r| r.0.contains("cpu")).collect();
        assert_eq!(
            cpu,
            [
                &("architect_cpu_percent_warning".into(), 60.0, 10, None),
                &("architect_cpu_percent_critical".into(), 80.0, 10, None),
            ]
        );
        assert!(
            got.iter()
                .any(|r| r.0 == "memory_percent_warning" && r.2 == 10)
        );
        // The other pool keeps the defaults.
        assert!(
            rules(text, "v")
                .iter()
                .any(|r| r.0 == "cpu_percent_emergency")
        );
        let off = "[pools.w]\n[alert_defaults]\nenabled = false\n";
        assert!(rules(off, "w").is_empty());
    }
}
