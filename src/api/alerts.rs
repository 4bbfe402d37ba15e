//! Alert endpoints: the alerts (filtered by state, agent, pool and level), acknowledging
//! one, and silences (`GET|POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`).

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, free_text, free_texts, one_of, time};
use super::openapi::Endpoint;
use super::paging::{link_next, page_limit};
use super::routes::{read_store, unavailable};
use super::wire::{self, AlertHistoryOut, AlertOut};
use crate::actors::alert::{AckAlert, PageAlerts, SilencesChanged};
use crate::clock;
use crate::decide::alerts::AlertFilter;
use crate::notify::{Matcher, Silence};
use crate::policy::Role;

/// The alert and silence routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/alerts",
            "Alerts pending, firing and recently resolved",
            || web::get().to(alerts),
        )
        .query::<AlertQuery>()
        .answers::<Vec<AlertOut>>(200, "A page of alerts, oldest first")
        .header("Link", "The next page: <...>; rel=\"next\"")
        .errors(&[400]),
        Endpoint::get(
            "/alerts/history",
            "Every alert state change, newest first",
            || web::get().to(history),
        )
        .query::<HistoryQuery>()
        .answers::<Vec<AlertHistoryOut>>(200, "A page of the history")
        .header("Link", "The next page: <...>; rel=\"next\"")
        .errors(&[400]),
        Endpoint::post("/alerts/{id}/ack", "Acknowledge an alert", || {
            web::post().to(ack)
        })
        .role(Role::Operator)
        .param("id", "The alert's id")
        .answers::<AlertOut>(200, "The acknowledged alert")
        .errors(&[400, 404]),
        Endpoint::get(
            "/silences",
            "Silences, in force, pending and expired",
            || web::get().to(silences),
        )
        .answers::<Vec<SilenceView>>(200, "The silences"),
        Endpoint::post("/silences", "Silence the alerts that match", || {
            web::post().to(create_silence)
        })
        .role(Role::Operator)
        .body::<SilenceRequest>()
        .answers::<SilenceView>(201, "The new silence")
        .errors(&[400]),
        Endpoint::delete("/silences/{id}", "Expire a silence now", || {
            web::delete().to(delete_silence)
        })
        .role(Role::Operator)
        .param("id", "The silence's id")
        .answers::<Expired>(200, "Expired")
        .errors(&[400, 404]),
    ]
}

/// A silence that was expired.
#[derive(Serialize, JsonSchema)]
struct Expired {
    id: i64,
    /// Always `expired`.
    state: &'static str,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// pending, firing or resolved.
    state: Option<String>,
    agent: Option<String>,
    pool: Option<String>,
    /// info, warning, critical or emergency.
    level: Option<String>,
    /// Only alerts with a higher id than this (the next page).
    after: Option<u64>,
    /// Alerts in a page, at most 1000 (default 500).
    limit: Option<usize>,
}

/// Alerts in a page of `GET /api/v1/alerts` when the query names no `limit`.
const ALERTS_PAGE: usize = 500;

async fn alerts(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    one_of("state", &query.state, &["pending", "firing", "resolved"])?;
    one_of(
        "level",
        &query.level,
        &["info", "warning", "critical", "emergency"],
    )?;
    let limit = page_limit(query.limit, ALERTS_PAGE, MAX_PAGE)?;
    // Both were checked against their names above; read as their serde names.
    fn named<'de, T: serde::Deserialize<'de>>(value: &'de Option<String>) -> Option<T> {
        use serde::de::IntoDeserializer;
        let name: &str = value.as_deref()?;
        T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
    }
    let filter = AlertFilter {
        state: named(&query.state),
        level: named(&query.level),
        agent: query.agent.clone(),
        pool: query.pool.clone(),
        after: query.after,
    };
    let (page, more) = state
        .alert
        .send(PageAlerts { filter, limit })
        .await
        .map_err(unavailable)?;
    let mut response = HttpResponse::Ok();
    let cursor = more
        .then(|| page.last().map(|a| ("after", a.id.to_string())))
        .flatten();
    let filters = [
        ("state", &query.state),
        ("agent", &query.agent),
        ("pool", &query.pool),
        ("level", &query.level),
    ];
    link_next(&mut response, "/api/v1/alerts", cursor, limit, &filters);
    Ok(response.json(wire::all::<_, AlertOut>(&page)))
}

