//! Action endpoints: listing and reading actions, requesting one by hand, approving or
//! rejecting one, rolling one back, and pausing automation.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::Deserialize;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, free_texts, one_of, optional_json};
use super::openapi::Endpoint;
use super::paging::{link_next, page_limit};
use super::routes::{read_store, unavailable};
use super::wire::{self, ActionOut, AutomationOut};
use crate::actors::actuator::{
    ActuatorError, Decide, GetActivity, GetModels, GetWeights, Propose, RollBack, SetPaused,
};
use crate::actors::fleet::GetFleet;
use crate::domain::evidence::{Evidence, RequestedEvidence};
use crate::domain::{ActionState, Change, Proposal};
use crate::policy::{Role, threshold};

/// Most rows one list call returns.
pub(super) const MAX_LIMIT: usize = 1000;

/// The action routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    const ID: &str = "The action's id";
    vec![
        Endpoint::get("/actions", "Actions, newest first", || {
            web::get().to(actions)
        })
        .query::<ActionsQuery>()
        .answers::<Vec<ActionOut>>(200, "The actions")
        .errors(&[400]),
        Endpoint::post("/actions", "Ask for an action by hand", || {
            web::post().to(request)
        })
        .role(Role::Operator)
        .body::<ActionRequest>()
        .answers::<ActionOut>(202, "Proposed: gated, then applied or waiting for approval")
        .errors(&[400, 409, 503]),
        Endpoint::get("/actions/{id}", "One action", || web::get().to(action))
            .param("id", ID)
            .answers::<ActionOut>(200, "The action")
            .errors(&[400, 404]),
        Endpoint::post("/actions/{id}/approve", "Approve a waiting action", || {
            web::post().to(approve)
        })
        .role(Role::Approver)
        .param("id", ID)
        .optional_body::<DecisionBody>()
        .answers::<ActionOut>(200, "The action after the approval")
        .errors(&[400, 404, 409, 503]),
        Endpoint::post("/actions/{id}/reject", "Reject a waiting action", || {
            web::post().to(reject)
        })
        .role(Role::Approver)
        .param("id", ID)
        .optional_body::<DecisionBody>()
        .answers::<ActionOut>(200, "The rejected action")
        .errors(&[400, 404, 409, 503]),
        Endpoint::post(
            "/actions/{id}/rollback",
            "Roll an applied action back",
            || web::post().to(rollback),
        )
        .role(Role::Approver)
        .param("id", ID)
        .answers::<ActionOut>(200, "The action, rolled back")
        .errors(&[400, 404, 409, 503]),
        Endpoint::get(
            "/automation",
            "Whether automation runs, is paused or halted",
            || web::get().to(automation),
        )
        .answers::<AutomationOut>(200, "Automation's state"),
        Endpoint::post("/automation/pause", "Pause automation", || {
            web::post().to(pause)
        })
        .role(Role::Admin)
        .answers::<AutomationOut>(200, "Paused")
        .errors(&[409, 503]),
        Endpoint::post("/automation/resume", "Resume automation", || {
            web::post().to(resume)
        })
        .role(Role::Admin)
        .answers::<AutomationOut>(200, "Resumed")
        .errors(&[409, 503]),
    ]
}

/// The change an operator asks for; the starting point is filled in from what is in force.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ChangeRequest {
    Scale { to: usize },
    Restart { agent: String },
    AdjustThreshold { rule: String, to: f64 },
    Redistribute { weights: BTreeMap<String, f64> },
    AdjustConcurrency { to: u32 },
    SwitchModel { agent: String, to: String },
}

