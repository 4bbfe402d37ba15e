//! `GET /api/v1/agents`: the fleet as a paged list of summaries; `GET /api/v1/agents/{id}`:
//! one agent in full; `POST /api/v1/agents/{id}/heartbeat`: an agent says it is alive.

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Endpoint;
use super::paging::{link_next, page_limit};
use super::routes::unavailable;
use super::wire::{AgentOut, AgentSummaryOut};
use crate::actors::fleet::GetAgentSeries;
use crate::actors::messages::Heartbeat;
use crate::domain::AgentStatus;
use crate::policy::Role;

/// Agents in a page when the query names no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Most agents in one page.
const MAX_LIMIT: usize = 5000;

/// The agents' routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/agents",
            "A page of agents, in id order, summarised",
            || web::get().to(agents),
        )
        .query::<AgentsQuery>()
        .answers::<Vec<AgentSummaryOut>>(200, "The page")
        .header("X-Total-Count", "How many agents the filters take")
        .header("Link", "The next page: <...>; rel=\"next\"")
        .errors(&[400]),
        Endpoint::get("/agents/{id}", "One agent in full", || web::get().to(agent))
            .param("id", "The agent's id")
            .answers::<AgentDetail>(200, "The agent")
            .errors(&[404]),
        Endpoint::post(
            "/agents/{id}/heartbeat",
            "An agent says it is alive",
            || web::post().to(heartbeat),
        )
        .role(Role::Operator)
        .param("id", "The agent's id (it joined by its samples)")
        .answers::<Seen>(
            200,
            "Recorded: the agent is not offline while heartbeats come",
        )
        .errors(&[404]),
    ]
}

/// What a heartbeat answers.
#[derive(Serialize, JsonSchema)]
struct Seen<'a> {
    agent: &'a str,
    pool: &'a str,
    /// When it was recorded, RFC 3339.
    seen: String,
}

/// Records a heartbeat of a known agent: the health actor counts it as proof of life, like
/// a sample, without a reading.
async fn heartbeat(
    state: web::Data<ApiState>,
    _caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut snapshot = state.fleet_view.get(&state.fleet).await?;
    if !snapshot.agents.iter().any(|a| a.id == id) {
        // It may have joined since the shared snapshot was taken.
        state.fleet_view.invalidate();
        snapshot = state.fleet_view.get(&state.fleet).await?;
    }
    let agent = snapshot.agents.iter().find(|a| a.id == id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no agent {id}: an agent joins by its first samples (POST /api/v1/samples)"
        ))
    })?;
    let now_ms = state.clock.now_ms();
    state.heartbeat.do_send(Heartbeat {
        agent: id.clone(),
        ts_ms: now_ms,
    });
    Ok(HttpResponse::Ok().json(Seen {
        agent: &agent.id,
        pool: &agent.pool,
        seen: crate::clock::rfc3339(now_ms),
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AgentsQuery {
    pool: Option<String>,
    /// starting, active, idle, busy, error or offline.
    status: Option<String>,
    /// The id of the last agent of the previous page.
    after: Option<String>,
    /// Agents in a page, at most 5000 (default 100).
    limit: Option<usize>,
}

/// The status named in a query, or a 400 naming the field.
fn status(name: &str) -> Result<AgentStatus, ApiError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        ApiError::bad_request(
            Some("status"),
            format!("unknown status {name:?}: one of starting, active, idle, busy, error, offline"),
        )
    })
}

/// A page of agents in id order (numbers in ids sort as numbers), with `X-Total-Count` (the
/// agents the filters take) and a `Link` to the next page when there is one.
async fn agents(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<AgentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let wanted = query.status.as_deref().map(status).transpose()?;
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let snapshot = state.fleet_view.get(&state.fleet).await?;
    let taken: Vec<_> = snapshot
        .views()
        .filter(|a| query.pool.as_deref().is_none_or(|p| p == a.pool))
        .filter(|a| wanted.is_none_or(|s| s == a.status))
        .collect();
    // The snapshot is in id order; a page starts after the cursor's place in it.
    let start = match &query.after {
        None => 0,
        Some(after) => {
            let key = crate::actors::fleet::natural_key(after);
            taken.partition_point(|a| crate::actors::fleet::natural_key(&a.id) <= key)
        }
    };
    let page: Vec<AgentSummaryOut> = taken[start..]
        .iter()
        .take(limit)
        .map(|a| AgentSummaryOut::from(*a))
        .collect();
    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", taken.len().to_string()));
    let more = start + page.len() < taken.len();
    let cursor = more
        .then(|| page.last().map(|a| ("after", a.id.to_string())))
        .flatten();
    let filters = [("pool", &query.pool), ("status", &query.status)];
    link_next(&mut response, "/api/v1/agents", cursor, limit, &filters);
    Ok(response.json(page))
}

#[derive(Serialize, JsonSchema)]
struct AgentDetail<'a> {
    #[serde(flatten)]
    agent: AgentOut<'a>,
    /// Recent CPU values, oldest first: `[epoch ms, value]`.
    cpu_series: Vec<(i64, f64)>,
}

async fn agent(
    state: web::Data<ApiState>,
    _caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let snapshot = state.fleet_view.get(&state.fleet).await?;
    let agent = snapshot
        .views()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
    let series = state
        .fleet
        .send(GetAgentSeries {
            agent: id,
            metric: crate::domain::metric::CPU_PERCENT.into(),
        })
        .await
        .map_err(unavailable)?
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(AgentDetail {
        agent: AgentOut::from(agent),
        cpu_series: series,
    }))
}
