//! From a decoded `ExportMetricsServiceRequest` to samples: the agent of each resource, the
//! Prometheus-shaped names, every data point checked, attribute sets added together, and the
//! derived series (rates, histogram count, sum, mean and p95). The rules are in the module
//! doc of `ingest::otlp`.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, NumberDataPoint, exponential_histogram_data_point,
    metric::Data, number_data_point,
};

use super::derive::{self, NumberKind, Sum};
use super::histogram::{BucketError, Buckets, Exponential, MergeRefusal};
use super::names::{agent_of, metric_name, pool_of};
use super::series::SeriesMemory;
use crate::domain::Sample;
use crate::ingest::{Rejection, check_timestamp, check_value};

/// The samples of one request, and each data point refused.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The samples, ordered by agent, metric and time.
    pub samples: Vec<Sample>,
    /// The pool each agent's resource named (attribute `swarmpilot.pool`), first one wins.
    pub pools: HashMap<String, String>,
    /// The data points kept, by agent, with the attribute that named it, so the points of
    /// an agent the fleet refuses can be reported.
    pub kept: BTreeMap<String, (String, Vec<usize>)>,
    /// The data points refused: `index` counts data points across the request from 0,
    /// `field` is the path of the field at fault.
    pub rejected: Vec<Rejection>,
    /// Data points in the request.
    pub n_points: usize,
}

/// The clock against which timestamps are checked.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, epoch milliseconds.
    pub now_ms: i64,
    /// How far ahead of now a timestamp may be, seconds.
    pub max_future_secs: u64,
}

/// Maps `request` to samples, remembering cumulative series in `memory`.
pub fn map(
    request: &ExportMetricsServiceRequest,
    clock: Clock,
    memory: &mut SeriesMemory,
) -> Mapped {
    let mut mapper = Mapper {
        clock,
        mapped: Mapped::default(),
        sums: BTreeMap::new(),
    };
    for (r, resource_metrics) in request.resource_metrics.iter().enumerate() {
        let agent = agent_of(r, resource_metrics.resource.as_ref());
        if let (Ok((agent, _)), Some(pool)) = (&agent, pool_of(resource_metrics.resource.as_ref()))
        {
            mapper.mapped.pools.entry(agent.clone()).or_insert(pool);
        }
        for (s, scope) in resource_metrics.scope_metrics.iter().enumerate() {
            for (m, metric) in scope.metrics.iter().enumerate() {
                let path = format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]");
                let name = metric_name(&metric.name)
                    .map_err(|error| (format!("{path}.name"), error.to_string()));
                let target = match (&agent, name) {
                    (Err(fault), _) => Err(fault.clone()),
                    (_, Err(fault)) => Err(fault),
                    (Ok((agent, field)), Ok(name)) => Ok((agent.as_str(), field.as_str(), name)),
                };
                mapper.metric(&path, metric.data.as_ref(), target);
            }
        }
    }
    mapper.finish(memory)
}

/// Where one metric's points go: (agent, attribute naming it, sample name), or the fault.
type Target<'a> = Result<(&'a str, &'a str, String), (String, String)>;

/// A histogram point of either kind, its buckets read (or why they cannot be).
struct HistogramPoint {
    buckets: Result<Buckets, BucketError>,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    flags: u32,
}

struct Mapper {
    clock: Clock,
    mapped: Mapped,
    sums: BTreeMap<(String, String, i64), Sum>,
}

// === impl Mapper ===

