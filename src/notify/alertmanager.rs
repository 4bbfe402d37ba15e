//! Alertmanager: one alert in its v2 API shape, POSTed to `{url}/api/v2/alerts` through
//! webhook.rs's `deliver` (timeouts and retries). Our `rule` label becomes `alertname`, `level`
//! is copied to `severity`, the title and text become the `summary` and `description`
//! annotations, and a resolved notification carries `endsAt`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Delivery, Notification, deliver};

/// The `alertname` of a notification without a `rule` label.
pub const DEFAULT_ALERTNAME: &str = "swarmpilot";

/// The label that says firing or resolved; Alertmanager says that with `endsAt`.
const STATUS_LABEL: &str = "status";

/// POSTs `notification` to the Alertmanager at `base_url`: the failed attempts before success,
/// or them and the last error.
pub async fn send(
    client: &reqwest::Client,
    base_url: &str,
    notification: &Notification,
    generator_url: &str,
    delivery: &Delivery,
) -> Result<u64, (u64, String)> {
    let url = format!("{}/api/v2/alerts", base_url.trim_end_matches('/'));
    let body = alerts(notification, generator_url, crate::clock::now_ms());
    deliver(client, &url, &body, delivery).await
}

/// The JSON array of one alert that `POST /api/v2/alerts` takes, stamped `now_ms`.
pub fn alerts(notification: &Notification, generator_url: &str, now_ms: i64) -> serde_json::Value {
    let now = crate::clock::rfc3339(now_ms);
    let mut alert = json!({
        "labels": labels(&notification.labels),
        "annotations": annotations(notification),
        "startsAt": now,
        "generatorURL": generator_url,
    });
    if is_resolved(notification) {
        // Alertmanager merges this into the firing alert with the same labels (it keeps the
        // earlier start) and shows it resolved.
        alert["endsAt"] = json!(now);
    }
    json!([alert])
}

/// Resolved by the field, or by a `status=resolved` label (the alert router's convention).
fn is_resolved(notification: &Notification) -> bool {
    notification.resolved
        || notification.labels.get(STATUS_LABEL).map(String::as_str) == Some("resolved")
}

/// Our labels as Alertmanager labels: `rule` → `alertname`, `level` also as `severity`,
/// names made valid (`[a-zA-Z_][a-zA-Z0-9_]*`), empty values and `status` left out (the labels
/// identify an alert, so they must not change when it resolves).
fn labels(ours: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (name, value) in ours.iter().filter(|(_, value)| !value.is_empty()) {
        match name.as_str() {
            STATUS_LABEL => None,
            "rule" => labels.insert("alertname".to_string(), value.clone()),
            "level" => {
                labels.insert("severity".to_string(), value.clone());
                labels.insert("level".to_string(), value.clone())
            }
            _ => labels.insert(label_name(name), value.clone()),
        };
    }
    labels
        .entry("alertname".to_string())
        .or_insert_with(|| DEFAULT_ALERTNAME.to_string());
    labels
}

/// `summary` and `description`, and the details as compact JSON when there are any.
fn annotations(notification: &Notification) -> BTreeMap<&'static str, String> {
    let mut annotations = BTreeMap::from([
        ("summary", notification.title.clone()),
        ("description", notification.text.clone()),
    ]);
    let details = &notification.details;
    if !(details.is_null() || details.as_object().is_some_and(|o| o.is_empty())) {
        annotations.insert("details", details.to_string());
    }
    annotations
}

