//! Alert routing in the manner of Alertmanager: firing alerts are matched to routes, grouped
//! by the route's `group_by` labels, and each group is notified once after `group_wait`,
//! again when its alerts change (at most every `group_interval`), again after
//! `repeat_interval` while nothing changes, and once more when all of it has resolved.
//! Silenced alerts are left out, and a critical alert firing on a pool inhibits the pool's
//! warnings (and infos). Pure: the caller gives the time and sends what comes back (`notify` words it per channel).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::policy::Route;

/// An alert as the router sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedAlert {
    /// Unique while the alert lives, e.g. `rule/agent`.
    pub key: String,
    /// `rule`, `agent`, `pool`, `level`, `metric`, ...
    pub labels: BTreeMap<String, String>,
    /// Firing (true) or resolved.
    pub firing: bool,
    /// The value that last changed it.
    pub value: f64,
    /// When it started firing, epoch milliseconds.
    pub starts_ms: i64,
}

/// A notification to send, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Channel names.
    pub channels: Vec<String>,
    /// The message.
    pub notification: GroupMessage,
}

/// What a group's notification says; the notifier turns it into each channel's format.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMessage {
    /// The group's labels and `status` (`firing` or `resolved`), which routes match on.
    pub labels: BTreeMap<String, String>,
    /// One line: `[FIRING:n] ...` or `[RESOLVED] ...`.
    pub title: String,
    /// One line per alert of the group.
    pub text: String,
    /// The group's alerts, firing and resolved.
    pub alerts: Vec<RoutedAlert>,
    /// Every alert of the group has resolved.
    pub resolved: bool,
}

/// One group's state.
#[derive(Debug, Default)]
struct Group {
    created_ms: i64,
    last_sent_ms: Option<i64>,
    /// The group timer's last tick (every group_interval from the first notification).
    tick_ms: Option<i64>,
    /// The firing alerts at the last notification.
    sent_firing: BTreeSet<String>,
    /// The firing alerts as of the last `step`.
    firing: BTreeSet<String>,
    /// Whether `firing` differs from `sent_firing` (compared once per `step`, not on every
    /// tick: a group of 10,000 alerts is 10,000 string comparisons).
    unsent: bool,
    /// Everything seen in the group, latest first by key.
    members: BTreeMap<String, RoutedAlert>,
}

/// The groups of every route.
#[derive(Debug, Default)]
pub struct Router {
    groups: HashMap<(usize, Vec<String>), Group>,
}

/// Levels a critical alert on the same pool mutes.
const INHIBITED_LEVELS: [&str; 2] = ["info", "warning"];
/// Levels that mute them.
const INHIBITING_LEVELS: [&str; 2] = ["critical", "emergency"];

fn label<'a>(alert: &'a RoutedAlert, name: &str) -> &'a str {
    alert.labels.get(name).map_or("", String::as_str)
}

