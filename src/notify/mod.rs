//! Notifications: messages to the channels policy names (console, webhook, Slack, email,
//! Alertmanager), sent in the background so no actor ever waits on a receiver. Each channel
//! counts what it sent and what failed, for `GET /api/v1/notifications`. Webhook URLs and SMTP
//! passwords are secrets: they come from an environment variable or a file and never reach a
//! log or the API.

mod alertmanager;
mod email;
#[cfg(test)]
pub(crate) mod receivers;
mod silence;
mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use serde::Serialize;

use crate::clock;
pub use crate::decide::route::{GroupMessage, Outgoing, RoutedAlert, Router};
use crate::policy::{Channel, Policy, PolicyHandle};
pub use silence::{Matcher, Silence};
pub use webhook::{Delivery, deliver};

/// One message for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Labels routes match on (`rule`, `pool`, `level`, ...).
    pub labels: BTreeMap<String, String>,
    /// One line.
    pub title: String,
    /// What to do about it, plain text.
    pub text: String,
    /// The details, as JSON.
    pub details: serde_json::Value,
    /// The condition is over (Alertmanager gets `endsAt`); left out of webhooks when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resolved: bool,
}

impl From<GroupMessage> for Notification {
    /// A group's message as channels send it: its alerts become `details.alerts`.
    fn from(message: GroupMessage) -> Self {
        let alerts: Vec<serde_json::Value> = message
            .alerts
            .iter()
            .map(|a| {
                serde_json::json!({"labels": a.labels, "firing": a.firing, "value": a.value,
                                   "starts_ms": a.starts_ms})
            })
            .collect();
        Notification {
            labels: message.labels,
            title: message.title,
            text: message.text,
            details: serde_json::json!({ "alerts": alerts }),
            resolved: message.resolved,
        }
    }
}

/// What one channel has done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChannelStats {
    /// Messages delivered.
    pub sent: u64,
    /// Messages given up on after every retry.
    pub failed: u64,
    /// Attempts that failed, retried or not.
    pub failed_attempts: u64,
    /// The last failure, without the URL.
    pub last_error: Option<String>,
    /// When the last message was delivered, RFC 3339.
    pub last_sent: Option<String>,
}

/// Sends notifications to the channels the policy in force routes them to.
#[derive(Clone)]
pub struct Notifier {
    policy: PolicyHandle,
    /// The controller's API, for the commands a message suggests.
    pub api_url: String,
    client: reqwest::Client,
    stats: Arc<Mutex<BTreeMap<String, ChannelStats>>>,
    /// Messages handed to a channel and not yet delivered or given up on.
    in_flight: Arc<AtomicU64>,
    delivery: Delivery,
}

impl Notifier {
    /// A notifier reading channels and routes from `policy`.
    pub fn new(policy: PolicyHandle, api_url: String) -> Notifier {
        Notifier {
            policy,
            api_url,
            client: reqwest::Client::new(),
            stats: Arc::default(),
            in_flight: Arc::default(),
            delivery: Delivery::default(),
        }
    }

