use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::domain::Sample;

pub(super) const NOW_MS: i64 = 1_800_000_000_000;
const NOW_NS: u64 = NOW_MS as u64 * 1_000_000;
pub(super) const CLOCK: Clock = Clock {
    now_ms: NOW_MS,
    max_future_secs: 300,
};

pub(super) fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn number(value: number_data_point::Value, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: NOW_NS - 60_000_000_000,
        time_unix_nano: NOW_NS,
        value: Some(value),
        ..Default::default()
    }
}

fn named(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn request(attributes: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes,
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

fn values(samples: &[Sample]) -> Vec<(&str, &str, f64)> {
    samples
        .iter()
        .map(|s| (s.agent.as_str(), s.metric.as_str(), s.value))
        .collect()
}

#[test]
fn protobuf_gauges_sums_and_histograms_become_samples() {
    use number_data_point::Value::{AsDouble, AsInt};
    let counter = |total: i64, time_unix_nano: u64| {
        named(
            "http.server.requests",
            metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    time_unix_nano,
                    ..number(AsInt(total), vec![])
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        )
    };
    let metrics = vec![
        named(
            "queue.depth",
            metric::Data::Gauge(Gauge {
                data_points: vec![
                    number(AsDouble(2.5), vec![attribute("queue", "a")]),
                    number(AsInt(4), vec![attribute("queue", "b")]),
                ],
            }),
        ),
        counter(100, NOW_NS - 2_000_000_000),
        named(
            "process.memory.usage",
            metric::Data::Sum(Sum {
                data_points: vec![number(AsInt(1 << 20), vec![])],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: false,
            }),
        ),
        named(
            "task.duration",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: NOW_NS - 60_000_000_000,
                    time_unix_nano: NOW_NS,
                    count: 100,
                    sum: Some(1500.0),
                    bucket_counts: vec![50, 40, 10, 0],
                    explicit_bounds: vec![10.0, 20.0, 50.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ),
    ];
    let resource = vec![
        attribute("service.name", "checkout"),
        attribute("service.instance.id", "checkout-7"),
        attribute("swarmpilot.pool", "edge"),
    ];
    let bytes = request(resource.clone(), metrics).encode_to_vec();
    let decoded = decode(&bytes, Encoding::Protobuf, 100_000).unwrap();
    let mut memory = SeriesMemory::default();
    let mapped = map(&decoded, CLOCK, &mut memory);
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(mapped.n_points, 5);
    assert_eq!(mapped.pools["checkout-7"], "edge");
    assert_eq!(mapped.kept["checkout-7"].1, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        mapped.kept["checkout-7"].0,
        "resourceMetrics[0].resource.attributes[service.instance.id]"
    );
    assert_eq!(
        values(&mapped.samples),
        [
            ("checkout-7", "http_server_requests", 100.0),
            ("checkout-7", "memory_bytes", 1048576.0),
            // Two attribute sets of one gauge are added together.
            ("checkout-7", "queue_depth", 6.5),
            ("checkout-7", "task_duration_count", 100.0),
            ("checkout-7", "task_duration_sum", 1500.0),
            ("checkout-7", "task_duration_mean", 15.0),
            ("checkout-7", "task_duration_p95", 35.0),
        ]
    );
    assert_eq!(mapped.samples[0].ts_ms, NOW_MS - 2_000);

    // The next export: the counter's rate since the last one, the histogram's new
    // observations only.
    let later = request(
        resource,
        vec![
            counter(130, NOW_NS),
            named(
                "task.duration",
                metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        start_time_unix_nano: NOW_NS - 60_000_000_000,
                        time_unix_nano: NOW_NS + 1_000_000_000,
                        count: 102,
                        sum: Some(1600.0),
                        bucket_counts: vec![50, 40, 10, 2],
                        explicit_bounds: vec![10.0, 20.0, 50.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
        ],
    );
    let mapped = map(&later, CLOCK, &mut memory);
    assert_eq!(
        values(&mapped.samples),
        [
            ("checkout-7", "http_server_requests_per_s", 15.0),
            ("checkout-7", "http_server_requests", 130.0),
            ("checkout-7", "task_duration_count", 2.0),
            ("checkout-7", "task_duration_sum", 100.0),
            ("checkout-7", "task_duration_mean", 50.0),
            ("checkout-7", "task_duration_p95", 50.0),
        ]
    );
}

/// The shape of the OTLP specification's JSON example: lowerCamelCase, 64-bit integers
/// as strings, enums as integers.
#[test]
fn otlp_json_is_read() {
    let body = format!(
        r#"{{
  "resourceMetrics": [{{
    "resource": {{"attributes": [
      {{"key": "service.name", "value": {{"stringValue": "my.service"}}}}
    ]}},
    "scopeMetrics": [{{
      "scope": {{"name": "my.library", "version": "1.0.0"}},
      "metrics": [
        {{"name": "my.counter", "unit": "1", "description": "I am a Counter",
          "sum": {{"aggregationTemporality": 1, "isMonotonic": true,
                  "dataPoints": [{{"asDouble": 5, "startTimeUnixNano": "{start}",
                                   "timeUnixNano": "{now}",
                                   "attributes": [{{"key": "my.counter.attr",
                                                    "value": {{"stringValue": "some value"}}}}]}}]}}}},
        {{"name": "my.gauge", "gauge": {{"dataPoints": [{{"asInt": "10", "timeUnixNano": {now}}}]}}}},
        {{"name": "my.histogram",
          "histogram": {{"aggregationTemporality": 1,
                        "dataPoints": [{{"startTimeUnixNano": "{start}", "timeUnixNano": "{now}",
                                         "count": "2", "sum": 2, "bucketCounts": ["1", "1"],
                                         "explicitBounds": [1], "min": 0, "max": 2}}]}}}},
        {{"name": "my.exponential",
          "exponentialHistogram": {{"aggregationTemporality": 1,
                        "dataPoints": [{{"timeUnixNano": "{now}", "count": "20", "sum": 50,
                                         "scale": 0, "zeroCount": "0",
                                         "positive": {{"offset": 1, "bucketCounts": ["16", "4"]}}}}]}}}}
      ]
    }}]
  }}]
}}"#,
        start = NOW_NS - 10_000_000_000,
        now = NOW_NS
    );
    let decoded = decode(body.as_bytes(), Encoding::Json, 100_000).unwrap();
    let mapped = map(&decoded, CLOCK, &mut SeriesMemory::default());
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(
        values(&mapped.samples),
        [
            // A delta sum's rate is over its own interval: 5 in 10 s.
            ("my.service", "my_counter_per_s", 0.5),
            ("my.service", "my_counter", 5.0),
            // Base 2 from bucket 1: 16 in (2, 4], 4 in (4, 8]; rank 19 is 3/4 into the second.
            ("my.service", "my_exponential_count", 20.0),
            ("my.service", "my_exponential_sum", 50.0),
            ("my.service", "my_exponential_mean", 2.5),
            ("my.service", "my_exponential_p95", 7.0),
            ("my.service", "my_gauge", 10.0),
            ("my.service", "my_histogram_count", 2.0),
            ("my.service", "my_histogram_sum", 2.0),
            ("my.service", "my_histogram_mean", 1.0),
            // Rank 1.9 of 2 lies in the overflow bucket: the highest bound.
            ("my.service", "my_histogram_p95", 1.0),
        ]
    );
}

#[test]
fn a_partly_bad_request_keeps_its_good_points_and_names_each_bad_one() {
    let future = NOW_NS + 3_600_000_000_000;
    let body = format!(
        r#"{{"resourceMetrics": [
  {{"resource": {{"attributes": [{{"key": "service.instance.id", "value": {{"stringValue": "w-1"}}}}]}},
    "scopeMetrics": [{{"metrics": [
      {{"name": "load", "gauge": {{"dataPoints": [
        {{"asDouble": 1.5, "timeUnixNano": "{NOW_NS}"}},
        {{"asDouble": "NaN", "timeUnixNano": "{NOW_NS}"}},
        {{"asDouble": "-Infinity", "timeUnixNano": "{NOW_NS}"}},
        {{"asDouble": 2, "timeUnixNano": "{future}"}},
        {{"timeUnixNano": "{NOW_NS}"}}
      ]}}}},
      {{"name": "", "gauge": {{"dataPoints": [{{"asDouble": 1}}]}}}},
      {{"name": "latency", "summary": {{"dataPoints": [{{"count": "1"}}]}}}}
    ]}}]}},
  {{"resource": {{"attributes": [{{"key": "host.name", "value": {{"stringValue": "box"}}}}]}},
    "scopeMetrics": [{{"metrics": [{{"name": "load", "gauge": {{"dataPoints": [{{"asInt": 1}}]}}}}]}}]}}
]}}"#
    );
    let decoded = decode(body.as_bytes(), Encoding::Json, 100_000).unwrap();
    let mapped = map(&decoded, CLOCK, &mut SeriesMemory::default());
    assert_eq!(values(&mapped.samples), [("w-1", "load", 1.5)]);
    assert_eq!(mapped.samples[0].ts_ms, NOW_MS);
    assert_eq!(mapped.n_points, 8);
    let rejected: Vec<(usize, &str, &str)> = mapped
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str(), r.reason.as_str()))
        .collect();
    let gauge = "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge";
    assert_eq!(
        rejected[0],
        (
            1,
            &*format!("{gauge}.dataPoints[1].asDouble"),
            "value is NaN"
        )
    );
    assert_eq!(
        rejected[1],
        (
            2,
            &*format!("{gauge}.dataPoints[2].asDouble"),
            "value is infinite"
        )
    );
    assert_eq!(rejected[2].1, format!("{gauge}.dataPoints[3].timeUnixNano"));
    assert!(rejected[2].2.contains("in the future"), "{}", rejected[2].2);
    assert_eq!(rejected[3].1, format!("{gauge}.dataPoints[4]"));
    assert_eq!(
        rejected[4].1,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].name"
    );
    assert_eq!(
        rejected[5].1,
        "resourceMetrics[0].scopeMetrics[0].metrics[2].summary.dataPoints[0]"
    );
    assert_eq!(
        (rejected[6].0, rejected[6].1),
        (7, "resourceMetrics[1].resource.attributes")
    );
    assert!(
        rejected[6].2.contains("service.instance.id"),
        "{}",
        rejected[6].2
    );
    assert_eq!(rejected.len(), 7);

    let message = refusal_message(&mapped.rejected, mapped.n_points);
    assert!(
        message.starts_with("7 of 8 data points rejected: "),
        "{message}"
    );
    assert!(message.ends_with("; and 2 more"), "{message}");
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(matches!(
        decode(b"\x0a\xff\xff", Encoding::Protobuf, 100_000),
        Err(DecodeError::Size(
            crate::ingest::otlp::SizeError::Protobuf { .. }
        ))
    ));
    assert!(matches!(
        decode(b"{\"resourceMetrics\": [", Encoding::Json, 100_000),
        Err(DecodeError::Size(crate::ingest::otlp::SizeError::Json(_)))
    ));
    assert!(matches!(
        decode(br#"{"resourceMetrics": 7}"#, Encoding::Json, 100_000),
        Err(DecodeError::Json(_))
    ));
    // An empty request is a valid one.
    assert_eq!(
        decode(b"", Encoding::Protobuf, 100_000)
            .unwrap()
            .resource_metrics
            .len(),
        0
    );
    assert_eq!(
        decode(b"{}", Encoding::Json, 100_000)
            .unwrap()
            .resource_metrics
            .len(),
        0
    );
}

