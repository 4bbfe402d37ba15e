//! `POST /v1/metrics`: OTLP/HTTP metrics, at the server's root as OTLP exporters expect
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/metrics`). The body is an
//! `ExportMetricsServiceRequest` in protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), possibly gzip-compressed; `ingest::otlp` maps it to samples.
//!
//! The reply follows OTLP/HTTP: 200 with an `ExportMetricsServiceResponse` in the request's
//! encoding, carrying `partial_success` (the count refused and why) when some data points
//! were refused; the others are kept. Errors (a body that is not a request, 400; too large,
//! 413; another media type, 415; auth) have this API's JSON error shape.

use std::sync::{Mutex, PoisonError};

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::ingest::{read_body, send_to_fleet, too_many_items};
use super::openapi::Endpoint;
use crate::ingest::Rejection;
use crate::ingest::otlp::{self, Clock, Encoding, Mapped, SeriesMemory};
use crate::policy::Role;

/// The previous point of each cumulative OTLP series, shared by the HTTP workers.
pub type OtlpSeries = web::Data<Mutex<SeriesMemory>>;

/// `POST /v1/metrics`, at the root.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post("/v1/metrics", "Push OTLP/HTTP metrics", || {
            web::post().to(metrics)
        })
        .role(Role::Operator)
        .raw_body("application/x-protobuf")
        .raw_body("application/json")
        .answers_raw(
            200,
            "application/x-protobuf",
            "ExportMetricsServiceResponse, \
            with the points refused in partial_success",
        )
        .answers_raw(200, "application/json", "The same in OTLP JSON")
        .errors(&[400, 408, 413, 415]),
    ]
}

async fn metrics(
    state: web::Data<ApiState>,
    series: OtlpSeries,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let encoding = encoding_of(&request)?;
    let body = read_body(&state, &request, payload).await?;
    let current = state.policy.current();
    let (max_future_secs, max_items) = {
        let ingest = &current.policy.ingest;
        (ingest.max_future_secs, ingest.max_items_per_request)
    };
    let clock = Clock {
        now_ms: state.clock.now_ms(),
        max_future_secs,
    };
    // Decoding a large request takes milliseconds: off the HTTP worker's event loop.
    let mapped = web::block(move || {
        let request = otlp::decode(&body, encoding, max_items)?;
        let mut series = series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut mapped = otlp::map(&request, clock, &mut series);
        let genai = &current.policy.genai;
        let used = otlp::genai::samples(&request, clock, &mut series, genai);
        mapped.samples.extend(used);
        Ok::<_, otlp::DecodeError>(mapped)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| match e {
        otlp::DecodeError::Size(otlp::SizeError::TooMany { .. }) => too_many_items(e.to_string()),
        e => ApiError::bad_request(Some("body"), e.to_string()),
    })?;
    let Mapped {
        samples,
        pools,
        kept,
        mut rejected,
        n_points,
    } = mapped;
    for refusal in send_to_fleet(&state, samples, pools, &caller).await? {
        let Some((field, points)) = kept.get(&refusal.agent) else {
            continue;
        };
        rejected.extend(points.iter().map(|&index| Rejection {
            index,
            field: field.clone(),
            reason: refusal.reason.clone(),
        }));
    }
    rejected.sort_by_key(|r| r.index);
    if let Some(first) = rejected.first() {
        tracing::info!(
            message = "OTLP data points rejected.",
            rejected = rejected.len(),
            points = n_points,
            field = %first.field,
            reason = %first.reason,
        );
    }
    Ok(HttpResponse::Ok()
        .content_type(match encoding {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        })
        .body(otlp::encode_response(encoding, &rejected, n_points)))
}

/// The encoding the `Content-Type` names; 415 for any other.
fn encoding_of(request: &HttpRequest) -> Result<Encoding, ApiError> {
    let content_type = request.content_type();
    if content_type.eq_ignore_ascii_case("application/x-protobuf") {
        Ok(Encoding::Protobuf)
    } else if content_type.eq_ignore_ascii_case("application/json") {
        Ok(Encoding::Json)
    } else {
        Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!(
                "Content-Type {content_type:?} is not OTLP/HTTP: send application/x-protobuf or \
                 application/json"
            ),
            field: Some("Content-Type".into()),
        })
    }
}
