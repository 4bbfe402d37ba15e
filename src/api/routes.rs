//! Route handlers, one per resource.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::Serialize;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Endpoint;
use super::wire::{self, RecommendationOut};
use crate::actors::actuator::{GetActivity, GetWeights};
use crate::actors::fleet::AgentView;
use crate::domain::AgentStatus;

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    super::openapi::mount(cfg, &root_endpoints());
    cfg.configure(super::ui::configure)
        .service(
            web::scope("/api/v1").configure(|cfg| super::openapi::mount(cfg, &api_endpoints())),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::not_found("no such endpoint"))
        }));
}

/// The API's OpenAPI document: every route below.
pub fn document() -> serde_json::Value {
    super::openapi::document(&[("", root_endpoints()), ("/api/v1", api_endpoints())])
}

/// The routes at the root: probes, Prometheus metrics and OTLP ingestion.
fn root_endpoints() -> Vec<Endpoint> {
    let mut table = vec![
        Endpoint::get("/healthz", "The process answers", || web::get().to(healthz))
            .open()
            .answers::<Status>(200, "Alive"),
        Endpoint::get("/readyz", "Ready to act", || web::get().to(readyz))
            .open()
            .answers::<Status>(200, "Ready")
            .answers::<Status>(503, "Actuation has stopped, with the reason"),
        Endpoint::get(
            "/metrics",
            "The controller's metrics for Prometheus",
            || web::get().to(super::metrics::metrics),
        )
        .open()
        .answers_raw(200, "text/plain", "Prometheus text exposition format 0.0.4"),
    ];
    table.extend(super::otlp::endpoints());
    table
}

/// The routes under `/api/v1`.
fn api_endpoints() -> Vec<Endpoint> {
    let mut table = vec![
        Endpoint::get("/openapi.json", "This document", || {
            web::get().to(super::openapi::serve)
        })
        .open()
        .answers_raw(200, "application/json", "OpenAPI 3.1"),
        Endpoint::get(
            "/pools",
            "Each pool: bounds, size, load and weights",
            || web::get().to(pools),
        )
        .answers::<Vec<PoolView>>(200, "The pools"),
        Endpoint::get(
            "/recommendations",
            "What the optimizer would do now",
            || web::get().to(recommendations),
        )
        .answers::<Vec<RecommendationOut>>(200, "The recommendations"),
        Endpoint::get(
            "/notifications",
            "Each notification channel's counts",
            || web::get().to(notifications),
        )
        .answers::<BTreeMap<String, crate::notify::ChannelStats>>(200, "By channel"),
    ];
    for part in [
        super::agents::endpoints,
        super::series::endpoints,
        super::ingest::endpoints,
        super::tasks::endpoints,
        super::actions::endpoints,
        super::log::endpoints,
        super::alerts::endpoints,
        super::policies::endpoints,
        super::stream::endpoints,
        super::system::endpoints,
        super::reports::endpoints,
    ] {
        table.extend(part());
    }
    table
}

/// What the probes answer.
#[derive(Serialize, JsonSchema)]
struct Status {
    /// `ok`, or `not_ready`.
    status: &'static str,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Since when, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        reason: None,
        since: None,
    })
}

pub(super) fn unavailable(error: actix::MailboxError) -> ApiError {
    ApiError::internal(format!("controller unavailable: {error}"))
}

/// Ready unless actuation stopped because the store refused a write, or the store does not
/// take a write now (503, with why).
async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    if let Some(halted) = state.halt.get() {
        return HttpResponse::ServiceUnavailable().json(Status {
            status: "not_ready",
            reason: Some(halted.reason),
            since: Some(crate::clock::rfc3339(halted.since_ms)),
        });
    }
    match state.store_probe.check(&state.store).await {
        Ok(()) => healthz().await,
        Err(reason) => HttpResponse::ServiceUnavailable().json(Status {
            status: "not_ready",
            reason: Some(reason),
            since: None,
        }),
    }
}

