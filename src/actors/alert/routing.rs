//! The alert actor's way out: firing and resolved alerts through the policy's routes to the
//! notification channels, minus what silences mute. The whole book is regrouped only when
//! something routing depends on changed (an alert's state, the silences, a silence's window
//! opening or closing, the routes) and every [`REFRESH_MS`] for values; otherwise a pass
//! only runs the groups' timers, so thousands of alerts that keep firing cost nothing.

use super::{Alert, AlertState, AlertView};
use crate::notify::RoutedAlert;
use crate::policy::AlertRule;

/// The whole book is regrouped at least this often, so that notifications carry values
/// that changed without a state change, milliseconds.
const REFRESH_MS: i64 = 30_000;

/// What decides whether a pass must regroup the whole book.
#[derive(Debug, Default)]
pub(super) struct RouteState {
    /// Something routing depends on changed since the last regrouping.
    pub dirty: bool,
    /// When the book was last regrouped, epoch milliseconds.
    last_full_ms: i64,
    /// The policy version it was regrouped under.
    version: String,
    /// The next time a silence's window opens or closes, epoch milliseconds.
    next_boundary_ms: Option<i64>,
}

impl Alert {
    pub(super) fn reload_silences(&mut self) {
        match self.store.silences() {
            Ok(silences) => {
                if silences != self.silences {
                    self.routed.dirty = true;
                }
                self.silences = silences;
            }
            Err(error) => tracing::error!(message = "Cannot read silences.", %error),
        }
    }

    /// Whether this pass must regroup the whole book (and mark silences again).
    fn must_regroup(&self, now_ms: i64, version: &str) -> bool {
        let routed = &self.routed;
        routed.dirty
            || now_ms - routed.last_full_ms >= REFRESH_MS
            || routed.version != version
            || routed.next_boundary_ms.is_some_and(|at| now_ms >= at)
    }

    /// Hands the alerts to the router (all of them when something changed) and sends what
    /// is due; marks which silences mute each alert when it regroups.
    pub(super) fn route(&mut self, now_ms: i64) {
        let version = match &self.routing {
            Some((policy, _, _)) => policy.current().version.clone(),
            None => String::new(),
        };
        if !self.must_regroup(now_ms, &version) {
            if let Some((policy, notifier, router)) = &mut self.routing {
                let current = policy.current();
                for out in router.tick(&current.policy.routes, now_ms) {
                    notifier.send_via(&out.channels, out.notification.into());
                }
            }
            return;
        }
        self.routed = RouteState {
            dirty: false,
            last_full_ms: now_ms,
            version,
            next_boundary_ms: self
                .silences
                .iter()
                .flat_map(|s| [s.starts_ms, s.ends_ms])
                .filter(|&at| at > now_ms)
                .min(),
        };
        self.mark_silenced(now_ms);
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
