//! The push endpoints: `POST /api/v1/samples` (the JSON batch of `ingest::push`), and what
//! every push path shares: reading the body within the policy's limit, and the fleet round
//! trip that admits samples (`api::otlp` serves `POST /v1/metrics` with them).

use std::collections::HashMap;

use actix_web::body::BodyStream;
use actix_web::dev::Decompress;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, web};
use schemars::JsonSchema;
use serde::Serialize;

use super::ApiState;
use super::admission::timed_out;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Endpoint;
use super::routes::unavailable;
use crate::actors::messages::{AdmitSamples, Refused};
use crate::domain::Sample;
use crate::ingest::{Rejection, push};
use crate::policy::Role;

/// The push route under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post("/samples", "Push a batch of samples", || {
            web::post().to(samples)
        })
        .role(Role::Operator)
        .body::<Vec<PushedSample>>()
        .answers::<Admitted>(200, "Every sample was accepted")
        .answers::<Admitted>(400, "Some were refused (each named); the others were kept")
        .errors(&[400, 408, 413, 415]),
    ]
}

/// One pushed sample (parsed item by item, so each refusal names its index and field).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PushedSample {
    /// The agent's id; unknown agents join a pool (`labels.pool`, else the default).
    agent: String,
    /// The metric's name, e.g. `cpu_percent`.
    metric: String,
    /// A finite number.
    value: f64,
    /// When it was measured, epoch milliseconds; default now.
    timestamp: Option<i64>,
    /// Labels; `pool` names the pool of a new agent.
    labels: Option<std::collections::BTreeMap<String, String>>,
}

/// What a push answers: how many samples were kept, how many refused and the first of those
/// (policy `ingest.max_rejections_listed`) one by one.
#[derive(Debug, Serialize, JsonSchema)]
struct Admitted {
    accepted: usize,
    rejected_count: usize,
    rejected: Vec<Rejection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorPart>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ErrorPart {
    code: &'static str,
    message: String,
    field: String,
}

/// Reads the whole body, decoded as its `Content-Encoding` says (identity, gzip or deflate;
/// another gets 415), refusing one larger than the policy's `ingest.max_body_bytes`, sent or
/// decoded, with 413.
pub(super) async fn read_body(
    state: &ApiState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, ApiError> {
    let limit = state.policy.current().policy.ingest.max_body_bytes;
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("the body is larger than {limit} bytes (policy ingest.max_body_bytes)"),
        field: Some("body".into()),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let encoding = match request.headers().get(header::CONTENT_ENCODING) {
        None => ContentEncoding::Identity,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|e| {
                matches!(
                    e,
                    ContentEncoding::Identity | ContentEncoding::Gzip | ContentEncoding::Deflate
                )
            })
            .ok_or_else(|| ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: format!(
                    "Content-Encoding {value:?} is not supported: send identity, gzip or deflate"
                ),
                field: Some("Content-Encoding".into()),
            })?,
    };
    let decoded = Decompress::new(payload.into_inner(), encoding);
    let within =
        std::time::Duration::from_secs(state.policy.current().policy.ingest.body_timeout_secs);
    let read = actix_web::body::to_bytes_limited(BodyStream::new(decoded), limit);
    match tokio::time::timeout(within, read).await {
        // A client that holds a connection open without sending its body loses it.
        Err(_) => Err(ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: format!(
                "the body did not arrive within {} s (policy ingest.body_timeout_secs)",
                within.as_secs()
            ),
            field: Some("body".into()),
        }),
        Ok(Err(_)) => Err(too_large()),
        Ok(Ok(Err(error))) => Err(timed_out(&error).unwrap_or_else(|| {
            ApiError::bad_request(Some("body"), format!("cannot read the body: {error}"))
        })),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
    }
}

/// 413 for a push with more items than `ingest.max_items_per_request` (`message` says so).
pub(super) fn too_many_items(message: String) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_many_items",
        message,
        field: Some("body".into()),
    }
}

async fn samples(
    state: web::Data<ApiState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let body = read_body(&state, &request, payload).await?;
    let limits = push::Limits::of(&state.policy.current().policy.ingest);
    let now = state.clock.now_ms();
    // Parsing a large batch takes milliseconds: off the HTTP worker's event loop.
    let batch = web::block(move || push::parse(&body, now, limits))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| match &e {
            push::BodyError::Malformed { .. } => ApiError::bad_request(Some("body"), e.to_string()),
            push::BodyError::NotArray => ApiError::bad_request(Some("body"), e.to_string()),
            push::BodyError::TooMany { .. } => too_many_items(e.to_string()),
        })?;
    admit(&state, batch, &caller).await
}

/// Hands checked samples to the fleet, which lets agents it has not met join a pool; answers
/// the agents it refused.
pub(super) async fn send_to_fleet(
    state: &ApiState,
    samples: Vec<Sample>,
    pools: HashMap<String, String>,
    by: &Caller,
) -> Result<Vec<Refused>, ApiError> {
    let refused = state
        .fleet
        .send(AdmitSamples {
            samples,
            pools,
            by: Some(by.name.clone()),
        })
        .await
        .map_err(unavailable)?;
    // New agents and readings: the next read sees them.
    state.fleet_view.invalidate();
    Ok(refused)
}

/// Hands a checked batch to the fleet and answers what was kept and what was refused.
pub(super) async fn admit(
    state: &ApiState,
    batch: push::Batch,
    by: &Caller,
) -> Result<HttpResponse, ApiError> {
    let push::Batch {
        samples,
        indices,
        pools,
        mut rejected,
    } = batch;
    let refused = send_to_fleet(state, samples, pools, by).await?;
    let mut accepted = indices.len();
    for refusal in refused {
        accepted -= refusal.positions.len();
        for &at in &refusal.positions {
            rejected.push(Rejection {
                index: indices[at],
                field: "agent".into(),
                reason: refusal.reason.clone(),
            });
        }
    }
    let rejected_count = rejected.total();
    let rejected = rejected.into_listed();
    let Some(first) = rejected.first() else {
        return Ok(HttpResponse::Ok().json(Admitted {
            accepted,
            rejected_count,
            rejected,
            error: None,
        }));
    };
    // Part of the batch was bad: 400 naming the first field at fault, and the count kept, so
    // the client knows not to send the good samples again.
    let error = ErrorPart {
        code: "rejected_samples",
        message: format!(
            "{rejected_count} of {} samples rejected ({}: {}); the other {accepted} were accepted",
            accepted + rejected_count,
            first.field,
            first.reason
        ),
        field: if first.field.is_empty() {
            format!("[{}]", first.index)
        } else {
            format!("[{}].{}", first.index, first.field)
        },
    };
    Ok(HttpResponse::BadRequest().json(Admitted {
        accepted,
        rejected_count,
        rejected,
        error: Some(error),
    }))
}
