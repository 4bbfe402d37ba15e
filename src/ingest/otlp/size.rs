//! What decoding a request would build, counted before it is built: a 4 KB gzipped body of
//! empty data points decodes to millions of structs, so the items are counted on the wire
//! first and a request with too many is refused without allocating them.
//!
//! An item is whatever the decoder allocates for: in protobuf, every length-delimited field
//! (a message or a string) of the messages from the request down to its data points (whose
//! attributes and exemplars are counted, not entered); in JSON, every object, array and string
//! at any depth.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a body was refused before decoding.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    /// More items than the limit.
    #[error(
        "the request has more than {limit} items (policy ingest.max_items_per_request): \
         send it in parts"
    )]
    TooMany {
        /// The policy's limit.
        limit: usize,
    },
    /// Not protobuf's wire format.
    #[error("malformed protobuf at byte {at}")]
    Protobuf {
        /// Offset of the fault, in the message where it was found.
        at: usize,
    },
    /// Not JSON.
    #[error("malformed OTLP JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// The messages on the path from the request to a data point.
#[derive(Debug, Clone, Copy)]
enum Level {
    Request,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    /// `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` or `Summary`.
    Points,
}

impl Level {
    /// The level field `field` of this one holds, if it is walked into.
    fn child(self, field: u64) -> Option<Level> {
        match (self, field) {
            (Level::Request, 1) => Some(Level::ResourceMetrics),
            (Level::ResourceMetrics, 2) => Some(Level::ScopeMetrics),
            (Level::ScopeMetrics, 2) => Some(Level::Metric),
            (Level::Metric, 5 | 7 | 9 | 10 | 11) => Some(Level::Points),
            // Resources, scopes and data points are counted with their fields, not entered.
            _ => None,
        }
    }

    /// Whether field `field` of this level is a resource, a scope or a data point, whose
    /// own fields are counted.
    fn holds_counted(self, field: u64) -> bool {
        matches!(
            (self, field),
            (
                Level::ResourceMetrics | Level::ScopeMetrics | Level::Points,
                1
            )
        )
    }
}

/// Counts the items of a protobuf `ExportMetricsServiceRequest`, up to `limit`.
pub fn protobuf_items(body: &[u8], limit: usize) -> Result<usize, SizeError> {
    let mut count = 0;
    walk(body, Level::Request, &mut count, limit)?;
    Ok(count)
}

/// Counts the length-delimited fields of `message`, and of those at a deeper level, into
/// `count`; the entered levels are at most five deep.
fn walk(message: &[u8], level: Level, count: &mut usize, limit: usize) -> Result<(), SizeError> {
    each_delimited(message, &mut |field, payload| {
        bump(count, limit)?;
        // Data points, resources and scopes are counted as one item each, plus their own
        // fields (not entered): a point's attributes are what it allocates.
        if let Some(child) = level.child(field) {
            walk(payload, child, count, limit)
        } else if level.holds_counted(field) {
            each_delimited(payload, &mut |_, _| bump(count, limit))
        } else {
            Ok(())
        }
    })
}

/// One more item, unless that is past `limit`.
fn bump(count: &mut usize, limit: usize) -> Result<(), SizeError> {
    *count += 1;
    if *count > limit {
        return Err(SizeError::TooMany { limit });
    }
    Ok(())
}

/// What `each_delimited` calls with a field's number and payload.
type FieldVisit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), SizeError> + 'a;

/// Calls `visit` with the number and payload of each length-delimited field of `message`,
/// in order, skipping the others; a message that is not protobuf's wire format is an error.
fn each_delimited(message: &[u8], visit: &mut FieldVisit<'_>) -> Result<(), SizeError> {
    let mut at = 0;
    while at < message.len() {
        let key = varint(message, &mut at)?;
        match key & 7 {
            0 => {
                varint(message, &mut at)?;
            }
            1 => at = skip(message, at, 8)?,
            5 => at = skip(message, at, 4)?,
            2 => {
                let len = usize::try_from(varint(message, &mut at)?)
                    .map_err(|_| SizeError::Protobuf { at })?;
                let end = skip(message, at, len)?;
                visit(key >> 3, &message[at..end])?;
                at = end;
            }
            // Groups (3, 4) are not in OTLP, and 6, 7 are not wire types.
            _ => return Err(SizeError::Protobuf { at }),
        }
    }
    Ok(())
}

