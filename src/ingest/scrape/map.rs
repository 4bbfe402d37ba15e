//! Turns one scrape of one target into swarmpilot metric values, as its mappings say:
//! gauges as they are, counters as per-second rates between two scrapes (a decrease is a
//! reset), histograms and summaries as the mean or a quantile of what was observed in
//! between, and ratios of counter increases. Pure: the caller gives the clock and keeps the
//! [`Memory`] of the previous scrape.

use std::collections::HashMap;

use super::text::{Exposition, MetricType, Series};
use crate::policy::{MetricMapping, ReadAs};

/// What one target remembers between scrapes: the last value and time of every series a
/// mapping reads as a counter. Series that disappear are forgotten.
#[derive(Debug, Default)]
pub struct Memory {
    previous: HashMap<Key, (f64, i64)>,
    next: HashMap<Key, (f64, i64)>,
}

/// Mapping index, role (0: `from`, 1..: `over`), series name, sorted labels.
type Key = (usize, usize, String, Vec<(String, String)>);

impl Memory {
    /// The increase of a counter series since the previous scrape, and the seconds between
    /// the two; `None` the first time it is seen.
    fn increase(&mut self, key: Key, value: f64, at_ms: i64) -> Option<(f64, f64)> {
        let before = self.previous.get(&key).copied();
        self.next.insert(key, (value, at_ms));
        let (last, last_ms) = before?;
        let seconds = (at_ms - last_ms) as f64 / 1000.0;
        if seconds <= 0.0 {
            return None;
        }
        // A counter that went down was reset: it counted `value` since.
        let increase = if value < last { value } else { value - last };
        Some((increase, seconds))
    }

    /// Ends a scrape: what was read now is what the next one compares with.
    fn commit(&mut self) {
        self.previous = std::mem::take(&mut self.next);
    }
}

/// The value of each mapping that has one this time, as `(to, value)`.
pub fn apply(
    mappings: &[MetricMapping],
    exposition: &Exposition,
    now_ms: i64,
    memory: &mut Memory,
) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (index, mapping) in mappings.iter().enumerate() {
        let value = read(index, mapping, exposition, now_ms, memory)
            .map(|v| v * mapping.scale)
            .filter(|v| v.is_finite());
        if let Some(value) = value {
            out.push((mapping.to.clone(), value));
        }
    }
    memory.commit();
    out
}

fn read(
    index: usize,
    mapping: &MetricMapping,
    exposition: &Exposition,
    now_ms: i64,
    memory: &mut Memory,
) -> Option<f64> {
    let family = mapping.from.as_str();
    let kind = exposition.type_of(family);
    let read = match mapping.read {
        ReadAs::Auto => match kind {
            MetricType::Counter => ReadAs::Rate,
            MetricType::Histogram | MetricType::Summary => ReadAs::Mean,
            MetricType::Gauge | MetricType::Untyped => ReadAs::Value,
        },
        other => other,
    };
    let matching = |name: String| {
        exposition
            .series
            .iter()
            .filter(move |s| s.name == name && matches(s, mapping))
    };
    // Sums the increases of the matching series of `name`; `None` when none had a
    // previous value.
    let increase = |role: usize, name: String, memory: &mut Memory| {
        let mut total: Option<(f64, f64)> = None;
        for series in matching(name) {
            let key = (index, role, series.name.clone(), sorted(&series.labels));
            let at = series.timestamp_ms.unwrap_or(now_ms);
            if let Some((inc, secs)) = memory.increase(key, series.value, at) {
                let (sum, rate) = total.unwrap_or((0.0, 0.0));
                total = Some((sum + inc, rate + inc / secs));
            }
        }
        total
    };
    match read {
        ReadAs::Auto => unreachable!("resolved above"),
        ReadAs::Value => {
            let values: Vec<f64> = matching(family.to_string()).map(|s| s.value).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        }
        ReadAs::Rate => increase(0, family.to_string(), memory).map(|(_, rate)| rate),
        ReadAs::Mean => {
            let sum = increase(0, format!("{family}_sum"), memory);
            let count = increase(1, format!("{family}_count"), memory);
            let ((sum, _), (count, _)) = (sum?, count?);
            (count > 0.0).then(|| sum / count)
        }
        ReadAs::Ratio => {
            let part = increase(0, family.to_string(), memory);
            let mut whole = None::<f64>;
            for (role, name) in mapping.over.iter().enumerate() {
                if let Some((inc, _)) = increase(role + 1, name.clone(), memory) {
                    whole = Some(whole.unwrap_or(0.0) + inc);
                }
            }
            let ((part, _), whole) = (part?, whole?);
            (whole > 0.0).then(|| part / whole)
        }
        ReadAs::Quantile if kind == MetricType::Summary => matching(family.to_string())
            .filter(|s| {
                s.label("quantile")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| (q - mapping.quantile).abs() < 1e-9)
            })
            .map(|s| s.value)
            .reduce(f64::max),
        ReadAs::Quantile => {
            // The increase of each bucket, added up over the matching series by bound.
            let mut buckets: Vec<(f64, f64)> = Vec::new();
            for series in matching(format!("{family}_bucket")) {
                let Some(le) = series.label("le").and_then(parse_bound) else {
                    continue;
                };
                let key = (index, 0, series.name.clone(), sorted(&series.labels));
                let at = series.timestamp_ms.unwrap_or(now_ms);
                if let Some((inc, _)) = memory.increase(key, series.value, at) {
                    match buckets.iter_mut().find(|(bound, _)| *bound == le) {
                        Some((_, count)) => *count += inc,
                        None => buckets.push((le, inc)),
                    }
                }
            }
            histogram_quantile(mapping.quantile, buckets)
        }
    }
}

