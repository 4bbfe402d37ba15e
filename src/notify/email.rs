//! Email over SMTP with lettre (rustls, no OpenSSL): subject = title, body = text and the
//! details as pretty JSON. STARTTLS is used when the server offers it, and required when a
//! password would otherwise cross the network in clear; port 465 speaks TLS from the start.
//! Retries follow webhook.rs's `Delivery`. The password never reaches a log or an error.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Delivery, Notification};
use crate::policy::Channel;

/// Why an email channel cannot send; never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The channel is another kind.
    #[error("the channel is not an email channel")]
    NotEmail,
    /// `password_env` names a variable that is not set (or is empty).
    #[error("environment variable {0} holding the SMTP password is not set")]
    PasswordEnvMissing(String),
    /// `password_file` cannot be read (or is empty).
    #[error("SMTP password file {path} cannot be read")]
    PasswordFileUnreadable {
        /// The file named by the policy.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A user name without anywhere to read its password from.
    #[error("SMTP user {0:?} has no `password_env` or `password_file`")]
    NoPassword(String),
    /// `from` or one of `to` does not parse.
    #[error("{field} address {address:?} is not an email address")]
    BadAddress {
        /// `from` or `to`.
        field: &'static str,
        /// The address as written.
        address: String,
    },
    /// `to` is empty.
    #[error("no recipients in `to`")]
    NoRecipients,
    /// The message or the TLS settings cannot be built.
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// An email channel ready to send: addresses parsed, the password read.
pub struct Mailer {
    host: String,
    port: u16,
    from: Mailbox,
    to: Vec<Mailbox>,
    credentials: Option<Credentials>,
    /// Kept only to scrub it from anything a server says back.
    password: Option<String>,
}

/// Sends `notification` through the email `channel`: the failed attempts before success, or
/// them and the last error (as webhook.rs's `deliver`).
pub async fn send(
    channel: &Channel,
    notification: &Notification,
    delivery: &Delivery,
) -> Result<u64, (u64, String)> {
    let mailer = Mailer::from_channel(channel).map_err(|error| (0, error.to_string()))?;
    mailer.send(notification, delivery).await
}

// === impl Mailer ===

impl Mailer {
    /// Reads an `email` channel: parses its addresses and reads its password, if any.
    pub fn from_channel(channel: &Channel) -> Result<Mailer, EmailError> {
        let Channel::Email {
            smtp_host,
            smtp_port,
            from,
            to,
            username,
            password_env,
            password_file,
        } = channel
        else {
            return Err(EmailError::NotEmail);
        };
        let mailbox = |field: &'static str, address: &String| {
            address
                .parse::<Mailbox>()
                .map_err(|_| EmailError::BadAddress {
                    field,
                    address: address.clone(),
                })
        };
        let from = mailbox("from", from)?;
        let to = to
            .iter()
            .map(|address| mailbox("to", address))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(EmailError::NoRecipients);
        }
        let password = match username {
            Some(user) => Some(read_password(
                user,
                password_env.as_deref(),
                password_file.as_deref(),
            )?),
            // A password without a user is never sent: SMTP AUTH needs both.
            None => None,
        };
        let credentials = username
            .as_ref()
            .zip(password.as_ref())
            .map(|(user, password)| Credentials::new(user.clone(), password.clone()));
        Ok(Mailer {
            host: smtp_host.clone(),
            port: *smtp_port,
            from,
            to,
            credentials,
            password,
        })
    }

    /// Sends `notification` until the server accepts it or the attempts run out; a
    /// permanent refusal (5xx) or a client-side error ends the attempts at once.
    pub async fn send(
        &self,
        notification: &Notification,
        delivery: &Delivery,
    ) -> Result<u64, (u64, String)> {
        let message = self.message(notification).map_err(|e| (0, e.to_string()))?;
        let transport = self
            .transport(delivery.timeout)
            .map_err(|e| (0, e.to_string()))?;
        let mut wait = delivery.backoff;
        let mut failures = 0u64;
        loop {
            let error = match transport.send(message.clone()).await {
                Ok(_) => return Ok(failures),
                Err(error) => error,
            };
            failures += 1;
            let final_error = error.is_permanent() || error.is_client();
            let text = self.describe(&error, delivery.timeout);
            if final_error || failures >= u64::from(delivery.attempts) {
                return Err((failures, format!("{text} ({failures} attempts)")));
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }

    /// The email: subject = title, body = text, then the details as pretty JSON.
    fn message(&self, notification: &Notification) -> Result<Message, EmailError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(notification.title.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(body(notification))
            .map_err(|e| EmailError::Build(e.to_string()))
    }

    /// The SMTP client for one send; no pool: notifications are rare.
    fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
        let parameters = TlsParameters::new(self.host.clone())
            .map_err(|e| EmailError::Build(format!("TLS settings: {e}")))?;
        let tls = if self.port == 465 {
            Tls::Wrapper(parameters)
        } else if self.credentials.is_some() && !is_loopback(&self.host) {
            Tls::Required(parameters)
        } else {
            Tls::Opportunistic(parameters)
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder.build())
    }

    /// An SMTP error for people, with the password scrubbed should a server echo it.
    fn describe(&self, error: &lettre::transport::smtp::Error, timeout: Duration) -> String {
        let text = if error.is_timeout() {
            format!("no answer within {} ms", timeout.as_millis())
        } else {
            format!("SMTP server {}:{}: {error}", self.host, self.port)
        };
        match &self.password {
            Some(password) if !password.is_empty() => text.replace(password.as_str(), "***"),
            _ => text,
        }
    }
}

/// The password of `user`, from the environment variable or the file the policy names.
fn read_password(user: &str, env: Option<&str>, file: Option<&str>) -> Result<String, EmailError> {
    let password = match (env, file) {
        (Some(var), _) => std::env::var(var)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| EmailError::PasswordEnvMissing(var.to_string()))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .and_then(|value| match value.trim().is_empty() {
                true => Err(std::io::Error::other("the file is empty")),
                false => Ok(value),
            })
            .map_err(|source| EmailError::PasswordFileUnreadable {
                path: path.to_string(),
                source,
            })?,
        (None, None) => return Err(EmailError::NoPassword(user.to_string())),
    };
    Ok(password.trim().to_string())
}

/// The text, then the details as pretty JSON when there are any.
fn body(notification: &Notification) -> String {
    let details = &notification.details;
    let empty = details.is_null() || details.as_object().is_some_and(|o| o.is_empty());
    if empty {
        return notification.text.clone();
    }
    let pretty = serde_json::to_string_pretty(details).unwrap_or_default();
    format!("{}\n\nDetails:\n{pretty}\n", notification.text)
}

/// Whether `host` is this machine, where a password in clear crosses no network.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
