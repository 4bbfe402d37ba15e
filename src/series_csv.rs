//! Reading `timestamp,value` CSV series for the offline commands (`detect`, `forecast`),
//! with `file:line: message` errors.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use chrono::{DateTime, NaiveDateTime};

/// One row of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The timestamp as written.
    pub timestamp: String,
    /// The value as written.
    pub value_text: String,
    /// The value.
    pub value: f64,
    /// The timestamp, epoch milliseconds.
    pub ms: i64,
    /// 1-based line in the file.
    pub line: u64,
}

/// A problem with the input, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesError {
    /// The input file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl SeriesError {
    /// A problem at `line` of `file` (line 0: the file as a whole).
    pub fn new(file: &str, line: u64, message: String) -> SeriesError {
        SeriesError {
            file: file.to_string(),
            line,
            message,
        }
    }
}

impl std::fmt::Display for SeriesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            // Line 0: the file as a whole (it cannot be opened).
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SeriesError {}

/// Streams the rows of a `timestamp,value` CSV file, checking each.
pub struct SeriesReader {
    file: String,
    records: csv::StringRecordsIntoIter<File>,
    timestamp_column: usize,
    value_column: usize,
    previous_ms: Option<i64>,
    allow_unsorted: bool,
}

impl SeriesReader {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<SeriesReader, SeriesError> {
        let file = path.display().to_string();
        let error = |line, message| SeriesError::new(&file, line, message);
        let handle = File::open(path).map_err(|e| error(0, format!("cannot open: {e}")))?;
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(handle);
        let headers = reader
            .headers()
            .map_err(|e| error(1, format!("cannot read the header: {e}")))?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                let found: Vec<&str> = headers.iter().collect();
                error(
                    1,
                    format!("missing column `{name}` (header: {})", found.join(",")),
                )
            })
        };
        let (timestamp_column, value_column) = (column("timestamp")?, column("value")?);
        Ok(SeriesReader {
            file: file.clone(),
            records: reader.into_records(),
            timestamp_column,
            value_column,
            previous_ms: None,
            allow_unsorted: false,
        })
    }

    /// Accepts rows whose time goes backwards (in file order, with a warning on stderr)
    /// instead of refusing them; for data sets such as NAB that contain such glitches.
    pub fn allow_unsorted(mut self, allow: bool) -> Self {
        self.allow_unsorted = allow;
        self
    }

    fn error(&self, line: u64, message: String) -> SeriesError {
        SeriesError::new(&self.file, line, message)
    }
}

impl Iterator for SeriesReader {
    type Item = Result<Row, SeriesError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.records.next()? {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Some(Err(self.error(line, format!("malformed CSV: {e}"))));
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |index: usize| record.get(index).unwrap_or("").to_string();
        let (timestamp, value_text) = (field(self.timestamp_column), field(self.value_column));
        let value: f64 = match value_text.parse() {
            Ok(value) => value,
            Err(_) => {
                return Some(Err(self.error(
                    line,
                    format!("`{value_text}` is not a number (column value)"),
                )));
            }
        };
        if !value.is_finite() {
            return Some(Err(
                self.error(line, format!("value `{value_text}` is not finite"))
            ));
        }
        let Some(ms) = parse_timestamp(&timestamp) else {
            let message = format!(
                "`{timestamp}` is not a timestamp (column timestamp; expected e.g. 2014-04-01 00:00:00, RFC 3339 or epoch seconds)"
            );
            return Some(Err(self.error(line, message)));
        };
        if let Some(previous) = self.previous_ms
            && ms < previous
        {
            let message = format!(
                "timestamp `{timestamp}` is earlier than the row before it: rows must be sorted by time"
            );
            if !self.allow_unsorted {
                return Some(Err(self.error(line, message)));
            }
            eprintln!(
                "{}:{line}: warning: {message} (kept in file order: --allow-unsorted)",
                self.file
            );
        }
        self.previous_ms = Some(ms);
        Some(Ok(Row {
            timestamp,
            value_text,
            value,
            ms,
            line,
        }))
    }
}

/// Rows between progress lines on stderr.
const PROGRESS_EVERY: u64 = 100_000;

/// Writes `header`, then one line per row through `write_row`, to `output`, showing progress
/// on stderr. The file appears only when every row was good: it is written to a `.partial`
/// file, renamed at the end, removed on error.
pub fn write_rows(
    command: &str,
    reader: SeriesReader,
    output: &Path,
    header: &str,
    mut write_row: impl FnMut(&mut dyn Write, &Row) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let partial = output.with_extension("partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    let result = (|| -> anyhow::Result<u64> {
        writeln!(out, "{header}")?;
        let mut rows = 0u64;
        for row in reader {
            write_row(&mut out, &row?)?;
            rows += 1;
            if rows.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("{command}: {rows} rows");
            }
        }
        out.flush()?;
        Ok(rows)
    })();
    match result {
        Ok(rows) => {
            std::fs::rename(&partial, output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            eprintln!(
                "{command}: {rows} rows in {took:.0} ms -> {}",
                output.display()
            );
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Epoch milliseconds of `YYYY-MM-DD HH:MM:SS`, RFC 3339 or epoch seconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some((seconds * 1000.0) as i64);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<usize, &str>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, text).unwrap();
        let result: Result<Vec<Row>, SeriesError> =
            SeriesReader::open(&path).and_then(|reader| reader.collect());
        match (result, expected) {
            (Ok(rows), Ok(count)) => assert_eq!(rows.len(), count),
            (Err(error), Err(message)) => {
                let rendered = error.to_string();
                let located = rendered
                    .strip_prefix(&format!("{}:", path.display()))
                    .unwrap();
                assert_eq!(located, message);
            }
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn good_and_bad_series() {
        check(
            "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n",
            Ok(2),
        );
        check("value,timestamp\n3,1396310400\n", Ok(1));
        check(
            "time,value\n1,2\n",
            Err("1: missing column `timestamp` (header: time,value)"),
        );
        check(
            "timestamp,value\n2014-04-01 00:00:00,abc\n",
            Err("2: `abc` is not a number (column value)"),
        );
        check(
            "timestamp,value\n2014-04-01 00:00:00,NaN\n",
            Err("2: value `NaN` is not finite"),
        );
        check(
            "timestamp,value\nyesterday,1\n",
            Err(
                "2: `yesterday` is not a timestamp (column timestamp; expected e.g. 2014-04-01 00:00:00, RFC 3339 or epoch seconds)",
            ),
        );
        check(
            "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n",
            Err(
                "3: timestamp `2014-04-01 00:00:00` is earlier than the row before it: rows must be sorted by time",
            ),
        );
    }
}
