//! The JSON batch of `POST /api/v1/samples`: `[{agent, metric, value, timestamp?, labels?}]`,
//! read item by item so one bad sample is reported (index, field, reason) and the others
//! are kept.
//!
//! `value` is a JSON number, or a string holding one (`"NaN"` and `"Inf"` are read, then
//! refused); `timestamp` is epoch milliseconds or an RFC 3339 string, the controller's clock
//! when absent; `labels` is an object of strings, of which `pool` names the pool an agent met
//! for the first time joins.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Refusals, Rejection, check_agent, check_metric, check_timestamp, check_value};
use crate::domain::Sample;
use crate::policy::IngestPolicy;

/// What one push may carry, from the policy's `ingest` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How far ahead of the clock a timestamp may be, seconds.
    pub max_future_secs: u64,
    /// Most items in one request (`ingest.max_items_per_request`).
    pub max_items: usize,
    /// Most refusals listed one by one (`ingest.max_rejections_listed`).
    pub max_listed: usize,
    /// Most labels on one sample (`ingest.max_labels_per_sample`).
    pub max_labels: usize,
    /// Longest label name or value, bytes (`ingest.max_label_bytes`).
    pub max_label_bytes: usize,
}

impl Limits {
    /// The limits `ingest` sets.
    pub fn of(ingest: &IngestPolicy) -> Self {
        Limits {
            max_future_secs: ingest.max_future_secs,
            max_items: ingest.max_items_per_request,
            max_listed: ingest.max_rejections_listed,
            max_labels: ingest.max_labels_per_sample,
            max_label_bytes: ingest.max_label_bytes,
        }
    }
}

/// A batch read from a body, checked item by item.
#[derive(Debug, Default)]
pub struct Batch {
    /// The samples that passed.
    pub samples: Vec<Sample>,
    /// The item index of each of `samples`.
    pub indices: Vec<usize>,
    /// The pool each agent's samples named (label `pool`), first one wins.
    pub pools: HashMap<String, String>,
    /// The items refused: all counted, the first few listed.
    pub rejected: Refusals,
}

/// Why a body is not a batch at all.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Malformed {
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// JSON, but not an array.
    #[error("the body must be a JSON array of samples, [{{\"agent\", \"metric\", \"value\"}}]")]
    NotArray,
    /// More items than one request may carry; none was kept.
    #[error(
        "the batch has more than {limit} items (policy ingest.max_items_per_request): \
         send it in parts"
    )]
    TooMany {
        /// The policy's limit.
        limit: usize,
    },
}

fn malformed(e: serde_json::Error) -> BodyError {
    BodyError::Malformed {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

/// Reads `body` as a batch, checking each item against the clock `now_ms` and `limits`.
/// Items are read one at a time from the array, so a batch of 25,000 never exists as a JSON
/// tree: only the samples taken from it are held, and reading stops at the item limit.
pub fn parse(body: &[u8], now_ms: i64, limits: Limits) -> Result<Batch, BodyError> {
    let first = body.iter().find(|b| !b" \t\r\n".contains(b));
    if first != Some(&b'[') {
        // Malformed JSON is located even when it is not an array.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(malformed)?;
        return Err(BodyError::NotArray);
    }
    // A sample in the usual shape takes 64 bytes or more; the vectors grow if not.
    let room = (body.len() / 64).min(limits.max_items);
    let mut batch = Batch {
        samples: Vec::with_capacity(room),
        indices: Vec::with_capacity(room),
        pools: HashMap::new(),
        rejected: Refusals::new(limits.max_listed),
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    let mut too_many = false;
    let items = Items {
        batch: &mut batch,
        now_ms,
        limits,
        too_many: &mut too_many,
    };
    let read = serde::Deserializer::deserialize_seq(&mut reader, items);
    if too_many {
        return Err(BodyError::TooMany {
            limit: limits.max_items,
        });
    }
    read.map_err(malformed)?;
    reader.end().map_err(malformed)?;
    Ok(batch)
}

/// Reads the items of the batch's array into `batch` as they come.
struct Items<'a> {
    batch: &'a mut Batch,
    now_ms: i64,
    limits: Limits,
    /// Set when the array has more items than the limit (reading then stops).
    too_many: &'a mut bool,
}

impl<'de> serde::de::Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of samples")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            if index == self.limits.max_items {
                *self.too_many = true;
                return Err(serde::de::Error::custom("too many items"));
            }
            self.batch.take(index, item, self.now_ms, &self.limits);
            index += 1;
        }
        Ok(())
    }
}

