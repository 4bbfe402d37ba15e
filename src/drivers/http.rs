//! The `http` driver: any orchestrator that answers one small JSON protocol.
//!
//! Every verb is one `POST` of a JSON object to the configured URL:
//!
//! | verb          | body sent                                                        |
//! |---------------|------------------------------------------------------------------|
//! | `size`        | `{"pool": "web", "action": "state"}`                             |
//! | `scale_to`    | `{"pool": "web", "action": "scale", "to": 3}`                    |
//! | `restart`     | `{"pool": "web", "action": "restart", "agent": "web-2"}`         |
//! | `set_weights` | `{"pool": "web", "action": "set_weights", "weights": {"web-1": 0.6, "web-2": 0.4}}` |
//! | `set_concurrency` | `{"pool": "web", "action": "set_concurrency", "limit": 4}` |
//! | `set_model` | `{"pool": "web", "action": "set_model", "agent": "web-2", "model": "m", "provider": "p"}` |
//!
//! With a `token_env`, each request carries `Authorization: Bearer <token>`.
//!
//! The orchestrator answers 2xx with the pool's state as JSON, `{"size": N, ...}`: `size`
//! (the number of agents it runs for the pool now, after the action: the size asked for, as
//! Kubernetes' `spec.replicas`, even while some are still starting) is required for
//! `state` and `scale`; other fields are ignored. A `restart` answer may carry
//! `"endpoint"`, the restarted agent's base URL; a `set_weights` or `set_concurrency` answer may be empty.
//!
//! Any other status is a refusal. Transport errors (no connection, no answer within the
//! timeout) and 5xx answers are retried with exponential backoff (200 ms, 400 ms, ...);
//! 4xx answers are not, since the same request would be refused again. A retried `restart`
//! may restart the agent twice: the orchestrator should treat it as idempotent.
//!
//! The orchestrator owns the agents: `start`/`stop` are unsupported (the actuator scales
//! with `scale_to`), `list` is empty, and `shutdown` leaves the pool as it is.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Driver, DriverError, DriverFuture, Secret, excerpt, transport_error};
use crate::clock;
use crate::domain::AgentHandle;
use crate::policy::PoolModel;

/// The first retry's delay; each further retry waits twice as long.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Settings of one pool's http driver.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The pool, sent in every request.
    pub pool: String,
    /// Where every action is POSTed.
    pub url: String,
    /// How long one request may take.
    pub timeout: Duration,
    /// How many times a failed request is tried again.
    pub retries: u32,
    /// The first retry's delay (doubling after).
    pub backoff: Duration,
    /// Bearer token sent with every request.
    pub token: Option<Secret>,
}

/// Drives a pool through an orchestrator's HTTP endpoint.
pub struct HttpDriver {
    config: HttpConfig,
    client: reqwest::Client,
}

/// The state an orchestrator reports.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    /// The HTTP status it came with.
    #[serde(skip)]
    status: u16,
    size: Option<u64>,
    endpoint: Option<String>,
}

/// What one attempt came to.
enum Attempt {
    Answered(Answer),
    /// Worth trying again (no answer, or a 5xx).
    Transient(DriverError),
    Final(DriverError),
}

// === impl HttpDriver ===

impl HttpDriver {
    /// A driver for `config`; fails only if the HTTP client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, DriverError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|error| DriverError::Setup {
                driver: "http",
                message: format!("cannot build an HTTP client: {error}"),
            })?;
        Ok(HttpDriver { config, client })
    }

    /// POSTs `body` (with the pool added), retrying transient failures.
    async fn call(&self, mut body: Value) -> Result<Answer, DriverError> {
        body["pool"] = Value::String(self.config.pool.clone());
        let action = body["action"].as_str().unwrap_or_default().to_string();
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            let error = match self.attempt(&body).await {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::Final(error) => return Err(error),
                Attempt::Transient(error) => error,
            };
            if attempt >= self.config.retries {
                return Err(error);
            }
            attempt += 1;
            tracing::warn!(
                message = "Orchestrator request failed; retrying.",
                pool = %self.config.pool,
                %action,
                attempt,
                retries = self.config.retries,
                delay_ms = delay.as_millis() as u64,
                %error
            );
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    async fn attempt(&self, body: &Value) -> Attempt {
        let mut request = self.client.post(&self.config.url).json(body);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token.expose());
        }
        let refused = |status: u16, message: String| DriverError::Refused {
            target: self.config.url.clone(),
            status,
            message,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Transient(refused(0, transport_error(error, self.config.timeout)));
            }
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                let message = transport_error(error, self.config.timeout);
                return Attempt::Transient(refused(status.as_u16(), message));
            }
        };
        if status.is_server_error() {
            return Attempt::Transient(refused(status.as_u16(), excerpt(&text, 300)));
        }
        if !status.is_success() {
            return Attempt::Final(refused(status.as_u16(), excerpt(&text, 300)));
        }
        if text.trim().is_empty() {
            return Attempt::Answered(Answer {
                status: status.as_u16(),
                ..Answer::default()
            });
        }
        match serde_json::from_str::<Answer>(&text) {
            Ok(answer) => Attempt::Answered(Answer {
                status: status.as_u16(),
                ..answer
            }),
            Err(error) => Attempt::Final(refused(
                status.as_u16(),
                format!(
                    "answer is not the JSON state object ({error}): {}",
                    excerpt(&text, 200)
                ),
            )),
        }
    }

    /// The required `size` of an answer.
    fn size_of(&self, answer: Answer, action: &str) -> Result<usize, DriverError> {
        answer
            .size
            .and_then(|size| usize::try_from(size).ok())
            .ok_or_else(|| DriverError::Refused {
                target: self.config.url.clone(),
                status: answer.status,
                message: format!("the answer to `{action}` has no `size`"),
            })
    }
}

impl Driver for HttpDriver {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn restart<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle> {
        Box::pin(async move {
            let answer = self
                .call(json!({"action": "restart", "agent": agent}))
                .await?;
            tracing::info!(message = "Agent restarted by the orchestrator.", pool = %self.config.pool, agent);
            Ok(AgentHandle {
                id: agent.to_string(),
                pool: self.config.pool.clone(),
                pid: None,
                endpoint: answer.endpoint,
                started_ms: clock::now_ms(),
            })
        })
    }

    fn remote(&self) -> bool {
        true
    }

    fn size(&self) -> DriverFuture<'_, usize> {
        Box::pin(async move {
            let answer = self.call(json!({"action": "state"})).await?;
            self.size_of(answer, "state")
        })
    }

    fn scale_to(&self, to: usize) -> DriverFuture<'_, usize> {
        Box::pin(async move {
            let answer = self.call(json!({"action": "scale", "to": to})).await?;
            let size = self.size_of(answer, "scale")?;
            tracing::info!(message = "Pool scaled by the orchestrator.", pool = %self.config.pool, to, size);
            Ok(size)
        })
    }

    fn set_weights<'a>(&'a self, weights: &'a BTreeMap<String, f64>) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            self.call(json!({"action": "set_weights", "weights": weights}))
                .await?;
            Ok(())
        })
    }

    fn set_concurrency(&self, limit: u32) -> DriverFuture<'_, ()> {
        Box::pin(async move {
            self.call(json!({"action": "set_concurrency", "limit": limit}))
                .await?;
            Ok(())
        })
    }

    fn set_model<'a>(&'a self, agent: &'a str, model: &'a PoolModel) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let call = json!({"action": "set_model", "agent": agent, "model": model.name,
                              "provider": model.provider});
            self.call(call).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
