//! A reader of the Prometheus text exposition format (version 0.0.4), the body of a
//! `GET /metrics`: `# HELP` and `# TYPE` lines, other comments, samples with label sets
//! (values escaped with `\\`, `\"` and `\n`), optional millisecond timestamps, and the
//! special values `NaN`, `+Inf` and `-Inf`.
//!
//! Histogram and summary series (`_bucket`, `_sum`, `_count`, `quantile`) are plain samples
//! here; [`Exposition::type_of`] says which family a name belongs to.

use std::collections::HashMap;

/// What a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (or resets to zero).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets with `_bucket{le}`, `_sum` and `_count`.
    Histogram,
    /// Quantiles with `{quantile}`, `_sum` and `_count`.
    Summary,
    /// No `# TYPE` line, or `untyped`.
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' metric name, e.g. `node_cpu_seconds_total` or `x_bucket`.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value (may be NaN or infinite).
    pub value: f64,
    /// Its timestamp, epoch milliseconds, when the exporter gave one.
    pub timestamp_ms: Option<i64>,
}

impl Series {
    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Declared types by family name.
    pub types: HashMap<String, MetricType>,
    /// Every sample, in order.
    pub series: Vec<Series>,
}

impl Exposition {
    /// The type of family `name` as declared (`Untyped` when it was not).
    pub fn type_of(&self, name: &str) -> MetricType {
        self.types.get(name).copied().unwrap_or(MetricType::Untyped)
    }
}

/// Why a body is not the text format; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// Where.
    pub line: usize,
    /// What is wrong.
    // The problem is in the message, so it is not a `source` too: a chain would print it
    // twice.
    pub problem: LineProblem,
}

/// What is wrong with one line; names and words quoted from the line are kept as written
/// (clipped to 40 characters where the rest of the line is quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// `# TYPE` with nothing after it.
    #[error("TYPE line without a metric name")]
    TypeWithoutName,
    /// `# TYPE` names something that is not a metric name.
    #[error("invalid metric name {name:?} in TYPE line")]
    TypeMetricName {
        /// The name written.
        name: String,
    },
    /// `# TYPE` declares a type the format does not have.
    #[error("unknown metric type {kind:?} for {name}")]
    UnknownType {
        /// The type written.
        kind: String,
        /// The family.
        name: String,
    },
    /// `# TYPE` names a family but no type.
    #[error("TYPE line for {name} without a type")]
    TypeWithoutType {
        /// The family.
        name: String,
    },
    /// A family has a `# TYPE` line already.
    #[error("second TYPE line for {name}")]
    SecondType {
        /// The family.
        name: String,
    },
    /// A sample line does not start with a metric name.
    #[error("invalid metric name at {at:?}")]
    MetricName {
        /// The start of the line.
        at: String,
    },
    /// A sample has a name but no value.
    #[error("sample {name} has no value")]
    NoValue {
        /// The series' metric name.
        name: String,
    },
    /// A sample's value is not a number.
    #[error("{value:?} is not a number ({name})")]
    NotANumber {
        /// The value written.
        value: String,
        /// The series' metric name.
        name: String,
    },
    /// A sample's timestamp is not whole milliseconds.
    #[error("{timestamp:?} is not a timestamp in milliseconds ({name})")]
    NotATimestamp {
        /// The timestamp written.
        timestamp: String,
        /// The series' metric name.
        name: String,
    },
    /// Something follows a sample's timestamp.
    #[error("unexpected {extra:?} after the sample of {name}")]
    Unexpected {
        /// The first word too many.
        extra: String,
        /// The series' metric name.
        name: String,
    },
    /// A label set has no closing brace.
    #[error("label set is not closed")]
    LabelsNotClosed,
    /// A label set holds something that is not a label name.
    #[error("invalid label name at {at:?}")]
    LabelName {
        /// The rest of the line from there.
        at: String,
    },
    /// A label name is not followed by `=`.
    #[error("expected '=' after label {label}")]
    NoEquals {
        /// The label.
        label: String,
    },
    /// A label's value does not start with `"`.
    #[error("the value of label {label} must be quoted")]
    Unquoted {
        /// The label.
        label: String,
    },
    /// A label's value has no closing `"`.
    #[error("the value of label {label} is not closed")]
    ValueNotClosed {
        /// The label.
        label: String,
    },
    /// A label's value holds an escape other than `\\`, `\"` and `\n`.
    #[error("unknown escape \\{escape} in label {label}")]
    UnknownEscape {
        /// The character after the backslash.
        escape: char,
        /// The label.
        label: String,
    },
    /// A label appears twice in one label set.
    #[error("label {label} appears twice")]
    DuplicateLabel {
        /// The label.
        label: String,
    },
    /// A label's value is followed by neither `,` nor `}`.
    #[error("expected ',' or '}}' after label {label}")]
    NoSeparator {
        /// The label.
        label: String,
    },
}

