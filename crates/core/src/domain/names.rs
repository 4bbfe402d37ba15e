//! What a sample may carry: agent ids, metric names, values and timestamps. Every source of
//! samples (push, OTLP, scrape, WebSocket pull, tasks) and the policy checks use these rules.

/// Longest agent id accepted, bytes.
pub const MAX_AGENT_LEN: usize = 253;
/// Longest metric name accepted, bytes.
pub const MAX_METRIC_LEN: usize = 200;
/// The agent id of the controller's own host; no agent may take it.
pub const HOST_AGENT: &str = "host";

/// Why a part of a sample is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// The agent id is empty.
    #[error("agent is empty")]
    EmptyAgent,
    /// The agent id is too long.
    #[error("agent id is longer than {MAX_AGENT_LEN} bytes")]
    AgentTooLong,
    /// The agent id has whitespace or control characters.
    #[error("agent id contains whitespace or control characters")]
    AgentCharacters,
    /// The agent id is the host's.
    #[error("agent id \"host\" is reserved for the controller's own host")]
    ReservedAgent,
    /// The metric name does not have Prometheus' shape.
    #[error("metric name {0:?} does not match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    MetricShape(String),
    /// The metric name is too long.
    #[error("metric name is longer than {MAX_METRIC_LEN} bytes")]
    MetricTooLong,
    /// The value is NaN.
    #[error("value is NaN")]
    NotANumber,
    /// The value is infinite.
    #[error("value is infinite")]
    Infinite,
    /// The timestamp is before the epoch.
    #[error("timestamp is before 1970")]
    BeforeEpoch,
    /// The timestamp is further ahead than clock skew explains.
    #[error("timestamp is {ahead_secs:.0} s in the future (at most {max_future_secs} s allowed)")]
    Future {
        /// How far ahead it is, seconds.
        ahead_secs: f64,
        /// How far ahead the policy allows.
        max_future_secs: u64,
    },
}

/// Why an agent id is refused, if it is.
pub fn check_agent(agent: &str) -> Result<(), SampleError> {
    if agent.is_empty() {
        return Err(SampleError::EmptyAgent);
    }
    if agent.len() > MAX_AGENT_LEN {
        return Err(SampleError::AgentTooLong);
    }
    if agent.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SampleError::AgentCharacters);
    }
    if agent == HOST_AGENT {
        return Err(SampleError::ReservedAgent);
    }
    Ok(())
}

/// Why a metric name is refused, if it is: names have Prometheus' shape,
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn check_metric(metric: &str) -> Result<(), SampleError> {
    let mut chars = metric.chars();
    let shaped = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !shaped {
        return Err(SampleError::MetricShape(metric.to_string()));
    }
    if metric.len() > MAX_METRIC_LEN {
        return Err(SampleError::MetricTooLong);
    }
    Ok(())
}

/// Why a value is refused, if it is: NaN and infinities carry no reading.
pub fn check_value(value: f64) -> Result<(), SampleError> {
    if value.is_nan() {
        Err(SampleError::NotANumber)
    } else if value.is_infinite() {
        Err(SampleError::Infinite)
    } else {
        Ok(())
    }
}

/// Why a timestamp is refused, if it is: before 1970, or further ahead of `now_ms` than the
/// policy allows for clock skew.
pub fn check_timestamp(ts_ms: i64, now_ms: i64, max_future_secs: u64) -> Result<(), SampleError> {
    if ts_ms < 0 {
        return Err(SampleError::BeforeEpoch);
    }
    let ahead = ts_ms - now_ms;
    if ahead > max_future_secs as i64 * 1000 {
        return Err(SampleError::Future {
            ahead_secs: ahead as f64 / 1000.0,
            max_future_secs,
        });
    }
    Ok(())
}

/// Whether `text` matches `pattern`, in which `*` stands for any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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
        assert_eq!(
            check_agent("host").unwrap_err().to_string(),
            "agent id \"host\" is reserved for the controller's own host"
        );
    }

    #[test]
    fn values_and_times_are_checked() {
        assert!(check_value(1.5).is_ok());
        assert_eq!(
            check_value(f64::NAN).unwrap_err().to_string(),
            "value is NaN"
        );
        assert_eq!(
            check_value(f64::NEG_INFINITY).unwrap_err().to_string(),
            "value is infinite"
        );
        assert!(check_timestamp(1_000, 1_000, 300).is_ok());
        assert_eq!(
            check_timestamp(301_001, 1_000, 300)
                .unwrap_err()
                .to_string(),
            "timestamp is 300 s in the future (at most 300 s allowed)"
        );
        assert!(check_timestamp(-1, 1_000, 300).is_err());
    }

    #[test]
    fn globs_match_any_run_of_characters_where_a_star_stands() {
        for (pattern, text, expected) in [
            ("workers-*", "workers-7f9c", true),
            ("workers-*", "worker-1", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*a", "a", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*-1", "fake-1", true),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