impl Batch {
    /// Keeps item `index` as a sample, or records why it is refused.
    fn take(&mut self, index: usize, item: Value, now_ms: i64, limits: &Limits) {
        let refuse = |field: &str, reason: String| Rejection {
            index,
            field: field.to_string(),
            reason,
        };
        let Value::Object(mut item) = item else {
            self.rejected
                .push(refuse("", "a sample must be a JSON object".into()));
            return;
        };
        match read_item(&mut item, now_ms, limits) {
            Ok((sample, pool)) => {
                if let Some(pool) = pool {
                    self.pools.entry(sample.agent.clone()).or_insert(pool);
                }
                self.samples.push(sample);
                self.indices.push(index);
            }
            Err((field, reason)) => self.rejected.push(refuse(field, reason)),
        }
    }
}

/// A sample and the pool its labels name, or the first field at fault.
type Item = Result<(Sample, Option<String>), (&'static str, String)>;

fn read_item(item: &mut Map<String, Value>, now_ms: i64, limits: &Limits) -> Item {
    let agent = string(item, "agent")?;
    check_agent(&agent).map_err(|r| ("agent", r.to_string()))?;
    let metric = string(item, "metric")?;
    check_metric(&metric).map_err(|r| ("metric", r.to_string()))?;
    let value = match item.get("value") {
        None | Some(Value::Null) => return Err(("value", "missing value".into())),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ("value", format!("{s:?} is not a number")))?,
        Some(other) => return Err(("value", format!("must be a number, not {}", kind(other)))),
    };
    check_value(value).map_err(|r| ("value", r.to_string()))?;
    let ts_ms = match item.get("timestamp") {
        None | Some(Value::Null) => now_ms,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) => ms,
            None => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map_or(-1, |f| f as i64),
        },
        Some(Value::String(s)) => crate::clock::parse_time(s).ok_or((
            "timestamp",
            format!("{s:?} is neither epoch milliseconds nor an RFC 3339 time"),
        ))?,
        Some(other) => {
            return Err((
                "timestamp",
                format!(
                    "must be epoch milliseconds or an RFC 3339 string, not {}",
                    kind(other)
                ),
            ));
        }
    };
    check_timestamp(ts_ms, now_ms, limits.max_future_secs)
        .map_err(|r| ("timestamp", r.to_string()))?;
    let pool = match item.get("labels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(labels)) => {
            check_labels(labels, limits)?;
            labels
                .get("pool")
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        Some(other) => return Err(("labels", format!("must be an object, not {}", kind(other)))),
    };
    Ok((
        Sample {
            agent,
            metric,
            ts_ms,
            value,
        },
        pool,
    ))
}