/// Reads a whole body.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut exposition = Exposition::default();
    for (index, line) in text.lines().enumerate() {
        let fail = |problem: LineProblem| ParseError {
            line: index + 1,
            problem,
        };
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            read_comment(comment, &mut exposition).map_err(fail)?;
            continue;
        }
        let series = read_sample(line).map_err(fail)?;
        exposition.series.push(series);
    }
    Ok(exposition)
}

/// `# TYPE name type` is kept; `# HELP` and other comments are skipped.
fn read_comment(comment: &str, exposition: &mut Exposition) -> Result<(), LineProblem> {
    let mut words = comment.split([' ', '\t']).filter(|w| !w.is_empty());
    if words.next() != Some("TYPE") {
        return Ok(());
    }
    let name = words.next().ok_or(LineProblem::TypeWithoutName)?;
    if !metric_name(name) {
        return Err(LineProblem::TypeMetricName { name: name.into() });
    }
    let kind = match words.next() {
        Some("counter") => MetricType::Counter,
        Some("gauge") => MetricType::Gauge,
        Some("histogram") => MetricType::Histogram,
        Some("summary") => MetricType::Summary,
        Some("untyped") => MetricType::Untyped,
        Some(other) => {
            return Err(LineProblem::UnknownType {
                kind: other.into(),
                name: name.into(),
            });
        }
        None => return Err(LineProblem::TypeWithoutType { name: name.into() }),
    };
    if exposition.types.insert(name.to_string(), kind).is_some() {
        return Err(LineProblem::SecondType { name: name.into() });
    }
    Ok(())
}

/// `name{label="value",...} value [timestamp]`.
fn read_sample(line: &str) -> Result<Series, LineProblem> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !metric_name(name) {
        return Err(LineProblem::MetricName {
            at: clip(line).into(),
        });
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = read_labels(after, &mut labels)?;
    }
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = words
        .next()
        .ok_or_else(|| LineProblem::NoValue { name: name.into() })?;
    let value = read_value(value).ok_or_else(|| LineProblem::NotANumber {
        value: value.into(),
        name: name.into(),
    })?;
    let timestamp_ms = match words.next() {
        None => None,
        Some(ts) => Some(ts.parse::<i64>().map_err(|_| LineProblem::NotATimestamp {
            timestamp: ts.into(),
            name: name.into(),
        })?),
    };
    if let Some(extra) = words.next() {
        return Err(LineProblem::Unexpected {
            extra: extra.into(),
            name: name.into(),
        });
    }
    Ok(Series {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Reads `label="value", ...}` and returns what follows the closing brace.
fn read_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, LineProblem> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or(LineProblem::LabelsNotClosed)?;
        let name = &rest[..name_end];
        if !label_name(name) {
            return Err(LineProblem::LabelName {
                at: clip(rest).into(),
            });
        }
        rest = rest[name_end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| LineProblem::NoEquals { label: name.into() })?
            .trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| LineProblem::Unquoted { label: name.into() })?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(LineProblem::ValueNotClosed { label: name.into() }),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(LineProblem::UnknownEscape {
                            escape: other,
                            label: name.into(),
                        });
                    }
                    None => return Err(LineProblem::ValueNotClosed { label: name.into() }),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(LineProblem::DuplicateLabel { label: name.into() });
        }
        labels.push((name.to_string(), value));
        rest = rest[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(LineProblem::NoSeparator { label: name.into() });
        }
    }
}

