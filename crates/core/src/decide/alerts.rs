//! The alert state machine: per (rule, agent), `inactive → pending → firing → resolved`, with
//! the rule's `for`, `keep_firing_for` and cooldown; anomaly alerts that fire at once and
//! resolve after a quiet minute; availability alerts raised and cleared by health verdicts.
//! Every call takes the time and answers the transitions it made, which the alert actor
//! records, logs, routes and tells its subscribers.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::domain::alert::{AlertState, AlertView};
use crate::domain::evidence::AnomalyNote;
use crate::policy::{AlertLevel, AlertRule};

/// An anomaly alert resolves after this long without a new anomalous score, milliseconds.
pub const ANOMALY_QUIET_MS: i64 = 60_000;
/// A resolved alert stays listed this long, milliseconds.
pub const RESOLVED_KEPT_MS: i64 = 10 * 60 * 1000;

/// What a threshold alert means: `cpu_percent above 85 for 30 s on worker-1`.
fn threshold_message(rule: &AlertRule, agent: &str) -> String {
    let lasting = match rule.for_secs {
        0 => String::new(),
        secs => format!(" for {secs} s"),
    };
    format!("{} above {}{lasting} on {agent}", rule.metric, rule.above)
}

/// An alert's identity: its rule and its agent.
pub type AlertKey = (String, String);

/// One change of an alert's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state it left; `None` for a new alert (`inactive`).
    pub from: Option<AlertState>,
    /// The alert after the change.
    pub alert: AlertView,
    /// The metric its rule watches.
    pub metric: String,
}

impl Transition {
    /// The state it left, as the history names it.
    pub fn from_name(&self) -> &'static str {
        self.from.map_or("inactive", AlertState::as_str)
    }
}

/// An agent's value crossing a threshold rule, up or down.
#[derive(Debug, Clone)]
pub struct Crossing<'a> {
    /// The rule.
    pub rule: AlertRule,
    /// The agent.
    pub agent: &'a str,
    /// Its pool.
    pub pool: &'a str,
    /// The value that crossed.
    pub value: f64,
    /// When it was sampled, epoch milliseconds.
    pub ts_ms: i64,
    /// Above the threshold (true) or back below it.
    pub breached: bool,
}

/// Every alert the controller holds, and what their rules need remembered. Indexed so that
/// a pass costs what is due, not what is held: pending alerts by when their `for` ends,
/// resolved ones by when they are forgotten, every alert by id and by agent.
#[derive(Debug, Default)]
pub struct AlertBook {
    alerts: HashMap<AlertKey, (AlertRule, AlertView)>,
    /// Every alert's key by its id, in id order (pages, acknowledgements).
    ids: BTreeMap<u64, AlertKey>,
    /// The rules each agent has alerts of.
    by_agent: HashMap<String, BTreeSet<String>>,
    /// Pending alerts by when their `for` ends, epoch milliseconds.
    pending: BTreeSet<(i64, AlertKey)>,
    /// Resolved alerts (when, id), oldest first, to forget after [`RESOLVED_KEPT_MS`].
    resolved: VecDeque<(i64, u64)>,
    /// When each anomaly alert last saw an anomalous score.
    anomaly_seen: HashMap<AlertKey, i64>,
    /// Firing alerts whose value fell back, and since when.
    clearing: HashMap<AlertKey, i64>,
    /// Alerts in their cooldown after resolving, and until when.
    cooldown_until: HashMap<AlertKey, i64>,
    next_id: u64,
}

impl AlertBook {
    /// An empty book whose alert ids start after `first_id`.
    pub fn new(first_id: u64) -> Self {
        AlertBook {
            next_id: first_id,
            ..AlertBook::default()
        }
    }

    /// How many alerts it holds.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Every alert with its rule.
    pub fn entries(&self) -> impl Iterator<Item = &(AlertRule, AlertView)> {
        self.alerts.values()
    }

    /// Every alert with its rule, to mark (silences).
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut (AlertRule, AlertView)> {
        self.alerts.values_mut()
    }

    /// Stores an alert under `key`, in place of any alert there was, and indexes it.
    fn put(&mut self, key: AlertKey, rule: AlertRule, view: AlertView) {
        self.take(&key);
        self.ids.insert(view.id, key.clone());
        self.by_agent
            .entry(key.1.clone())
            .or_default()
            .insert(key.0.clone());
        if view.state == AlertState::Pending {
            self.pending.insert((due_ms(&rule, &view), key.clone()));
        }
        self.alerts.insert(key, (rule, view));
    }

    /// Removes the alert at `key` and its index entries.
    fn take(&mut self, key: &AlertKey) -> Option<(AlertRule, AlertView)> {
        let (rule, view) = self.alerts.remove(key)?;
        self.ids.remove(&view.id);
        if let Some(rules) = self.by_agent.get_mut(&key.1) {
            rules.remove(&key.0);
            if rules.is_empty() {
                self.by_agent.remove(&key.1);
            }
        }
        if view.state == AlertState::Pending {
            self.pending.remove(&(due_ms(&rule, &view), key.clone()));
        }
        Some((rule, view))
    }

