//! What a model call or an agent's task reports beyond success: why it failed, and the
//! tokens it used with which model.

use serde::{Deserialize, Serialize};

use super::metric;

/// Why a model call or a task failed, in the three kinds the planner tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The model provider refused it for its rate limit (HTTP 429): more agents make it worse.
    RateLimited,
    /// It took too long.
    Timeout,
    /// Any other failure.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 3] = [ErrorKind::RateLimited, ErrorKind::Timeout, ErrorKind::Other];

    /// The kind's name, as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Other => "other",
        }
    }

    /// The kind a name writes, if any.
    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind of an OpenTelemetry `error.type` value: a 429 or a name that says rate limit
    /// (`RateLimitError`, `rate_limit_exceeded`, `throttled`) is rate limited; a 408 or 504 or
    /// a name with `timeout` or `timed out` in it is a timeout; anything else is other.
    pub fn of_error_type(error_type: &str) -> ErrorKind {
        let lower = error_type.to_ascii_lowercase();
        let squashed: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
        if lower == "429"
            || squashed.contains("ratelimit")
            || squashed.contains("throttl")
            || squashed.contains("toomanyrequests")
        {
            ErrorKind::RateLimited
        } else if lower == "408"
            || lower == "504"
            || squashed.contains("timeout")
            || squashed.contains("timedout")
            || squashed.contains("deadlineexceeded")
        {
            ErrorKind::Timeout
        } else {
            ErrorKind::Other
        }
    }

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The per-second series of this kind's errors.
    pub fn metric(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => metric::RATE_LIMITED_PER_S,
            ErrorKind::Timeout => metric::TIMEOUTS_PER_S,
            ErrorKind::Other => metric::OTHER_ERRORS_PER_S,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_of_common_sdks_are_sorted_into_kinds() {
        for rate_limited in ["429", "RateLimitError", "rate_limit_exceeded", "Throttled"] {
            assert_eq!(
                ErrorKind::of_error_type(rate_limited),
                ErrorKind::RateLimited
            );
        }
        for timeout in ["504", "APITimeoutError", "timed_out", "DEADLINE_EXCEEDED"] {
            assert_eq!(ErrorKind::of_error_type(timeout), ErrorKind::Timeout);
        }
        for other in ["500", "APIConnectionError", "_OTHER"] {
            assert_eq!(ErrorKind::of_error_type(other), ErrorKind::Other);
        }
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.name()), Some(kind));
            assert_eq!(ErrorKind::ALL[kind.index()], kind);
        }
    }
}
