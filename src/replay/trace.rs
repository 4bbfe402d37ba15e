//! A load trace: `timestamp,value` rows read with `file:line` errors, and the demand at any
//! time by linear interpolation.

use std::path::Path;

use crate::cli::series::{SeriesError, SeriesReader};

/// A load trace, sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Where it was read from.
    pub name: String,
    /// Epoch milliseconds of each point.
    times: Vec<i64>,
    /// The value of each point.
    values: Vec<f64>,
    /// The largest value.
    max: f64,
}

impl Trace {
    /// Reads a CSV trace with `timestamp` and `value` columns.
    pub fn read(path: &Path) -> Result<Trace, SeriesError> {
        let name = path.display().to_string();
        let error = |line, message: String| SeriesError {
            file: name.clone(),
            line,
            message,
        };
        let (mut times, mut values) = (Vec::new(), Vec::new());
        for row in SeriesReader::open(path)? {
            let row = row?;
            if row.value < 0.0 {
                return Err(error(
                    row.line,
                    format!("load `{}` is negative", row.value_text),
                ));
            }
            times.push(row.ms);
            values.push(row.value);
        }
        Trace::new(name.clone(), times, values).map_err(|message| error(0, message))
    }

    /// A trace from points sorted by time; at least two, with a positive maximum.
    pub fn new(name: String, times: Vec<i64>, values: Vec<f64>) -> Result<Trace, String> {
        if times.len() < 2 || times.len() != values.len() {
            return Err("a trace needs at least two rows".into());
        }
        if times.first() == times.last() {
            return Err("the trace spans no time: every row has the same timestamp".into());
        }
        let max = values.iter().copied().fold(0.0, f64::max);
        if max <= 0.0 {
            return Err("the trace's largest value is 0: there is no load to scale".into());
        }
        Ok(Trace {
            name,
            times,
            values,
            max,
        })
    }

    /// The first timestamp, epoch milliseconds.
    pub fn start_ms(&self) -> i64 {
        self.times[0]
    }

    /// The last timestamp, epoch milliseconds.
    pub fn end_ms(&self) -> i64 {
        self.times[self.times.len() - 1]
    }

    /// The value at `ms`, linearly interpolated between the points around it.
    pub fn value_at(&self, ms: i64) -> f64 {
        let after = self.times.partition_point(|&t| t <= ms);
        if after == 0 {
            return self.values[0];
        }
        if after == self.times.len() {
            return self.values[after - 1];
        }
        let (t0, t1) = (self.times[after - 1], self.times[after]);
        let (v0, v1) = (self.values[after - 1], self.values[after]);
        v0 + (v1 - v0) * (ms - t0) as f64 / (t1 - t0) as f64
    }

    /// The demand at `ms` in agent capacities: the value scaled so the largest is `peak`.
    pub fn demand_at(&self, ms: i64, peak: f64) -> f64 {
        self.value_at(ms) / self.max * peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn demand_is_interpolated_and_scaled_to_the_peak() {
        let trace = Trace::new("t".into(), vec![0, 60_000, 120_000], vec![10.0, 50.0, 0.0]);
        let trace = trace.unwrap();
        assert_eq!(trace.demand_at(0, 20.0), 4.0);
        assert_eq!(trace.demand_at(30_000, 20.0), 12.0);
        assert_eq!(trace.demand_at(60_000, 20.0), 20.0);
        assert_eq!(trace.demand_at(90_000, 20.0), 10.0);
        assert_eq!(
            trace.demand_at(500_000, 20.0),
            0.0,
            "after the end: the last value"
        );
    }

    #[test]
    fn bad_traces_are_located() {
        let cases = [
            (
                "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,-3\n",
                ":3: load `-3` is negative",
            ),
            (
                "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n",
                ":3: `abc` is not a number",
            ),
            (
                "timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n",
                ":3: ",
            ),
            ("timestamp,load\n", ":1: missing column `value`"),
            (
                "timestamp,value\n2024-01-01 00:00:00,1\n",
                ": a trace needs at least two rows",
            ),
            (
                "timestamp,value\n2024-01-01 00:00:00,0\n2024-01-01 00:05:00,0\n",
                ": the trace's largest value is 0",
            ),
        ];
        for (text, expected) in cases {
            let file = write(text);
            let error = Trace::read(file.path()).unwrap_err().to_string();
            let path = file.path().display().to_string();
            assert!(error.starts_with(&path), "{error}");
            assert!(
                error[path.len()..].starts_with(expected),
                "{error} vs {expected}"
            );
        }
    }
}
