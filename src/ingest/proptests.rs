//! Properties of every parser input comes through: none panics on any input, each keeps or
//! refuses every item, and none builds more than its limits allow.

use proptest::prelude::*;

use super::otlp::{self, Encoding};
use super::push::{self, Limits};
use super::{scrape, ws_pull};

const NOW: i64 = 1_800_000_000_000;

const LIMITS: Limits = Limits {
    max_future_secs: 300,
    max_items: 50,
    max_listed: 5,
    max_labels: 4,
    max_label_bytes: 16,
};

/// One pushed item: a sample (good or not) or another JSON value.
fn item() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let name = "[a-z_]{0,6}";
    prop_oneof![
        (
            name,
            name,
            any::<f64>(),
            proptest::option::of(any::<i64>()),
            0usize..7
        )
            .prop_map(|(agent, metric, value, timestamp, labels)| {
                let labels: serde_json::Map<String, serde_json::Value> = (0..labels)
                    .map(|n| (format!("l{n}"), json!("v".repeat(n * 4))))
                    .collect();
                json!({"agent": agent, "metric": metric, "value": value,
                       "timestamp": timestamp, "labels": labels})
            }),
        any::<i64>().prop_map(|n| json!(n)),
        name.prop_map(|s| json!(s)),
        Just(json!(null)),
        Just(json!({"agent": 1, "metric": [], "value": "x"})),
    ]
}

proptest! {
    #[test]
    fn push_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = push::parse(&body, NOW, LIMITS);
    }

    #[test]
    fn push_keeps_or_refuses_every_item_within_its_limits(
        items in proptest::collection::vec(item(), 0..80)
    ) {
        let body = serde_json::to_vec(&items).unwrap();
        match push::parse(&body, NOW, LIMITS) {
            Ok(batch) => {
                prop_assert!(items.len() <= LIMITS.max_items);
                prop_assert_eq!(batch.samples.len() + batch.rejected.total(), items.len());
                prop_assert_eq!(batch.samples.len(), batch.indices.len());
                for sample in &batch.samples {
                    prop_assert!(sample.value.is_finite());
                    prop_assert!(sample.ts_ms <= NOW + 300_000);
                }
                let listed = batch.rejected.into_listed();
                prop_assert!(listed.len() <= LIMITS.max_listed);
                prop_assert!(listed.windows(2).all(|w| w[0].index < w[1].index));
            }
            Err(push::BodyError::TooMany { limit }) => {
                prop_assert_eq!(limit, LIMITS.max_items);
                prop_assert!(items.len() > LIMITS.max_items);
            }
            Err(other) => prop_assert!(false, "a JSON array read as {other}"),
        }
    }

    #[test]
    fn otlp_never_panics_on_bytes(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        limit in 0usize..64,
    ) {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let _ = otlp::decode(&body, encoding, limit);
        }
    }

    #[test]
    fn otlp_protobuf_decodes_exactly_when_its_items_are_within_the_limit(
        attributes in proptest::collection::vec(0usize..4, 0..40),
        limit in 0usize..120,
    ) {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::KeyValue;
        use opentelemetry_proto::tonic::metrics::v1::{
            Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
        };
        use prost::Message;
        // One gauge whose points carry the given numbers of attributes.
        let points: Vec<NumberDataPoint> = attributes
            .iter()
            .map(|&n| NumberDataPoint {
                attributes: (0..n)
                    .map(|i| KeyValue { key: format!("k{i}"), ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(Data::Gauge(Gauge { data_points: points })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        // Counted by hand: resource metrics, scope metrics, metric, its name, the gauge, and
        // each point with its attributes.
        let items = 5 + attributes.iter().map(|n| 1 + n).sum::<usize>();
        let decoded = otlp::decode(&request.encode_to_vec(), Encoding::Protobuf, limit);
        prop_assert_eq!(decoded.is_ok(), items <= limit, "{} items, limit {}", items, limit);
    }

    #[test]
    fn prometheus_text_never_panics(text in "\\PC{0,200}") {
        let _ = scrape::text::parse(&text);
    }

    #[test]
    fn prometheus_lines_read_back(
        lines in proptest::collection::vec(("[a-z_][a-z0-9_]{0,10}", -1e9f64..1e9), 1..20)
    ) {
        let text: String = lines
            .iter()
            .map(|(name, value)| format!("{name} {value}\n"))
            .collect();
        let exposition = scrape::text::parse(&text).unwrap();
        prop_assert_eq!(exposition.series.len(), lines.len());
        for (series, (name, value)) in exposition.series.iter().zip(&lines) {
            prop_assert_eq!(&series.name, name);
            prop_assert_eq!(series.value, *value);
        }
    }

    #[test]
    fn websocket_messages_never_panic(text in "\\PC{0,200}") {
        let _ = ws_pull::parse(&text);
    }

    #[test]
    fn policy_files_never_panic_and_point_at_a_line(text in "[\\[\\]a-z_=\"0-9. \\n]{0,200}") {
        if let Err(error) = crate::policy::load_str("p.toml", &text) {
            prop_assert!(error.to_string().contains("p.toml"), "{}", error);
        }
    }
}
