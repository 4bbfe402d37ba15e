//! Drivers: the only code that changes agents in the outside world.
//!
//! A driver runs the agents of one pool. The actuator composes its verbs (start, stop,
//! restart) into actions; nothing else calls a driver.
//!
//! `process` runs agents itself. `http` and `kubernetes` are remote: an orchestrator owns the
//! agents, and the driver only asks it to scale, restart or reweigh the pool.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::AgentHandle;
use crate::policy::PoolModel;

mod agent_api;
#[cfg(test)]
mod fake;
pub mod http;
pub mod kubernetes;
pub mod process;

/// The future every driver verb returns.
pub type DriverFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DriverError>> + Send + 'a>>;

/// Errors a driver reports.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The agent could not be started.
    #[error("agent {agent} did not start: {reason}")]
    StartFailed {
        /// The agent id.
        agent: String,
        /// What went wrong, with the tail of its output when there is one.
        reason: String,
    },
    /// The driver does not run this agent.
    #[error("no agent {0} in this pool")]
    NoSuchAgent(String),
    /// The orchestrator refused or failed the request.
    #[error("{target} {}: {message}", answered(*status))]
    Refused {
        /// What was called (URL or resource).
        target: String,
        /// The HTTP status (0 when there was no answer).
        status: u16,
        /// What the orchestrator said, or why there was no answer.
        message: String,
    },
    /// The driver could not be set up from its settings.
    #[error("cannot set up the {driver} driver: {message}")]
    Setup {
        /// The driver kind.
        driver: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No usable Kubernetes credentials were found.
    #[error("no usable Kubernetes credentials")]
    Credentials(#[from] kubernetes::CredentialsError),
    /// The driver cannot do this.
    #[error("the {driver} driver cannot {verb}")]
    Unsupported {
        /// The driver kind.
        driver: &'static str,
        /// The verb asked for.
        verb: &'static str,
    },
    /// An OS call failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

pub use crate::domain::DriverAgent;

/// Runs the agents of one pool.
pub trait Driver: Send + Sync {
    /// Short name of the driver kind, e.g. `process`.
    fn kind(&self) -> &'static str;

    /// Starts one new agent and returns once it is ready to serve (a remote driver, whose
    /// orchestrator owns the agents, scales with `scale_to` instead).
    fn start(&self) -> DriverFuture<'_, AgentHandle> {
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "start one agent (it scales the pool with scale_to)",
            })
        })
    }

    /// Stops an agent, gracefully first (remote drivers: see `start`).
    fn stop<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, ()> {
        let _ = agent;
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "stop one agent (it scales the pool with scale_to)",
            })
        })
    }

    /// Starts an agent under a given id (the second step of a restart, after `stop`), and
    /// returns once it is ready to serve.
    fn start_as<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle> {
        let _ = agent;
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "start an agent under a given id",
            })
        })
    }

    /// Restarts an agent in place: same id, new incarnation.
    fn restart<'a>(&'a self, agent: &'a str) -> DriverFuture<'a, AgentHandle>;

    /// Every agent the driver runs or ran and has not stopped, newest last (none for a
    /// remote driver: the orchestrator keeps that list).
    fn list(&self) -> Vec<DriverAgent> {
        Vec::new()
    }

    /// Stops every agent; called once when the controller exits. A remote driver's agents
    /// belong to the orchestrator and outlive the controller.
    fn shutdown(&self) -> DriverFuture<'_, ()> {
        Box::pin(async move { Ok(()) })
    }

    /// Whether the orchestrator behind the driver owns the agents: then the actuator scales
    /// with `scale_to` and learns the size from `size`, not from `start`/`stop`/`list`.
    fn remote(&self) -> bool {
        false
    }

    /// Whether `restart` replaces every agent of the pool, not just the one named (a
    /// Kubernetes rollout restart): the risk gate then counts the whole pool as disrupted.
    fn restarts_whole_pool(&self) -> bool {
        false
    }

    /// The number of agents the driver reports for the pool now.
    fn size(&self) -> DriverFuture<'_, usize> {
        let size = self.list().iter().filter(|agent| agent.running).count();
        Box::pin(async move { Ok(size) })
    }

    /// Sets the pool to `to` agents in one request; returns the size the orchestrator
    /// reports afterwards. Only remote drivers implement it.
    fn scale_to(&self, to: usize) -> DriverFuture<'_, usize> {
        let _ = to;
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "scale in one request",
            })
        })
    }

    /// Hands the agents' load weights (agent id to a share summing to 1) to whatever
    /// spreads the pool's load.
    fn set_weights<'a>(&'a self, weights: &'a BTreeMap<String, f64>) -> DriverFuture<'a, ()> {
        let _ = weights;
        Box::pin(async move { Ok(()) })
    }

    /// Sets how many tasks each agent of the pool runs at once, for the agents running now
    /// and those started later.
    fn set_concurrency(&self, limit: u32) -> DriverFuture<'_, ()> {
        let _ = limit;
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "set the agents' concurrency",
            })
        })
    }

    /// Has `agent` call `model` from now on (and after a restart by this driver).
    fn set_model<'a>(&'a self, agent: &'a str, model: &'a PoolModel) -> DriverFuture<'a, ()> {
        let _ = (agent, model);
        Box::pin(async move {
            Err(DriverError::Unsupported {
                driver: self.kind(),
                verb: "move one agent to another model",
            })
        })
    }
}

/// A credential (bearer token, private key) that never shows in logs or debug output.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

// === impl Secret ===

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a request got no answer, for `DriverError::Refused` with status 0: a timeout names
/// the limit, anything else the whole chain of causes (reqwest's own message is only
/// "error sending request").
fn transport_error(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// How `Refused` reads: the status, or that there was none.
fn answered(status: u16) -> String {
    match status {
        0 => "did not answer".to_string(),
        status => format!("answered {status}"),
    }
}

/// At most `limit` characters of an answer's body, for error messages.
fn excerpt(body: &str, limit: usize) -> String {
    let body = body.trim();
    match body.char_indices().nth(limit) {
        Some((end, _)) => format!("{}...", &body[..end]),
        None => body.to_string(),
    }
}
