//! Action endpoints: listing and reading actions, requesting one by hand, rolling one back,
//! and the log of every transition.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::routes::{read_store, unavailable};
use crate::actors::actuator::{ActuatorError, Propose, RollBack};
use crate::actors::fleet::GetFleet;
use crate::clock;
use crate::domain::{Change, Proposal};
use crate::policy::{Role, threshold};
use crate::store::LogFilter;

/// Most rows one list call returns.
const MAX_LIMIT: usize = 1000;

/// Mounts the action routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/actions", web::get().to(actions))
        .route("/actions", web::post().to(request))
        .route("/actions/{id}", web::get().to(action))
        .route("/actions/{id}/rollback", web::post().to(rollback))
        .route("/log", web::get().to(log));
}

/// The change an operator asks for; the starting point is filled in from what is in force.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ChangeRequest {
    Scale { to: usize },
    Restart { agent: String },
    AdjustThreshold { rule: String, to: f64 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    pool: String,
    change: ChangeRequest,
    #[serde(default)]
    reason: Option<String>,
}

fn actuator_error(error: ActuatorError) -> ApiError {
    let (status, code, field) = match &error {
        ActuatorError::UnknownPool(_) => (StatusCode::BAD_REQUEST, "unknown_pool", Some("pool")),
        ActuatorError::NoSuchAction(_) => (StatusCode::NOT_FOUND, "not_found", None),
        ActuatorError::Busy { .. }
        | ActuatorError::Stale { .. }
        | ActuatorError::StaleThreshold { .. }
        | ActuatorError::NotRollbackable { .. } => (StatusCode::CONFLICT, "conflict", None),
        ActuatorError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down", None),
        ActuatorError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
    };
    ApiError {
        status,
        code,
        message: error.to_string(),
        field: field.map(str::to_string),
    }
}

async fn request(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<ActionRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let request = body.into_inner();
    let current = state.policy.current();
    let pool = current.policy.pool(&request.pool).ok_or_else(|| {
        ApiError::bad_request(Some("pool"), format!("no pool named {:?}", request.pool))
    })?;
    let snapshot = state.fleet.send(GetFleet).await.map_err(unavailable)?;
    let members: Vec<&str> = snapshot
        .agents
        .iter()
        .filter(|a| a.pool == request.pool)
        .map(|a| a.id.as_str())
        .collect();
    let change = match request.change {
        ChangeRequest::Scale { to } => {
            let max = current.policy.max_agents(pool);
            if !(pool.min_agents..=max).contains(&to) {
                let message = format!(
                    "must be between min_agents {} and max_agents {max}",
                    pool.min_agents
                );
                return Err(ApiError::bad_request(Some("change.to"), message));
            }
            Change::Scale {
                from: members.len(),
                to,
            }
        }
        ChangeRequest::Restart { agent } => {
            if !members.contains(&agent.as_str()) {
                let message = format!("no agent {agent:?} in pool {:?}", request.pool);
                return Err(ApiError::bad_request(Some("change.agent"), message));
            }
            Change::Restart { agent }
        }
        ChangeRequest::AdjustThreshold { rule, to } => {
            if !to.is_finite() {
                return Err(ApiError::bad_request(
                    Some("change.to"),
                    "must be a finite number",
                ));
            }
            let from = threshold(&current.policy, &rule).ok_or_else(|| {
                ApiError::bad_request(Some("change.rule"), format!("no rule named {rule:?}"))
            })?;
            Change::AdjustThreshold { rule, from, to }
        }
    };
    let proposal = Proposal {
        pool: request.pool,
        change,
        reason: request
            .reason
            .unwrap_or_else(|| format!("requested by {}", caller.name)),
        evidence: serde_json::json!({ "requested_by": caller.name }),
    };
    let action = state
        .actuator
        .send(Propose {
            proposal,
            actor: caller.name,
        })
        .await
        .map_err(unavailable)?
        .map_err(actuator_error)?;
    Ok(HttpResponse::Accepted().json(action))
}

async fn rollback(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Approver)?;
    let id = parse_id(&id)?;
    let action = state
        .actuator
        .send(RollBack {
            id,
            actor: caller.name,
        })
        .await
        .map_err(unavailable)?
        .map_err(actuator_error)?;
    Ok(HttpResponse::Ok().json(action))
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(Some("id"), format!("{id:?} is not an action id")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsQuery {
    status: Option<String>,
    limit: Option<usize>,
}

async fn actions(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<ActionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100).min(MAX_LIMIT);
    let status = query.status.clone();
    let actions = read_store(&state.store, move |store| {
        store.actions(status.as_deref(), limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(actions))
}

async fn action(
    state: web::Data<ApiState>,
    _caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let action = read_store(&state.store, move |store| store.action(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no action {id}")))?;
    Ok(HttpResponse::Ok().json(action))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    since: Option<String>,
    pool: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

async fn log(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let since_ms = match &query.since {
        Some(text) => Some(clock::parse_time(text).ok_or_else(|| {
            ApiError::bad_request(
                Some("since"),
                format!("{text:?} is neither RFC 3339 nor epoch milliseconds"),
            )
        })?),
        None => None,
    };
    let filter = LogFilter {
        since_ms,
        pool: query.pool,
        kind: query.kind,
        limit: query.limit.unwrap_or(100).min(MAX_LIMIT),
    };
    let rows = read_store(&state.store, move |store| store.log(&filter)).await?;
    Ok(HttpResponse::Ok().json(rows))
}
