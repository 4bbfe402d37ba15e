//! The email channel against a real SMTP server (aiosmtpd): delivery through `Notifier`,
//! retries, and errors that name what is missing but never the password.

use std::collections::BTreeMap;

use super::*;
use crate::notify::Notifier;
use crate::notify::receivers::{SmtpServer, free_port, wait_until};
use crate::policy::PolicyHandle;

fn quick(attempts: u32) -> Delivery {
    Delivery {
        attempts,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    }
}

fn notification() -> Notification {
    let labels = [("rule", "approval_pending"), ("pool", "web")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    Notification {
        labels,
        // Not ASCII, so the subject needs RFC 2047 encoding.
        title: "Approval needed: scale “web” 2 → 4".into(),
        text: "Approve with: swarmpilot actions approve 7".into(),
        details: serde_json::json!({"action": 7, "pool": "web"}),
        resolved: false,
    }
}

/// An email channel in TOML, for a policy or on its own.
fn channel(port: u16, extra: &str) -> String {
    format!(
        "type = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         from = \"Swarmpilot <swarmpilot@example.com>\"\n\
         to = [\"ops@example.com\", \"oncall@example.com\"]\n{extra}"
    )
}

fn parse_channel(text: &str) -> Channel {
    toml::from_str(text).unwrap()
}

#[tokio::test]
async fn a_notification_arrives_by_smtp_with_its_subject_body_and_details() {
    let mut server = SmtpServer::start().await;
    let policy = format!(
        "[channels.mail]\n{}\n[[routes]]\nchannels = [\"mail\"]\n",
        channel(server.port, "")
    );
    let loaded = crate::policy::load_str("t.toml", &policy).unwrap();
    let mut notifier = Notifier::new(PolicyHandle::new(loaded), "http://127.0.0.1:1".into());
    notifier.delivery = quick(3);
    notifier.send(notification());

    let messages = server.wait_for_messages(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["subject"], "Approval needed: scale “web” 2 → 4");
    assert_eq!(message["from"], "swarmpilot@example.com");
    assert_eq!(
        message["to"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    assert_eq!(message["content_type"], "text/plain");
    let body = message["body"].as_str().unwrap();
    assert!(
        body.starts_with("Approve with: swarmpilot actions approve 7\n\nDetails:\n{\n"),
        "{body}"
    );
    assert!(body.contains("  \"pool\": \"web\""), "{body}");
    let sent = wait_until("the channel to count the message", async || {
        notifier
            .stats()
            .get("mail")
            .filter(|s| s.sent == 1)
            .cloned()
    })
    .await;
    assert_eq!((sent.failed, sent.last_error), (0, None));
}

#[tokio::test]
async fn a_server_that_starts_late_still_gets_the_message() {
    let port = free_port();
    let mailer = Mailer::from_channel(&parse_channel(&channel(port, ""))).unwrap();
    let delivery = Delivery {
        attempts: 8,
        backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
    };
    let sending = tokio::spawn(async move { mailer.send(&notification(), &delivery).await });
    // The first attempts find nothing listening; the backoff outlasts the server's start.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut server = SmtpServer::start_on(port).await;
    let failures = sending.await.unwrap().unwrap();
    assert!(failures >= 1, "the first attempt should have failed");
    assert_eq!(server.wait_for_messages(1).await.len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_fails_after_every_attempt() {
    let port = free_port();
    let outcome = send(
        &parse_channel(&channel(port, "")),
        &notification(),
        &quick(3),
    )
    .await;
    let (failures, error) = outcome.unwrap_err();
    assert_eq!(failures, 3);
    assert!(
        error.starts_with(&format!("SMTP server 127.0.0.1:{port}: ")),
        "{error}"
    );
    assert!(error.ends_with("(3 attempts)"), "{error}");
}

#[tokio::test]
async fn a_missing_password_variable_is_named_and_no_password_is_ever_shown() {
    let var = "SWARMPILOT_TEST_SMTP_PASSWORD_SURELY_UNSET";
    let extra = format!("username = \"bot\"\npassword_env = \"{var}\"\n");
    let error = send(
        &parse_channel(&channel(1, &extra)),
        &notification(),
        &quick(3),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        (
            0,
            format!("environment variable {var} holding the SMTP password is not set")
        )
    );

    // A password that is read: the server (no TLS, so no AUTH) cannot take it, and neither
    // the error nor the server ever sees it.
    let server = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp-password");
    std::fs::write(&file, "hunter2-do-not-leak\n").unwrap();
    let extra = format!("username = \"bot\"\npassword_file = {:?}\n", file.display());
    let with_password = parse_channel(&channel(server.port, &extra));
    let (failures, error) = send(&with_password, &notification(), &quick(3))
        .await
        .unwrap_err();
    assert_eq!(failures, 1, "a client-side error is not retried: {error}");
    assert!(error.contains("authentication"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert!(server.messages().is_empty());

    let missing = dir.path().join("no-such-file");
    let extra = format!(
        "username = \"bot\"\npassword_file = {:?}\n",
        missing.display()
    );
    let error = Mailer::from_channel(&parse_channel(&channel(1, &extra)))
        .err()
        .unwrap();
    assert!(
        error.to_string().starts_with("SMTP password file ")
            && error.to_string().ends_with("no-such-file cannot be read"),
        "{error}"
    );
}

#[test]
fn addresses_are_checked_before_anything_is_sent() {
    let bad_from = channel(25, "").replace("Swarmpilot <swarmpilot@example.com>", "nobody");
    let error = Mailer::from_channel(&parse_channel(&bad_from))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "from address \"nobody\" is not an email address"
    );
    let no_one = channel(25, "").replace("[\"ops@example.com\", \"oncall@example.com\"]", "[]");
    let error = Mailer::from_channel(&parse_channel(&no_one)).err().unwrap();
    assert_eq!(error.to_string(), "no recipients in `to`");
    assert!(matches!(
        Mailer::from_channel(&Channel::Console),
        Err(EmailError::NotEmail)
    ));
    let plain = Notification {
        details: serde_json::Value::Null,
        ..notification()
    };
    assert_eq!(body(&plain), plain.text);
    assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
    assert!(!is_loopback("smtp.example.com"));
}