/// A float as Go's `strconv.ParseFloat` writes them, with `NaN`, `+Inf` and `-Inf`.
fn read_value(word: &str) -> Option<f64> {
    match word {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust also reads "inf" and "infinity" in any case; the format does not use them.
        _ if word
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => word.parse().ok(),
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The start of `text`, for error messages.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_types_labels_escapes_timestamps_and_special_values() {
        let text = "# HELP node_load1 1m load average.\n\
            # TYPE node_load1 gauge\n\
            node_load1 0.52\n\
            # a plain comment\n\
            \n\
            # TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{ method = \"get\" , path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\", } 3\n\
            weird_metric{a=\"}{,=\"} NaN\n\
            up +Inf\n\
            down -Inf\n\
            exp 1.5e3\n\
            \tpadded\t7\t\r\n";
        let exposition = parse(text).unwrap();
        assert_eq!(exposition.type_of("node_load1"), MetricType::Gauge);
        assert_eq!(
            exposition.type_of("http_requests_total"),
            MetricType::Counter
        );
        assert_eq!(exposition.type_of("up"), MetricType::Untyped);
        let s = &exposition.series;
        assert_eq!(s.len(), 8);
        assert_eq!((s[0].name.as_str(), s[0].value), ("node_load1", 0.52));
        assert_eq!(s[1].labels, labels(&[("method", "post"), ("code", "200")]));
        assert_eq!(s[1].timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(
            s[2].labels,
            labels(&[("method", "get"), ("path", "C:\\dir\\\"x\"\nnext")])
        );
        assert_eq!(s[2].label("path").unwrap().lines().count(), 2);
        assert_eq!(s[3].label("a"), Some("}{,="));
        assert!(s[3].value.is_nan());
        assert_eq!(s[4].value, f64::INFINITY);
        assert_eq!(s[5].value, f64::NEG_INFINITY);
        assert_eq!(s[6].value, 1500.0);
        assert_eq!((s[7].name.as_str(), s[7].value), ("padded", 7.0));
    }

    #[test]
    fn histogram_and_summary_series_are_plain_samples() {
        let text = "# TYPE lat histogram\n\
            lat_bucket{le=\"0.1\"} 1\n\
            lat_bucket{le=\"+Inf\"} 3\n\
            lat_sum 0.9\n\
            lat_count 3\n\
            # TYPE rpc summary\n\
            rpc{quantile=\"0.99\"} 12\n\
            rpc_sum 40\n\
            rpc_count 7\n";
        let exposition = parse(text).unwrap();
        assert_eq!(exposition.type_of("lat"), MetricType::Histogram);
        assert_eq!(exposition.type_of("rpc"), MetricType::Summary);
        assert_eq!(exposition.series[1].label("le"), Some("+Inf"));
        assert_eq!(exposition.series[4].label("quantile"), Some("0.99"));
        assert_eq!(exposition.series.len(), 7);
    }

    #[test]
    fn bad_lines_are_located() {
        let check = |text: &str, line: usize, words: &str| {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{error}");
            assert!(error.problem.to_string().contains(words), "{error}");
        };
        check("ok 1\n9bad 1\n", 2, "invalid metric name");
        check("a{b=\"c\" 1\n", 1, "expected ','");
        check("a{b=c} 1\n", 1, "must be quoted");
        check("a{b=\"c} 1\n", 1, "not closed");
        check("a{b=\"\\t\"} 1\n", 1, "unknown escape");
        check("a{b=\"1\",b=\"2\"} 1\n", 1, "twice");
        check("a\n", 1, "no value");
        check("a one\n", 1, "not a number");
        check("a inf\n", 1, "not a number");
        check("a 1 12.5\n", 1, "timestamp");
        check("a 1 2 3\n", 1, "unexpected");
        check("x 1\n# TYPE a countr\n", 2, "unknown metric type");
        check("# TYPE a gauge\n# TYPE a gauge\n", 2, "second TYPE");
        check("<html>\n", 1, "invalid metric name");
    }
}
