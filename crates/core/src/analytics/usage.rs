//! Model usage over an interval (tokens, cost, calls, their time, errors by kind) and the
//! per-second series it gives. Task tracking and OTLP GenAI metrics both add into it.

use crate::domain::genai::ErrorKind;
use crate::domain::{Sample, metric};

/// What one agent used of its models over one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Input tokens.
    pub tokens_in: f64,
    /// Output tokens.
    pub tokens_out: f64,
    /// What the priced tokens cost.
    pub cost: f64,
    /// Model calls.
    pub calls: f64,
    /// Seconds those calls took, all together.
    pub call_seconds: f64,
    /// Failures, by [`ErrorKind::index`].
    pub errors: [f64; 3],
    /// Token counts were reported (so zero tokens is a reading, not a gap).
    pub reports_tokens: bool,
    /// Some tokens had a price.
    pub priced: bool,
    /// Model calls were reported.
    pub reports_calls: bool,
    /// Failures by kind were reported.
    pub reports_errors: bool,
}

impl Usage {
    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        !self.reports_tokens && !self.reports_calls && !self.reports_errors
    }

    /// A new interval of the same source: nothing used yet, but what it reports is known,
    /// so a quiet interval gives zeros rather than a gap.
    pub fn next_interval(&self) -> Usage {
        Usage {
            reports_tokens: self.reports_tokens,
            priced: self.priced,
            reports_calls: self.reports_calls,
            reports_errors: self.reports_errors,
            ..Usage::default()
        }
    }

    /// Adds tokens, and their cost when a price is known.
    pub fn add_tokens(&mut self, tokens_in: f64, tokens_out: f64, cost: Option<f64>) {
        self.tokens_in += tokens_in;
        self.tokens_out += tokens_out;
        self.reports_tokens = true;
        if let Some(cost) = cost {
            self.cost += cost;
            self.priced = true;
        }
    }

    /// Adds `calls` model calls that took `seconds` together.
    pub fn add_calls(&mut self, calls: f64, seconds: f64) {
        self.calls += calls;
        self.call_seconds += seconds;
        self.reports_calls = true;
    }

    /// Adds `count` failures of `kind`.
    pub fn add_errors(&mut self, kind: ErrorKind, count: f64) {
        self.errors[kind.index()] += count;
        self.reports_errors = true;
    }

    /// The samples of `agent` at `ts_ms` for this usage over `seconds`: tokens and errors per
    /// second, cost per hour (when priced), calls per second and their mean duration (when
    /// some were made).
    pub fn samples(&self, agent: &str, ts_ms: i64, seconds: f64, out: &mut Vec<Sample>) {
        if self.is_empty() || seconds.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        let mut at = |name: &str, value: f64| {
            out.push(Sample {
                agent: agent.to_string(),
                metric: name.to_string(),
                ts_ms,
                value,
            })
        };
        if self.reports_tokens {
            at(metric::TOKENS_IN_PER_S, self.tokens_in / seconds);
            at(metric::TOKENS_OUT_PER_S, self.tokens_out / seconds);
        }
        if self.priced {
            at(metric::COST_PER_HOUR, self.cost / seconds * 3600.0);
        }
        if self.reports_calls {
            at(metric::MODEL_CALLS_PER_S, self.calls / seconds);
            if self.calls > 0.0 {
                at(
                    metric::MODEL_LATENCY_MS,
                    self.call_seconds / self.calls * 1000.0,
                );
            }
        }
        for kind in ErrorKind::ALL {
            at(kind.metric(), self.errors[kind.index()] / seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(usage: &Usage, seconds: f64) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        usage.samples("a", 1, seconds, &mut out);
        out.into_iter().map(|s| (s.metric, s.value)).collect()
    }

    #[test]
    fn usage_becomes_rates_over_its_interval() {
        let mut usage = Usage::default();
        assert!(
            values(&usage, 2.0).is_empty(),
            "nothing reported, nothing said"
        );
        usage.add_tokens(200.0, 50.0, Some(0.01));
        usage.add_tokens(100.0, 0.0, None);
        usage.add_calls(4.0, 2.0);
        usage.add_errors(ErrorKind::RateLimited, 2.0);
        let got = values(&usage, 2.0);
        let want = [
            (metric::TOKENS_IN_PER_S, 150.0),
            (metric::TOKENS_OUT_PER_S, 25.0),
            (metric::COST_PER_HOUR, 18.0),
            (metric::MODEL_CALLS_PER_S, 2.0),
            (metric::MODEL_LATENCY_MS, 500.0),
            (metric::RATE_LIMITED_PER_S, 1.0),
            (metric::TIMEOUTS_PER_S, 0.0),
            (metric::OTHER_ERRORS_PER_S, 0.0),
        ];
        let want: Vec<(String, f64)> = want.iter().map(|(m, v)| (m.to_string(), *v)).collect();
        assert_eq!(got, want);
        // The same calls once more: twice the usage.
        let mut twice = usage.clone();
        twice.add_tokens(200.0, 50.0, Some(0.01));
        twice.add_tokens(100.0, 0.0, None);
        twice.add_calls(4.0, 2.0);
        twice.add_errors(ErrorKind::RateLimited, 2.0);
        assert_eq!(
            values(&twice, 4.0),
            want,
            "twice the usage over twice the time"
        );
        assert!(values(&usage, 0.0).is_empty(), "no interval, no rate");
        let quiet = values(&usage.next_interval(), 2.0);
        assert_eq!(
            quiet.len(),
            want.len() - 1,
            "zeros, but no latency without calls"
        );
        assert!(quiet.iter().all(|(_, v)| *v == 0.0));
    }
}
