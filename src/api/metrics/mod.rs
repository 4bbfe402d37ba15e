//! `GET /metrics`: the controller's own metrics and the latest value of every agent metric,
//! in the Prometheus text exposition format (0.0.4).
//!
//! Agent metric `m` of agent `a` in pool `p` is `swarmpilot_agent_<m>{agent="a",pool="p"}`,
//! a gauge, with `m` in Prometheus' naming conventions (see [`exported_name`]): abbreviated
//! or non-base units become base units with the value converted (`response_time_ms` is
//! `swarmpilot_agent_response_time_seconds`, `throughput_per_s` is
//! `swarmpilot_agent_throughput_per_second`), so `promtool check metrics` finds no problem.

mod agents;
mod latency;
mod names;
mod page;
mod process;

pub use agents::ScrapeCache;
pub use latency::RouteLatencies;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use actix_web::body::SizedStream;
use actix_web::{HttpResponse, web};
use bytes::Bytes;

use self::names::exported_name;
use self::page::Page;
use super::ApiState;
use super::error::ApiError;
use super::routes::{read_store, unavailable};
use crate::actors::alert::{CountAlerts, GetAlertStats};
use crate::actors::sources::scrape::TargetStats;
use crate::domain::{ActionState, AgentStatus};
use crate::notify::ChannelStats;
use crate::policy::AlertLevel;

/// The content type of the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every status an agent can have, so a pool's series do not come and go.
const STATUSES: [AgentStatus; 6] = [
    AgentStatus::Starting,
    AgentStatus::Active,
    AgentStatus::Idle,
    AgentStatus::Busy,
    AgentStatus::Error,
    AgentStatus::Offline,
];

/// Every alert level.
const LEVELS: [AlertLevel; 4] = [
    AlertLevel::Info,
    AlertLevel::Warning,
    AlertLevel::Critical,
    AlertLevel::Emergency,
];

/// A family counted per notification channel: name, help, count.
type ChannelFamily = (&'static str, &'static str, fn(&ChannelStats) -> u64);
/// A family per scrape target: name, type, help, value.
type TargetFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetStats) -> f64,
);

