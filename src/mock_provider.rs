//! A local mock model provider for the demo's AI phase and the tests: OpenAI-style
//! `POST /v1/chat/completions` that answers after a set latency with a `usage` of
//! `prompt_tokens` and `completion_tokens`, or 429 (`rate_limit_exceeded`, with
//! `Retry-After`) past a rate limit of requests per second for each model, as real providers
//! limit each model separately.
//! `GET`/`POST /admin/limits` read and change the limit, burst and latency while it runs.
//! It binds loopback only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};

use crate::decide::rate::TokenBuckets;
use crate::http_error::{ApiError, json_error};

/// Input tokens every answer reports.
pub const PROMPT_TOKENS: u64 = 800;
/// Output tokens every answer reports.
pub const COMPLETION_TOKENS: u64 = 200;

/// The provider's limits, as `/admin/limits` reads and sets them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Calls a second it answers; past that, 429 (0: no limit).
    pub requests_per_sec: f64,
    /// Calls it answers at once after a quiet spell.
    pub burst: f64,
    /// How long an answer takes, milliseconds.
    pub latency_ms: u64,
}

struct Provider {
    limits: Mutex<Limits>,
    bucket: Mutex<TokenBuckets>,
    epoch: Instant,
}

/// Serves the provider on `127.0.0.1:port` (0: any free port) until the process ends;
/// calls `ready` with the address once it listens.
pub async fn run(port: u16, limits: Limits, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let provider = web::Data::new(Arc::new(Provider {
        limits: Mutex::new(limits),
        bucket: Mutex::new(TokenBuckets::default()),
        epoch: Instant::now(),
    }));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(provider.clone())
            .app_data(web::JsonConfig::default().error_handler(|e, _| json_error(e)))
            .route("/v1/chat/completions", web::post().to(complete))
            .route("/admin/limits", web::get().to(get_limits))
            .route("/admin/limits", web::post().to(set_limits))
    })
    .workers(1)
    .shutdown_timeout(1)
    .bind((Ipv4Addr::LOCALHOST, port))?;
    if let Some(addr) = server.addrs().first() {
        ready(*addr);
    }
    server.run().await
}

async fn complete(
    provider: web::Data<Arc<Provider>>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let model = body["model"].as_str().unwrap_or("mock-small").to_string();
    let limits = *provider
        .limits
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now_ms = provider.epoch.elapsed().as_millis() as i64;
    let taken = provider
        .bucket
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(
            &model,
            now_ms,
            limits.requests_per_sec,
            limits.burst.max(1.0),
        );
    if let Err(wait_ms) = taken {
        let seconds = (wait_ms as f64 / 1000.0).ceil().max(1.0) as u64;
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", seconds.to_string()))
            .json(serde_json::json!({"error": {
                "type": "rate_limit_exceeded",
                "message": format!("Rate limit of {} requests per second reached for {model}.", limits.requests_per_sec),
            }}));
    }
    actix_web::rt::time::sleep(Duration::from_millis(limits.latency_ms)).await;
    HttpResponse::Ok().json(serde_json::json!({
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Done."}}],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }))
}

async fn get_limits(provider: web::Data<Arc<Provider>>) -> HttpResponse {
    let limits = *provider
        .limits
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    HttpResponse::Ok().json(limits)
}

async fn set_limits(
    provider: web::Data<Arc<Provider>>,
    body: web::Json<Limits>,
) -> Result<HttpResponse, ApiError> {
    let limits = body.into_inner();
    if !limits.requests_per_sec.is_finite() || limits.requests_per_sec < 0.0 {
        return Err(ApiError::bad_request(
            Some("requests_per_sec"),
            "requests_per_sec must be 0 (no limit) or more",
        ));
    }
    if !limits.burst.is_finite() || limits.burst < 1.0 {
        return Err(ApiError::bad_request(
            Some("burst"),
            "burst must be 1 or more",
        ));
    }
    if limits.latency_ms > 60_000 {
        return Err(ApiError::bad_request(
            Some("latency_ms"),
            "latency_ms must be at most 60000",
        ));
    }
    tracing::info!(
        message = "Provider limits set.",
        requests_per_sec = limits.requests_per_sec,
        burst = limits.burst,
        latency_ms = limits.latency_ms
    );
    *provider
        .limits
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = limits;
    // A new limit starts from a full bucket.
    *provider
        .bucket
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = TokenBuckets::default();
    Ok(HttpResponse::Ok().json(limits))
}
