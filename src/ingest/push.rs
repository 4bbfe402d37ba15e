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

use super::{Rejection, check_agent, check_metric, check_timestamp, check_value};
use crate::domain::Sample;

/// A batch read from a body, checked item by item.
#[derive(Debug, Default)]
pub struct Batch {
    /// The samples that passed.
    pub samples: Vec<Sample>,
    /// The item index of each of `samples`.
    pub indices: Vec<usize>,
    /// The pool each agent's samples named (label `pool`), first one wins.
    pub pools: HashMap<String, String>,
    /// The items refused, in order.
    pub rejected: Vec<Rejection>,
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
}

fn malformed(e: serde_json::Error) -> BodyError {
    BodyError::Malformed {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

/// Reads `body` as a batch, checking each item against the clock `now_ms`. Items are read
/// one at a time from the array, so a batch of 25,000 never exists as a JSON tree: only the
/// samples taken from it are held.
pub fn parse(body: &[u8], now_ms: i64, max_future_secs: u64) -> Result<Batch, BodyError> {
    let first = body.iter().find(|b| !b" \t\r\n".contains(b));
    if first != Some(&b'[') {
        // Malformed JSON is located even when it is not an array.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(malformed)?;
        return Err(BodyError::NotArray);
    }
    let mut batch = Batch {
        // A sample in the usual shape takes 64 bytes or more; the vectors grow if not.
        samples: Vec::with_capacity(body.len() / 64),
        indices: Vec::with_capacity(body.len() / 64),
        ..Batch::default()
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    let items = Items {
        batch: &mut batch,
        now_ms,
        max_future_secs,
    };
    serde::Deserializer::deserialize_seq(&mut reader, items).map_err(malformed)?;
    reader.end().map_err(malformed)?;
    Ok(batch)
}

/// Reads the items of the batch's array into `batch` as they come.
struct Items<'a> {
    batch: &'a mut Batch,
    now_ms: i64,
    max_future_secs: u64,
}

impl<'de> serde::de::Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of samples")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            self.batch
                .take(index, item, self.now_ms, self.max_future_secs);
            index += 1;
        }
        Ok(())
    }
}

impl Batch {
    /// Keeps item `index` as a sample, or records why it is refused.
    fn take(&mut self, index: usize, item: Value, now_ms: i64, max_future_secs: u64) {
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
        match read_item(&mut item, now_ms, max_future_secs) {
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

fn read_item(item: &mut Map<String, Value>, now_ms: i64, max_future_secs: u64) -> Item {
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
    check_timestamp(ts_ms, now_ms, max_future_secs).map_err(|r| ("timestamp", r.to_string()))?;
    let pool = match item.get("labels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(labels)) => {
            if let Some((_, bad)) = labels.iter().find(|(_, v)| !v.is_string()) {
                return Err((
                    "labels",
                    format!("label values must be strings, not {}", kind(bad)),
                ));
            }
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

    fn reasons(batch: &Batch) -> Vec<(usize, &str, &str)> {
        batch
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str(), r.reason.as_str()))
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
        let batch = parse(body.as_bytes(), NOW, 300).unwrap();
        assert_eq!(batch.indices, vec![0, 6]);
        assert_eq!(batch.samples[0].ts_ms, NOW);
        assert_eq!(
            batch.samples[1].ts_ms,
            crate::clock::parse_time("2027-01-15T08:00:00Z").unwrap()
        );
        assert_eq!(batch.pools["a-3"], "edge");
        let got = reasons(&batch);
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
        let err = parse(b"[\n{\"agent\": \"a\",,}]", NOW, 300).unwrap_err();
        match err {
            BodyError::Malformed { line, column, .. } => assert_eq!((line, column), (2, 15)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(b"{}", NOW, 300), Err(BodyError::NotArray)));
    }
}