    fn active(&self, key: &AlertKey) -> bool {
        self.alerts
            .get(key)
            .is_some_and(|(_, v)| v.state != AlertState::Resolved)
    }

    /// Opens a pending alert of `rule` on `agent`; `threshold` is none for rules that are not
    /// a threshold, whose `message` then says what they are.
    fn open(
        &mut self,
        rule: AlertRule,
        (agent, pool): (&str, &str),
        value: f64,
        since_ms: i64,
        threshold: Option<f64>,
        message: String,
    ) -> Transition {
        self.next_id += 1;
        let view = AlertView {
            id: self.next_id,
            rule: rule.name.clone(),
            agent: agent.to_string(),
            pool: pool.to_string(),
            metric: rule.metric.clone(),
            threshold,
            message,
            level: rule.level,
            state: AlertState::Pending,
            value,
            since_ms,
            fired_ms: None,
            resolved_ms: None,
            acked: None,
            silenced_by: Vec::new(),
        };
        let opened = Transition {
            from: None,
            alert: view.clone(),
            metric: rule.metric.clone(),
        };
        self.put((rule.name.clone(), agent.to_string()), rule, view);
        opened
    }

    /// Moves the alert at `key` to `to` at `now_ms`.
    fn transition(&mut self, key: &AlertKey, to: AlertState, now_ms: i64) -> Option<Transition> {
        let (rule, view) = self.alerts.get_mut(key)?;
        let from = view.state;
        if from == AlertState::Pending {
            self.pending.remove(&(due_ms(rule, view), key.clone()));
        }
        view.state = to;
        match to {
            AlertState::Firing => view.fired_ms = Some(now_ms),
            AlertState::Resolved => {
                view.resolved_ms = Some(now_ms);
                self.resolved.push_back((now_ms, view.id));
                self.clearing.remove(key);
                if rule.cooldown_secs > 0 {
                    self.cooldown_until
                        .insert(key.clone(), now_ms + rule.cooldown_secs as i64 * 1000);
                }
            }
            AlertState::Pending => {}
        }
        Some(Transition {
            from: Some(from),
            alert: view.clone(),
            metric: rule.metric.clone(),
        })
    }

    fn resolve_if_firing(&mut self, key: &AlertKey, now_ms: i64) -> Option<Transition> {
        let firing = self
            .alerts
            .get(key)
            .is_some_and(|(_, v)| v.state == AlertState::Firing);
        firing
            .then(|| self.transition(key, AlertState::Resolved, now_ms))
            .flatten()
    }

    /// An agent's value crossed a rule's threshold, up when `crossing.breached`.
    pub fn crossed(&mut self, crossing: Crossing<'_>, now_ms: i64) -> Vec<Transition> {
        let Crossing {
            rule,
            agent,
            pool,
            value,
            ts_ms,
            breached,
        } = crossing;
        let key = (rule.name.clone(), agent.to_string());
        if breached {
            // Breached again while `keep_firing_for` ran: it never stopped firing.
            self.clearing.remove(&key);
            if self.active(&key) {
                return Vec::new();
            }
            let message = threshold_message(&rule, agent);
            let above = Some(rule.above);
            return vec![self.open(rule, (agent, pool), value, ts_ms, above, message)];
        }
        let Some((rule, view)) = self.alerts.get_mut(&key) else {
            return Vec::new();
        };
        view.value = value;
        match view.state {
            AlertState::Firing if rule.keep_firing_for_secs > 0 => {
                self.clearing.entry(key).or_insert(now_ms);
                Vec::new()
            }
            AlertState::Firing => self
                .transition(&key, AlertState::Resolved, now_ms)
                .into_iter()
                .collect(),
            // A breach shorter than `for` never fired: it just goes away.
            AlertState::Pending => {
                self.take(&key);
                Vec::new()
            }
            AlertState::Resolved => Vec::new(),
        }
    }

    /// An anomalous score fires `anomaly_<metric>` on the agent at once (or updates it).
    pub fn anomalous(&mut self, note: &AnomalyNote, now_ms: i64) -> Vec<Transition> {
        let name = format!("anomaly_{}", note.metric);
        let key = (name.clone(), note.agent.clone());
        self.anomaly_seen.insert(key.clone(), now_ms);
        if self.active(&key) {
            if let Some((_, view)) = self.alerts.get_mut(&key) {
                view.value = note.score;
            }
            return Vec::new();
        }
        let rule = AlertRule {
            name,
            metric: note.metric.clone(),
            above: note.score,
            for_secs: 0,
            level: AlertLevel::Warning,
            pool: Some(note.pool.clone()),
            keep_firing_for_secs: 0,
            clear_below: None,
            cooldown_secs: 0,
        };
        let message = format!(
            "unusual {} on {}: its anomaly score reached {:.2}",
            note.metric, note.agent, note.score
        );
        let at = (note.agent.as_str(), note.pool.as_str());
        let opened = self.open(rule, at, note.score, note.ts_ms, None, message);
        let fired = self.transition(&key, AlertState::Firing, now_ms);
        std::iter::once(opened).chain(fired).collect()
    }

