//! Task tracking over HTTP: `POST /api/v1/tasks/{task_id}/start` with `{"agent", "pool"?,
//! "queued"?}` and `POST /api/v1/tasks/{task_id}/end` with `{"agent", "success"}` (role
//! operator), and the pool-level task figures `GET /api/v1/pools` shows.
//!
//! A start with `"queued": true` records a task waiting to run; a later start of the same id
//! without it (or with `false`) marks it running. The tracker (`actors::tasks`) turns the
//! tasks into samples every sampling interval.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::ingest::read_body;
use super::openapi::Endpoint;
use super::routes::unavailable;
use crate::actors::fleet::AgentView;
use crate::actors::tasks::{EndTask, StartTask, TrackError};
use crate::domain::{AgentStatus, metric};
use crate::ingest::check_agent;
use crate::ingest::tasks::{Started, TaskError, check_task_id};
use crate::policy::Role;

/// The task routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    const TASK: &str = "The task's id (letters, digits, `-_.:`)";
    vec![
        Endpoint::post(
            "/tasks/{task_id}/start",
            "A task starts (or waits, queued)",
            || web::post().to(start),
        )
        .role(Role::Operator)
        .param("task_id", TASK)
        .body::<StartBody>()
        .answers::<StartReply>(201, "A new task, running or queued")
        .answers::<StartReply>(200, "A queued task now running")
        .errors(&[400, 409, 413, 415, 429]),
        Endpoint::post("/tasks/{task_id}/end", "A task ends", || {
            web::post().to(end)
        })
        .role(Role::Operator)
        .param("task_id", TASK)
        .body::<EndBody>()
        .answers::<EndReply>(200, "The task ended")
        .errors(&[400, 404, 409, 413, 415]),
    ]
}

/// The body of a start (read field by field, so each error names its field).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct StartBody {
    agent: String,
    /// The pool the agent joins if it is new.
    pool: Option<String>,
    /// The task waits to run.
    #[serde(default)]
    queued: bool,
}

/// The body of an end (read field by field, so each error names its field).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct EndBody {
    agent: String,
    success: bool,
}

/// A pool's task figures, from its reporting agents' latest samples.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PoolTasks {
    /// Tasks running, all agents together.
    pub active_tasks: f64,
    /// Tasks waiting, all agents together.
    pub queue_size: f64,
    /// Tasks ended per second, all agents together.
    pub throughput_per_s: f64,
    /// Error rate, percent: the agents' rates weighted by their throughput; `None` when no
    /// task ended in the agents' last intervals.
    pub error_rate: Option<f64>,
    /// Response time, milliseconds, weighted the same way.
    pub response_time_ms: Option<f64>,
}

/// The task figures of a pool's `members` (offline ones left out); `None` when none reports
/// tasks.
pub fn pool_tasks(members: &[&AgentView]) -> Option<PoolTasks> {
    let reporting: Vec<&AgentView> = members
        .iter()
        .copied()
        .filter(|a| a.status != AgentStatus::Offline)
        .filter(|a| a.metrics.contains_key(metric::ACTIVE_TASKS))
        .collect();
    if reporting.is_empty() {
        return None;
    }
    let value = |a: &AgentView, name: &str| a.metrics.get(name).copied().unwrap_or(0.0);
    let sum = |name: &str| reporting.iter().map(|a| value(a, name)).sum::<f64>();
    let weighted = |name: &str| {
        let (total, weight) = reporting
            .iter()
            .filter_map(|a| Some((a.metrics.get(name)?, value(a, metric::THROUGHPUT_PER_S))))
            .fold((0.0, 0.0), |(t, w), (v, tp)| (t + v * tp, w + tp));
        (weight > 0.0).then(|| total / weight)
    };
    Some(PoolTasks {
        active_tasks: sum(metric::ACTIVE_TASKS),
        queue_size: sum(metric::QUEUE_SIZE),
        throughput_per_s: sum(metric::THROUGHPUT_PER_S),
        error_rate: weighted(metric::ERROR_RATE),
        response_time_ms: weighted(metric::RESPONSE_TIME_MS),
    })
}

#[derive(Serialize, JsonSchema)]
struct StartReply {
    task_id: String,
    agent: String,
    state: &'static str,
}

#[derive(Serialize, JsonSchema)]
struct EndReply {
    task_id: String,
    agent: String,
    success: bool,
    duration_ms: i64,
}

async fn start(
    state: web::Data<ApiState>,
    caller: Caller,
    task: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let task = task_id(task.into_inner())?;
    let mut body = object(&read_body(&state, &request, payload).await?)?;
    let agent = agent(&mut body)?;
    let pool = match body.remove("pool") {
        None | Some(Value::Null) => None,
        Some(Value::String(pool)) => {
            if !state.policy.current().policy.pools.contains_key(&pool) {
                return Err(ApiError::bad_request(
                    Some("pool"),
                    format!("no pool {pool:?} in the policy"),
                ));
            }
            Some(pool)
        }
        Some(other) => return Err(wrong_type("pool", "a string", &other)),
    };
    let queued = boolean(&mut body, "queued")?.unwrap_or(false);
    no_other_fields(&body)?;
    let started = state
        .tasks
        .send(StartTask {
            task: task.clone(),
            agent: agent.clone(),
            pool,
            queued,
        })
        .await
        .map_err(unavailable)?
        .map_err(track_error)?;
    let (status, state) = match started {
        Started::Running => (StatusCode::CREATED, "running"),
        Started::Queued => (StatusCode::CREATED, "queued"),
        Started::Begun => (StatusCode::OK, "running"),
    };
    Ok(HttpResponse::build(status).json(StartReply {
        task_id: task,
        agent,
        state,
    }))
}

