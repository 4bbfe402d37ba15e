//! The alert actor's way out: firing and resolved alerts through the policy's routes to the
//! notification channels, minus what silences mute.

use super::{Alert, AlertState, AlertView};
use crate::notify::RoutedAlert;
use crate::policy::AlertRule;

impl Alert {
    pub(super) fn reload_silences(&mut self) {
        match self.store.silences() {
            Ok(silences) => self.silences = silences,
            Err(error) => tracing::error!(message = "Cannot read silences.", %error),
        }
    }

    /// Hands the firing and resolved alerts to the router and sends what is due.
    pub(super) fn route(&mut self, now_ms: i64) {
        let Some((policy, notifier, router)) = &mut self.routing else {
            return;
        };
        let alerts: Vec<RoutedAlert> = self
            .book
            .entries()
            .filter(|(_, view)| view.state != AlertState::Pending)
            .map(|(rule, view)| RoutedAlert {
                key: format!("{}/{}", view.rule, view.agent),
                labels: labels_of(rule, view),
                firing: view.state == AlertState::Firing,
                value: view.value,
                starts_ms: view.fired_ms.unwrap_or(view.since_ms),
            })
            .collect();
        let current = policy.current();
        let silences = &self.silences;
        let silenced = |labels: &std::collections::BTreeMap<String, String>| {
            silences.iter().any(|s| s.silences(labels, now_ms))
        };
        for out in router.step(&current.policy.routes, &alerts, &silenced, now_ms) {
            notifier.send_via(&out.channels, out.notification.into());
        }
    }

    /// Records on each alert which silences mute it now.
    pub(super) fn mark_silenced(&mut self, now_ms: i64) {
        if self.silences.is_empty() {
            // Nothing to match: no labels to build for every alert on every pass.
            for (_, view) in self.book.entries_mut() {
                view.silenced_by.clear();
            }
            return;
        }
        for (rule, view) in self.book.entries_mut() {
            let labels = labels_of(rule, view);
            view.silenced_by = self
                .silences
                .iter()
                .filter(|s| s.silences(&labels, now_ms))
                .map(|s| s.id)
                .collect();
        }
    }
}

/// The labels routes and silences match: rule, agent, pool, level, metric.
fn labels_of(rule: &AlertRule, view: &AlertView) -> std::collections::BTreeMap<String, String> {
    [
        ("rule", view.rule.as_str()),
        ("agent", view.agent.as_str()),
        ("pool", view.pool.as_str()),
        ("level", view.level.as_str()),
        ("metric", rule.metric.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
