//! A load trace: `timestamp,value` rows read with `file:line` errors, and the demand at any
//! time by linear interpolation.

use std::path::Path;

use crate::series_csv::{SeriesError, SeriesReader};

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
    /// What was accepted with a doubt (`file:line: warning: ...`).
    pub warnings: Vec<String>,
}

/// Why points make no trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Fewer than two points (or not one value per time).
    #[error("the trace ends with fewer than two rows; it needs at least two")]
    TooShort,
    /// Every point has the same time.
    #[error("the trace spans no time: every row has the same timestamp")]
    NoTime,
    /// No value is above zero.
    #[error("the trace ends and every value was 0: there is no load to scale")]
    NoLoad,
}

impl Trace {
    /// Reads a CSV trace with `timestamp` and `value` columns.
    pub fn read(path: &Path) -> Result<Trace, SeriesError> {
        let name = path.display().to_string();
        let error = |line, message| SeriesError::new(&name, line, message);
        let (mut times, mut values) = (Vec::new(), Vec::new());
        // Problems with the trace as a whole point at its last line.
        let mut last_line = 1;
        // Timestamps seen more than once: (time, rows, sum of values, line of the repeat).
        let mut repeats: Vec<(i64, f64, f64, u64)> = Vec::new();
        for row in SeriesReader::open(path)? {
            let row = row?;
            last_line = row.line;
            if row.value < 0.0 {
                return Err(error(
                    row.line,
                    format!("load `{}` is negative", row.value_text),
                ));
            }
            if times.last() == Some(&row.ms) {
                // One load per time: rows that repeat a timestamp (NAB has some, from clock
                // changes) are averaged, and said so.
                let last = values.len() - 1;
                match repeats.last_mut().filter(|(ms, ..)| *ms == row.ms) {
                    Some(entry) => {
                        entry.1 += 1.0;
                        entry.2 += row.value;
                    }
                    None => repeats.push((row.ms, 2.0, values[last] + row.value, row.line)),
                }
                let (_, count, sum, _) = repeats[repeats.len() - 1];
                values[last] = sum / count;
                continue;
            }
            times.push(row.ms);
            values.push(row.value);
        }
        let warnings = repeats
            .iter()
            .map(|&(_, count, _, line)| {
                format!(
                    "{name}:{line}: warning: timestamp repeats the row before; the {count} rows \
                     at that time are averaged"
                )
            })
            .collect();
        let mut trace = Trace::new(name.clone(), times, values)
            .map_err(|problem| error(last_line, problem.to_string()))?;
        trace.warnings = warnings;
        Ok(trace)
    }

    /// A trace from points sorted by time; at least two, with a positive maximum.
    pub fn new(name: String, times: Vec<i64>, values: Vec<f64>) -> Result<Trace, TraceError> {
        if times.len() < 2 || times.len() != values.len() {
            return Err(TraceError::TooShort);
        }
        if times.first() == times.last() {
            return Err(TraceError::NoTime);
        }
        let max = values.iter().copied().fold(0.0, f64::max);
        if max <= 0.0 {
            return Err(TraceError::NoLoad);
        }
        Ok(Trace {
            name,
            times,
            values,
            max,
            warnings: Vec::new(),
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
    fn repeated_timestamps_are_averaged_with_a_warning() {
        let file = write(
            "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2\n\
             2024-01-01 00:05:00,4\n2024-01-01 00:05:00,6\n2024-01-01 00:10:00,8\n",
        );
        let trace = Trace::read(file.path()).unwrap();
        assert_eq!(trace.value_at(trace.start_ms() + 300_000), 4.0);
        assert_eq!(trace.value_at(trace.start_ms() + 150_000), 2.5);
        let path = file.path().display().to_string();
        assert_eq!(
            trace.warnings,
            [format!(
                "{path}:4: warning: timestamp repeats the row before; the 3 rows at that time \
                 are averaged"
            )]
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
                ":2: the trace ends with fewer than two rows",
            ),
            (
                "timestamp,value\n",
                ":1: the trace ends with fewer than two rows",
            ),
            (
                "timestamp,value\n2024-01-01 00:00:00,0\n2024-01-01 00:05:00,0\n",
                ":3: the trace ends and every value was 0",
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
