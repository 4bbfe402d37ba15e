//! Every way a sample comes in from outside the controller: the JSON batch API (`push.rs`),
//! task tracking (`tasks.rs`, samples made from reported work), Prometheus scrape
//! (`scrape/`) and, beside them, the other formats agents speak. Each path turns its input into
//! [`Sample`](crate::domain::Sample)s, checks each one here, and hands them to the fleet with
//! `AdmitSamples`, which lets agents it has not met join a pool (or refuses them).
//!
//! The HTTP handlers of the push paths live in `api`; those formats know no transport. The
//! pull paths (`ws_pull.rs`) are clients: they open the sockets themselves.

pub mod otlp;
pub mod push;
pub mod scrape;
pub mod tasks;
pub mod ws_pull;

use serde::Serialize;

/// Longest agent id accepted, bytes.
pub const MAX_AGENT_LEN: usize = 253;
/// Longest metric name accepted, bytes.
pub const MAX_METRIC_LEN: usize = 200;

/// One refused item of a batch: where it was, which field, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// Position of the item in the batch, from 0.
    pub index: usize,
    /// The field at fault, e.g. `value`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why an agent id is refused, if it is.
pub fn check_agent(agent: &str) -> Result<(), String> {
    if agent.is_empty() {
        return Err("agent is empty".into());
    }
    if agent.len() > MAX_AGENT_LEN {
        return Err(format!("agent id is longer than {MAX_AGENT_LEN} bytes"));
    }
    if agent.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("agent id contains whitespace or control characters".into());
    }
    if agent == crate::actors::fleet::HOST_AGENT {
        return Err("agent id \"host\" is reserved for the controller's own host".into());
    }
    Ok(())
}

/// Why a metric name is refused, if it is: names have Prometheus' shape,
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn check_metric(metric: &str) -> Result<(), String> {
    let mut chars = metric.chars();
    let shaped = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !shaped {
        return Err(format!(
            "metric name {metric:?} does not match [a-zA-Z_:][a-zA-Z0-9_:]*"
        ));
    }
    if metric.len() > MAX_METRIC_LEN {
        return Err(format!("metric name is longer than {MAX_METRIC_LEN} bytes"));
    }
    Ok(())
}

/// Why a value is refused, if it is: NaN and infinities carry no reading.
pub fn check_value(value: f64) -> Result<(), String> {
    if value.is_nan() {
        Err("value is NaN".into())
    } else if value.is_infinite() {
        Err("value is infinite".into())
    } else {
        Ok(())
    }
}

/// Why a timestamp is refused, if it is: before 1970, or further ahead of `now_ms` than the
/// policy allows for clock skew.
pub fn check_timestamp(ts_ms: i64, now_ms: i64, max_future_secs: u64) -> Result<(), String> {
    if ts_ms < 0 {
        return Err("timestamp is before 1970".into());
    }
    let ahead = ts_ms - now_ms;
    if ahead > max_future_secs as i64 * 1000 {
        return Err(format!(
            "timestamp is {:.0} s in the future (at most {max_future_secs} s allowed)",
            ahead as f64 / 1000.0
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_prometheus_shape() {
        assert!(check_metric("cpu_percent").is_ok());
        assert!(check_metric("node:load1").is_ok());
        assert!(check_metric("9lives").is_err());
        assert!(check_metric("cpu percent").is_err());
        assert!(check_metric("").is_err());
        assert!(check_metric(&"a".repeat(MAX_METRIC_LEN + 1)).is_err());
        assert!(check_agent("worker-1").is_ok());
        assert!(check_agent("").is_err());
        assert!(check_agent("a b").is_err());
        assert!(check_agent("host").is_err());
    }

    #[test]
    fn values_and_times_are_checked() {
        assert!(check_value(1.5).is_ok());
        assert_eq!(check_value(f64::NAN).unwrap_err(), "value is NaN");
        assert_eq!(
            check_value(f64::NEG_INFINITY).unwrap_err(),
            "value is infinite"
        );
        assert!(check_timestamp(1_000, 1_000, 300).is_ok());
        assert!(check_timestamp(301_001, 1_000, 300).is_err());
        assert!(check_timestamp(-1, 1_000, 300).is_err());
    }
}
