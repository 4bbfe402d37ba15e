//! The bundled worker agent, `swarmpilot agent`: a real process that burns the CPU time each
//! task asks for and reports what it did.
//!
//! Endpoints: `POST /work` (`{"cpu_ms": 20, "fail": false}`), `GET /metrics` (Prometheus
//! text format; with `Upgrade: websocket`, the WebSocket metrics protocol of `ws.rs`),
//! `GET /healthz`, and two fault injections for demos and tests: `POST /chaos/leak`
//! (`{"mb_per_s": 4}`) makes the worker leak memory, as a buggy agent would, and `POST
//! /chaos/slow` (`{"factor": 3}`) makes every task take that many times as long, as a
//! worker whose backend degraded would (it waits; it does not burn more CPU).
//!
//! As an AI agent (`model.rs`): with `--provider URL` each task also calls that model
//! provider, `GET`/`POST /concurrency` read and set how many tasks run at once, and
//! `GET`/`POST /model` which model the calls name.

pub mod metrics;
pub mod model;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, guard, web};
use serde::{Deserialize, Serialize};

use crate::http_error::{ApiError, json_error};
use metrics::WorkerMetrics;

/// The most CPU time one task may ask for, milliseconds.
pub const MAX_TASK_CPU_MS: f64 = 10_000.0;
/// The most memory an injected leak holds, megabytes.
pub const MAX_LEAK_MB: usize = 1024;

/// A fault to inject: leak this many megabytes a second.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakRequest {
    /// Megabytes allocated (and kept) each second, 1 to 64.
    pub mb_per_s: usize,
}

/// A fault to inject: every task takes `factor` times as long.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowRequest {
    /// 1 (back to normal) to 100.
    pub factor: f64,
}

/// How the worker is run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Pool name reported in metrics.
    pub pool: String,
    /// Agent id reported in metrics.
    pub id: String,
    /// The model provider each task calls, if any (its base URL).
    pub provider: Option<String>,
    /// The model the calls name.
    pub model: String,
    /// Tasks run at once at the start.
    pub concurrency: u32,
}

/// A new concurrency limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyRequest {
    /// Tasks at once, 1 to `model::MAX_CONCURRENCY`.
    pub limit: u32,
}

/// A model to call from now on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    /// The model's name, as the provider knows it.
    pub model: String,
    /// The provider's name (informational: the worker calls the provider it was given).
    #[serde(default)]
    pub provider: Option<String>,
}

/// One task's request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkRequest {
    /// CPU time to burn, milliseconds.
    pub cpu_ms: f64,
    /// Fail the task after burning (to exercise error paths).
    #[serde(default)]
    pub fail: bool,
}

/// One task's reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkReply {
    /// The agent that did the work.
    pub agent: String,
    /// CPU time burnt, milliseconds.
    pub cpu_ms: f64,
    /// Wall time from request to reply, milliseconds.
    pub latency_ms: f64,
}

struct Worker {
    config: WorkerConfig,
    metrics: WorkerMetrics,
    leaking: std::sync::atomic::AtomicBool,
    /// The slow-down factor's bits (`f64::to_bits`); 1.0 when healthy.
    slow: std::sync::atomic::AtomicU64,
    started: Instant,
    concurrency: model::Concurrency,
    model: Option<model::ModelClient>,
}

/// Runs the worker until SIGINT or SIGTERM.
pub async fn run(config: WorkerConfig) -> std::io::Result<()> {
    let worker = web::Data::new(Arc::new(Worker {
        config: config.clone(),
        metrics: WorkerMetrics::default(),
        leaking: std::sync::atomic::AtomicBool::new(false),
        slow: std::sync::atomic::AtomicU64::new(1.0f64.to_bits()),
        started: Instant::now(),
        concurrency: model::Concurrency::new(config.concurrency.clamp(1, model::MAX_CONCURRENCY)),
        model: config
            .provider
            .as_deref()
            .map(|url| model::ModelClient::new(url, &config.model)),
    }));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(worker.clone())
            .app_data(web::JsonConfig::default().error_handler(|e, _| json_error(e)))
            .route("/work", web::post().to(work))
            .service(
                web::resource("/metrics")
                    .route(
                        web::get()
                            .guard(guard::fn_guard(ws::wants_websocket))
                            .to(ws::metrics_socket),
                    )
                    .route(web::get().to(metrics_text)),
            )
            .route("/concurrency", web::get().to(concurrency))
            .route("/concurrency", web::post().to(set_concurrency))
            .route("/model", web::get().to(model_now))
            .route("/model", web::post().to(set_model))
            .route("/chaos/leak", web::post().to(leak))
            .route("/chaos/slow", web::post().to(slow))
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().body("ok\n") }),
            )
    })
    .workers(1)
    .shutdown_timeout(2)
    .bind(config.listen)?;
    tracing::info!(message = "Worker listening.", addr = %config.listen, pool = %config.pool);
    server.run().await
}