/// Answers the page; no token, like any Prometheus exporter (see ARCHITECTURE.md).
pub(super) async fn metrics(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    // The read routes' shared snapshot: a scrape of a large fleet takes no copy of its own.
    let fleet = state.fleet_view.get(&state.fleet).await?;
    let alerts = state.alert.send(CountAlerts).await.map_err(unavailable)?;
    let evaluation = state.alert.send(GetAlertStats).await.map_err(unavailable)?;
    let actions = read_store(&state.store, |store| store.count_by_state()).await?;
    let pools: Vec<String> = state
        .policy
        .current()
        .policy
        .pools
        .keys()
        .cloned()
        .collect();
    let agent_lines = state.scrape_cache.agent_lines(&fleet.agents);
    let mut page = Page::default();
    page.out.reserve(16 * 1024);

    page.family(
        "swarmpilot_samples_ingested_total",
        "counter",
        "Samples handed to agents (and kept for the host) since the controller started.",
    );
    page.sample(
        "swarmpilot_samples_ingested_total",
        &[],
        fleet.samples_routed as f64,
    );

    page.family(
        "swarmpilot_ring_buffer_points",
        "gauge",
        "Points held in memory in the agents' ring buffers.",
    );
    page.sample(
        "swarmpilot_ring_buffer_points",
        &[],
        fleet.ring_points as f64,
    );
    page.family(
        "swarmpilot_ring_buffer_bytes",
        "gauge",
        "Heap bytes of the agents' ring buffers (encoded points and chunk bookkeeping).",
    );
    page.sample("swarmpilot_ring_buffer_bytes", &[], fleet.ring_bytes as f64);

    page.family("swarmpilot_agents", "gauge", "Agents by pool and status.");
    let mut by_pool: std::collections::HashMap<(&str, AgentStatus), usize> =
        std::collections::HashMap::new();
    for agent in fleet.agents.iter() {
        *by_pool.entry((&agent.pool, agent.status)).or_insert(0) += 1;
    }
    for pool in &pools {
        for status in STATUSES {
            let count = by_pool.get(&(pool.as_str(), status)).copied().unwrap_or(0);
            page.sample(
                "swarmpilot_agents",
                &[("pool", pool), ("status", status_name(status))],
                count as f64,
            );
        }
    }

    page.family(
        "swarmpilot_alerts_firing",
        "gauge",
        "Alerts firing now, by level.",
    );
    for level in LEVELS {
        let count = alerts.firing_by_level.get(&level).copied().unwrap_or(0);
        page.sample(
            "swarmpilot_alerts_firing",
            &[("level", level.as_str())],
            count as f64,
        );
    }

    page.family(
        "swarmpilot_alert_evaluations_total",
        "counter",
        "Evaluations of every alert (firing, resolving, routing, silences).",
    );
    page.sample(
        "swarmpilot_alert_evaluations_total",
        &[],
        evaluation.evaluations as f64,
    );
    page.family(
        "swarmpilot_alert_last_evaluation_timestamp_seconds",
        "gauge",
        "When the alerts were last evaluated, on the controller's clock.",
    );
    page.sample(
        "swarmpilot_alert_last_evaluation_timestamp_seconds",
        &[],
        evaluation.last_evaluation_ms as f64 / 1000.0,
    );

    page.family("swarmpilot_actions", "gauge", "Actions by current state.");
    for action_state in ActionState::ALL {
        let name = action_state.as_str();
        let count = actions
            .iter()
            .find(|(state, _)| *state == action_state)
            .map_or(0, |(_, count)| *count);
        page.sample("swarmpilot_actions", &[("state", name)], count as f64);
    }

    let channels = state.notifier.stats();
    let notification_counts: [ChannelFamily; 3] = [
        (
            "swarmpilot_notifications_sent_total",
            "Notifications delivered, by channel.",
            |c| c.sent,
        ),
        (
            "swarmpilot_notifications_failed_total",
            "Notifications given up on after every retry, by channel.",
            |c| c.failed,
        ),
        (
            "swarmpilot_notification_attempts_failed_total",
            "Delivery attempts that failed, retried or not, by channel.",
            |c| c.failed_attempts,
        ),
    ];
    for (name, help, count) in notification_counts {
        page.family(name, "counter", help);
        for (channel, stats) in &channels {
            page.sample(name, &[("channel", channel)], count(stats) as f64);
        }
    }

    page.family(
        "swarmpilot_notifications_in_flight",
        "gauge",
        "Notifications handed to a channel and not yet delivered or given up on.",
    );
    page.sample(
        "swarmpilot_notifications_in_flight",
        &[],
        state.notifier.in_flight() as f64,
    );

    let targets = state.scrape.snapshot();
    let scrape_families: [TargetFamily; 4] = [
        (
            "swarmpilot_scrape_up",
            "gauge",
            "1 when the last scrape of the agent's Prometheus target succeeded.",
            |t| if t.up { 1.0 } else { 0.0 },
        ),
        (
            "swarmpilot_scrapes_total",
            "counter",
            "Scrapes of the agent's Prometheus target.",
            |t| t.scrapes as f64,
        ),
        (
            "swarmpilot_scrape_failures_total",
            "counter",
            "Failed scrapes (timeout, refused, non-2xx, unparsable) of the agent's target.",
            |t| t.failures as f64,
        ),
        (
            "swarmpilot_scrape_consecutive_failures",
            "gauge",
            "Failed scrapes of the agent's target since its last success.",
            |t| t.consecutive_failures as f64,
        ),
    ];
    for (name, kind, help, value) in scrape_families {
        page.family(name, kind, help);
        for (agent, target) in &targets {
            page.sample(
                name,
                &[("agent", agent), ("pool", &target.pool)],
                value(target),
            );
        }
    }

    page.family(
        "swarmpilot_pull_failures_total",
        "counter",
        "Failed WebSocket pulls (unreachable, closed, malformed) of the agent.",
    );
    for (agent, failures) in state.pull_failures.snapshot() {
        page.sample(
            "swarmpilot_pull_failures_total",
            &[("agent", &agent)],
            failures as f64,
        );
    }

    let inputs = state.pool_inputs.snapshot();
    page.family(
        "swarmpilot_pool_input",
        "gauge",
        "Latest value of each pool input read with PromQL.",
    );
    for ((pool, input), read) in &inputs {
        if let Some(value) = read.value {
            page.sample(
                "swarmpilot_pool_input",
                &[("input", input), ("pool", pool)],
                value,
            );
        }
    }
    page.family(
        "swarmpilot_pool_input_failures_total",
        "counter",
        "PromQL queries of a pool input that gave no value.",
    );
    for ((pool, input), read) in &inputs {
        page.sample(
            "swarmpilot_pool_input_failures_total",
            &[("input", input), ("pool", pool)],
            read.failures as f64,
        );
    }

    for (exported, (metric, factor)) in exported_names(fleet.host.keys()) {
        let name = format!("swarmpilot_host_{exported}");
        page.family(
            &name,
            "gauge",
            &help_for("the controller's host", metric, factor),
        );
        page.sample(&name, &[], fleet.host[metric] * factor);
    }
    // The agents' lines go out as they are kept, not copied into the page.
    let head = Bytes::from(std::mem::take(&mut page.out));
    latency::write(&mut page, &state.latencies, &state.decisions);
    process::write(&mut page);
    let tail = Bytes::from(page.out);
    let mut parts = Vec::with_capacity(agent_lines.len() + 2);
    parts.push(head);
    parts.extend(agent_lines);
    parts.push(tail);
    let size = parts.iter().map(Bytes::len).sum::<usize>() as u64;
    let parts = parts.into_iter().map(Ok::<_, Infallible>);
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(SizedStream::new(size, futures_util::stream::iter(parts))))
}

fn status_name(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Starting => "starting",
        AgentStatus::Active => "active",
        AgentStatus::Idle => "idle",
        AgentStatus::Busy => "busy",
        AgentStatus::Error => "error",
        AgentStatus::Offline => "offline",
    }
}

fn help_for(whose: &str, metric: &str, factor: f64) -> String {
    if factor == 1.0 {
        format!("Latest {metric} of {whose}.")
    } else {
        format!("Latest {metric} of {whose}, times {factor} for base units.")
    }
}

/// The exported name of each metric, with the metric and its factor; when two metrics
/// would export under one name, the first in name order keeps it.
fn exported_names<'a>(
    metrics: impl Iterator<Item = &'a String>,
) -> BTreeMap<String, (&'a str, f64)> {
    // A set, not a sorted list: a fleet has many agents but few distinct metrics.
    let metrics: BTreeSet<&String> = metrics.collect();
    let mut names = BTreeMap::new();
    for metric in metrics {
        let (name, factor) = exported_name(metric);
        names.entry(name).or_insert((metric.as_str(), factor));
    }
    names
}
