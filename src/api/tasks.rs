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
use crate::actors::tasks::{EndTask, StartTask, TrackError};
use crate::domain::genai::ErrorKind;
use crate::ingest::check_agent;
use crate::ingest::tasks::{Started, TaskError, TaskUsage, check_task_id};
use crate::policy::Role;

/// Most tokens one task may report, input or output (a billion: far past any context window).
const MAX_TOKENS: f64 = 1e9;
/// Longest model or provider name, bytes.
const MAX_MODEL_LEN: usize = 200;

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
    /// Why it failed: `rate_limited` (the model provider's 429), `timeout` or `other`; only
    /// with `success: false`.
    error_kind: Option<ErrorKind>,
    /// Model input tokens the task used.
    tokens_in: Option<f64>,
    /// Model output tokens the task used.
    tokens_out: Option<f64>,
    /// The model it used, priced by the policy's `[genai]` table.
    model: Option<String>,
    /// The model's provider (`openai`, `anthropic`, ...).
    provider: Option<String>,
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
    let used = task_usage(&mut body, success)?;
    no_other_fields(&body)?;
    let duration_ms = state
        .tasks
        .send(EndTask {
            task: task.clone(),
            agent: agent.clone(),
            success,
            used,
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

/// The optional model usage and error kind of an end.
fn task_usage(body: &mut Map<String, Value>, success: bool) -> Result<TaskUsage, ApiError> {
    let error_kind = match body.remove("error_kind") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(ErrorKind::parse(&name).ok_or_else(|| {
            ApiError::bad_request(
                Some("error_kind"),
                format!("{name:?} is not rate_limited, timeout or other"),
            )
        })?),
        Some(other) => return Err(wrong_type("error_kind", "a string", &other)),
    };
    if success && error_kind.is_some() {
        return Err(ApiError::bad_request(
            Some("error_kind"),
            "error_kind is for failed tasks: send it with success false",
        ));
    }
    let tokens = |body: &mut Map<String, Value>, name: &str| match body.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(count) if (0.0..=MAX_TOKENS).contains(&count) => Ok(Some(count)),
            _ => Err(ApiError::bad_request(
                Some(name),
                format!("{name} must be a count of tokens from 0 to {MAX_TOKENS}, not {n}"),
            )),
        },
        Some(other) => Err(wrong_type(name, "a number", &other)),
    };
    let name = |body: &mut Map<String, Value>, field: &str| match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() && text.len() <= MAX_MODEL_LEN => {
            Ok(Some(text))
        }
        Some(Value::String(_)) => Err(ApiError::bad_request(
            Some(field),
            format!("{field} must be 1 to {MAX_MODEL_LEN} bytes"),
        )),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    };
    Ok(TaskUsage {
        error_kind,
        tokens_in: tokens(body, "tokens_in")?,
        tokens_out: tokens(body, "tokens_out")?,
        model: name(body, "model")?,
        provider: name(body, "provider")?,
    })
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
