//! GenAI metrics to model use: tokens by type, cost by model, calls, latency and errors.

use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::domain::metric as name;
use crate::policy::ModelPrice;

use crate::ingest::otlp::tests::{CLOCK, NOW_MS, attribute};

const START_NS: u64 = (NOW_MS as u64 - 10_000) * 1_000_000;

/// A cumulative histogram point at `at_ms` with `count` observations summing to `sum`.
fn point(attributes: &[(&str, &str)], at_ms: i64, count: u64, sum: f64) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
        start_time_unix_nano: START_NS,
        time_unix_nano: at_ms as u64 * 1_000_000,
        count,
        sum: Some(sum),
        ..Default::default()
    }
}

fn export(metrics: Vec<(&str, Vec<HistogramDataPoint>)>) -> ExportMetricsServiceRequest {
    let metrics = metrics
        .into_iter()
        .map(|(metric_name, data_points)| Metric {
            name: metric_name.into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "coder-1")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The value of `metric`, rounded to 9 decimals (rates are quotients).
fn value(samples: &[Sample], metric: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.metric == metric && s.agent == "coder-1")
        .map(|s| (s.value * 1e9).round() / 1e9)
}

#[test]
fn token_usage_and_durations_become_rates_cost_latency_and_errors() {
    let genai = GenAiPolicy {
        currency: "USD".into(),
        prices: vec![ModelPrice {
            provider: Some("openai".into()),
            model: "gpt-4o*".into(),
            input_per_million: 2.5,
            output_per_million: 10.0,
        }],
    };
    let model = [
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut attributes = model.to_vec();
        attributes.push(extra);
        attributes
    };
    let input = with(("gen_ai.token.type", "input"));
    let output = with(("gen_ai.token.type", "output"));
    let throttled = with(("error.type", "429"));
    let mut memory = SeriesMemory::default();
    // First export: 10 s after the start.
    let first = export(vec![
        (
            TOKEN_USAGE,
            vec![
                point(&input, NOW_MS, 4, 40_000.0),
                point(&output, NOW_MS, 4, 2_000.0),
            ],
        ),
        (
            OPERATION_DURATION,
            vec![
                point(&model, NOW_MS, 4, 6.0),
                point(&throttled, NOW_MS, 2, 0.2),
            ],
        ),
    ]);
    let samples = super::samples(&first, CLOCK, &mut memory, &genai);
    assert_eq!(value(&samples, name::TOKENS_IN_PER_S), Some(4_000.0));
    assert_eq!(value(&samples, name::TOKENS_OUT_PER_S), Some(200.0));
    // (4,000 x 2.5 + 200 x 10) / 1e6 a second: 0.012 a second, 43.2 an hour.
    let cost = value(&samples, name::COST_PER_HOUR).unwrap();
    assert!((cost - 43.2).abs() < 1e-9, "{cost}");
    assert_eq!(value(&samples, name::MODEL_CALLS_PER_S), Some(0.6));
    let latency = value(&samples, name::MODEL_LATENCY_MS).unwrap();
    assert!((latency - 1_033.333).abs() < 0.01, "{latency}");
    assert_eq!(value(&samples, name::RATE_LIMITED_PER_S), Some(0.2));
    assert_eq!(value(&samples, name::OTHER_ERRORS_PER_S), Some(0.0));
    // Second export, 5 s later: only what was gained counts.
    let later = NOW_MS + 5_000;
    let clock = Clock {
        now_ms: later,
        ..CLOCK
    };
    let second = export(vec![
        (
            TOKEN_USAGE,
            vec![
                point(&input, later, 5, 45_000.0),
                point(&output, later, 5, 2_000.0),
            ],
        ),
        (
            OPERATION_DURATION,
            vec![
                point(&model, later, 5, 7.0),
                point(&throttled, later, 2, 0.2),
            ],
        ),
    ]);
    let samples = super::samples(&second, clock, &mut memory, &genai);
    assert_eq!(value(&samples, name::TOKENS_IN_PER_S), Some(1_000.0));
    assert_eq!(value(&samples, name::TOKENS_OUT_PER_S), Some(0.0));
    assert_eq!(value(&samples, name::MODEL_CALLS_PER_S), Some(0.2));
    assert_eq!(value(&samples, name::MODEL_LATENCY_MS), Some(1_000.0));
    assert_eq!(value(&samples, name::RATE_LIMITED_PER_S), Some(0.0));
    // The same export again is out of order: nothing new is said.
    assert!(super::samples(&second, clock, &mut memory, &genai).is_empty());
}

#[test]
fn unpriced_models_count_tokens_without_cost_and_other_metrics_are_ignored() {
    let mut memory = SeriesMemory::default();
    let input = [
        ("gen_ai.system", "local"),
        ("gen_ai.request.model", "llama"),
        ("gen_ai.token.type", "input"),
    ];
    let request = export(vec![
        (TOKEN_USAGE, vec![point(&input, NOW_MS, 1, 100.0)]),
        ("http.server.duration", vec![point(&[], NOW_MS, 1, 1.0)]),
    ]);
    let samples = super::samples(&request, CLOCK, &mut memory, &GenAiPolicy::default());
    assert_eq!(value(&samples, name::TOKENS_IN_PER_S), Some(10.0));
    assert_eq!(value(&samples, name::COST_PER_HOUR), None);
    assert_eq!(value(&samples, name::MODEL_CALLS_PER_S), None);
}