async fn end(
    state: web::Data<ApiState>,
    caller: Caller,
    task: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let task = task_id(task.into_inner())?;
    let mut body = object(&read_body(&state, &request, payload).await?)?;
    let agent = agent(&mut body)?;
    let success = boolean(&mut body, "success")?
        .ok_or_else(|| ApiError::bad_request(Some("success"), "missing success (true or false)"))?;
    no_other_fields(&body)?;
    let duration_ms = state
        .tasks
        .send(EndTask {
            task: task.clone(),
            agent: agent.clone(),
            success,
        })
        .await
        .map_err(unavailable)?
        .map_err(track_error)?;
    Ok(HttpResponse::Ok().json(EndReply {
        task_id: task,
        agent,
        success,
        duration_ms,
    }))
}

fn task_id(task: String) -> Result<String, ApiError> {
    check_task_id(&task)
        .map_err(|error| ApiError::bad_request(Some("task_id"), error.to_string()))?;
    Ok(task)
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::bad_request(
            Some("body"),
            "the body must be a JSON object, {\"agent\": ...}",
        )),
        Err(e) => Err(ApiError::bad_request(
            Some("body"),
            format!(
                "malformed JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )),
    }
}

fn agent(body: &mut Map<String, Value>) -> Result<String, ApiError> {
    match body.remove("agent") {
        Some(Value::String(agent)) => {
            check_agent(&agent)
                .map_err(|reason| ApiError::bad_request(Some("agent"), reason.to_string()))?;
            Ok(agent)
        }
        None | Some(Value::Null) => Err(ApiError::bad_request(Some("agent"), "missing agent")),
        Some(other) => Err(wrong_type("agent", "a string", &other)),
    }
}

fn boolean(body: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match body.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(name, "true or false", &other)),
    }
}

fn no_other_fields(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.keys().next() {
        None => Ok(()),
        Some(field) => Err(ApiError::bad_request(
            Some(field),
            format!("unknown field {field:?}"),
        )),
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(
        Some(field),
        format!("{field} must be {expected}, not {got}"),
    )
}

fn track_error(error: TrackError) -> ApiError {
    let message = error.to_string();
    let (status, code, field) = match &error {
        TrackError::Task(TaskError::Duplicate { .. }) => {
            (StatusCode::CONFLICT, "task_open", "task_id")
        }
        TrackError::Task(TaskError::WrongAgent { .. }) => {
            (StatusCode::CONFLICT, "wrong_agent", "agent")
        }
        TrackError::Task(TaskError::Unknown { .. }) => {
            (StatusCode::NOT_FOUND, "not_found", "task_id")
        }
        TrackError::Task(TaskError::TooMany { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_open_tasks",
            "agent",
        ),
        TrackError::Refused(_) => (StatusCode::BAD_REQUEST, "agent_refused", "agent"),
        TrackError::Fleet => return ApiError::internal(message),
    };
    ApiError {
        status,
        code,
        message,
        field: Some(field.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, status: AgentStatus, metrics: &[(&str, f64)]) -> AgentView {
        let mut agent = AgentView::blank(id, "p");
        agent.status = status;
        agent.metrics = metrics.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        agent
    }

    #[test]
    fn pool_figures_sum_counts_and_weight_rates_by_throughput() {
        let a = member(
            "a",
            AgentStatus::Active,
            &[
                ("active_tasks", 2.0),
                ("queue_size", 1.0),
                ("throughput_per_s", 3.0),
                ("error_rate", 10.0),
                ("response_time_ms", 100.0),
            ],
        );
        // Idle: its old error rate weighs nothing.
        let b = member(
            "b",
            AgentStatus::Active,
            &[
                ("active_tasks", 1.0),
                ("throughput_per_s", 0.0),
                ("error_rate", 90.0),
            ],
        );
        let c = member(
            "c",
            AgentStatus::Active,
            &[
                ("throughput_per_s", 1.0),
                ("error_rate", 50.0),
                ("active_tasks", 0.0),
                ("response_time_ms", 300.0),
            ],
        );
        let offline = member("d", AgentStatus::Offline, &[("active_tasks", 9.0)]);
        let figures = pool_tasks(&[&a, &b, &c, &offline]).unwrap();
        assert_eq!(
            figures,
            PoolTasks {
                active_tasks: 3.0,
                queue_size: 1.0,
                throughput_per_s: 4.0,
                error_rate: Some(20.0),
                response_time_ms: Some(150.0),
            }
        );
        assert_eq!(
            pool_tasks(&[&member("e", AgentStatus::Active, &[("cpu_percent", 1.0)])]),
            None
        );
    }
}