/// True when the series has every label value the mapping asks for.
fn matches(series: &Series, mapping: &MetricMapping) -> bool {
    mapping
        .labels
        .iter()
        .all(|(name, value)| series.label(name) == Some(value.as_str()))
}

fn sorted(labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut labels = labels.to_vec();
    labels.sort();
    labels
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => le.parse().ok().filter(|b: &f64| b.is_finite()),
    }
}

/// PromQL's `histogram_quantile` over cumulative `(upper bound, count)` buckets: linear
/// interpolation inside the bucket holding the rank; the rank in the `+Inf` bucket gives the
/// highest finite bound.
pub fn histogram_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last()?.0 != f64::INFINITY {
        return None;
    }
    // Resets between the two scrapes can leave a cumulative count below the one before it.
    for i in 1..buckets.len() {
        buckets[i].1 = buckets[i].1.max(buckets[i - 1].1);
    }
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let at = buckets.iter().position(|&(_, count)| count >= rank)?;
    let (upper, count) = buckets[at];
    if upper == f64::INFINITY {
        return Some(if at == 0 { 0.0 } else { buckets[at - 1].0 });
    }
    let (lower, below) = if at == 0 {
        if upper <= 0.0 {
            return Some(upper);
        }
        (0.0, 0.0)
    } else {
        buckets[at - 1]
    };
    if count == below {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / (count - below))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::scrape::text::parse;
    use std::collections::BTreeMap;

    fn mapping(from: &str, to: &str, read: ReadAs) -> MetricMapping {
        MetricMapping {
            from: from.into(),
            labels: BTreeMap::new(),
            to: to.into(),
            read,
            quantile: 0.95,
            over: Vec::new(),
            scale: 1.0,
        }
    }

    /// Applies `mappings` to each body in turn, 10 s apart; the values of each scrape.
    fn check(mappings: &[MetricMapping], bodies: &[&str]) -> Vec<Vec<(String, f64)>> {
        let mut memory = Memory::default();
        bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let values = apply(
                    mappings,
                    &parse(body).unwrap(),
                    i as i64 * 10_000,
                    &mut memory,
                );
                // Rounded, so sums of decimal fractions compare exactly.
                values
                    .into_iter()
                    .map(|(name, v)| (name, (v * 1e6).round() / 1e6))
                    .collect()
            })
            .collect()
    }

    fn pairs(items: &[(&str, f64)]) -> Vec<(String, f64)> {
        items.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn gauges_pass_and_counters_become_rates_with_resets() {
        let mut cpu = mapping("node_cpu_seconds_total", "cpu_idle_per_s", ReadAs::Auto);
        cpu.labels.insert("mode".into(), "idle".into());
        let mappings = [mapping("node_load1", "load1", ReadAs::Auto), cpu];
        let body = |load: f64, cpu0: f64, cpu1: f64| {
            format!(
                "# TYPE node_load1 gauge\nnode_load1 {load}\n\
                 # TYPE node_cpu_seconds_total counter\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {cpu0}\n\
                 node_cpu_seconds_total{{cpu=\"1\",mode=\"idle\"}} {cpu1}\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} 999\n"
            )
        };
        let bodies = [
            body(0.5, 100.0, 200.0),
            body(0.7, 105.0, 208.0),
            // cpu 1's counter was reset: 4 since the reset.
            body(0.6, 110.0, 4.0),
        ];
        let got = check(
            &mappings,
            &bodies.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(
            got[0],
            pairs(&[("load1", 0.5)]),
            "no rate before two scrapes"
        );
        assert_eq!(got[1], pairs(&[("load1", 0.7), ("cpu_idle_per_s", 1.3)]));
        assert_eq!(got[2], pairs(&[("load1", 0.6), ("cpu_idle_per_s", 0.9)]));
    }

    #[test]
    fn the_bundled_workers_page_maps_to_throughput_errors_and_latency() {
        let mappings = crate::policy::bundled_worker_metrics();
        let worker = crate::worker::metrics::WorkerMetrics::default();
        let first = worker.render("w", "w-1");
        for (latency, ok) in [(0.004, true), (0.02, true), (0.02, true), (0.3, false)] {
            worker.begin();
            worker.end(latency, ok);
        }
        worker.begin();
        let second = worker.render("w", "w-1");
        let got = check(&mappings, &[&first, &second]);
        assert_eq!(got[0], pairs(&[("active_tasks", 0.0)]));
        let values: HashMap<String, f64> = got[1].iter().cloned().collect();
        assert_eq!(values["throughput_per_s"], 0.3, "3 done in 10 s");
        assert_eq!(values["error_rate"], 25.0, "1 of 4 failed");
        assert_eq!(values["active_tasks"], 1.0);
        // The worker keeps latencies in whole microseconds.
        assert!(
            (values["response_time_ms"] - 86.0).abs() < 0.01,
            "{values:?}"
        );
        // Rank 3.8 of 4 lies in (0.25, 0.5]: 0.25 + 0.25 × 0.8 s.
        assert_eq!(values["response_time_p95_ms"], 450.0);
    }

    #[test]
    fn nothing_observed_between_scrapes_gives_no_mean_or_ratio() {
        let mappings = crate::policy::bundled_worker_metrics();
        let page = crate::worker::metrics::WorkerMetrics::default().render("w", "w-1");
        let got = check(&mappings, &[&page, &page]);
        let names: Vec<&str> = got[1].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["throughput_per_s", "active_tasks"]);
    }

    #[test]
    fn summaries_give_their_quantile_and_mean() {
        let mut p99 = mapping("rpc", "rpc_p99", ReadAs::Quantile);
        p99.quantile = 0.99;
        let mappings = [p99, mapping("rpc", "rpc_mean", ReadAs::Auto)];
        let body = |q: f64, sum: f64, count: f64| {
            format!(
                "# TYPE rpc summary\nrpc{{quantile=\"0.5\"}} 1\nrpc{{quantile=\"0.99\"}} {q}\n\
                 rpc_sum {sum}\nrpc_count {count}\n"
            )
        };
        let (a, b) = (body(9.0, 10.0, 5.0), body(12.0, 40.0, 15.0));
        let got = check(&mappings, &[&a, &b]);
        assert_eq!(got[0], pairs(&[("rpc_p99", 9.0)]));
        assert_eq!(got[1], pairs(&[("rpc_p99", 12.0), ("rpc_mean", 3.0)]));
    }

    #[test]
    fn histogram_quantile_interpolates_like_promql() {
        let inf = f64::INFINITY;
        let buckets = vec![(0.1, 10.0), (0.5, 30.0), (inf, 40.0)];
        assert_eq!(histogram_quantile(0.25, buckets.clone()), Some(0.1));
        let median = histogram_quantile(0.5, buckets.clone()).unwrap();
        assert!((median - 0.3).abs() < 1e-12, "{median}");
        assert_eq!(histogram_quantile(0.95, buckets.clone()), Some(0.5));
        assert_eq!(histogram_quantile(0.1, vec![(1.0, 0.0), (inf, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, vec![(1.0, 3.0)]), None, "no +Inf");
    }
}
