//! What the fleet keeps of the host's own metrics (samples of agent `host`): the latest
//! value of each, and per-minute summaries for the store, so that reports show host
//! resources over time.

use std::collections::BTreeMap;

use crate::analytics::rollup::MinuteAccumulator;
use crate::domain::Sample;
use crate::domain::names::HOST_AGENT;
use crate::store::RollupRow;

/// The host's latest readings and the minute being summed of each.
#[derive(Debug, Default)]
pub struct HostReadings {
    /// Latest value of each metric.
    pub latest: BTreeMap<String, f64>,
    minutes: BTreeMap<String, MinuteAccumulator>,
}

impl HostReadings {
    /// Keeps `sample`; answers the minute it finished, if any.
    pub fn observe(&mut self, sample: Sample) -> Option<RollupRow> {
        let minute = self.minutes.entry(sample.metric.clone()).or_default();
        let finished = minute.observe(sample.ts_ms, sample.value);
        self.latest.insert(sample.metric.clone(), sample.value);
        finished.map(|summary| RollupRow {
            agent: HOST_AGENT.to_string(),
            pool: String::new(),
            metric: sample.metric,
            summary,
        })
    }
}

impl HostReadings {
    /// Every minute being summed, as rows (before a report: later samples of a minute merge
    /// into its stored row).
    pub fn take_minutes(&mut self) -> Vec<RollupRow> {
        self.minutes
            .iter_mut()
            .filter_map(|(metric, minute)| {
                Some(RollupRow {
                    agent: HOST_AGENT.to_string(),
                    pool: String::new(),
                    metric: metric.clone(),
                    summary: minute.take()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_is_handed_over_when_the_next_begins() {
        let mut host = HostReadings::default();
        let sample = |ts_ms, value| Sample {
            agent: HOST_AGENT.into(),
            metric: "system_cpu_percent".into(),
            value,
            ts_ms,
        };
        assert!(host.observe(sample(60_000, 10.0)).is_none());
        assert!(host.observe(sample(90_000, 30.0)).is_none());
        let row = host.observe(sample(120_000, 50.0)).unwrap();
        assert_eq!((row.agent.as_str(), row.summary.mean), ("host", 20.0));
        assert_eq!(host.latest["system_cpu_percent"], 50.0);
    }
}