#[derive(Debug, Deserialize, JsonSchema)]
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
        ActuatorError::ObserveOnly(_) => (StatusCode::CONFLICT, "observe_only", Some("pool")),
        ActuatorError::NoSuchAction(_) => (StatusCode::NOT_FOUND, "not_found", None),
        ActuatorError::Busy { .. }
        | ActuatorError::Stale { .. }
        | ActuatorError::SizeUnknown(_)
        | ActuatorError::StaleThreshold { .. }
        | ActuatorError::StaleWeights { .. }
        | ActuatorError::StaleConcurrency { .. }
        | ActuatorError::StaleModel { .. }
        | ActuatorError::NotRollbackable { .. }
        | ActuatorError::NotPending { .. }
        | ActuatorError::Held(_)
        | ActuatorError::Retry(_)
        | ActuatorError::Paused => (StatusCode::CONFLICT, "conflict", None),
        ActuatorError::NotManaged { .. } => (StatusCode::CONFLICT, "not_managed", Some("agent")),
        ActuatorError::Halted(_) => (StatusCode::SERVICE_UNAVAILABLE, "halted", None),
        ActuatorError::Expired(_) => (StatusCode::CONFLICT, "expired", None),
        ActuatorError::AlreadyApproved { .. } => (
            StatusCode::CONFLICT,
            "already_approved",
            Some("Authorization"),
        ),
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
    free_texts(&[("reason", &request.reason)])?;
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
            // A remote driver's pool is as large as the driver says (its agents may report
            // nothing to the controller); a local one is its members.
            let activity = state
                .actuator
                .send(GetActivity)
                .await
                .map_err(unavailable)?;
            let size = activity.get(&request.pool).and_then(|a| a.driver_size);
            Change::Scale {
                from: size.unwrap_or(members.len()),
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
        ChangeRequest::SwitchModel { agent, to } => {
            if !members.contains(&agent.as_str()) {
                let message = format!("no agent {agent:?} in pool {:?}", request.pool);
                return Err(ApiError::bad_request(Some("change.agent"), message));
            }
            let Some(own) = pool.model.as_ref() else {
                let message = format!("pool {:?} names no model in the policy", request.pool);
                return Err(ApiError::bad_request(Some("change.type"), message));
            };
            if !pool
                .equivalent_models
                .iter()
                .chain([own])
                .any(|m| m.name == to)
            {
                let message = format!(
                    "{to:?} is neither pool {:?}'s model nor one of its equivalent_models",
                    request.pool
                );
                return Err(ApiError::bad_request(Some("change.to"), message));
            }
            let models = state.actuator.send(GetModels).await.map_err(unavailable)?;
            let from = models
                .get(&request.pool)
                .and_then(|m| m.get(&agent))
                .cloned()
                .unwrap_or_else(|| own.name.clone());
            if from == to {
                let message = format!("agent {agent:?} already calls {to:?}");
                return Err(ApiError::bad_request(Some("change.to"), message));
            }
            Change::SwitchModel { agent, from, to }
        }
        ChangeRequest::Redistribute { weights } => {
            redistribution(&state, &request.pool, &members, weights).await?
        }
        ChangeRequest::AdjustConcurrency { to } => {
            let Some(bounds) = pool.concurrency.as_ref() else {
                let message = format!(
                    "pool {:?} has no [pools.{}.concurrency] in the policy",
                    request.pool, request.pool
                );
                return Err(ApiError::bad_request(Some("change.type"), message));
            };
            if !(bounds.min..=bounds.max).contains(&to) {
                let message = format!(
                    "must be between concurrency.min {} and max {}",
                    bounds.min, bounds.max
                );
                return Err(ApiError::bad_request(Some("change.to"), message));
            }
            let activity = state
                .actuator
                .send(GetActivity)
                .await
                .map_err(unavailable)?;
            let set = activity.get(&request.pool).and_then(|a| a.concurrency);
            Change::AdjustConcurrency {
                from: set.unwrap_or(bounds.max),
                to,
            }
        }
    };
    let pool = request.pool.clone();
    let proposal = Proposal {
        pool: request.pool,
        change: change.clone(),
        reason: request
            .reason
            .unwrap_or_else(|| format!("requested by {}", caller.name)),
        evidence: Evidence::Requested(RequestedEvidence {
            requested_by: caller.name.clone(),
        }),
        confidence: 1.0,
        expected_effect: match &change {
            Change::Scale { from, to } => format!("pool {pool} from {from} to {to} agents"),
            Change::Restart { agent } => format!("agent {agent} starts again"),
            Change::Redistribute { to, .. } => {
                format!("the load of pool {pool} follows {} new weights", to.len())
            }
            Change::AdjustThreshold { rule, from, to } => {
                format!("rule {rule} fires above {to} instead of {from}")
            }
            Change::AdjustConcurrency { from, to } => {
                format!("each agent of pool {pool} runs {to} tasks at once instead of {from}")
            }
            Change::SwitchModel { agent, from, to } => {
                format!("agent {agent} calls {to} instead of {from}")
            }
        },
    };
    let action = state
        .actuator
        .send(Propose {
            proposal,
            approver: caller.role >= Role::Approver,
            actor: caller.name,
        })
        .await
        .map_err(unavailable)?
        .map_err(actuator_error)?;
    Ok(HttpResponse::Accepted().json(ActionOut::from(&action)))
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
    Ok(HttpResponse::Ok().json(ActionOut::from(&action)))
}