/// Where `len` bytes from `at` end, if they are there.
fn skip(message: &[u8], at: usize, len: usize) -> Result<usize, SizeError> {
    at.checked_add(len)
        .filter(|&end| end <= message.len())
        .ok_or(SizeError::Protobuf { at })
}

/// Reads a base-128 varint at `at`, moving past it.
fn varint(message: &[u8], at: &mut usize) -> Result<u64, SizeError> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *message.get(*at).ok_or(SizeError::Protobuf { at: *at })?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(SizeError::Protobuf { at: *at })
}

/// Counts the objects, arrays and strings of a JSON body, up to `limit`, without building
/// any of them.
pub fn json_items(body: &[u8], limit: usize) -> Result<usize, SizeError> {
    let mut count = 0;
    let mut reader = serde_json::Deserializer::from_slice(body);
    let counted = Counter {
        count: &mut count,
        limit,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end());
    if count > limit {
        return Err(SizeError::TooMany { limit });
    }
    counted.map_err(SizeError::Json)?;
    Ok(count)
}

/// Counts one JSON value and what it holds.
struct Counter<'a> {
    count: &'a mut usize,
    limit: usize,
}

impl Counter<'_> {
    fn bump<E: serde::de::Error>(&mut self) -> Result<(), E> {
        *self.count += 1;
        if *self.count > self.limit {
            return Err(E::custom("too many items"));
        }
        Ok(())
    }

    fn inner(&mut self) -> Counter<'_> {
        Counter {
            count: self.count,
            limit: self.limit,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(mut self, _: &str) -> Result<(), E> {
        self.bump()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.bump()?;
        while seq.next_element_seed(self.inner())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.bump()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self.inner())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
    };
    use prost::Message;

    use super::*;

    /// A request of one metric with `points` empty data points.
    fn request(points: usize) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint::default(); points],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn protobuf_counts_every_message_down_to_the_points() {
        let body = request(10).encode_to_vec();
        // Resource metrics, scope metrics, metric, its name, the gauge, ten points.
        assert_eq!(protobuf_items(&body, 100).unwrap(), 15);
        assert!(matches!(
            protobuf_items(&body, 14),
            Err(SizeError::TooMany { limit: 14 })
        ));
    }

    #[test]
    fn a_million_empty_points_are_refused_on_the_wire() {
        let body = request(1_000_000).encode_to_vec();
        assert!(body.len() < 2_100_000, "{}", body.len());
        let refused = protobuf_items(&body, 100_000).unwrap_err();
        assert!(refused.to_string().contains("ingest.max_items_per_request"));
    }

    #[test]
    fn truncated_protobuf_is_malformed() {
        let body = request(3).encode_to_vec();
        let cut = &body[..body.len() - 1];
        assert!(matches!(
            protobuf_items(cut, 100),
            Err(SizeError::Protobuf { .. })
        ));
    }

    #[test]
    fn json_counts_objects_arrays_and_strings() {
        let body = br#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "m", "gauge": {"dataPoints": [{}, {}, {"asDouble": 1}]}}]}]}]}"#;
        // Three arrays and their objects down to the metric, its name, the gauge, the
        // points' array and the three points.
        assert_eq!(json_items(body, 100).unwrap(), 13);
        assert!(matches!(
            json_items(body, 12),
            Err(SizeError::TooMany { limit: 12 })
        ));
        assert!(matches!(
            json_items(b"{\"a\": [", 100),
            Err(SizeError::Json(_))
        ));
    }
}
