//! `swarmpilot hook pre-task|post-task`: one line in an agent framework's hook configuration
//! reports a task's start and end (with its model use) to the controller.
//!
//! The controller's URL and token come from the environment (`SWARMPILOT_URL`,
//! `SWARMPILOT_TOKEN`) or the usual flags; the agent from `--agent`, `SWARMPILOT_AGENT`, else
//! the host name. A hook must never break the task it reports on: when the controller is
//! down, slow (`--timeout-ms`) or refuses, it says so on stderr and exits 0, unless
//! `--strict` asks for exit code 1.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::client::{ApiClient, ClientArgs};
use crate::domain::genai::ErrorKind;

/// The arguments of `swarmpilot hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// Which end of the task this is.
    #[arg(value_enum)]
    pub event: HookEvent,
    /// The task's id (letters, digits, `-_.:`), the same at both ends.
    #[arg(long, env = "SWARMPILOT_TASK_ID")]
    pub task: String,
    /// The agent doing the task (default: the host name).
    #[arg(long, env = "SWARMPILOT_AGENT")]
    pub agent: Option<String>,
    /// The pool a new agent joins.
    #[arg(long, env = "SWARMPILOT_POOL")]
    pub pool: Option<String>,
    /// pre-task: the task waits to run (a second pre-task without it starts it).
    #[arg(long)]
    pub queued: bool,
    /// post-task: the task failed (implied by --error-kind).
    #[arg(long)]
    pub failed: bool,
    /// post-task: why it failed.
    #[arg(long, value_enum)]
    pub error_kind: Option<HookErrorKind>,
    /// post-task: the model it used.
    #[arg(long)]
    pub model: Option<String>,
    /// post-task: the model's provider (`openai`, `anthropic`, ...).
    #[arg(long)]
    pub provider: Option<String>,
    /// post-task: model input tokens it used.
    #[arg(long)]
    pub tokens_in: Option<u64>,
    /// post-task: model output tokens it used.
    #[arg(long)]
    pub tokens_out: Option<u64>,
    /// Fail (exit 1) when the report does not get through, instead of exit 0.
    #[arg(long)]
    pub strict: bool,
    /// Give up on the controller after this long, milliseconds.
    #[arg(long, env = "SWARMPILOT_HOOK_TIMEOUT_MS", default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Where the controller is and which token to send.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The two ends of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookEvent {
    /// The task starts (or waits, with --queued).
    PreTask,
    /// The task ended.
    PostTask,
}

/// Why a task failed, as the flag takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookErrorKind {
    /// The model provider's rate limit (HTTP 429).
    RateLimited,
    /// It took too long.
    Timeout,
    /// Anything else.
    Other,
}

/// Reports the task; answers the exit code: 0, or 1 when `--strict` and it failed.
pub fn run(args: HookArgs) -> anyhow::Result<i32> {
    let outcome = report(&args);
    match outcome {
        Ok(()) => Ok(0),
        Err(message) => {
            eprintln!("swarmpilot hook: {message}");
            Ok(if args.strict { 1 } else { 0 })
        }
    }
}

fn report(args: &HookArgs) -> Result<(), String> {
    let (path, body) = request(args)?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let client = ApiClient::with_timeout(&args.client, timeout).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // The client bounds the request, connecting included.
    runtime
        .block_on(client.post(&path, Some(&body)))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The path and body the event sends.
fn request(args: &HookArgs) -> Result<(String, Value), String> {
    let agent = match &args.agent {
        Some(agent) => agent.clone(),
        None => host_name().ok_or("no --agent, SWARMPILOT_AGENT or host name")?,
    };
    let task = &args.task;
    let mut body = Map::new();
    body.insert("agent".into(), json!(agent));
    match args.event {
        HookEvent::PreTask => {
            if let Some(pool) = &args.pool {
                body.insert("pool".into(), json!(pool));
            }
            if args.queued {
                body.insert("queued".into(), json!(true));
            }
            Ok((format!("/api/v1/tasks/{task}/start"), Value::Object(body)))
        }
        HookEvent::PostTask => {
            let error_kind = args.error_kind.map(|kind| match kind {
                HookErrorKind::RateLimited => ErrorKind::RateLimited,
                HookErrorKind::Timeout => ErrorKind::Timeout,
                HookErrorKind::Other => ErrorKind::Other,
            });
            let failed = args.failed || error_kind.is_some();
            body.insert("success".into(), json!(!failed));
            let optional = [
                ("error_kind", error_kind.map(|k| json!(k.name()))),
                ("model", args.model.as_ref().map(|m| json!(m))),
                ("provider", args.provider.as_ref().map(|p| json!(p))),
                ("tokens_in", args.tokens_in.map(|t| json!(t))),
                ("tokens_out", args.tokens_out.map(|t| json!(t))),
            ];
            for (field, value) in optional {
                if let Some(value) = value {
                    body.insert(field.into(), value);
                }
            }
            Ok((format!("/api/v1/tasks/{task}/end"), Value::Object(body)))
        }
    }
}

/// The machine's host name, from the kernel.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        hook: HookArgs,
    }

    fn body(args: &[&str]) -> (String, Value) {
        let cli = Cli::try_parse_from(std::iter::once("hook").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"));
        request(&cli.hook).unwrap()
    }

    #[test]
    fn each_event_sends_its_fields() {
        let (path, start) = body(&["pre-task", "--task", "t-1", "--agent", "a", "--pool", "p"]);
        assert_eq!(path, "/api/v1/tasks/t-1/start");
        assert_eq!(start, json!({"agent": "a", "pool": "p"}));
        let (path, end) = body(&[
            "post-task",
            "--task",
            "t-1",
            "--agent",
            "a",
            "--model",
            "gpt-4o",
            "--tokens-in",
            "120",
            "--tokens-out",
            "30",
            "--error-kind",
            "rate-limited",
        ]);
        assert_eq!(path, "/api/v1/tasks/t-1/end");
        assert_eq!(
            end,
            json!({"agent": "a", "success": false, "error_kind": "rate_limited",
                "model": "gpt-4o", "tokens_in": 120, "tokens_out": 30})
        );
        let (_, ok) = body(&["post-task", "--task", "t", "--agent", "a"]);
        assert_eq!(ok, json!({"agent": "a", "success": true}));
    }
}
