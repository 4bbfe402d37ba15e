//! `GET /api/v1/log`: the applied-optimization and rollback log, newest first, a page at a
//! time (`before` is the `seq` to continue from, also given in the `Link` header). Each row
//! carries its action's change and inverse. An export (`format=csv` or `format=json`)
//! without `limit` is the whole selection, as a CSV file (change and inverse as JSON text
//! columns) or a JSON array.

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::actions::MAX_LIMIT;
use super::auth::Caller;
use super::error::{ApiError, free_texts, one_of, time};
use super::openapi::Endpoint;
use super::paging::{link_next, page_limit};
use super::routes::read_store;
use super::wire::{self, LogEntryOut};
use crate::domain::{ActionKind, ActionState, Change};
use crate::store::{LogEntry, LogFilter};

/// The log route under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/log",
            "The applied-optimization and rollback log, newest first",
            || web::get().to(log),
        )
        .query::<LogQuery>()
        .answers::<Vec<LogEntryOut>>(200, "A page of the log")
        .answers_raw(200, "text/csv", "format=csv: the whole selection")
        .header("Link", "The next page: <...>; rel=\"next\"")
        .errors(&[400]),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// Rows from this time on: RFC 3339 or epoch milliseconds.
    since: Option<String>,
    pool: Option<String>,
    /// Only actions on this agent (restarts).
    agent: Option<String>,
    /// An action kind: scale, redistribute, restart, adjust_threshold.
    kind: Option<String>,
    /// An action state, e.g. applied, rolled_back.
    status: Option<String>,
    /// Rows older than this `seq` (the next page).
    before: Option<i64>,
    /// Rows in a page, at most 1000 (default 100).
    limit: Option<usize>,
    /// `json` or `csv`: the whole selection at once.
    format: Option<String>,
}

async fn log(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    one_of(
        "kind",
        &query.kind,
        &ActionKind::ALL.map(ActionKind::as_str),
    )?;
    one_of("status", &query.status, &ActionState::names())?;
    one_of("format", &query.format, &["json", "csv"])?;
    free_texts(&[("pool", &query.pool), ("agent", &query.agent)])?;
    let since_ms = query
        .since
        .as_deref()
        .map(|t| time("since", t))
        .transpose()?;
    let csv = query.format.as_deref() == Some("csv");
    // An export (a format named) is the whole selection; a page is at most MAX_LIMIT rows.
    let export = query.format.is_some();
    let limit = match (export, query.limit) {
        (true, None) => usize::MAX >> 1,
        (_, limit) => page_limit(limit, 100, MAX_LIMIT)?,
    };
    let filter = LogFilter {
        since_ms,
        pool: query.pool.clone(),
        agent: query.agent.clone(),
        // Checked by one_of above.
        kind: query.kind.as_deref().and_then(|k| k.parse().ok()),
        status: query.status.as_deref().and_then(|s| s.parse().ok()),
        before_seq: query.before,
        limit,
    };
    let rows = read_store(&state.store, move |store| store.log(&filter)).await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"swarmpilot-log.csv\"",
            ))
            .body(to_csv(&rows)?));
    }
    let mut response = HttpResponse::Ok();
    let filters = [
        ("since", &query.since),
        ("pool", &query.pool),
        ("agent", &query.agent),
        ("kind", &query.kind),
        ("status", &query.status),
    ];
    let last = (rows.len() == limit)
        .then(|| rows.last().map(|r| ("before", r.seq.to_string())))
        .flatten();
    link_next(&mut response, "/api/v1/log", last, limit, &filters);
    Ok(response.json(wire::all::<_, LogEntryOut>(&rows)))
}

/// One CSV line: a log row with its change and inverse as JSON text, since CSV is flat.
#[derive(Serialize)]
struct CsvRow<'a> {
    seq: i64,
    ts_ms: i64,
    time: &'a str,
    action_id: i64,
    kind: &'a str,
    pool: &'a str,
    agent: Option<&'a str>,
    from_state: Option<&'a str>,
    to_state: &'a str,
    reason: &'a str,
    actor: &'a str,
    change: String,
    inverse: String,
}

fn to_csv(rows: &[LogEntry]) -> Result<Vec<u8>, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::internal(format!("cannot write CSV: {e}"));
    let json = |change: &Change| {
        serde_json::to_string(change)
            .map_err(|e| ApiError::internal(format!("cannot write CSV: {e}")))
    };
    for row in rows {
        let line = CsvRow {
            seq: row.seq,
            ts_ms: row.ts_ms,
            time: &row.time,
            action_id: row.action_id,
            kind: row.kind.as_str(),
            pool: &row.pool,
            agent: row.agent.as_deref(),
            from_state: row.from_state.map(ActionState::as_str),
            to_state: row.to_state.as_str(),
            reason: &row.reason,
            actor: &row.actor,
            change: json(&row.change)?,
            // A restart has no inverse: an empty cell.
            inverse: row
                .inverse
                .as_ref()
                .map(json)
                .transpose()?
                .unwrap_or_default(),
        };
        writer.serialize(line).map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("cannot write CSV: {e}")))
}
