//! `GET /api/v1/system`: the controller at a glance, in one answer: its version and uptime,
//! the policy in force, automation, and counts of agents by status, firing alerts by level,
//! pending approvals and stream clients.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::Serialize;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Endpoint;
use super::routes::{read_store, unavailable};
use super::wire::AutomationOut;
use crate::actors::alert::CountAlerts;
use crate::actors::events::CountSessions;
use crate::domain::ActionState;

/// The system route under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/system", "The controller at a glance", || {
            web::get().to(system)
        })
        .answers::<SystemOut>(200, "Version, uptime, policy, automation and counts"),
    ]
}

/// `GET /api/v1/system`.
#[derive(Serialize, JsonSchema)]
struct SystemOut<'a> {
    /// The controller's version.
    version: &'static str,
    /// When it started, RFC 3339.
    started: String,
    uptime_secs: i64,
    /// The version hash of the policy in force.
    policy_version: String,
    /// Where the durable state is kept: `sqlite` or `postgres`.
    store: &'static str,
    /// `leader`: this controller acts (a standby answers `standby`).
    role: &'static str,
    automation: AutomationOut<'a>,
    /// Pools in the policy.
    pools: usize,
    /// Agents known, in all.
    agents: usize,
    /// Agents by status (only statuses that some agent has).
    agents_by_status: BTreeMap<&'static str, usize>,
    /// Firing alerts by level (only levels that fire).
    firing_alerts: BTreeMap<&'static str, usize>,
    /// Actions waiting for approval.
    pending_approvals: usize,
    /// Clients of the event stream now.
    stream_clients: usize,
}

async fn system(state: web::Data<ApiState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet_view.get(&state.fleet).await?;
    let alerts = state.alert.send(CountAlerts).await.map_err(unavailable)?;
    let stream_clients = state
        .events
        .send(CountSessions)
        .await
        .map_err(unavailable)?;
    let (paused, pending) = read_store(&state.store, |store| {
        let counts = store.count_by_state()?;
        let pending = counts
            .iter()
            .find(|(s, _)| *s == ActionState::PendingApproval)
            .map_or(0, |(_, n)| *n as usize);
        Ok((store.paused()?, pending))
    })
    .await?;
    let current = state.policy.current();
    let halted = state.halt.get();
    let mut agents_by_status = BTreeMap::new();
    for agent in fleet.agents.iter() {
        let name = serde_json::to_value(agent.status)
            .ok()
            .and_then(|v| v.as_str().map(status_name))
            .unwrap_or("unknown");
        *agents_by_status.entry(name).or_insert(0) += 1;
    }
    let firing_alerts: BTreeMap<&'static str, usize> = alerts
        .firing_by_level
        .iter()
        .map(|(level, n)| (level.as_str(), *n))
        .collect();
    let now_ms = state.clock.now_ms();
    Ok(HttpResponse::Ok().json(SystemOut {
        version: env!("CARGO_PKG_VERSION"),
        started: crate::clock::rfc3339(state.started_ms),
        uptime_secs: (now_ms - state.started_ms).max(0) / 1000,
        policy_version: current.version.clone(),
        store: state.store.engine().as_str(),
        role: "leader",
        automation: AutomationOut::new(paused.as_ref(), Some(current.policy.automation.dry_run))
            .with_halt(halted.as_ref()),
        pools: current.policy.pools.len(),
        agents: fleet.agents.len(),
        agents_by_status,
        firing_alerts,
        pending_approvals: pending,
        stream_clients,
    }))
}

/// The static name of a status as the API writes it.
fn status_name(name: &str) -> &'static str {
    ["starting", "active", "idle", "busy", "error", "offline"]
        .into_iter()
        .find(|known| *known == name)
        .unwrap_or("unknown")
}