impl Router {
    /// Folds in the alerts now (firing ones and those resolved since), and returns the
    /// notifications due at `now_ms`.
    pub fn step(
        &mut self,
        routes: &[Route],
        alerts: &[RoutedAlert],
        silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
        now_ms: i64,
    ) -> Vec<Outgoing> {
        let critical_pools: BTreeSet<&str> = alerts
            .iter()
            .filter(|a| a.firing && INHIBITING_LEVELS.contains(&label(a, "level")))
            .map(|a| label(a, "pool"))
            .collect();
        let muted = |alert: &RoutedAlert| {
            silenced(&alert.labels)
                || (INHIBITED_LEVELS.contains(&label(alert, "level"))
                    && critical_pools.contains(label(alert, "pool")))
        };
        // Which group each live alert belongs to now.
        let mut current: HashMap<(usize, Vec<String>), Vec<&RoutedAlert>> = HashMap::new();
        for alert in alerts.iter().filter(|a| !muted(a)) {
            for (index, route) in routes.iter().enumerate() {
                let matches = route
                    .matchers
                    .iter()
                    .all(|(name, value)| alert.labels.get(name) == Some(value));
                if matches {
                    let key: Vec<String> = route
                        .group_by
                        .iter()
                        .map(|name| label(alert, name).to_string())
                        .collect();
                    current.entry((index, key)).or_default().push(alert);
                }
            }
        }
        for (key, members) in &current {
            let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
                created_ms: now_ms,
                ..Group::default()
            });
            for alert in members {
                // Only what changed is copied: a large group is not cloned on every pass.
                match group.members.get_mut(&alert.key) {
                    Some(member) => {
                        member.firing = alert.firing;
                        member.value = alert.value;
                        member.starts_ms = alert.starts_ms;
                        if member.labels != alert.labels {
                            member.labels.clone_from(&alert.labels);
                        }
                    }
                    None => {
                        group.members.insert(alert.key.clone(), (*alert).clone());
                    }
                }
            }
        }
        for (key, group) in &mut self.groups {
            // An alert that left the group (gone, silenced, inhibited) no longer fires in it.
            let live: BTreeSet<&String> = current
                .get(key)
                .map(|m| m.iter().map(|a| &a.key).collect())
                .unwrap_or_default();
            for (member_key, member) in group.members.iter_mut() {
                if !live.contains(member_key) {
                    member.firing = false;
                }
            }
            group.firing = group
                .members
                .values()
                .filter(|a| a.firing)
                .map(|a| a.key.clone())
                .collect();
            group.unsent = group.firing != group.sent_firing;
        }
        self.tick(routes, now_ms)
    }

    /// The notifications due at `now_ms` when no alert changed since the last `step`: the
    /// groups' timers only, at a cost that does not grow with the alerts they hold.
    pub fn tick(&mut self, routes: &[Route], now_ms: i64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut finished = Vec::new();
        for (key, group) in &mut self.groups {
            let Some(route) = routes.get(key.0) else {
                finished.push(key.clone());
                continue;
            };
            let firing = &group.firing;
            let secs = |s: u64| s as i64 * 1000;
            // After its first notification a group's timer ticks every group_interval, as
            // Alertmanager's does: changes that come between two ticks go out together at
            // the next one.
            let interval = secs(route.group_interval_secs).max(1);
            let at_tick = group.tick_ms.is_some_and(|tick| now_ms - tick >= interval);
            if let Some(tick) = group.tick_ms.filter(|_| at_tick) {
                group.tick_ms = Some(tick + (now_ms - tick) / interval * interval);
            }
            let due = match group.last_sent_ms {
                None if firing.is_empty() => {
                    finished.push(key.clone());
                    false
                }
                None => now_ms - group.created_ms >= secs(route.group_wait_secs),
                Some(_) if firing.is_empty() || group.unsent => at_tick,
                Some(last) => now_ms - last >= secs(route.repeat_interval_secs),
            };
            if !due {
                continue;
            }
            out.push(Outgoing {
                channels: route.channels.clone(),
                notification: describe(route, &key.1, group, firing),
            });
            if firing.is_empty() {
                finished.push(key.clone());
            } else {
                group.tick_ms.get_or_insert(now_ms);
                group.last_sent_ms = Some(now_ms);
                group.sent_firing.clone_from(&group.firing);
                group.unsent = false;
                // Resolved members have been told; keep only what still fires.
                group.members.retain(|_, a| a.firing);
            }
        }
        for key in finished {
            self.groups.remove(&key);
        }
        out
    }
}

/// The message for a group: what fires (or that all of it resolved), one line per alert.
fn describe(
    route: &Route,
    values: &[String],
    group: &Group,
    firing: &BTreeSet<String>,
) -> GroupMessage {
    let mut labels: BTreeMap<String, String> = route
        .group_by
        .iter()
        .cloned()
        .zip(values.iter().cloned())
        .collect();
    let resolved = firing.is_empty();
    labels.insert(
        "status".into(),
        if resolved { "resolved" } else { "firing" }.into(),
    );
    let what: Vec<String> = values.iter().filter(|v| !v.is_empty()).cloned().collect();
    let title = if resolved {
        format!("[RESOLVED] {}", what.join(" "))
    } else {
        format!("[FIRING:{}] {}", firing.len(), what.join(" "))
    };
    let lines: Vec<String> = group
        .members
        .values()
        .map(|a| {
            format!(
                "{} {} on {}: {} = {} ({})",
                if a.firing { "firing" } else { "resolved" },
                label(a, "rule"),
                label(a, "agent"),
                label(a, "metric"),
                a.value,
                label(a, "level")
            )
        })
        .collect();
    GroupMessage {
        labels,
        title,
        text: lines.join("\n"),
        alerts: group.members.values().cloned().collect(),
        resolved,
    }
}

#[cfg(test)]
mod tests;
