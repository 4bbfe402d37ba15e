//! Pool-level inputs read from a Prometheus-compatible server (Prometheus, Thanos, Mimir)
//! with an instant query, `GET {server}/api/v1/query?query=...`, as KEDA's Prometheus
//! scaler reads them: the answer must be one series or a scalar.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

pub use crate::domain::pool::InputState;

/// The latest value of every pool input, by `(pool, input)`; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PoolInputs(Arc<Mutex<BTreeMap<(String, String), InputState>>>);

impl PoolInputs {
    /// A copy of every input.
    pub fn snapshot(&self) -> BTreeMap<(String, String), InputState> {
        // A poisoned lock only holds readings: still worth showing.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records one query's outcome.
    pub fn record(&self, key: (String, String), now_ms: i64, outcome: Result<f64, QueryError>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let state = all.entry(key).or_default();
        match outcome {
            Ok(value) => {
                state.value = Some(value);
                state.read_ms = now_ms;
                state.last_error = None;
            }
            Err(error) => {
                state.value = None;
                state.failures += 1;
                state.last_error = Some(error.to_string());
            }
        }
    }

    /// Forgets inputs no longer in the policy.
    pub fn retain(&self, keep: impl Fn(&(String, String)) -> bool) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|key, _| keep(key));
    }
}

/// Why a query gave no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// No answer within the timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The request failed or the answer could not be read.
    #[error("request failed: {0}")]
    Request(String),
    /// The server refused the query (bad PromQL, overload).
    #[error("the server answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's `error`, or the body's start.
        message: String,
    },
    /// An answer of a shape this reader does not take.
    #[error("{0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Value,
}

/// Runs `query` on `server`, authenticated by `auth`, and reads its one value.
pub async fn query(
    client: &reqwest::Client,
    server: &str,
    query: &str,
    timeout_ms: u64,
    auth: &crate::policy::HttpAuth,
) -> Result<f64, QueryError> {
    let base = format!("{}/api/v1/query", server.trim_end_matches('/'));
    let url = reqwest::Url::parse_with_params(&base, &[("query", query)])
        .map_err(|e| QueryError::Request(format!("bad server URL: {e}")))?;
    let ask = async {
        let request = super::auth::authorize(client.get(url), auth)
            .map_err(|e| QueryError::Request(e.to_string()))?;
        let response = request
            .send()
            .await
            .map_err(|e| QueryError::Request(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| QueryError::Request(e.without_url().to_string()))?;
        Ok::<_, QueryError>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_millis(timeout_ms), ask)
        .await
        .map_err(|_| QueryError::Timeout(timeout_ms))??;
    read_answer(status, &body)
}

/// The value of one answer of the query API.
pub fn read_answer(status: u16, body: &[u8]) -> Result<f64, QueryError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| QueryError::Refused {
        status,
        message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    })?;
    if answer.status != "success" || !(200..300).contains(&status) {
        return Err(QueryError::Refused {
            status,
            message: answer.error.unwrap_or_else(|| answer.status.clone()),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| QueryError::Shape("the answer has no data".into()))?;
    let pair = match data.result_type.as_str() {
        "scalar" => data.result,
        "vector" => match data.result {
            Value::Array(mut series) if series.len() == 1 => series.remove(0)["value"].take(),
            Value::Array(series) if series.is_empty() => {
                return Err(QueryError::Shape("the query answered no series".into()));
            }
            Value::Array(series) => {
                return Err(QueryError::Shape(format!(
                    "the query answered {} series; aggregate them to one, e.g. sum(...)",
                    series.len()
                )));
            }
            _ => return Err(QueryError::Shape("a vector that is not an array".into())),
        },
        other => {
            return Err(QueryError::Shape(format!(
                "a {other} answer; the query must give one series or a scalar"
            )));
        }
    };
    // A sample is `[unix seconds, "value"]`.
    let value = pair
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| QueryError::Shape("a sample that is not [time, \"value\"]".into()))?;
    let value: f64 = match value {
        "NaN" => f64::NAN,
        "+Inf" | "-Inf" => f64::INFINITY,
        _ => value
            .parse()
            .map_err(|_| QueryError::Shape(format!("{value:?} is not a number")))?,
    };
    if !value.is_finite() {
        return Err(QueryError::Shape(format!("the value is {value}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> Result<f64, String> {
        read_answer(status, body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn one_series_or_a_scalar_is_a_value_and_anything_else_says_why() {
        let vector = |result: &str| {
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#)
        };
        let one = r#"[{"metric":{},"value":[1700000000.5,"12.5"]}]"#;
        assert_eq!(check(200, &vector(one)), Ok(12.5));
        let scalar =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
        assert_eq!(check(200, scalar), Ok(3.0));
        assert!(check(200, &vector("[]")).unwrap_err().contains("no series"));
        let two = r#"[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]"#;
        assert!(check(200, &vector(two)).unwrap_err().contains("2 series"));
        let nan = r#"[{"metric":{},"value":[1,"NaN"]}]"#;
        assert!(check(200, &vector(nan)).unwrap_err().contains("NaN"));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(check(200, matrix).unwrap_err().contains("matrix"));
        let refused =
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            check(400, refused).unwrap_err(),
            "the server answered 400: parse error at char 5"
        );
        assert!(
            check(502, "<html>bad gateway</html>")
                .unwrap_err()
                .contains("502")
        );
    }
}