    /// Each channel's counts.
    pub fn stats(&self) -> BTreeMap<String, ChannelStats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Messages on their way to a channel now (retries included).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Sends `notification` to every channel a matching route names (the console when no
    /// route matches); returns at once, delivery happens in the background.
    pub fn send(&self, notification: Notification) {
        let current = self.policy.current();
        for name in channels_for(&current.policy, &notification.labels) {
            let channel = current.policy.channels.get(&name).cloned();
            let this = self.clone();
            let notification = notification.clone();
            this.in_flight.fetch_add(1, Ordering::SeqCst);
            let span = tracing::info_span!("task", task = "notify", channel = %name);
            tokio::spawn(
                async move { this.send_to(&name, channel, &notification).await }.instrument(span),
            );
        }
    }

    /// Sends `notification` to the named channels; returns at once.
    pub fn send_via(&self, channels: &[String], notification: Notification) {
        let current = self.policy.current();
        for name in channels {
            let channel = current.policy.channels.get(name).cloned();
            let (this, name) = (self.clone(), name.clone());
            let notification = notification.clone();
            this.in_flight.fetch_add(1, Ordering::SeqCst);
            let span = tracing::info_span!("task", task = "notify", channel = %name);
            tokio::spawn(
                async move { this.send_to(&name, channel, &notification).await }.instrument(span),
            );
        }
    }

    async fn send_to(&self, name: &str, channel: Option<Channel>, notification: &Notification) {
        // Dropped last, so a message is counted delivered (or failed) before it leaves the
        // in-flight count: a reader never sees it in neither.
        let _done = InFlight(&self.in_flight);
        let outcome = match channel {
            None | Some(Channel::Console) => {
                tracing::warn!(message = %notification.title, text = %notification.text,
                    labels = ?notification.labels);
                Ok(0)
            }
            Some(Channel::Webhook { url_env, url_file }) => match secret(&url_env, &url_file) {
                Some(url) => {
                    let body = serde_json::to_value(notification).unwrap_or_default();
                    deliver(&self.client, &url, &body, &self.delivery).await
                }
                None => Err((
                    0,
                    "no URL: its environment variable or file is missing".into(),
                )),
            },
            Some(Channel::Slack { url_env, url_file }) => match secret(&url_env, &url_file) {
                Some(url) => {
                    let body = slack(notification);
                    deliver(&self.client, &url, &body, &self.delivery).await
                }
                None => Err((
                    0,
                    "no URL: its environment variable or file is missing".into(),
                )),
            },
            Some(channel @ Channel::Email { .. }) => {
                email::send(&channel, notification, &self.delivery).await
            }
            Some(Channel::Alertmanager { url }) => {
                let api = &self.api_url;
                alertmanager::send(&self.client, &url, notification, api, &self.delivery).await
            }
        };
        let Ok(mut stats) = self.stats.lock() else {
            return;
        };
        let entry = stats.entry(name.to_string()).or_default();
        match outcome {
            Ok(failed_attempts) => {
                entry.sent += 1;
                entry.failed_attempts += failed_attempts;
                entry.last_sent = Some(clock::rfc3339(clock::now_ms()));
            }
            Err((failed_attempts, error)) => {
                entry.failed += 1;
                entry.failed_attempts += failed_attempts.max(1);
                tracing::warn!(message = "Notification not delivered.", channel = name, %error);
                entry.last_error = Some(error);
            }
        }
    }
}

/// Takes one message off the in-flight count when dropped, whatever the outcome.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The channels of every route whose matchers all match `labels`, in policy order, once each;
/// the console when none matches.
pub fn channels_for(policy: &Policy, labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for route in &policy.routes {
        let matches = route
            .matchers
            .iter()
            .all(|(label, value)| labels.get(label) == Some(value));
        if matches {
            for channel in &route.channels {
                if !names.contains(channel) {
                    names.push(channel.clone());
                }
            }
        }
    }
    if names.is_empty() {
        names.push("console".to_string());
    }
    names
}

/// A secret named by environment variable or file, trimmed.
fn secret(env: &Option<String>, file: &Option<String>) -> Option<String> {
    let value = match (env, file) {
        (Some(var), _) => std::env::var(var).ok(),
        (None, Some(path)) => std::fs::read_to_string(path).ok(),
        (None, None) => None,
    }?;
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// The Slack incoming-webhook shape: text with a bold title.
fn slack(notification: &Notification) -> serde_json::Value {
    serde_json::json!({ "text": format!("*{}*\n{}", notification.title, notification.text) })
}

/// How long one delivery attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_pick_channels_by_labels_and_the_console_is_the_fallback() {
        let policy: Policy = toml::from_str(
            r#"
            [channels.ops]
            type = "webhook"
            url_env = "OPS_URL"
            [[routes]]
            matchers = { rule = "approval_pending" }
            channels = ["ops"]
            [[routes]]
            matchers = { level = "critical" }
            channels = ["ops", "console"]
            "#,
        )
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            channels_for(
                &policy,
                &labels(&[("rule", "approval_pending"), ("level", "critical")])
            ),
            ["ops", "console"]
        );
        assert_eq!(
            channels_for(&policy, &labels(&[("rule", "x")])),
            ["console"]
        );
        let text = slack(&Notification {
            labels: BTreeMap::new(),
            title: "T".into(),
            text: "body".into(),
            details: serde_json::json!({}),
            resolved: false,
        });
        assert_eq!(text["text"], "*T*\nbody");
    }
}
