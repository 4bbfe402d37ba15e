//! The demo's scripted events, each at a share of the run: a fault (one worker starts leaking
//! memory, which the optimizer answers with a restart that waits for approval) and an
//! operator's mistake (most of the load moved onto one worker, which verification catches and
//! rolls back). It also turns action transitions worth a person's eye into event lines.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use crate::actors::fleet::FleetSnapshot;
use crate::clock;
use crate::demo::view::describe;
use crate::domain::{Action, ActionState, AgentStatus};
use crate::store::{LogFilter, Store};

/// When the leak starts, as a share of the run.
const LEAK_AT: f64 = 0.05;
/// Megabytes a second the worker leaks.
const LEAK_MB_PER_S: usize = 3;
/// The operator's mistake is tried from this share of the run (inside the load step, once the
/// first scale-out has had time to land).
const MISTAKE_FROM: f64 = 0.25;

/// The shares of a run of `duration` in which the mistake is tried: late enough in the load
/// step for a scale-out to have landed, early enough that verification judges it under the
/// step's load (its whole window and every check it may fail, with a tick of lag either side).
pub fn mistake_window(policy: &crate::policy::Policy, duration: Duration) -> Range<f64> {
    let verification = &policy.automation.verification;
    let interval = policy.global.sampling_interval_secs as f64;
    let judged_secs =
        verification.window_secs as f64 + (f64::from(verification.failure_limit) + 2.0) * interval;
    let until = super::STEP.end - judged_secs / duration.as_secs_f64().max(1.0);
    // A run too short to judge the mistake under load still tries it once, early.
    MISTAKE_FROM..until.max(MISTAKE_FROM + 0.01)
}

/// The scripted part of the demo.
pub struct Scenario {
    api: String,
    token: String,
    pool: String,
    data_dir: PathBuf,
    client: reqwest::Client,
    leaky: Option<String>,
    mistake: Option<i64>,
    mistake_window: Range<f64>,
    told: HashSet<(i64, &'static str)>,
}

impl Scenario {
    /// A scenario against the controller at `api` (e.g. `http://127.0.0.1:8080`).
    /// The mistake is tried within `mistake_window` (shares of the run).
    pub fn new(
        api: String,
        token: String,
        pool: String,
        data_dir: PathBuf,
        mistake_window: Range<f64>,
    ) -> Scenario {
        Scenario {
            api,
            token,
            pool,
            data_dir,
            client: reqwest::Client::new(),
            leaky: None,
            mistake: None,
            mistake_window,
            told: HashSet::new(),
        }
    }

    /// Runs the events due at `share` of the run; returns lines saying what happened.
    pub async fn step(&mut self, share: f64, fleet: &FleetSnapshot) -> Vec<String> {
        let mut events = Vec::new();
        let serving: Vec<_> = fleet
            .agents
            .iter()
            .filter(|a| a.pool == self.pool && a.endpoint.is_some())
            .filter(|a| {
                matches!(
                    a.status,
                    AgentStatus::Active | AgentStatus::Idle | AgentStatus::Busy
                )
            })
            .collect();
        if self.leaky.is_none()
            && share >= LEAK_AT
            && let Some(agent) = serving.first()
        {
            let url = format!(
                "{}/chaos/leak",
                agent.endpoint.as_deref().unwrap_or_default()
            );
            let body = serde_json::json!({ "mb_per_s": LEAK_MB_PER_S });
            if let Ok(response) = self.client.post(url).json(&body).send().await
                && response.status().is_success()
            {
                self.leaky = Some(agent.id.clone());
                events.push(format!(
                    "fault: {} starts leaking {LEAK_MB_PER_S} MB/s (injected)",
                    agent.id
                ));
            }
        }
        let due = self.mistake_window.contains(&share);
        if self.mistake.is_none() && due && serving.len() >= 2 {
            // Everything onto one worker that is not the leaking one.
            let Some(hot) = serving.iter().find(|a| Some(&a.id) != self.leaky.as_ref()) else {
                return events;
            };
            let weights: BTreeMap<&str, f64> = serving
                .iter()
                .map(|a| (a.id.as_str(), if a.id == hot.id { 8.0 } else { 0.5 }))
                .collect();
            let body = serde_json::json!({
                "pool": self.pool,
                "change": {"type": "redistribute", "weights": weights},
                "reason": format!("operator moves most load onto {} (a mistake)", hot.id),
            });
            let sent = self
                .client
                .post(format!("{}/api/v1/actions", self.api))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await;
            if let Ok(response) = sent
                && response.status().is_success()
                && let Ok(action) = response.json::<serde_json::Value>().await
            {
                self.mistake = action["id"].as_i64();
                events.push(format!(
                    "operator: moves most load onto {} by hand (action #{}), a mistake",
                    hot.id,
                    self.mistake.unwrap_or_default()
                ));
            }
        }
        events
    }

    /// Lines for transitions a person should see: approvals waiting (with the command that
    /// approves them), expiries, verification failures and rollbacks. Each is told once.
    pub fn tell(&mut self, actions: &[Action], store: &Store) -> Vec<String> {
        let mut lines = Vec::new();
        for action in actions.iter().rev() {
            let line = match action.state {
                ActionState::PendingApproval => {
                    let left = (action.expires_ms.unwrap_or(0) - clock::now_ms()).max(0) / 1000;
                    format!(
                        "action #{} {} waits for approval ({} {}, expires in {left} s):\n    \
                         swarmpilot actions approve {} --url {} --data-dir {}",
                        action.id,
                        describe(action),
                        action.risk.as_ref().map_or("?", |r| r.class.as_str()),
                        action
                            .risk
                            .as_ref()
                            .map_or(String::new(), |r| format!("{:.2}", r.score)),
                        action.id,
                        self.api,
                        self.data_dir.display()
                    )
                }
                ActionState::Expired => format!(
                    "action #{} {} expired unapproved: nothing was applied",
                    action.id,
                    describe(action)
                ),
                ActionState::RolledBack => {
                    let filter = LogFilter {
                        status: Some(crate::domain::ActionState::RolledBack),
                        limit: 50,
                        ..Default::default()
                    };
                    let why = store
                        .log(&filter)
                        .unwrap_or_default()
                        .into_iter()
                        .find(|row| row.action_id == action.id)
                        .map_or_else(String::new, |row| row.reason);
                    format!(
                        "action #{} {} rolled back: {why}",
                        action.id,
                        describe(action)
                    )
                }
                _ => continue,
            };
            if self.told.insert((action.id, action.state.as_str())) {
                lines.push(line);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mistake_is_tried_only_while_the_step_lasts_long_enough_to_judge_it() {
        let policy = crate::policy::Policy::default();
        let run = Duration::from_secs(150);
        let window = mistake_window(&policy, run);
        let verification = &policy.automation.verification;
        // Tried after the step began and with the whole verification still inside the step.
        assert!(window.start > super::super::STEP.start, "{window:?}");
        let left_secs = (super::super::STEP.end - window.end) * 150.0;
        let checks_to_fail = f64::from(verification.failure_limit + 1);
        let interval = policy.global.sampling_interval_secs as f64;
        assert!(left_secs >= verification.window_secs as f64, "{window:?}");
        assert!(left_secs >= checks_to_fail * interval, "{window:?}");
        // A run too short for that still tries it, at the start of the window.
        let short = mistake_window(&policy, Duration::from_secs(30));
        assert!(short.contains(&MISTAKE_FROM), "{short:?}");
    }
}
