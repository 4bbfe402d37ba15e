//! What a standby controller serves while another leads (controllers sharing a PostgreSQL
//! store): `GET /healthz`; `GET /readyz`, 503 saying it is a standby and where the leader
//! is; and the reads the store answers alone (`/api/v1/system`, `/api/v1/actions`,
//! `/api/v1/actions/{id}`, `/api/v1/log`), behind the same tokens. Everything else, writes
//! first, is 503 `standby` with the leader's address in the message and in the
//! `X-Swarmpilot-Leader` header: the fleet's live state is in the leader's memory only.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::auth::standby_caller;
use super::error::ApiError;
use super::wire::{ActionOut, LogEntryOut};
use crate::policy::{Policy, Role};
use crate::store::{Leader, LogFilter, Store};

/// The header naming the leader's address in a standby's answers.
pub const LEADER_HEADER: &str = "X-Swarmpilot-Leader";

/// What a standby's handlers reach.
#[derive(Clone)]
pub struct StandbyState {
    /// The store, for reads.
    pub store: Store,
    /// The policy it started with (its tokens).
    pub policy: Arc<Policy>,
    /// The admin token of its data directory.
    pub admin_token: String,
    /// Who leads, as last seen.
    pub leader: Arc<Mutex<Option<Leader>>>,
    /// When it started, epoch milliseconds.
    pub started_ms: i64,
}

impl StandbyState {
    fn leader(&self) -> Option<Leader> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The leader's address, or a placeholder while none is known.
    fn leader_address(&self) -> String {
        self.leader()
            .map(|l| l.address)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }

    fn refused(&self, status: actix_web::http::StatusCode, error: ApiError) -> HttpResponse {
        let mut answer = actix_web::ResponseError::error_response(&ApiError { status, ..error });
        if let Ok(value) = self.leader_address().parse() {
            answer.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("x-swarmpilot-leader"),
                value,
            );
        }
        answer
    }
}

/// Starts the standby's HTTP server on `listener`, over TLS when `tls` is given.
pub fn serve(
    listener: TcpListener,
    state: StandbyState,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/api/v1/system", web::get().to(system))
            .route("/api/v1/actions", web::get().to(actions))
            .route("/api/v1/actions/{id}", web::get().to(action))
            .route("/api/v1/log", web::get().to(log))
            .default_service(web::to(elsewhere))
    })
    .workers(1)
    // The process's signals are `serve`'s; a takeover stops this server at once.
    .disable_signals()
    .shutdown_timeout(1);
    Ok(match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
    .run())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<StandbyState>) -> HttpResponse {
    let leader = state.leader_address();
    HttpResponse::ServiceUnavailable()
        .insert_header((LEADER_HEADER, leader.clone()))
        .json(serde_json::json!({
            "status": "standby",
            "reason": format!("standby: the leader is at {leader}"),
            "leader": leader,
        }))
}

/// Every route a standby does not serve.
async fn elsewhere(state: web::Data<StandbyState>, req: HttpRequest) -> HttpResponse {
    let leader = state.leader_address();
    let what = if req.method() == actix_web::http::Method::GET {
        "this controller is a standby and holds no live fleet state"
    } else {
        "this controller is a standby and takes no writes"
    };
    state.refused(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        ApiError {
            status: actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "standby",
            message: format!("{what}: ask the leader at {leader}"),
            field: None,
        },
    )
}

/// The most rows a standby's list answers.
const MOST_ROWS: usize = 1000;

/// Whether the caller is at least a viewer asking for no filter or page but a `limit`
/// (filters and pages are the leader's to answer); the rows to answer, or the refusal.
fn viewer(state: &StandbyState, req: &HttpRequest) -> Result<usize, ApiError> {
    standby_caller(req, &state.admin_token, &state.policy)?.require(Role::Viewer)?;
    let mut limit = 100;
    for pair in req.query_string().split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", value)) => {
                limit = value.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(Some("limit"), "limit is a whole number of rows")
                })?;
            }
            _ => {
                return Err(ApiError {
                    status: actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    code: "standby",
                    message: format!(
                        "this controller is a standby and answers only the newest rows \
                         (limit): ask the leader at {} for filters and pages",
                        state.leader_address()
                    ),
                    field: None,
                });
            }
        }
    }
    Ok(limit.clamp(1, MOST_ROWS))
}

/// `GET /api/v1/system` on a standby.
#[derive(Serialize)]
struct StandbySystem {
    version: &'static str,
    role: &'static str,
    leader: String,
    leader_epoch: Option<i64>,
    store: &'static str,
    started: String,
}

async fn system(state: web::Data<StandbyState>, req: HttpRequest) -> HttpResponse {
    if let Err(error) = viewer(&state, &req) {
        return state.refused(error.status, error);
    }
    HttpResponse::Ok().json(StandbySystem {
        version: env!("CARGO_PKG_VERSION"),
        role: "standby",
        leader: state.leader_address(),
        leader_epoch: state.leader().map(|l| l.epoch),
        store: state.store.engine().as_str(),
        started: crate::clock::rfc3339(state.started_ms),
    })
}

/// Runs a store read on the blocking pool; its error is a 500.
async fn read<T: Send + 'static>(
    state: &StandbyState,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    web::block(move || f(&store))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|error| {
            // The server's message stays in the log, not in the answer.
            tracing::warn!(message = "Standby read failed.", %error);
            ApiError::internal("the store could not be read")
        })
}

async fn actions(state: web::Data<StandbyState>, req: HttpRequest) -> HttpResponse {
    let limit = match viewer(&state, &req) {
        Ok(limit) => limit,
        Err(error) => return state.refused(error.status, error),
    };
    match read(&state, move |store| store.actions(None, limit)).await {
        Ok(actions) => {
            HttpResponse::Ok().json(actions.iter().map(ActionOut::from).collect::<Vec<_>>())
        }
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

async fn action(
    state: web::Data<StandbyState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> HttpResponse {
    if let Err(error) = viewer(&state, &req) {
        return state.refused(error.status, error);
    }
    let id = id.into_inner();
    match read(&state, move |store| store.action(id)).await {
        Ok(Some(action)) => HttpResponse::Ok().json(ActionOut::from(&action)),
        Ok(None) => actix_web::ResponseError::error_response(&ApiError::not_found(format!(
            "no action {id}"
        ))),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

async fn log(state: web::Data<StandbyState>, req: HttpRequest) -> HttpResponse {
    let limit = match viewer(&state, &req) {
        Ok(limit) => limit,
        Err(error) => return state.refused(error.status, error),
    };
    let filter = LogFilter {
        limit,
        ..LogFilter::default()
    };
    match read(&state, move |store| store.log(&filter)).await {
        Ok(rows) => HttpResponse::Ok().json(rows.iter().map(LogEntryOut::from).collect::<Vec<_>>()),
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}