impl Mapper {
    fn metric(&mut self, path: &str, data: Option<&Data>, target: Target<'_>) {
        match data {
            None => {}
            Some(Data::Gauge(gauge)) => {
                for (p, point) in gauge.data_points.iter().enumerate() {
                    let path = format!("{path}.gauge.dataPoints[{p}]");
                    self.number(&path, point, NumberKind::Gauge, &target);
                }
            }
            Some(Data::Sum(sum)) => {
                let kind = NumberKind::Sum {
                    monotonic: sum.is_monotonic,
                    cumulative: sum.aggregation_temporality != AggregationTemporality::Delta as i32,
                };
                for (p, point) in sum.data_points.iter().enumerate() {
                    let path = format!("{path}.sum.dataPoints[{p}]");
                    self.number(&path, point, kind, &target);
                }
            }
            Some(Data::Histogram(histogram)) => {
                let cumulative =
                    histogram.aggregation_temporality != AggregationTemporality::Delta as i32;
                for (p, point) in histogram.data_points.iter().enumerate() {
                    let path = format!("{path}.histogram.dataPoints[{p}]");
                    let buckets = Buckets {
                        bounds: point.explicit_bounds.clone(),
                        counts: point.bucket_counts.clone(),
                        count: point.count,
                        sum: point.sum,
                    };
                    let point = HistogramPoint {
                        buckets: buckets.check().map(|()| buckets),
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        flags: point.flags,
                    };
                    self.histogram(&path, point, cumulative, &target);
                }
            }
            Some(Data::ExponentialHistogram(histogram)) => {
                let cumulative =
                    histogram.aggregation_temporality != AggregationTemporality::Delta as i32;
                for (p, point) in histogram.data_points.iter().enumerate() {
                    let path = format!("{path}.exponentialHistogram.dataPoints[{p}]");
                    let exponential = Exponential {
                        scale: point.scale,
                        zero_count: point.zero_count,
                        zero_threshold: point.zero_threshold,
                        positive: range(point.positive.as_ref()),
                        negative: range(point.negative.as_ref()),
                        count: point.count,
                        sum: point.sum,
                    };
                    let point = HistogramPoint {
                        buckets: Buckets::from_exponential(&exponential),
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        flags: point.flags,
                    };
                    self.histogram(&path, point, cumulative, &target);
                }
            }
            Some(Data::Summary(summary)) => {
                let reason = "summaries are not supported: use a histogram";
                for p in 0..summary.data_points.len() {
                    self.refuse(format!("{path}.summary.dataPoints[{p}]"), reason.into());
                }
            }
        }
    }

    fn number(&mut self, path: &str, point: &NumberDataPoint, kind: NumberKind, target: &Target) {
        if no_recorded_value(point.flags) {
            return;
        }
        let value = match point.value {
            Some(number_data_point::Value::AsDouble(v)) => check_value(v)
                .map(|()| v)
                .map_err(|r| (format!("{path}.asDouble"), r.to_string())),
            Some(number_data_point::Value::AsInt(v)) => Ok(v as f64),
            None => Err((
                path.to_string(),
                "the data point has neither asDouble nor asInt".into(),
            )),
        };
        let checked = self.checked(path, point.time_unix_nano, target, value);
        let Some((index, agent, field, name, ts_ms, total)) = checked else {
            return;
        };
        let key = (agent.to_string(), name.clone(), ts_ms);
        match self.sums.get_mut(&key) {
            None => {
                self.sums.insert(
                    key,
                    Sum::Number {
                        total,
                        start_ns: point.start_time_unix_nano,
                        kind,
                    },
                );
            }
            Some(Sum::Number {
                total: kept,
                start_ns,
                kind: kept_kind,
            }) if *kept_kind == kind => {
                *kept += total;
                *start_ns = (*start_ns).max(point.start_time_unix_nano);
            }
            Some(_) => {
                let reason = format!("{name} was also sent as another kind of metric");
                self.refuse(path.to_string(), reason);
                return;
            }
        }
        self.keep(agent, field, index);
    }

