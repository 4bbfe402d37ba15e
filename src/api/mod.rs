//! The HTTP control API (actix-web, JSON). Only this module knows wire shapes; it converts
//! to and from domain types and talks to the actors by message.

mod actions;
pub mod admission;
mod agents;
mod alerts;
pub mod auth;
mod chart;
mod fleet_view;
pub use crate::http_error as error;
mod ingest;
mod log;
mod metrics;
mod openapi;
mod otlp;
mod paging;
mod policies;
mod pool_figures;
pub mod readiness;
mod reports;
mod routes;
mod series;
pub mod standby;
pub mod stream;
mod system;
pub use fleet_view::FleetView;
mod tasks;
pub mod tls;
mod ui;
pub mod wire;

pub use metrics::{RouteLatencies, ScrapeCache};

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix::Addr;
use actix_web::{App, HttpServer, web};

use crate::actors::actuator::Actuator;
use crate::actors::alert::Alert;
use crate::actors::fleet::FleetSupervisor;
use crate::actors::policy::PolicyKeeper;
use crate::policy::PolicyHandle;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The registry of agents.
    pub fleet: Addr<FleetSupervisor>,
    /// The alert actor.
    pub alert: Addr<Alert>,
    /// The actuator.
    pub actuator: Addr<Actuator>,
    /// The optimizer, for its recommendations.
    pub optimizer: Addr<crate::actors::optimizer::Optimizer>,
    /// The durable store.
    pub store: Store,
    /// The policy in force.
    pub policy: PolicyHandle,
    /// The policy keeper, for reloads and status.
    pub policy_keeper: Addr<PolicyKeeper>,
    /// The admin bearer token.
    pub admin_token: String,
    /// Tokens configured in policy, resolved once per policy version.
    pub tokens: Arc<Mutex<auth::TokenCache>>,
    /// Each caller's request bucket (`global.requests_per_sec_per_token`).
    pub rates: Arc<Mutex<crate::decide::rate::TokenBuckets>>,
    /// Each caller's requests in flight (`global.max_requests_in_flight_per_token`).
    pub inflight: admission::InFlight,
    /// The notification channels, for their counts.
    pub notifier: crate::notify::Notifier,
    /// The task tracker.
    pub tasks: Addr<crate::actors::tasks::TaskTracker>,
    /// Each Prometheus scrape target's counts, for `GET /metrics`.
    pub scrape: crate::actors::sources::scrape::ScrapeStats,
    /// Failed WebSocket pulls per agent, for `GET /metrics`.
    pub pull_failures: crate::actors::sources::ws_pull::PullFailures,
    /// Pool inputs read with PromQL, for `GET /api/v1/pools` and `GET /metrics`.
    pub pool_inputs: crate::ingest::scrape::promql::PoolInputs,
    /// The controller's clock.
    pub clock: crate::clock::Clock,
    /// Whether actuation stopped because the store refused a write.
    pub halt: crate::actors::actuator::Halt,
    /// The latest readiness probe of the store.
    pub store_probe: readiness::StoreProbe,
    /// The event stream's hub.
    pub events: Addr<crate::actors::events::EventBroker>,
    /// Single-use tickets for browsers opening the stream.
    pub tickets: stream::Tickets,
    /// How long each route took to answer, by route pattern and method.
    pub latencies: RouteLatencies,
    /// How long each optimizer evaluation took (shared with the optimizer).
    pub decisions: Arc<crate::analytics::latency::LatencyHistogram>,
    /// The fleet snapshot the read routes share.
    pub fleet_view: fleet_view::FleetView,
    /// `GET /metrics`' agent lines of the shared snapshot.
    pub scrape_cache: ScrapeCache,
    /// When the controller started, epoch milliseconds.
    pub started_ms: i64,
    /// The health actor, told the heartbeats agents post.
    pub heartbeat: actix::Recipient<crate::actors::messages::Heartbeat>,
}

/// Builds the API server on `listener`, over TLS when `tls` is given; the caller runs
/// (awaits) it.
pub fn serve(
    state: ApiState,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let otlp_series: otlp::OtlpSeries = web::Data::new(Mutex::default());
    let server = HttpServer::new(move || {
        let timed = data.latencies.clone();
        App::new()
            .wrap_fn(move |request, service| {
                use actix_web::dev::Service;
                let started = std::time::Instant::now();
                let method = request.method().clone();
                let answer = service.call(request);
                let timed = timed.clone();
                async move {
                    let response = answer.await?;
                    let route = response.request().match_pattern();
                    timed.observe(route.as_deref(), &method, started.elapsed().as_secs_f64());
                    Ok(response)
                }
            })
            .app_data(data.clone())
            .app_data(otlp_series.clone())
            .app_data(web::JsonConfig::default().error_handler(|e, _| error::json_error(e)))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                error::ApiError::bad_request(None, format!("invalid query: {e}")).into()
            }))
            .configure(routes::configure)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(2);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
