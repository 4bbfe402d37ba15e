//! The everyday reads over the controller's REST API: `swarmpilot status`, `agents [ID]`,
//! `alerts`, `silences` and `log`. Each prints a readable table, or with `--json` what the
//! API answered; each exits 1 with a one-line reason when the controller cannot be reached
//! or refuses the token.

mod agents;
mod alerts;
mod export;
mod log;
mod report;
mod status;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};

use super::client::{ApiClient, ClientArgs, ClientError};
use crate::domain::ActionState;

/// Exit code of `status` when something needs a person: actuation halted, or a critical or
/// emergency alert firing.
pub const ATTENTION: i32 = 3;

/// What every read takes: where the controller is, and the output form.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Where the controller is and which token to send.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the JSON the API answers instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The read commands.
#[derive(Debug, Subcommand)]
pub enum Read {
    /// Write the metrics (per-minute rollups), the alert history or the action log to
    /// stdout as JSON or CSV, a page at a time.
    Export {
        /// What to export.
        #[arg(long, value_enum)]
        what: export::What,
        /// How to write it.
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// From this time (RFC 3339 or epoch ms); metrics default to the last day.
        #[arg(long, value_parser = time)]
        since: Option<i64>,
        /// Until this time, excluded (RFC 3339 or epoch ms); default now.
        #[arg(long, value_parser = time)]
        until: Option<i64>,
        /// Where the controller is and which token to send.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A report on the history: summary, key figures beside the previous period, agents,
    /// host, alerts, actions, trends, bottlenecks and opportunities.
    ///
    /// Built by the controller from its stored rollups, alert history and action log. Text
    /// by default; `--format html` is one page with its charts inline; `--format csv` with
    /// `--output DIR/` writes one file per table.
    Report {
        /// The period: the last hour, day, week or 30 days, or `final` (since the start).
        #[arg(long, default_value = "daily", value_parser = PossibleValuesParser::new(
            crate::report::Period::ALL.map(crate::report::Period::as_str)))]
        period: String,
        /// The form.
        #[arg(long, default_value = "text", value_parser = PossibleValuesParser::new(
            crate::reports::Format::ALL.map(crate::reports::Format::as_str)))]
        format: String,
        /// Start of the window (RFC 3339 or epoch ms); default one period before its end.
        #[arg(long)]
        since: Option<String>,
        /// End of the window (RFC 3339 or epoch ms); default now.
        #[arg(long)]
        until: Option<String>,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Write to this file, or into this directory (a path ending in `/`); default stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Where the controller is and which token to send.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The system at a glance: pools, agents, firing alerts, approvals, automation, policy.
    ///
    /// Agents by status, firing alerts by level, the actions waiting for approval, whether
    /// automation is on, paused or halted, and the policy version. Exits 3 when actuation is
    /// halted or a critical or emergency alert fires, 0 otherwise.
    Status(ReadArgs),
    /// The agents in a table, or one agent with its metrics, alerts and recommendations.
    Agents {
        /// One agent's id.
        id: Option<String>,
        /// Only this pool's agents.
        #[arg(long)]
        pool: Option<String>,
        /// Only agents in this status.
        #[arg(long, value_parser = PossibleValuesParser::new(
            ["starting", "active", "idle", "busy", "error", "offline"]))]
        status: Option<String>,
        /// Where the controller is, the token, and the output form.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Alerts: pending, firing and recently resolved.
    Alerts {
        /// Only alerts in this state.
        #[arg(long, value_parser = PossibleValuesParser::new(["pending", "firing", "resolved"]))]
        state: Option<String>,
        /// Only alerts of this level.
        #[arg(long, value_parser = PossibleValuesParser::new(
            ["info", "warning", "critical", "emergency"]))]
        level: Option<String>,
        /// Only this agent's alerts.
        #[arg(long)]
        agent: Option<String>,
        /// Only this pool's alerts.
        #[arg(long)]
        pool: Option<String>,
        /// Where the controller is, the token, and the output form.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Silences, in force, pending and expired.
    Silences(ReadArgs),
    /// The applied-optimization and rollback log, newest first.
    Log {
        /// Rows from this time on: RFC 3339 or epoch milliseconds.
        #[arg(long)]
        since: Option<String>,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Only actions on this agent.
        #[arg(long)]
        agent: Option<String>,
        /// Only this kind of action.
        #[arg(long, value_parser = PossibleValuesParser::new(
            ["scale", "redistribute", "restart", "adjust_threshold"]))]
        kind: Option<String>,
        /// Only rows entering this state.
        #[arg(long, value_parser = PossibleValuesParser::new(ActionState::names()))]
        status: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Where the controller is, the token, and the output form.
        #[command(flatten)]
        read: ReadArgs,
    },
}