async fn ack(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(Some("id"), format!("{id:?} is not an alert id")))?;
    let alert = state
        .alert
        .send(AckAlert {
            id,
            by: caller.name,
        })
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(HttpResponse::Ok().json(AlertOut::from(&alert)))
}

/// A silence as people post it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    matchers: Vec<Matcher>,
    #[serde(default)]
    starts_at: Option<String>,
    ends_at: String,
    comment: String,
}

/// A silence with its state, as the API shows it.
#[derive(Serialize, JsonSchema)]
struct SilenceView {
    #[serde(flatten)]
    silence: Silence,
    state: &'static str,
    starts_at: String,
    ends_at: String,
}

fn view(silence: Silence, now_ms: i64) -> SilenceView {
    SilenceView {
        state: silence.state(now_ms),
        starts_at: clock::rfc3339(silence.starts_ms),
        ends_at: clock::rfc3339(silence.ends_ms),
        silence,
    }
}

async fn silences(state: web::Data<ApiState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let all = read_store(&state.store, |store| store.silences()).await?;
    let now = state.clock.now_ms();
    let views: Vec<SilenceView> = all.into_iter().map(|s| view(s, now)).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn create_silence(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<SilenceRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let request = body.into_inner();
    if request.matchers.is_empty() {
        return Err(ApiError::bad_request(
            Some("matchers"),
            "a silence needs at least one matcher",
        ));
    }
    for (index, matcher) in request.matchers.iter().enumerate() {
        matcher.validate().map_err(|error| {
            ApiError::bad_request(Some(&format!("matchers[{index}]")), error.to_string())
        })?;
    }
    if request.comment.trim().is_empty() {
        return Err(ApiError::bad_request(
            Some("comment"),
            "say why the alerts are silenced",
        ));
    }
    free_text("comment", &request.comment)?;
    let now = state.clock.now_ms();
    let starts_ms = match &request.starts_at {
        Some(text) => time("starts_at", text)?,
        None => now,
    };
    let ends_ms = time("ends_at", &request.ends_at)?;
    if ends_ms <= starts_ms.max(now) {
        return Err(ApiError::bad_request(
            Some("ends_at"),
            "must be later than starts_at and now",
        ));
    }
    let silence = Silence {
        id: 0,
        matchers: request.matchers,
        starts_ms,
        ends_ms,
        comment: request.comment,
        created_by: caller.name,
        created_ms: now,
    };
    let stored = read_store(&state.store, move |store| store.insert_silence(silence)).await?;
    state.alert.do_send(SilencesChanged);
    Ok(HttpResponse::Created().json(view(stored, now)))
}

async fn delete_silence(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(Some("id"), format!("{id:?} is not a silence id")))?;
    let now = state.clock.now_ms();
    let found = read_store(&state.store, move |store| store.expire_silence(id, now)).await?;
    if !found {
        return Err(ApiError::not_found(format!("no silence {id}")));
    }
    state.alert.do_send(SilencesChanged);
    Ok(HttpResponse::Ok().json(Expired {
        id,
        state: "expired",
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    rule: Option<String>,
    agent: Option<String>,
    pool: Option<String>,
    /// Rows older than this `seq` (the next page).
    before: Option<i64>,
    /// Rows in a page, at most 1000.
    limit: Option<usize>,
}

/// Most rows one page of the alerts or of their history holds.
const MAX_PAGE: usize = 1000;

/// Every alert state change on record, newest first, a page at a time (`before` is the `seq`
/// to continue from, also in the `Link` header).
async fn history(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit, 100, MAX_PAGE)?;
    let filters = [
        ("rule", &query.rule),
        ("agent", &query.agent),
        ("pool", &query.pool),
    ];
    free_texts(&filters)?;
    let filter = crate::store::AlertHistoryFilter {
        rule: query.rule.clone(),
        agent: query.agent.clone(),
        pool: query.pool.clone(),
        before_seq: query.before,
        limit,
    };
    let rows = read_store(&state.store, move |store| store.alert_history(&filter)).await?;
    let mut response = HttpResponse::Ok();
    let last = (rows.len() == limit)
        .then(|| rows.last().map(|r| ("before", r.seq.to_string())))
        .flatten();
    link_next(
        &mut response,
        "/api/v1/alerts/history",
        last,
        limit,
        &filters,
    );
    Ok(response.json(wire::all::<_, AlertHistoryOut>(&rows)))
}