    /// Fires availability alert `name` on `agent` at once, unless it is already active.
    pub fn raise(
        &mut self,
        name: &str,
        level: AlertLevel,
        agent: &str,
        pool: &str,
        value: f64,
        now_ms: i64,
    ) -> Vec<Transition> {
        let key = (name.to_string(), agent.to_string());
        if self.active(&key) {
            return Vec::new();
        }
        let rule = AlertRule {
            name: name.to_string(),
            metric: "availability".into(),
            above: 0.0,
            for_secs: 0,
            level,
            pool: Some(pool.to_string()),
            keep_firing_for_secs: 0,
            clear_below: None,
            cooldown_secs: 0,
        };
        let message = format!("{} on {agent}", name.replace('_', " "));
        let opened = self.open(rule, (agent, pool), value, now_ms, None, message);
        let fired = self.transition(&key, AlertState::Firing, now_ms);
        std::iter::once(opened).chain(fired).collect()
    }

    /// Resolves alert `name` on `agent` if it fires.
    pub fn clear(&mut self, name: &str, agent: &str, now_ms: i64) -> Vec<Transition> {
        let key = (name.to_string(), agent.to_string());
        self.resolve_if_firing(&key, now_ms).into_iter().collect()
    }

    /// `agent` left the fleet: its firing alerts resolve, its pending ones go.
    pub fn forget(&mut self, agent: &str, now_ms: i64) -> Vec<Transition> {
        let keys: Vec<AlertKey> = self
            .by_agent
            .get(agent)
            .into_iter()
            .flatten()
            .map(|rule| (rule.clone(), agent.to_string()))
            .collect();
        let mut resolved = Vec::new();
        for key in keys {
            match self.alerts.get(&key).map(|(_, view)| view.state) {
                Some(AlertState::Firing) => {
                    resolved.extend(self.transition(&key, AlertState::Resolved, now_ms));
                }
                Some(AlertState::Pending) => {
                    self.take(&key);
                }
                _ => {}
            }
        }
        resolved
    }

    /// Pending alerts past their `for` fire (unless cooling down), clearing ones past their
    /// `keep_firing_for` and anomaly alerts quiet for a minute resolve.
    pub fn evaluate(&mut self, now_ms: i64) -> Vec<Transition> {
        self.cooldown_until.retain(|_, until| *until > now_ms);
        // The first entry due after now: `(now + 1, ("", ""))` sorts before any of them.
        let after_now = (now_ms.saturating_add(1), AlertKey::default());
        let due: Vec<AlertKey> = self
            .pending
            .range(..after_now)
            .map(|(_, key)| key)
            .filter(|key| !self.cooldown_until.contains_key(*key))
            .cloned()
            .collect();
        let mut changes: Vec<Transition> = due
            .iter()
            .filter_map(|key| self.transition(key, AlertState::Firing, now_ms))
            .collect();
        let kept_long_enough: Vec<AlertKey> = self
            .clearing
            .iter()
            .filter(|(key, since)| {
                self.alerts.get(*key).is_none_or(|(rule, _)| {
                    now_ms - **since >= rule.keep_firing_for_secs as i64 * 1000
                })
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in kept_long_enough {
            self.clearing.remove(&key);
            changes.extend(self.resolve_if_firing(&key, now_ms));
        }
        let quiet: Vec<AlertKey> = self
            .anomaly_seen
            .iter()
            .filter(|(_, seen)| now_ms - **seen > ANOMALY_QUIET_MS)
            .map(|(key, _)| key.clone())
            .collect();
        for key in quiet {
            self.anomaly_seen.remove(&key);
            changes.extend(self.resolve_if_firing(&key, now_ms));
        }
        changes
    }

    /// Forgets alerts resolved longer than [`RESOLVED_KEPT_MS`] ago; answers how many.
    pub fn forget_resolved(&mut self, now_ms: i64) -> usize {
        let mut forgotten = 0;
        while let Some(&(at, id)) = self.resolved.front() {
            if now_ms - at < RESOLVED_KEPT_MS {
                break;
            }
            self.resolved.pop_front();
            // The alert may have fired again (a new id) or been replaced since.
            let Some(key) = self.ids.get(&id).cloned() else {
                continue;
            };
            let still = self
                .alerts
                .get(&key)
                .is_some_and(|(_, v)| v.state == AlertState::Resolved && v.resolved_ms == Some(at));
            if still {
                self.take(&key);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// Records `by`'s acknowledgement of alert `id` at `now_ms`; the alert, if it exists.
    pub fn ack(&mut self, id: u64, by: &str, now_ms: i64) -> Option<AlertView> {
        let key = self.ids.get(&id)?;
        let (_, view) = self.alerts.get_mut(key)?;
        view.acked = Some((by.to_string(), now_ms));
        Some(view.clone())
    }
}

/// When a pending alert's `for` ends, epoch milliseconds.
fn due_ms(rule: &AlertRule, view: &AlertView) -> i64 {
    view.since_ms
        .saturating_add((rule.for_secs as i64).saturating_mul(1000))
}

mod page;
pub use page::{AlertCounts, AlertFilter};

#[cfg(test)]
mod tests;