#[test]
fn names_are_prometheus_shaped() {
    for (otlp, ours) in [
        ("http.server.duration", "http_server_duration"),
        ("a..b-c/d", "a_b_c_d"),
        ("2xx.count", "_2xx_count"),
        ("node:load1", "node:load1"),
        ("process.memory.usage", "memory_bytes"),
        ("temp°c", "temp_c"),
    ] {
        assert_eq!(prometheus_name(otlp), ours, "{otlp}");
    }
}

#[test]
fn responses_carry_the_partial_success() {
    let refusal = Rejection {
        index: 0,
        field: "f".into(),
        reason: "value is NaN".into(),
    };
    assert_eq!(encode_response(Encoding::Json, &[], 3), b"{}");
    assert!(encode_response(Encoding::Protobuf, &[], 3).is_empty());
    let json: serde_json::Value = serde_json::from_slice(&encode_response(
        Encoding::Json,
        std::slice::from_ref(&refusal),
        3,
    ))
    .unwrap();
    assert_eq!(json["partialSuccess"]["rejectedDataPoints"], 1);
    let bytes = encode_response(Encoding::Protobuf, &[refusal], 3);
    let reply = ExportMetricsServiceResponse::decode(bytes.as_slice()).unwrap();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert_eq!(
        partial.error_message,
        "1 of 3 data points rejected: f: value is NaN"
    );
}

/// Inputs the fuzz targets found (fuzz/regressions/otlp_protobuf), decoded and mapped twice
/// as the otlp_protobuf target does; each once panicked.
#[test]
fn fuzz_findings_decode_and_map_without_panicking() {
    let findings: [&[u8]; 1] = [include_bytes!(
        "../../../fuzz/regressions/otlp_protobuf/histogram-count-overflow.bin"
    )];
    for body in findings {
        let request = decode(body, Encoding::Protobuf, 256).expect("decodes");
        let mut memory = SeriesMemory::default();
        let first = map(&request, CLOCK, &mut memory);
        assert!(
            first.rejected.iter().any(|r| r.field.ends_with(".count")),
            "{:?}",
            first.rejected
        );
        map(&request, CLOCK, &mut memory);
    }
}