/// A time on the command line: RFC 3339 or epoch milliseconds.
fn time(text: &str) -> Result<i64, String> {
    crate::clock::parse_time(text)
        .ok_or_else(|| format!("{text:?} is neither RFC 3339 nor epoch milliseconds"))
}

/// The query pairs of the options that were given.
fn query(pairs: &[(&'static str, &Option<String>)]) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(name, value)| Some((*name, (*value).clone()?)))
        .collect()
}

/// Runs one read against the controller; returns the exit code.
pub fn run(read: Read) -> anyhow::Result<i32> {
    // No actors here, only HTTP requests: a current-thread tokio runtime is all reqwest needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(run_async(read))?)
}

async fn run_async(read: Read) -> Result<i32, ClientError> {
    let now_ms = crate::clock::now_ms();
    match read {
        Read::Export {
            what,
            format,
            since,
            until,
            client,
        } => {
            let window = export::Window {
                since_ms: since,
                until_ms: until,
            };
            let rows = export::run(&ApiClient::new(&client)?, what, format, window).await?;
            eprintln!("{rows} rows exported");
            Ok(0)
        }
        Read::Report {
            period,
            format,
            since,
            until,
            pool,
            output,
            client,
        } => {
            let ask = report::Ask {
                // Both were checked by clap against these very names.
                period: period
                    .parse()
                    .map_err(|e| ClientError::Output(format!("{e}")))?,
                format: format.parse().map_err(ClientError::Output)?,
                since,
                until,
                pool,
                output,
            };
            for path in report::run(&ApiClient::new(&client)?, ask).await? {
                eprintln!("wrote {}", path.display());
            }
            Ok(0)
        }
        Read::Status(args) => status::run(&ApiClient::new(&args.client)?, args.json, now_ms).await,
        Read::Agents {
            id,
            pool,
            status,
            read,
        } => {
            let client = ApiClient::new(&read.client)?;
            match id {
                Some(id) => agents::one(&client, &id, read.json, now_ms).await?,
                None => {
                    let filters = query(&[("pool", &pool), ("status", &status)]);
                    agents::list(&client, &filters, read.json, now_ms).await?;
                }
            }
            Ok(0)
        }
        Read::Alerts {
            state,
            level,
            agent,
            pool,
            read,
        } => {
            let filters = query(&[
                ("state", &state),
                ("level", &level),
                ("agent", &agent),
                ("pool", &pool),
            ]);
            let client = ApiClient::new(&read.client)?;
            alerts::alerts(&client, &filters, read.json, now_ms).await?;
            Ok(0)
        }
        Read::Silences(args) => {
            alerts::silences(&ApiClient::new(&args.client)?, args.json, now_ms).await?;
            Ok(0)
        }
        Read::Log {
            since,
            pool,
            agent,
            kind,
            status,
            limit,
            read,
        } => {
            let mut filters = query(&[
                ("since", &since),
                ("pool", &pool),
                ("agent", &agent),
                ("kind", &kind),
                ("status", &status),
            ]);
            filters.push(("limit", limit.min(1000).to_string()));
            let client = ApiClient::new(&read.client)?;
            log::rows(&client, &filters, limit as usize, read.json).await?;
            Ok(0)
        }
    }
}
