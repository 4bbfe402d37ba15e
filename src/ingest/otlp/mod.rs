//! OTLP/HTTP metrics (`POST /v1/metrics`): an `ExportMetricsServiceRequest` in protobuf or in
//! OTLP's JSON encoding, mapped to samples.
//!
//! The mapping:
//! - **Agent:** the resource attribute `service.instance.id`, else `service.name`. A data
//!   point of a resource with neither is refused (field `resourceMetrics[i].resource.attributes`).
//! - **Pool:** the resource attribute `swarmpilot.pool` names the pool an agent met for the
//!   first time joins (like the `pool` label of `POST /api/v1/samples`); without it, the
//!   policy's `ingest.default_pool`.
//! - **Names** are made Prometheus-shaped as Prometheus' OTLP translation does without
//!   suffixes: every character outside `[a-zA-Z0-9_:]` becomes `_`, runs of `_` collapse to
//!   one, a leading digit gets a `_` before it (`http.server.duration` →
//!   `http_server_duration`). `process.memory.usage` (resident bytes in the OpenTelemetry
//!   semantic conventions) is the controller's own `memory_bytes`. CPU is not mapped:
//!   `process.cpu.utilization` is a share of all CPUs, `cpu_percent` one of one core.
//! - **Data point attributes** are not part of the name: the points of one agent, metric and
//!   time are added together (a counter's total over its attribute sets; histograms bucket by
//!   bucket, which needs equal bounds). So gauges of several attribute sets are summed too,
//!   right for sizes and counts, wrong for ratios: export those without attributes.
//! - **Gauges and sums** give one sample per (agent, metric, time), `asDouble` or `asInt`.
//!   A monotonic sum also gives `<name>_per_s`: for a cumulative one, the rate since the
//!   previous point of the series (none for its first point or after a reset, a new start
//!   time or a total going down); for a delta one, its value over its own interval.
//! - **Histograms** give `<name>_count`, `<name>_sum`, `<name>_mean` and `<name>_p95` over a
//!   window: a delta point's own, a cumulative point's observations since the previous point
//!   of the series (since its start time for the first). The p95 is interpolated linearly
//!   inside its bucket, as Prometheus' `histogram_quantile` does. Exponential histograms are
//!   read as explicit buckets with their boundaries (base^i with base = 2^(2^-scale)).
//!   Summaries are refused, point by point.
//! - **Time:** `timeUnixNano`, the time of arrival when it is 0. Points flagged "no recorded
//!   value" are skipped.
//!
//! - **GenAI:** `gen_ai.client.token.usage` and `gen_ai.client.operation.duration` also give
//!   the agent's model use (tokens, cost, calls, latency, errors by kind): see [`genai`].
//!
//! Each refused data point is a [`Rejection`](super::Rejection) whose `index` counts data points
//! across the request and whose `field` is the path of the field at fault. The previous point
//! of each cumulative series is kept in a [`SeriesMemory`] between requests.

mod derive;
pub mod genai;
mod histogram;
mod map;
mod names;
mod series;
mod size;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;

pub use map::{Clock, Mapped, map};
pub use names::{AGENT_ATTRIBUTES, POOL_ATTRIBUTE, prometheus_name};
pub use series::SeriesMemory;
pub use size::SizeError;

use super::Rejection;

