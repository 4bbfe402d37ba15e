//! Reading the book without copying it: a page of alerts that a filter takes, in id order,
//! and counts of what fires.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::AlertBook;
use crate::domain::alert::{AlertState, AlertView};
use crate::policy::AlertLevel;

/// Which alerts a page holds; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Only alerts in this state.
    pub state: Option<AlertState>,
    /// Only this agent's alerts.
    pub agent: Option<String>,
    /// Only alerts of this pool.
    pub pool: Option<String>,
    /// Only alerts of this level.
    pub level: Option<AlertLevel>,
    /// Only alerts with a higher id (the next page).
    pub after: Option<u64>,
}

impl AlertFilter {
    /// Whether `view` passes (`after` included).
    pub fn takes(&self, view: &AlertView) -> bool {
        self.state.is_none_or(|s| s == view.state)
            && self.agent.as_deref().is_none_or(|a| a == view.agent)
            && self.pool.as_deref().is_none_or(|p| p == view.pool)
            && self.level.is_none_or(|l| l == view.level)
            && self.after.is_none_or(|after| view.id > after)
    }
}

/// How many alerts there are, by state and by level of those firing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertCounts {
    /// Alerts held, in any state.
    pub total: usize,
    /// Firing alerts by level (levels with none are absent).
    pub firing_by_level: BTreeMap<AlertLevel, usize>,
}

impl AlertBook {
    /// The first `limit` alerts `filter` takes, in id order, and whether more follow. An
    /// agent's alerts are found through its index; otherwise the walk starts after `after`.
    pub fn page(&self, filter: &AlertFilter, limit: usize) -> (Vec<AlertView>, bool) {
        match &filter.agent {
            Some(agent) => {
                let mut views: Vec<&AlertView> = self
                    .by_agent
                    .get(agent)
                    .into_iter()
                    .flatten()
                    .filter_map(|rule| self.alerts.get(&(rule.clone(), agent.clone())))
                    .map(|(_, view)| view)
                    .collect();
                views.sort_by_key(|v| v.id);
                first(views.into_iter(), filter, limit)
            }
            None => {
                let start = filter.after.map_or(Bound::Unbounded, Bound::Excluded);
                let walk = self
                    .ids
                    .range((start, Bound::Unbounded))
                    .filter_map(|(_, key)| self.alerts.get(key))
                    .map(|(_, view)| view);
                first(walk, filter, limit)
            }
        }
    }

    /// How many alerts there are, and how many fire at each level.
    pub fn counts(&self) -> AlertCounts {
        let mut counts = AlertCounts {
            total: self.alerts.len(),
            ..AlertCounts::default()
        };
        for (_, view) in self.alerts.values() {
            if view.state == AlertState::Firing {
                *counts.firing_by_level.entry(view.level).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// The first `limit` of `views` that `filter` takes, copied, and whether more follow.
fn first<'a>(
    views: impl Iterator<Item = &'a AlertView>,
    filter: &AlertFilter,
    limit: usize,
) -> (Vec<AlertView>, bool) {
    let mut taken = views.filter(|v| filter.takes(v));
    let page: Vec<AlertView> = taken.by_ref().take(limit).cloned().collect();
    let more = taken.next().is_some();
    (page, more)
}
