//! OpenTelemetry's GenAI metrics as an agent's model use: `gen_ai.client.token.usage` and
//! `gen_ai.client.operation.duration` (histograms, by the GenAI semantic conventions) become
//! the per-agent series of [`Usage`]: `tokens_in_per_s` and `tokens_out_per_s` (the sums of
//! token usage by `gen_ai.token.type`, `input` or `output`), `cost_per_hour` (those tokens
//! priced by `[genai]` for `gen_ai.provider.name`, or the older `gen_ai.system`, and
//! `gen_ai.request.model`, or `gen_ai.response.model`), `model_calls_per_s` and
//! `model_latency_ms` (the duration histogram's count and mean), and `errors_<kind>_per_s`
//! (calls whose `error.type` is set, sorted by `ErrorKind::of_error_type`).
//!
//! These come beside the generic mapping of the same points (`gen_ai_client_token_usage_sum`
//! and the others), which keeps the histograms' percentiles. Each attribute set is its own
//! series: a cumulative one gives what it gained since its previous point, a delta one its
//! own window, each as a rate over its own seconds, added up per agent and time.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric::Data};

use super::map::Clock;
use super::names::{agent_of, string_attribute};
use super::series::SeriesMemory;
use crate::analytics::usage::Usage;
use crate::domain::Sample;
use crate::domain::genai::ErrorKind;
use crate::ingest::check_timestamp;
use crate::policy::GenAiPolicy;

/// The token usage histogram of the GenAI semantic conventions.
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// The operation duration histogram (seconds) of the GenAI semantic conventions.
pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";

/// One histogram point, reduced to what model use needs.
struct Point<'a> {
    attributes: &'a [KeyValue],
    start_ns: u64,
    time_ns: u64,
    count: u64,
    sum: f64,
    flags: u32,
}

/// The model-use samples of `request`, priced by `genai`; cumulative points are compared
/// with the previous ones kept in `memory`.
pub fn samples(
    request: &ExportMetricsServiceRequest,
    clock: Clock,
    memory: &mut SeriesMemory,
    genai: &GenAiPolicy,
) -> Vec<Sample> {
    let mut usage: BTreeMap<(String, i64), Usage> = BTreeMap::new();
    for (r, resource_metrics) in request.resource_metrics.iter().enumerate() {
        let Ok((agent, _)) = agent_of(r, resource_metrics.resource.as_ref()) else {
            continue;
        };
        let metrics = resource_metrics
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics);
        for metric in metrics.filter(|m| m.name == TOKEN_USAGE || m.name == OPERATION_DURATION) {
            let (points, cumulative) = points(metric.data.as_ref());
            for point in points {
                if point.flags & 1 != 0 {
                    continue; // no recorded value
                }
                let ts_ms = match point.time_ns {
                    0 => clock.now_ms,
                    ns => (ns / 1_000_000) as i64,
                };
                if check_timestamp(ts_ms, clock.now_ms, clock.max_future_secs).is_err() {
                    continue; // the generic mapping reports it
                }
                let attribute = |key: &str| string_attribute(point.attributes, key)?.ok();
                let provider =
                    attribute("gen_ai.provider.name").or_else(|| attribute("gen_ai.system"));
                let model = attribute("gen_ai.request.model")
                    .or_else(|| attribute("gen_ai.response.model"));
                let token_type = attribute("gen_ai.token.type");
                let error_type = attribute("error.type");
                let gained = if cumulative {
                    let key = format!(
                        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                        metric.name,
                        provider.as_deref().unwrap_or_default(),
                        model.as_deref().unwrap_or_default(),
                        token_type.as_deref().unwrap_or_default(),
                        error_type.as_deref().unwrap_or_default(),
                    );
                    memory.delta(
                        &agent,
                        &key,
                        ts_ms,
                        point.start_ns,
                        (point.count, point.sum),
                    )
                } else {
                    let start_ms = (point.start_ns / 1_000_000) as i64;
                    (point.start_ns > 0 && start_ms < ts_ms)
                        .then(|| (point.count, point.sum, (ts_ms - start_ms) as f64 / 1000.0))
                };
                let Some((count, sum, seconds)) = gained else {
                    continue;
                };
                if seconds <= 0.0 || !sum.is_finite() || sum < 0.0 {
                    continue;
                }
                let used = usage.entry((agent.clone(), ts_ms)).or_default();
                let (count, per_s) = (count as f64 / seconds, sum / seconds);
                if metric.name == TOKEN_USAGE {
                    let (tokens_in, tokens_out) = match token_type.as_deref() {
                        Some("input" | "prompt") => (per_s, 0.0),
                        Some("output" | "completion") => (0.0, per_s),
                        _ => continue,
                    };
                    let cost = model
                        .as_deref()
                        .and_then(|m| genai.cost(provider.as_deref(), m, tokens_in, tokens_out));
                    used.add_tokens(tokens_in, tokens_out, cost);
                } else {
                    used.add_calls(count, per_s);
                    match error_type.as_deref() {
                        Some(error) => used.add_errors(ErrorKind::of_error_type(error), count),
                        None => {
                            used.reports_errors = true;
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((agent, ts_ms), used) in usage {
        used.samples(&agent, ts_ms, 1.0, &mut out);
    }
    out
}

/// The histogram points of `data` and whether they are cumulative; none for other kinds.
fn points(data: Option<&Data>) -> (Vec<Point<'_>>, bool) {
    let cumulative = |temporality: i32| temporality != AggregationTemporality::Delta as i32;
    // Both kinds of histogram carry the same fields for what model use needs.
    macro_rules! reduced {
        ($histogram:expr) => {
            (
                $histogram
                    .data_points
                    .iter()
                    .map(|p| Point {
                        attributes: &p.attributes,
                        start_ns: p.start_time_unix_nano,
                        time_ns: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum.unwrap_or(0.0),
                        flags: p.flags,
                    })
                    .collect(),
                cumulative($histogram.aggregation_temporality),
            )
        };
    }
    match data {
        Some(Data::Histogram(h)) => reduced!(h),
        Some(Data::ExponentialHistogram(h)) => reduced!(h),
        _ => (Vec::new(), false),
    }
}

#[cfg(test)]
mod tests;