/// A valid Prometheus label name: other characters become `_`, a leading digit gets one.
fn label_name(name: &str) -> String {
    let mut valid: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c,
            false => '_',
        })
        .collect();
    if valid.is_empty() || valid.starts_with(|c: char| c.is_ascii_digit()) {
        valid.insert(0, '_');
    }
    valid
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::Notifier;
    use crate::notify::receivers::{Alertmanager, wait_until};
    use crate::policy::PolicyHandle;

    fn notification(labels: &[(&str, &str)], resolved: bool) -> Notification {
        Notification {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            title: "Approval needed: scale web 2 → 4".into(),
            text: "Approve with: swarmpilot actions approve 7".into(),
            details: json!({"action": 7}),
            resolved,
        }
    }

    const LABELS: &[(&str, &str)] = &[
        ("rule", "approval_pending"),
        ("pool", "web"),
        ("level", "warning"),
        ("kind", "scale"),
        ("agent", "web-1"),
    ];

    #[test]
    fn the_v2_shape_maps_rule_to_alertname_and_level_to_severity() {
        let body = alerts(&notification(LABELS, false), "http://127.0.0.1:8080", 0);
        assert_eq!(
            body,
            json!([{
                "labels": {
                    "alertname": "approval_pending", "pool": "web", "severity": "warning",
                    "level": "warning", "kind": "scale", "agent": "web-1",
                },
                "annotations": {
                    "summary": "Approval needed: scale web 2 → 4",
                    "description": "Approve with: swarmpilot actions approve 7",
                    "details": "{\"action\":7}",
                },
                "startsAt": "1970-01-01T00:00:00.000Z",
                "generatorURL": "http://127.0.0.1:8080",
            }])
        );
        let resolved = alerts(&notification(LABELS, true), "http://x", 1_000);
        assert_eq!(resolved[0]["endsAt"], "1970-01-01T00:00:01.000Z");
        let by_label = notification(&[("rule", "cpu_high"), ("status", "resolved")], false);
        let resolved = alerts(&by_label, "http://x", 1_000);
        assert_eq!(resolved[0]["endsAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(resolved[0]["labels"], json!({"alertname": "cpu_high"}));
        let firing = notification(&[("rule", "cpu_high"), ("status", "firing")], false);
        assert!(
            alerts(&firing, "http://x", 1_000)[0]
                .get("endsAt")
                .is_none()
        );

        let odd = notification(
            &[("metric.name", "cpu"), ("9lives", "x"), ("empty", "")],
            false,
        );
        assert_eq!(
            labels(&odd.labels),
            BTreeMap::from(
                [
                    ("alertname", DEFAULT_ALERTNAME),
                    ("metric_name", "cpu"),
                    ("_9lives", "x")
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
            )
        );
    }

    #[tokio::test]
    async fn a_real_alertmanager_holds_the_alert_until_it_resolves() {
        let mut alertmanager = Alertmanager::start().await;
        let policy = format!(
            "[channels.am]\ntype = \"alertmanager\"\nurl = \"{}/\"\n\n\
             [[routes]]\nchannels = [\"am\"]\n",
            alertmanager.url
        );
        let loaded = crate::policy::load_str("t.toml", &policy).unwrap();
        let api_url = "http://127.0.0.1:8080".to_string();
        let mut notifier = Notifier::new(PolicyHandle::new(loaded), api_url.clone());
        notifier.delivery = Delivery {
            attempts: 3,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };

        notifier.send(notification(LABELS, false));
        let alert = wait_until("Alertmanager to hold the alert", async || {
            alertmanager.alerts().await.into_iter().next()
        })
        .await;
        assert_eq!(
            alert["labels"],
            json!({
                "alertname": "approval_pending", "pool": "web", "severity": "warning",
                "level": "warning", "kind": "scale", "agent": "web-1",
            })
        );
        assert_eq!(
            alert["annotations"]["summary"],
            "Approval needed: scale web 2 → 4"
        );
        assert_eq!(
            alert["annotations"]["description"],
            "Approve with: swarmpilot actions approve 7"
        );
        assert_eq!(alert["generatorURL"], api_url.as_str());
        assert_eq!(alert["status"]["state"], "active");
        assert_eq!(alert["receivers"], json!([{"name": "blackhole"}]));

        // Resolved: Alertmanager's API no longer lists it.
        notifier.send(notification(LABELS, true));
        wait_until("Alertmanager to resolve the alert", async || {
            alertmanager.alerts().await.is_empty().then_some(())
        })
        .await;
        let stats = notifier.stats()["am"].clone();
        assert_eq!((stats.sent, stats.failed), (2, 0), "{stats:?}");
    }
}
