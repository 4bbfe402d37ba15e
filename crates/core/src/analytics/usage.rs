//! Model usage over an interval (tokens, cost, calls, their time, errors by kind) and the
//! per-second series it gives. Task tracking and OTLP GenAI metrics both add into it.

use std::collections::BTreeMap;

use crate::domain::genai::ErrorKind;
use crate::domain::{Sample, metric};
use crate::policy::ModelPrice;

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

/// What the token rates of a batch of one agent's samples that reports no cost would cost at
/// `price`: for each time with tokens a second, `cost_per_hour`, and `cost_per_task` when the
/// same time has tasks completed (`throughput_per_s` above zero) and the batch no cost per
/// task. Empty when the batch has a cost already or no tokens.
pub fn price_token_rates(samples: &[Sample], price: &ModelPrice) -> Vec<Sample> {
    // By time: tokens in and out a second, and tasks a second.
    let mut at: BTreeMap<i64, [Option<f64>; 3]> = BTreeMap::new();
    let mut priced_per_task = false;
    let mut agent = None;
    for sample in samples {
        let slot = match sample.metric.as_str() {
            metric::COST_PER_HOUR => return Vec::new(),
            metric::COST_PER_TASK => {
                priced_per_task = true;
                continue;
            }
            metric::TOKENS_IN_PER_S => 0,
            metric::TOKENS_OUT_PER_S => 1,
            metric::THROUGHPUT_PER_S => 2,
            _ => continue,
        };
        if sample.value.is_finite() && sample.value >= 0.0 {
            at.entry(sample.ts_ms).or_default()[slot] = Some(sample.value);
            agent.get_or_insert(&sample.agent);
        }
    }
    let Some(agent) = agent else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |ts_ms: i64, name: &str, value: f64| {
        out.push(Sample {
            agent: agent.clone(),
            metric: name.to_string(),
            ts_ms,
            value,
        })
    };
    for (ts_ms, [tokens_in, tokens_out, tasks]) in at {
        if tokens_in.is_none() && tokens_out.is_none() {
            continue;
        }
        let per_s = (tokens_in.unwrap_or(0.0) * price.input_per_million
            + tokens_out.unwrap_or(0.0) * price.output_per_million)
            / 1e6;
        push(ts_ms, metric::COST_PER_HOUR, per_s * 3600.0);
        if let Some(tasks) = tasks.filter(|&t| t > 0.0 && !priced_per_task) {
            push(ts_ms, metric::COST_PER_TASK, per_s / tasks);
        }
    }
    out
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

    fn sample(metric: &str, ts_ms: i64, value: f64) -> Sample {
        Sample {
            agent: "a".into(),
            metric: metric.into(),
            ts_ms,
            value,
        }
    }

    #[test]
    fn token_rates_without_a_cost_are_priced_at_the_pools_model() {
        let price = ModelPrice {
            provider: None,
            model: "small".into(),
            input_per_million: 1.0,
            output_per_million: 4.0,
        };
        // 500 in and 125 out a second: (500 + 500) / 1e6 a second, 3.6 an hour; a second
        // time with input alone, 1.8 an hour.
        let batch = [
            sample(metric::TOKENS_IN_PER_S, 2_000, 500.0),
            sample(metric::TOKENS_OUT_PER_S, 2_000, 125.0),
            sample(metric::THROUGHPUT_PER_S, 2_000, 4.0),
            sample(metric::TOKENS_IN_PER_S, 1_000, 500.0),
            sample(metric::CPU_PERCENT, 9_000, 10.0),
        ];
        let got = price_token_rates(&batch, &price);
        let got: Vec<(&str, i64, f64)> = got
            .iter()
            .map(|s| (s.metric.as_str(), s.ts_ms, s.value))
            .collect();
        assert_eq!(
            got,
            [
                (metric::COST_PER_HOUR, 1_000, 1.8),
                (metric::COST_PER_HOUR, 2_000, 3.6),
                (metric::COST_PER_TASK, 2_000, 0.001 / 4.0)
            ]
        );
        let only_in = price_token_rates(&batch[3..], &price);
        assert_eq!(only_in.len(), 1, "no tasks, no cost per task");
        assert!((only_in[0].value - 1.8).abs() < 1e-12);
        let mut priced = batch.to_vec();
        priced.push(sample(metric::COST_PER_HOUR, 2_000, 9.0));
        assert!(
            price_token_rates(&priced, &price).is_empty(),
            "a cost reported is kept"
        );
        assert!(
            price_token_rates(&batch[2..3], &price).is_empty(),
            "no tokens"
        );
    }
}