/// Label values are strings, no more of them and no longer than the limits allow.
fn check_labels(
    labels: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), (&'static str, String)> {
    if labels.len() > limits.max_labels {
        return Err((
            "labels",
            format!(
                "{} labels, more than the {} policy ingest.max_labels_per_sample allows",
                labels.len(),
                limits.max_labels
            ),
        ));
    }
    for (name, value) in labels {
        let Value::String(value) = value else {
            return Err((
                "labels",
                format!("label values must be strings, not {}", kind(value)),
            ));
        };
        if name.len().max(value.len()) > limits.max_label_bytes {
            return Err((
                "labels",
                format!(
                    "label {:?} is longer than the {} bytes policy ingest.max_label_bytes allows",
                    name.chars().take(40).collect::<String>(),
                    limits.max_label_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// Takes the string field `name` out of `item`.
fn string(
    item: &mut Map<String, Value>,
    name: &'static str,
) -> Result<String, (&'static str, String)> {
    match item.remove(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err((name, format!("missing {name}"))),
        Some(other) => Err((name, format!("must be a string, not {}", kind(&other)))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    const LIMITS: Limits = Limits {
        max_future_secs: 300,
        max_items: 100,
        max_listed: 10,
        max_labels: 4,
        max_label_bytes: 32,
    };

    fn reasons(batch: Batch) -> Vec<(usize, String, String)> {
        batch
            .rejected
            .into_listed()
            .into_iter()
            .map(|r| (r.index, r.field, r.reason))
            .collect()
    }

    #[test]
    fn good_items_are_kept_and_bad_ones_named() {
        let body = format!(
            r#"[
            {{"agent": "a-1", "metric": "cpu_percent", "value": 12.5}},
            {{"agent": "a-1", "metric": "cpu_percent", "value": "NaN"}},
            {{"agent": "a-2", "metric": "cpu percent", "value": 1}},
            {{"metric": "cpu_percent", "value": 1}},
            {{"agent": "a-2", "metric": "queue_size", "value": "+Inf"}},
            {{"agent": "a-2", "metric": "queue_size", "value": 3, "timestamp": {}}},
            {{"agent": "a-3", "metric": "queue_size", "value": 4,
              "timestamp": "2027-01-15T08:00:00Z", "labels": {{"pool": "edge", "zone": "b"}}}},
            7
        ]"#,
            NOW + 3_600_000
        );
        let batch = parse(body.as_bytes(), NOW, LIMITS).unwrap();
        assert_eq!(batch.indices, vec![0, 6]);
        assert_eq!(batch.samples[0].ts_ms, NOW);
        assert_eq!(
            batch.samples[1].ts_ms,
            crate::clock::parse_time("2027-01-15T08:00:00Z").unwrap()
        );
        assert_eq!(batch.pools["a-3"], "edge");
        let got = reasons(batch);
        let got: Vec<(usize, &str, &str)> = got
            .iter()
            .map(|(i, f, r)| (*i, f.as_str(), r.as_str()))
            .collect();
        assert_eq!(got[0], (1, "value", "value is NaN"));
        assert_eq!((got[1].0, got[1].1), (2, "metric"));
        assert_eq!(got[2], (3, "agent", "missing agent"));
        assert_eq!(got[3], (4, "value", "value is infinite"));
        assert_eq!((got[4].0, got[4].1), (5, "timestamp"));
        assert!(got[4].2.contains("in the future"), "{}", got[4].2);
        assert_eq!(got[5], (7, "", "a sample must be a JSON object"));
    }

    #[test]
    fn malformed_json_is_located() {
        let err = parse(b"[\n{\"agent\": \"a\",,}]", NOW, LIMITS).unwrap_err();
        match err {
            BodyError::Malformed { line, column, .. } => assert_eq!((line, column), (2, 15)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(b"{}", NOW, LIMITS),
            Err(BodyError::NotArray)
        ));
    }

    #[test]
    fn a_batch_past_the_item_limit_is_refused_whole() {
        let items = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        let batch = parse(items(100).as_bytes(), NOW, LIMITS).unwrap();
        assert!(batch.samples.is_empty());
        // Every bad item is counted; only the first few are listed.
        assert_eq!(batch.rejected.total(), 100);
        let listed = batch.rejected.into_listed();
        assert_eq!(listed.len(), 10);
        assert_eq!(listed.last().unwrap().index, 9);
        let err = parse(items(101).as_bytes(), NOW, LIMITS).unwrap_err();
        assert!(matches!(err, BodyError::TooMany { limit: 100 }), "{err}");
        assert!(err.to_string().contains("ingest.max_items_per_request"));
    }

    #[test]
    fn labels_past_their_limits_are_refused() {
        let sample = |labels: &str| {
            format!(r#"[{{"agent": "a", "metric": "m", "value": 1, "labels": {labels}}}]"#)
        };
        let many = sample(r#"{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}"#);
        let long = sample(&format!(r#"{{"zone": "{}"}}"#, "x".repeat(33)));
        let fine = sample(&format!(r#"{{"zone": "{}"}}"#, "x".repeat(32)));
        for (body, says) in [
            (many, "ingest.max_labels_per_sample"),
            (long, "ingest.max_label_bytes"),
        ] {
            let got = reasons(parse(body.as_bytes(), NOW, LIMITS).unwrap());
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].1, "labels");
            assert!(got[0].2.contains(says), "{}", got[0].2);
        }
        assert_eq!(
            parse(fine.as_bytes(), NOW, LIMITS).unwrap().samples.len(),
            1
        );
    }

    #[test]
    fn refusals_keep_the_first_by_index_whatever_the_order() {
        let mut refusals = Refusals::new(3);
        for index in [9, 2, 7, 1, 8, 0, 5, 4, 6, 3] {
            refusals.push(Rejection {
                index,
                field: String::new(),
                reason: String::new(),
            });
        }
        assert_eq!(refusals.total(), 10);
        let listed: Vec<usize> = refusals.into_listed().iter().map(|r| r.index).collect();
        assert_eq!(listed, vec![0, 1, 2]);
    }
}