    fn histogram(&mut self, path: &str, point: HistogramPoint, cumulative: bool, target: &Target) {
        if no_recorded_value(point.flags) {
            return;
        }
        let (buckets, shape) = match point.buckets {
            Ok(buckets) => (buckets, Ok(0.0)),
            Err((field, reason)) => (Buckets::default(), Err((format!("{path}.{field}"), reason))),
        };
        let Some((index, agent, field, name, ts_ms, _)) =
            self.checked(path, point.time_unix_nano, target, shape)
        else {
            return;
        };
        let key = (agent.to_string(), name.clone(), ts_ms);
        match self.sums.get_mut(&key) {
            None => {
                self.sums.insert(
                    key,
                    Sum::Histogram {
                        buckets,
                        start_ns: point.start_time_unix_nano,
                        cumulative,
                    },
                );
            }
            Some(Sum::Histogram {
                buckets: kept,
                start_ns,
                cumulative: kept_cumulative,
            }) if *kept_cumulative == cumulative => {
                if let Err(refusal) = kept.merge(&buckets) {
                    let (field, reason) = match refusal {
                        MergeRefusal::Bounds => {
                            ("explicitBounds", "has other bounds; they cannot be added")
                        }
                        MergeRefusal::Overflow => (
                            "count",
                            "counts, with this one, more than 2^64 - 1 observations",
                        ),
                    };
                    let reason = format!("another attribute set of {name} {reason}");
                    self.refuse(format!("{path}.{field}"), reason);
                    return;
                }
                *start_ns = (*start_ns).max(point.start_time_unix_nano);
            }
            Some(_) => {
                let reason = format!("{name} was also sent as another kind of metric");
                self.refuse(path.to_string(), reason);
                return;
            }
        }
        self.keep(agent, field, index);
    }

    /// Counts the point and checks what every point shares (agent, name, value, time);
    /// refuses it at the first fault. On success: (index, agent, agent's attribute, sample
    /// name, time in epoch ms, value).
    fn checked<'t>(
        &mut self,
        path: &str,
        time_unix_nano: u64,
        target: &'t Target,
        value: Result<f64, (String, String)>,
    ) -> Option<(usize, &'t str, &'t str, String, i64, f64)> {
        let index = self.mapped.n_points;
        self.mapped.n_points += 1;
        let outcome = (|| {
            let (agent, field, name) = target.as_ref().map_err(Clone::clone)?;
            let value = value?;
            // An unset time (0) is the time of arrival.
            let ts_ms = match time_unix_nano {
                0 => self.clock.now_ms,
                ns => (ns / 1_000_000) as i64,
            };
            check_timestamp(ts_ms, self.clock.now_ms, self.clock.max_future_secs)
                .map_err(|r| (format!("{path}.timeUnixNano"), r.to_string()))?;
            Ok((*agent, *field, name.clone(), ts_ms, value))
        })();
        match outcome {
            Ok((agent, field, name, ts_ms, value)) => {
                Some((index, agent, field, name, ts_ms, value))
            }
            Err((field, reason)) => {
                self.mapped.rejected.push(Rejection {
                    index,
                    field,
                    reason,
                });
                None
            }
        }
    }

    fn refuse(&mut self, field: String, reason: String) {
        let index = self.mapped.n_points;
        self.mapped.n_points += 1;
        self.mapped.rejected.push(Rejection {
            index,
            field,
            reason,
        });
    }

    fn keep(&mut self, agent: &str, field: &str, index: usize) {
        self.mapped
            .kept
            .entry(agent.to_string())
            .or_insert_with(|| (field.to_string(), Vec::new()))
            .1
            .push(index);
    }

    /// The samples of the added-up points, with the refusals in order.
    fn finish(mut self, memory: &mut SeriesMemory) -> Mapped {
        self.mapped.samples = derive::samples(std::mem::take(&mut self.sums), memory);
        self.mapped.rejected.sort_by_key(|r| r.index);
        self.mapped
    }
}

/// The first index and the counts of one side of an exponential histogram.
fn range(buckets: Option<&exponential_histogram_data_point::Buckets>) -> (i32, &[u64]) {
    buckets.map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()))
}

fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}