/// The change of weights asked for: every agent named must be in the pool; agents left
/// out keep their weight.
async fn redistribution(
    state: &ApiState,
    pool: &str,
    members: &[&str],
    weights: BTreeMap<String, f64>,
) -> Result<Change, ApiError> {
    for (agent, weight) in &weights {
        let field = format!("change.weights.{agent}");
        if !members.contains(&agent.as_str()) {
            let message = format!("no agent {agent:?} in pool {pool:?}");
            return Err(ApiError::bad_request(Some(&field), message));
        }
        if !weight.is_finite() || *weight < 0.0 {
            return Err(ApiError::bad_request(Some(&field), "must be a number >= 0"));
        }
    }
    let all = state.actuator.send(GetWeights).await.map_err(unavailable)?;
    let now = all.get(pool).cloned().unwrap_or_default();
    let from: BTreeMap<String, f64> = members
        .iter()
        .map(|agent| (agent.to_string(), now.get(*agent).copied().unwrap_or(1.0)))
        .collect();
    let mut to = from.clone();
    to.extend(weights);
    if to.values().sum::<f64>() <= 0.0 {
        return Err(ApiError::bad_request(
            Some("change.weights"),
            "at least one agent must keep a weight above 0",
        ));
    }
    Ok(Change::Redistribute { from, to })
}

/// What an approver may add to a decision.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
}

async fn decide(
    state: web::Data<ApiState>,
    caller: Caller,
    id: &str,
    body: web::Bytes,
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Approver)?;
    let id = parse_id(id)?;
    let comment = optional_json::<DecisionBody>(&body)?.and_then(|b| b.comment);
    free_texts(&[("comment", &comment)])?;
    let action = state
        .actuator
        .send(Decide {
            id,
            by: caller.name,
            approve,
            comment,
        })
        .await
        .map_err(unavailable)?
        .map_err(actuator_error)?;
    Ok(HttpResponse::Ok().json(ActionOut::from(&action)))
}

async fn approve(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, &id, body, true).await
}

async fn reject(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, &id, body, false).await
}

async fn automation(state: web::Data<ApiState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let paused = read_store(&state.store, |store| store.paused()).await?;
    let dry_run = state.policy.current().policy.automation.dry_run;
    let halted = state.halt.get();
    Ok(HttpResponse::Ok()
        .json(AutomationOut::new(paused.as_ref(), Some(dry_run)).with_halt(halted.as_ref())))
}

async fn set_paused(
    state: web::Data<ApiState>,
    caller: Caller,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let by = caller.name.clone();
    let pause = state
        .actuator
        .send(SetPaused {
            paused,
            by: caller.name,
        })
        .await
        .map_err(unavailable)?
        .map_err(actuator_error)?;
    let body = match &pause {
        Some(pause) => AutomationOut::new(Some(pause), None),
        None => AutomationOut::resumed(&by),
    };
    Ok(HttpResponse::Ok().json(body))
}

async fn pause(state: web::Data<ApiState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    set_paused(state, caller, true).await
}

async fn resume(state: web::Data<ApiState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    set_paused(state, caller, false).await
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(Some("id"), format!("{id:?} is not an action id")))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionsQuery {
    /// Only actions in this state, e.g. pending_approval.
    status: Option<String>,
    /// Only actions older than this id (the next page).
    before: Option<i64>,
    /// Actions in a page, at most 1000 (default 100).
    limit: Option<usize>,
}

async fn actions(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<ActionsQuery>,
) -> Result<HttpResponse, ApiError> {
    one_of("status", &query.status, &ActionState::names())?;
    let limit = page_limit(query.limit, 100, MAX_LIMIT)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<ActionState>)
        .transpose()
        .map_err(|e| ApiError::bad_request(Some("status"), e.to_string()))?;
    let before = query.before;
    let actions = read_store(&state.store, move |store| {
        store.actions_before(status, before, limit)
    })
    .await?;
    let mut response = HttpResponse::Ok();
    let last = (actions.len() == limit)
        .then(|| actions.last().map(|a| ("before", a.id.to_string())))
        .flatten();
    link_next(
        &mut response,
        "/api/v1/actions",
        last,
        limit,
        &[("status", &query.status)],
    );
    Ok(response.json(wire::all::<_, ActionOut>(&actions)))
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
    Ok(HttpResponse::Ok().json(ActionOut::from(&action)))
}