pub(super) fn store_error(error: crate::store::StoreError) -> ApiError {
    tracing::error!(message = "Store read failed.", %error);
    ApiError::internal("cannot read the store")
}

/// Runs a store read on the blocking pool, so the store never stalls an HTTP worker.
pub(super) async fn read_store<T: Send + 'static>(
    store: &crate::store::Store,
    read: impl FnOnce(&crate::store::Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    web::block(move || read(&store))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(store_error)
}

#[derive(Serialize, JsonSchema)]
struct PoolView {
    name: String,
    driver: &'static str,
    min_agents: usize,
    max_agents: usize,
    target_cpu_percent: f64,
    agents: usize,
    ready_agents: usize,
    mean_cpu_percent: Option<f64>,
    action_in_flight: Option<i64>,
    /// Each agent's load weight and its share of the pool's load.
    weights: BTreeMap<String, WeightView>,
    /// Task figures of the agents that report tasks; absent when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<super::pool_figures::PoolTasks>,
    /// Model use and cost of the agents that report tokens or model calls; absent when none
    /// does.
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<super::pool_figures::PoolModels>,
    /// Pool-level inputs read with PromQL (`[[ingest.promql]]`), latest values by name.
    inputs: BTreeMap<String, f64>,
    /// Why the last query of an input failed, for inputs whose last query did.
    input_errors: BTreeMap<String, String>,
}

#[derive(Serialize, JsonSchema)]
struct WeightView {
    weight: f64,
    share: f64,
}

async fn pools(state: web::Data<ApiState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let snapshot = state.fleet_view.get(&state.fleet).await?;
    let activity = state
        .actuator
        .send(GetActivity)
        .await
        .map_err(unavailable)?;
    let weights = state.actuator.send(GetWeights).await.map_err(unavailable)?;
    let inputs = state.pool_inputs.snapshot();
    let current = state.policy.current();
    let views: Vec<PoolView> = current
        .policy
        .pools
        .iter()
        .map(|(name, pool)| {
            let members: Vec<&AgentView> = snapshot.views().filter(|a| &a.pool == name).collect();
            let cpu: Vec<f64> = members.iter().filter_map(|a| a.cpu_smoothed).collect();
            let set = weights.get(name);
            let weight_of = |id: &str| set.and_then(|w| w.get(id)).copied().unwrap_or(1.0);
            let total: f64 = members.iter().map(|a| weight_of(&a.id)).sum();
            let weights = members
                .iter()
                .map(|a| {
                    let weight = weight_of(&a.id);
                    let share = if total > 0.0 { weight / total } else { 0.0 };
                    (a.id.clone(), WeightView { weight, share })
                })
                .collect();
            PoolView {
                name: name.clone(),
                driver: pool.driver.kind(),
                min_agents: pool.min_agents,
                max_agents: current.policy.max_agents(pool),
                target_cpu_percent: pool.target_cpu_percent,
                agents: members.len(),
                ready_agents: members
                    .iter()
                    .filter(|a| !matches!(a.status, AgentStatus::Starting | AgentStatus::Offline))
                    .count(),
                mean_cpu_percent: crate::analytics::stats::mean(&cpu),
                action_in_flight: activity.get(name).and_then(|a| a.in_flight),
                tasks: super::pool_figures::pool_tasks(&members),
                models: super::pool_figures::pool_models(&members, &current.policy.genai.currency),
                weights,
                inputs: inputs
                    .iter()
                    .filter(|((pool, _), _)| pool == name)
                    .filter_map(|((_, input), read)| Some((input.clone(), read.value?)))
                    .collect(),
                input_errors: inputs
                    .iter()
                    .filter(|((pool, _), _)| pool == name)
                    .filter_map(|((_, input), read)| {
                        Some((input.clone(), read.last_error.clone()?))
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn notifications(
    state: web::Data<ApiState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.notifier.stats()))
}

async fn recommendations(
    state: web::Data<ApiState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let recommendations = state
        .optimizer
        .send(crate::actors::optimizer::GetRecommendations)
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(wire::all::<_, RecommendationOut>(&recommendations)))
}
