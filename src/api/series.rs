//! `GET /api/v1/agents/{id}/series/{metric}?since=&until=&step=`: one agent's metric over
//! time, from the per-minute rollups in the store (re-aggregated to `step` seconds), with the
//! raw recent points of the agent's ring buffer beside them; `format=png` draws the rollups.

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Caller;
use super::chart::{SeriesChart, series_png};
use super::error::{ApiError, one_of, time};
use super::openapi::Endpoint;
use super::routes::{read_store, unavailable};
use crate::actors::fleet::GetAgentSeries;
use crate::store::{SeriesPoint, SeriesQuery};

/// The window read when `since` is not given, milliseconds.
const DEFAULT_WINDOW_MS: i64 = 3_600_000;
/// Most points one reply holds; a longer window needs a larger step.
pub const MAX_POINTS: i64 = 10_000;

/// The series route under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/agents/{id}/series/{metric}",
            "One agent's metric over time",
            || web::get().to(series),
        )
        .param("id", "The agent's id")
        .param("metric", "The metric's name, e.g. cpu_percent")
        .query::<SeriesParams>()
        .answers::<SeriesView>(200, "Rollup points and the recent raw points")
        .answers_raw(200, "image/png", "format=png: a chart of the rollup points")
        .errors(&[400, 404]),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SeriesParams {
    /// From when: RFC 3339 or epoch milliseconds; default an hour ago.
    since: Option<String>,
    /// Until when: RFC 3339 or epoch milliseconds; default now.
    until: Option<String>,
    /// Seconds per point, a positive multiple of 60 (default 60).
    step: Option<String>,
    /// `json` (default) or `png`.
    format: Option<String>,
}

/// One rollup point on the wire.
#[derive(Serialize, JsonSchema)]
struct PointView {
    #[serde(flatten)]
    point: SeriesPoint,
    /// RFC 3339 form of `ts_ms`.
    time: String,
}

#[derive(Serialize, JsonSchema)]
struct SeriesView {
    agent: String,
    metric: String,
    since_ms: i64,
    until_ms: i64,
    step_secs: i64,
    /// Rollup points, oldest first.
    points: Vec<PointView>,
    /// The raw points still in the agent's ring buffer since `since_ms`: `[epoch ms, value]`.
    recent: Vec<(i64, f64)>,
}

async fn series(
    state: web::Data<ApiState>,
    _caller: Caller,
    path: web::Path<(String, String)>,
    params: web::Query<SeriesParams>,
) -> Result<HttpResponse, ApiError> {
    let (agent, metric) = path.into_inner();
    crate::ingest::check_metric(&metric)
        .map_err(|r| ApiError::bad_request(Some("metric"), r.to_string()))?;
    one_of("format", &params.format, &["json", "png"])?;
    let now = state.clock.now_ms();
    let query = read_params(&params, now, agent.clone(), metric.clone())?;
    let recent = state
        .fleet
        .send(GetAgentSeries {
            agent: agent.clone(),
            metric: metric.clone(),
        })
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no agent {agent}")))?;
    let read = query.clone();
    let points = read_store(&state.store, move |store| store.read_series(&read)).await?;
    if params.format.as_deref() == Some("png") {
        let title = format!("{agent} {metric}");
        // Drawing takes milliseconds: off the HTTP worker's event loop.
        let png = web::block(move || {
            series_png(&SeriesChart {
                title: &title,
                points: &points,
                since_ms: query.since_ms,
                until_ms: query.until_ms,
                step_ms: query.step_ms,
            })
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(HttpResponse::Ok().content_type("image/png").body(png));
    }
    Ok(HttpResponse::Ok().json(SeriesView {
        agent,
        metric,
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        step_secs: query.step_ms / 1000,
        points: points
            .into_iter()
            .map(|point| PointView {
                time: crate::clock::rfc3339(point.ts_ms),
                point,
            })
            .collect(),
        recent: recent
            .into_iter()
            .filter(|&(ts, _)| ts >= query.since_ms && ts < query.until_ms)
            .collect(),
    }))
}

/// Reads and checks the query: `since` (default an hour before `now`), `until` (default
/// `now`), `step` in seconds, a positive multiple of 60 (default 60).
fn read_params(
    params: &SeriesParams,
    now: i64,
    agent: String,
    metric: String,
) -> Result<SeriesQuery, ApiError> {
    let step_secs = match params.step.as_deref() {
        None => 60,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0 && s % 60 == 0)
            .ok_or_else(|| {
                ApiError::bad_request(
                    Some("step"),
                    format!("{text:?} is not a positive multiple of 60 seconds"),
                )
            })?,
    };
    let until_ms = match params.until.as_deref() {
        None => now,
        Some(text) => time("until", text)?,
    };
    let since_ms = match params.since.as_deref() {
        None => until_ms - DEFAULT_WINDOW_MS,
        Some(text) => time("since", text)?,
    };
    if since_ms > until_ms {
        return Err(ApiError::bad_request(
            Some("since"),
            "since is after until".to_string(),
        ));
    }
    let step_ms = step_secs.saturating_mul(1000);
    let points = (until_ms - since_ms) / step_ms;
    if points > MAX_POINTS {
        return Err(ApiError::bad_request(
            Some("step"),
            format!(
                "{points} points of {step_secs} s between since and until; at most {MAX_POINTS}: \
                 use a larger step or a later since"
            ),
        ));
    }
    Ok(SeriesQuery {
        agent,
        metric,
        // The minute holding `since` is included: rollups are whole minutes.
        since_ms: crate::analytics::rollup::minute_of(since_ms),
        until_ms,
        step_ms,
        limit: MAX_POINTS as usize + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::rollup::MINUTE_MS;

    fn check(since: Option<&str>, step: Option<&str>) -> Result<(i64, i64, i64), String> {
        let params = SeriesParams {
            since: since.map(str::to_string),
            until: None,
            step: step.map(str::to_string),
            format: None,
        };
        read_params(&params, 10 * 3_600_000, "a".into(), "m".into())
            .map(|q| (q.since_ms, q.until_ms, q.step_ms))
            .map_err(|e| e.field.unwrap_or_default())
    }

    #[test]
    fn since_and_step_are_checked() {
        assert_eq!(
            check(None, None),
            Ok((9 * 3_600_000, 10 * 3_600_000, 60_000))
        );
        assert_eq!(check(Some("90000"), Some("120")).unwrap().0, MINUTE_MS);
        assert_eq!(
            check(Some("1970-01-01T00:02:00Z"), Some("300")).unwrap(),
            (2 * MINUTE_MS, 10 * 3_600_000, 300_000)
        );
        for bad in ["90", "0", "-60", "1m", ""] {
            assert_eq!(check(None, Some(bad)), Err("step".into()), "{bad}");
        }
        assert_eq!(check(Some("yesterday"), None), Err("since".into()));
        assert_eq!(check(Some("99999999999"), None), Err("since".into()));
        // Ten hours by the minute is 600 points; from 1970 it is far too many.
        assert!(check(Some("0"), None).is_ok());
        assert_eq!(check(Some("0"), Some("1")), Err("step".into()));
    }
}