async fn work(
    worker: web::Data<Arc<Worker>>,
    body: web::Json<WorkRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    if !(0.0..=MAX_TASK_CPU_MS).contains(&request.cpu_ms) {
        return Err(ApiError::bad_request(
            Some("cpu_ms"),
            format!("cpu_ms must be between 0 and {MAX_TASK_CPU_MS}"),
        ));
    }
    let started = Instant::now();
    // Past the concurrency limit a task waits its turn; the wait is part of its latency.
    let _turn = worker.concurrency.acquire().await;
    worker.metrics.begin();
    let cpu_ms = request.cpu_ms;
    let burnt = web::block(move || burn_cpu(Duration::from_secs_f64(cpu_ms / 1000.0))).await;
    let factor = f64::from_bits(worker.slow.load(std::sync::atomic::Ordering::Relaxed));
    if factor > 1.0 {
        actix_web::rt::time::sleep(started.elapsed().mul_f64(factor - 1.0)).await;
    }
    let called = match &worker.model {
        Some(client) => client.call().await,
        None => model::CallOutcome::Done {
            tokens_in: 0,
            tokens_out: 0,
        },
    };
    let latency = started.elapsed().as_secs_f64();
    let success =
        burnt.is_ok() && !request.fail && matches!(called, model::CallOutcome::Done { .. });
    worker.metrics.end(latency, success);
    if !success {
        use actix_web::http::StatusCode;
        let (status, code, message) = match called {
            model::CallOutcome::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "the model provider refused the call for its rate limit",
            ),
            model::CallOutcome::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "model_timeout",
                "the model provider did not answer in time",
            ),
            model::CallOutcome::Failed => (
                StatusCode::BAD_GATEWAY,
                "model_failed",
                "the model call failed",
            ),
            model::CallOutcome::Done { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "task_failed",
                "the task failed as asked",
            ),
        };
        return Err(ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        });
    }
    Ok(HttpResponse::Ok().json(WorkReply {
        agent: worker.config.id.clone(),
        cpu_ms,
        latency_ms: latency * 1000.0,
    }))
}

async fn leak(
    worker: web::Data<Arc<Worker>>,
    body: web::Json<LeakRequest>,
) -> Result<HttpResponse, ApiError> {
    let mb_per_s = body.mb_per_s;
    if !(1..=64).contains(&mb_per_s) {
        return Err(ApiError::bad_request(
            Some("mb_per_s"),
            "mb_per_s must be between 1 and 64",
        ));
    }
    if worker
        .leaking
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        return Ok(
            HttpResponse::Ok().json(serde_json::json!({ "leaking": true, "started": false }))
        );
    }
    tracing::warn!(message = "Leaking memory as asked.", mb_per_s);
    std::thread::spawn(move || {
        let mut held: Vec<Vec<u8>> = Vec::new();
        while held.len() < MAX_LEAK_MB {
            for _ in 0..mb_per_s {
                // Touch every page so the memory is resident, not just reserved.
                held.push(vec![0xA5; 1 << 20]);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        // Hold it until the process ends.
        loop {
            std::thread::park();
        }
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({ "leaking": true, "started": true })))
}

async fn slow(
    worker: web::Data<Arc<Worker>>,
    body: web::Json<SlowRequest>,
) -> Result<HttpResponse, ApiError> {
    let factor = body.factor;
    if !(1.0..=100.0).contains(&factor) {
        return Err(ApiError::bad_request(
            Some("factor"),
            "factor must be between 1 and 100",
        ));
    }
    tracing::warn!(message = "Slowing every task as asked.", factor);
    worker
        .slow
        .store(factor.to_bits(), std::sync::atomic::Ordering::Relaxed);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "factor": factor })))
}

async fn metrics_text(worker: web::Data<Arc<Worker>>) -> HttpResponse {
    let mut text = worker
        .metrics
        .render(&worker.config.pool, &worker.config.id);
    let labels = metrics::labels(&worker.config.pool, &worker.config.id);
    if let Some(client) = &worker.model {
        client.render(&labels, &mut text);
    }
    let limit = worker.concurrency.limit();
    text.push_str("# HELP swarmpilot_agent_concurrency_limit Tasks run at once, at most.\n");
    text.push_str("# TYPE swarmpilot_agent_concurrency_limit gauge\n");
    text.push_str(&format!(
        "swarmpilot_agent_concurrency_limit{{{labels}}} {limit}\n"
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}

async fn concurrency(worker: web::Data<Arc<Worker>>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "limit": worker.concurrency.limit(),
        "in_flight": worker.metrics.in_flight(),
    }))
}

async fn set_concurrency(
    worker: web::Data<Arc<Worker>>,
    body: web::Json<ConcurrencyRequest>,
) -> Result<HttpResponse, ApiError> {
    let limit = body.limit;
    if !(1..=model::MAX_CONCURRENCY).contains(&limit) {
        return Err(ApiError::bad_request(
            Some("limit"),
            format!("limit must be between 1 and {}", model::MAX_CONCURRENCY),
        ));
    }
    tracing::info!(message = "Concurrency set.", limit);
    worker.concurrency.set(limit);
    Ok(concurrency(worker).await)
}

async fn model_now(worker: web::Data<Arc<Worker>>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "model": worker.model.as_ref().map(|m| m.model()),
    }))
}

async fn set_model(
    worker: web::Data<Arc<Worker>>,
    body: web::Json<ModelRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(client) = &worker.model else {
        return Err(ApiError::bad_request(
            Some("model"),
            "this worker calls no model provider (start it with --provider)",
        ));
    };
    let name = body.model.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::bad_request(
            Some("model"),
            "the model must be a name of 1 to 200 bytes",
        ));
    }
    tracing::info!(message = "Model set.", model = %name, provider = ?body.provider);
    client.set_model(name);
    Ok(model_now(worker).await)
}

/// Spins on this thread until it has used `amount` of CPU time.
pub fn burn_cpu(amount: Duration) {
    let start = thread_cpu_time();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while thread_cpu_time().saturating_sub(start) < amount {
        for _ in 0..1000 {
            x = x.rotate_left(5) ^ x.wrapping_mul(31);
        }
        std::hint::black_box(x);
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burns_at_least_the_cpu_time_asked() {
        let before = thread_cpu_time();
        burn_cpu(Duration::from_millis(30));
        let used = thread_cpu_time() - before;
        assert!(used >= Duration::from_millis(30), "{used:?}");
    }
}
