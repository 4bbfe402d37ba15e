//! Time: every timestamp in swarmpilot is milliseconds since the Unix epoch, read from a
//! [`Clock`] the controller hands to its actors (the system's, or one a test drives).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch, now, on the system clock.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Where the controller reads the time: the system clock, or a manual one that moves only
/// when it is told to.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start_ms` until advanced.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Milliseconds since the Unix epoch, now, on this clock.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => now_ms(),
        }
    }

    /// Moves a manual clock forward by `by` and returns the new time; the system clock
    /// cannot be moved and only reports its time.
    pub fn advance(&self, by: Duration) -> i64 {
        match &self.manual {
            Some(at) => {
                at.fetch_add(by.as_millis() as i64, Ordering::SeqCst) + by.as_millis() as i64
            }
            None => now_ms(),
        }
    }
}

pub use crate::domain::time::rfc3339;

/// Parses an RFC 3339 timestamp or a plain integer of epoch milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let ms = 1_700_000_000_123;
        assert_eq!(rfc3339(ms), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time(&rfc3339(ms)), Some(ms));
        assert_eq!(parse_time("42"), Some(42));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(shared.advance(Duration::from_millis(2_500)), 3_500);
        assert_eq!(clock.now_ms(), 3_500);
    }
}
