//! The metrics protocol agents of this kind speak over WebSocket, and its mapping to samples.
//!
//! The client sends `{"type": "metrics_request"}`; the agent answers
//! `{"type": "metrics_response", "agentType", "cpu", "memory", "responseTime", "errorRate",
//! "activeConnections", "lastHeartbeat", "status"}`. Units, as the controller reads them:
//!
//! | field               | sample               | unit                                   |
//! |---------------------|----------------------|----------------------------------------|
//! | `cpu`               | `cpu_percent`        | percent of one core (as the collector) |
//! | `memory`            | `memory_percent`     | percent of the host's memory           |
//! | `responseTime`      | `response_time_ms`   | milliseconds                           |
//! | `errorRate`         | `error_rate`         | percent of requests, 0 to 100 (as the alert rules and verification read it) |
//! | `activeConnections` | `active_connections` | count                                  |
//!
//! A numeric field that is absent or `null` gives no sample (an agent with no recent requests
//! has no response time). `status` is one of `active`, `idle`, `busy`, `error`, `offline`.
//! `agentType` and `lastHeartbeat` are not used: samples carry the controller's clock at
//! receipt, since agents' clocks differ. Other fields are ignored, and so are
//! messages of another `type`.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{AgentStatus, Sample, metric};
use crate::ingest::check_value;

/// What the client sends every sampling interval.
pub const METRICS_REQUEST: &str = r#"{"type":"metrics_request"}"#;

/// The `type` of an answer.
pub const METRICS_RESPONSE: &str = "metrics_response";

/// One `metrics_response`, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Metric name and value, for each numeric field present.
    pub values: Vec<(&'static str, f64)>,
    /// The status the agent reports of itself, if it does.
    pub status: Option<AgentStatus>,
}

/// What one text message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A metrics response.
    Response(Reading),
    /// A message of another type, e.g. an agent's own event; not an answer.
    Other,
}

/// Why a message is not a usable metrics response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or not an object with a `type`.
    #[error("not a JSON object with a \"type\": {0}")]
    NotMessage(String),
    /// A `metrics_response` with a field of the wrong shape.
    #[error("malformed metrics_response: {0}")]
    Field(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    cpu: Option<f64>,
    #[serde(default)]
    memory: Option<f64>,
    #[serde(default)]
    response_time: Option<f64>,
    #[serde(default)]
    error_rate: Option<f64>,
    #[serde(default)]
    active_connections: Option<f64>,
    #[serde(default)]
    status: Option<WireStatus>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireStatus {
    Active,
    Idle,
    Busy,
    Error,
    Offline,
}

/// Reads one text message from an agent.
pub fn parse(text: &str) -> Result<Message, ProtocolError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::NotMessage(e.to_string()))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::NotMessage("no string \"type\"".into()))?;
    if kind != METRICS_RESPONSE {
        return Ok(Message::Other);
    }
    let response: Response =
        serde_json::from_value(value).map_err(|e| ProtocolError::Field(e.to_string()))?;
    let fields = [
        ("cpu", metric::CPU_PERCENT, response.cpu),
        ("memory", metric::MEMORY_PERCENT, response.memory),
        (
            "responseTime",
            metric::RESPONSE_TIME_MS,
            response.response_time,
        ),
        ("errorRate", metric::ERROR_RATE, response.error_rate),
        (
            "activeConnections",
            metric::ACTIVE_CONNECTIONS,
            response.active_connections,
        ),
    ];
    let mut values = Vec::with_capacity(fields.len());
    for (field, name, value) in fields {
        let Some(value) = value else { continue };
        check_value(value).map_err(|r| ProtocolError::Field(format!("{field}: {r}")))?;
        if value < 0.0 {
            return Err(ProtocolError::Field(format!(
                "{field} is negative ({value})"
            )));
        }
        if field == "errorRate" && value > 100.0 {
            return Err(ProtocolError::Field(format!(
                "errorRate {value} is above 100 (it is a percent)"
            )));
        }
        values.push((name, value));
    }
    let status = response.status.map(|status| match status {
        WireStatus::Active => AgentStatus::Active,
        WireStatus::Idle => AgentStatus::Idle,
        WireStatus::Busy => AgentStatus::Busy,
        WireStatus::Error => AgentStatus::Error,
        WireStatus::Offline => AgentStatus::Offline,
    });
    Ok(Message::Response(Reading { values, status }))
}

// === impl Reading ===

impl Reading {
    /// The samples of `agent` this reading gives, stamped `ts_ms`.
    pub fn samples(&self, agent: &str, ts_ms: i64) -> Vec<Sample> {
        self.values
            .iter()
            .map(|&(metric, value)| Sample {
                agent: agent.to_string(),
                metric: metric.to_string(),
                ts_ms,
                value,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text: &str) -> Reading {
        match parse(text) {
            Ok(Message::Response(reading)) => reading,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn every_field_maps_to_its_metric() {
        let got = reading(
            r#"{"type": "metrics_response", "agentType": "coder", "cpu": 37.5, "memory": 12.25,
                "responseTime": 180, "errorRate": 2.5, "activeConnections": 4,
                "lastHeartbeat": "2027-01-15T08:00:00Z", "status": "busy", "extra": [1]}"#,
        );
        assert_eq!(
            got.values,
            [
                ("cpu_percent", 37.5),
                ("memory_percent", 12.25),
                ("response_time_ms", 180.0),
                ("error_rate", 2.5),
                ("active_connections", 4.0),
            ]
        );
        assert_eq!(got.status, Some(AgentStatus::Busy));
        let samples = got.samples("a-1", 1_000);
        assert_eq!(samples.len(), 5);
        assert!(samples.iter().all(|s| s.agent == "a-1" && s.ts_ms == 1_000));
    }

    #[test]
    fn absent_and_null_fields_give_no_sample() {
        let got = reading(
            r#"{"type": "metrics_response", "cpu": 1, "responseTime": null, "lastHeartbeat": 17}"#,
        );
        assert_eq!(got.values, [("cpu_percent", 1.0)]);
        assert_eq!(got.status, None);
        for status in ["active", "idle", "error", "offline"] {
            let text = format!(r#"{{"type": "metrics_response", "status": "{status}"}}"#);
            assert!(reading(&text).status.is_some(), "{status}");
        }
    }

    #[test]
    fn other_messages_are_not_answers_and_bad_ones_say_why() {
        assert_eq!(
            parse(r#"{"type": "event", "cpu": "x"}"#),
            Ok(Message::Other)
        );
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            error("not json").starts_with("not a JSON object"),
            "{}",
            error("not json")
        );
        assert!(error(r#"{"cpu": 1}"#).contains("no string \"type\""));
        let wrong = error(r#"{"type": "metrics_response", "cpu": "high"}"#);
        assert!(wrong.starts_with("malformed metrics_response"), "{wrong}");
        let status = error(r#"{"type": "metrics_response", "status": "sleepy"}"#);
        assert!(status.contains("sleepy"), "{status}");
        assert!(error(r#"{"type": "metrics_response", "cpu": -1}"#).contains("cpu is negative"));
        assert!(
            error(r#"{"type": "metrics_response", "errorRate": 250}"#).contains("percent"),
            "a fraction or a percent above 100 is refused, not guessed at"
        );
    }
}
