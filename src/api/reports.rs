//! `GET /api/v1/reports/{period}?format=&since=&until=&pool=`: a report on the controller's
//! history (`crate::reports`), as JSON (default), text, CSV or a self-contained HTML page.

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::Deserialize;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, one_of, time};
use super::openapi::Endpoint;
use super::routes::store_error;
use crate::report::{Period, Report};
use crate::reports::{Format, ReportError, ReportRequest};

/// A year, milliseconds: how far ahead a window may end.
const YEAR_MS: i64 = 366 * 24 * 3_600_000;

/// Lets the HTML page style itself and run its table sorting, and nothing else: no request
/// leaves it.
const HTML_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                           script-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
                           form-action 'none'";

/// The report route under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/reports/{period}",
            "A report on the history: summary, key figures, agents, host, alerts, actions, \
             trends, bottlenecks and opportunities",
            || web::get().to(report),
        )
        .param(
            "period",
            "hourly, daily, weekly, monthly or final (since the start)",
        )
        .query::<ReportParams>()
        .answers::<Report>(200, "The report, numbers with their units in their names")
        .answers_raw(200, "text/plain", "format=text")
        .answers_raw(200, "text/csv", "format=csv: one block per table")
        .answers_raw(200, "text/html", "format=html: one page, charts inline")
        .errors(&[400]),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    /// `json` (default), `text`, `csv` or `html`.
    format: Option<String>,
    /// Start of the window: RFC 3339 or epoch milliseconds; default one period before its end.
    since: Option<String>,
    /// End of the window: RFC 3339 or epoch milliseconds; default now.
    until: Option<String>,
    /// Only this pool.
    pool: Option<String>,
}

async fn report(
    state: web::Data<ApiState>,
    _caller: Caller,
    path: web::Path<String>,
    query: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let period: Period = path
        .into_inner()
        .parse()
        .map_err(|e: crate::report::UnknownPeriod| {
            ApiError::bad_request(Some("period"), e.to_string())
        })?;
    let names = Format::ALL.map(Format::as_str);
    one_of("format", &query.format, &names)?;
    let format = match query.format.as_deref() {
        Some(name) => name.parse().unwrap_or(Format::Json),
        None => Format::Json,
    };
    let (now_ms, started_ms) = (state.clock.now_ms(), state.started_ms);
    // From the epoch to a year ahead: anything else is a mistake (and would overflow).
    let bounded = |field: &str, text: Option<&str>| -> Result<Option<i64>, ApiError> {
        let Some(ms) = text.map(|t| time(field, t)).transpose()? else {
            return Ok(None);
        };
        if !(0..=now_ms + YEAR_MS).contains(&ms) {
            return Err(ApiError::bad_request(
                Some(field),
                format!("{ms} is before 1970 or more than a year ahead"),
            ));
        }
        Ok(Some(ms))
    };
    let request = ReportRequest {
        period,
        since_ms: bounded("since", query.since.as_deref())?,
        until_ms: bounded("until", query.until.as_deref())?,
        pool: query.pool,
    };
    let (store, policy) = (state.store.clone(), state.policy.clone());
    let built = web::block(move || {
        crate::reports::build(&store, &policy, &request, now_ms, started_ms)
            .map(|report| crate::reports::render(&report, format))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let body = match built {
        Ok(body) => body,
        Err(ReportError::EmptyWindow) => {
            return Err(ApiError::bad_request(
                Some("since"),
                "`since` must be before `until`".to_string(),
            ));
        }
        Err(ReportError::Store(error)) => return Err(store_error(error)),
        Err(error) => return Err(ApiError::internal(error.to_string())),
    };
    let mut answer = HttpResponse::Ok();
    answer.content_type(format.content_type());
    if format == Format::Html {
        answer.insert_header(("Content-Security-Policy", HTML_POLICY));
    }
    Ok(answer.body(body))
}