/// Refusals quoted in a partial success's message; the count covers the rest.
const QUOTED_REFUSALS: usize = 5;

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`, OTLP's JSON mapping of the protobuf messages.
    Json,
}

/// Why a body is not an `ExportMetricsServiceRequest`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not the protobuf message.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    /// Not JSON, or JSON of another shape.
    #[error("malformed OTLP JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Refused before decoding: too many items, or not the encoding at all.
    #[error(transparent)]
    Size(#[from] SizeError),
}

/// Reads `body` in `encoding`, once its items (see `size`) are counted and no more than
/// `max_items`.
pub fn decode(
    body: &[u8],
    encoding: Encoding,
    max_items: usize,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => {
            size::protobuf_items(body, max_items)?;
            ExportMetricsServiceRequest::decode(body).map_err(DecodeError::Protobuf)
        }
        Encoding::Json => {
            size::json_items(body, max_items)?;
            decode_json(body)
        }
    }
}

/// The reply to a request in `encoding`: empty when every point was kept, else a partial
/// success with the count refused and a message quoting the first refusals.
pub fn encode_response(encoding: Encoding, rejected: &[Rejection], n_points: usize) -> Vec<u8> {
    let partial_success = (!rejected.is_empty()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: rejected.len() as i64,
        error_message: refusal_message(rejected, n_points),
    });
    match encoding {
        Encoding::Protobuf => ExportMetricsServiceResponse { partial_success }.encode_to_vec(),
        Encoding::Json => {
            let reply = match partial_success {
                None => serde_json::json!({}),
                Some(partial) => serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": partial.rejected_data_points,
                    "errorMessage": partial.error_message,
                }}),
            };
            reply.to_string().into_bytes()
        }
    }
}

/// `rejected` summed up for a person: the count and the first few, each with its field.
pub fn refusal_message(rejected: &[Rejection], n_points: usize) -> String {
    let quoted: Vec<String> = rejected
        .iter()
        .take(QUOTED_REFUSALS)
        .map(|r| format!("{}: {}", r.field, r.reason))
        .collect();
    let more = rejected.len().saturating_sub(QUOTED_REFUSALS);
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} of {n_points} data points rejected: {}{tail}",
        rejected.len(),
        quoted.join("; ")
    )
}

/// OTLP JSON. The protobuf JSON mapping writes NaN and the infinities of a double as the
/// strings `"NaN"`, `"Infinity"` and `"-Infinity"`, which the generated serde code reads as a
/// point without a value: when a point has none, such strings are taken out, the rest is
/// read again, and they are put back, so that point alone is refused later.
fn decode_json(body: &[u8]) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let request: ExportMetricsServiceRequest =
        serde_json::from_slice(body).map_err(DecodeError::Json)?;
    if !has_point_without_value(&request) {
        return Ok(request);
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(DecodeError::Json)?;
    let specials = take_string_doubles(&mut value);
    if specials.is_empty() {
        return Ok(request);
    }
    let mut request: ExportMetricsServiceRequest =
        serde_json::from_value(value).map_err(DecodeError::Json)?;
    for ((r, s, m, p), double) in specials {
        let points = request
            .resource_metrics
            .get_mut(r)
            .and_then(|rm| rm.scope_metrics.get_mut(s))
            .and_then(|sm| sm.metrics.get_mut(m))
            .and_then(|metric| match metric.data.as_mut() {
                Some(Data::Gauge(gauge)) => Some(&mut gauge.data_points),
                Some(Data::Sum(sum)) => Some(&mut sum.data_points),
                _ => None,
            });
        if let Some(point) = points.and_then(|points| points.get_mut(p)) {
            point.value = Some(number_data_point::Value::AsDouble(double));
        }
    }
    Ok(request)
}

fn has_point_without_value(request: &ExportMetricsServiceRequest) -> bool {
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics);
    metrics
        .filter_map(|metric| match metric.data.as_ref() {
            Some(Data::Gauge(gauge)) => Some(&gauge.data_points),
            Some(Data::Sum(sum)) => Some(&sum.data_points),
            _ => None,
        })
        .flatten()
        .any(|point| point.value.is_none())
}

/// Position of a number data point: resource, scope, metric, point.
type PointAt = (usize, usize, usize, usize);

/// Replaces each `asDouble` written as a string by 0 and returns where they were with the
/// number they hold; a string that holds no number is left for the decoder to refuse.
fn take_string_doubles(request: &mut serde_json::Value) -> Vec<(PointAt, f64)> {
    use serde_json::Value;
    fn items<'v>(value: &'v mut Value, key: &str) -> &'v mut [Value] {
        match value.get_mut(key) {
            Some(Value::Array(items)) => items,
            _ => &mut [],
        }
    }
    let mut found = Vec::new();
    for (r, resource) in items(request, "resourceMetrics").iter_mut().enumerate() {
        for (s, scope) in items(resource, "scopeMetrics").iter_mut().enumerate() {
            for (m, metric) in items(scope, "metrics").iter_mut().enumerate() {
                for kind in ["gauge", "sum"] {
                    let Some(data) = metric.get_mut(kind) else {
                        continue;
                    };
                    for (p, point) in items(data, "dataPoints").iter_mut().enumerate() {
                        let Some(Value::String(text)) = point.get("asDouble") else {
                            continue;
                        };
                        let double = match text.as_str() {
                            "NaN" => f64::NAN,
                            "Infinity" => f64::INFINITY,
                            "-Infinity" => f64::NEG_INFINITY,
                            other => match other.parse::<f64>() {
                                Ok(double) => double,
                                Err(_) => continue,
                            },
                        };
                        point["asDouble"] = Value::from(0.0);
                        found.push(((r, s, m, p), double));
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;
