//! `swarmpilot actions list|show|approve|reject|rollback`: reads and decides actions through
//! the running controller's REST API, as a person at a terminal would.

mod view;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{ApiClient, ClientArgs, ClientError};
use super::text::{decode, print_json};
use crate::domain::{Action, ActionState};

/// Most rows one page of `GET /api/v1/log` holds.
const LOG_PAGE: usize = 1000;

/// The arguments of `swarmpilot actions`.
#[derive(Debug, Args)]
pub struct ActionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ActionsCommand,
    /// Where the controller is and which token to send.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the JSON the API answers instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The `actions` subcommands.
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// Only actions in this state.
        #[arg(long, value_parser = PossibleValuesParser::new(ActionState::names()))]
        status: Option<String>,
        /// At most this many (the controller's default is 100, its maximum 1000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: Option<u64>,
    },
    /// Show one action: its change, reason, risk, approvals, evidence and log.
    Show {
        /// The action's id.
        id: u64,
    },
    /// Approve a pending action (role approver or admin).
    Approve {
        /// The action's id.
        id: u64,
        /// A note for the log.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a pending action (role approver or admin).
    Reject {
        /// The action's id.
        id: u64,
        /// A note for the log.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Undo an applied action (role approver or admin).
    Rollback {
        /// The action's id.
        id: u64,
    },
}

/// Runs one `actions` subcommand against the controller; returns the exit code.
pub fn run(args: ActionsArgs) -> anyhow::Result<i32> {
    // No actors here, only HTTP requests: a current-thread tokio runtime is all reqwest needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))?;
    Ok(0)
}

async fn run_async(args: ActionsArgs) -> Result<(), ClientError> {
    let client = ApiClient::new(&args.client)?;
    let now_ms = crate::clock::now_ms();
    match args.command {
        ActionsCommand::List { status, limit } => {
            let mut query = Vec::new();
            if let Some(status) = &status {
                query.push(("status", status.clone()));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            let body = client.get("/api/v1/actions", &query).await?;
            if args.json {
                print_json(&body);
                return Ok(());
            }
            let mut actions: Vec<Action> = decode(body)?;
            actions.sort_by_key(|a| std::cmp::Reverse(a.id));
            if actions.is_empty() {
                match status {
                    Some(status) => println!("no actions in state {status}"),
                    None => println!("no actions"),
                }
            } else {
                print!("{}", view::table(&actions, now_ms));
            }
        }
        ActionsCommand::Show { id } => {
            let body = client.get(&format!("/api/v1/actions/{id}"), &[]).await?;
            if args.json {
                print_json(&body);
                return Ok(());
            }
            let action: Action = decode(body)?;
            let log = log_rows(&client, &action).await?;
            print!("{}", view::detail(&action, &log, now_ms));
        }
        ActionsCommand::Approve { id, comment } => {
            decide(&client, id, Decision::Approve, comment, args.json).await?;
        }
        ActionsCommand::Reject { id, comment } => {
            decide(&client, id, Decision::Reject, comment, args.json).await?;
        }
        ActionsCommand::Rollback { id } => {
            let path = format!("/api/v1/actions/{id}/rollback");
            let body = client.post(&path, None).await?;
            if args.json {
                print_json(&body);
                return Ok(());
            }
            let action: Action = decode(body)?;
            let by = actor_of(&client, &action).await;
            println!("{}", view::rolled_back(&action, by.as_deref()));
        }
    }
    Ok(())
}

/// What an approver decides about a pending action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject,
}

/// Approves or rejects action `id` and prints the outcome in one line.
async fn decide(
    client: &ApiClient,
    id: u64,
    decision: Decision,
    comment: Option<String>,
    json: bool,
) -> Result<(), ClientError> {
    let body = comment.map(|comment| json!({ "comment": comment }));
    let verb = match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    let path = format!("/api/v1/actions/{id}/{verb}");
    let answer = client.post(&path, body.as_ref()).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let action: Action = decode(answer)?;
    let line = match decision {
        Decision::Approve => view::approved(&action),
        Decision::Reject => view::rejected(&action, actor_of(client, &action).await.as_deref()),
    };
    println!("{line}");
    Ok(())
}

/// Who moved `action` into its current state, from its newest log row; `None` if the log
/// cannot be read (the decision itself already succeeded, so that is no error).
async fn actor_of(client: &ApiClient, action: &Action) -> Option<String> {
    let rows = log_rows(client, action).await.ok()?;
    rows.into_iter()
        .find(|row| row.to_state == action.state.as_str())
        .map(|row| row.actor)
}

/// The log rows of `action`, newest first. The log endpoint filters by pool, kind and time
/// but not by action, so this reads pages of those rows (following `before`) until it has
/// the action's first row or the log ends.
async fn log_rows(client: &ApiClient, action: &Action) -> Result<Vec<view::LogRow>, ClientError> {
    let mut rows = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut query = vec![
            ("pool", action.pool.clone()),
            ("kind", action.kind.as_str().to_string()),
            // The action's first row is written with its creation time.
            ("since", action.created_ms.to_string()),
            ("limit", LOG_PAGE.to_string()),
        ];
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        let page: Vec<view::LogRow> = decode(client.get("/api/v1/log", &query).await?)?;
        let full = page.len() == LOG_PAGE;
        before = page.last().map(|row| row.seq);
        let mut reached_first = false;
        for row in page.into_iter().filter(|row| row.action_id == action.id) {
            reached_first |= row.from_state.is_none();
            rows.push(row);
        }
        if reached_first || !full {
            return Ok(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_choices_are_the_domain_states() {
        for state in ActionState::names() {
            let parsed: ActionState = serde_json::from_value(json!(state)).unwrap();
            assert_eq!(parsed.as_str(), state);
        }
    }
}
