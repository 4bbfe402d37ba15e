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
#[error("line {line}: {message}")]
pub struct ParseError {
    /// Where.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a whole body.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut exposition = Exposition::default();
    for (index, line) in text.lines().enumerate() {
        let fail = |message: String| ParseError {
            line: index + 1,
            message,
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
fn read_comment(comment: &str, exposition: &mut Exposition) -> Result<(), String> {
    let mut words = comment.split([' ', '\t']).filter(|w| !w.is_empty());
    if words.next() != Some("TYPE") {
        return Ok(());
    }
    let name = words.next().ok_or("TYPE line without a metric name")?;
    if !metric_name(name) {
        return Err(format!("invalid metric name {name:?} in TYPE line"));
    }
    let kind = match words.next() {
        Some("counter") => MetricType::Counter,
        Some("gauge") => MetricType::Gauge,
        Some("histogram") => MetricType::Histogram,
        Some("summary") => MetricType::Summary,
        Some("untyped") => MetricType::Untyped,
        Some(other) => return Err(format!("unknown metric type {other:?} for {name}")),
        None => return Err(format!("TYPE line for {name} without a type")),
    };
    if exposition.types.insert(name.to_string(), kind).is_some() {
        return Err(format!("second TYPE line for {name}"));
    }
    Ok(())
}

/// `name{label="value",...} value [timestamp]`.
fn read_sample(line: &str) -> Result<Series, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !metric_name(name) {
        return Err(format!("invalid metric name at {:?}", clip(line)));
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = read_labels(after, &mut labels)?;
    }
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = words
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = read_value(value).ok_or_else(|| format!("{value:?} is not a number ({name})"))?;
    let timestamp_ms = match words.next() {
        None => None,
        Some(ts) => Some(
            ts.parse::<i64>()
                .map_err(|_| format!("{ts:?} is not a timestamp in milliseconds ({name})"))?,
        ),
    };
    if let Some(extra) = words.next() {
        return Err(format!("unexpected {extra:?} after the sample of {name}"));
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
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("label set is not closed")?;
        let name = &rest[..name_end];
        if !label_name(name) {
            return Err(format!("invalid label name at {:?}", clip(rest)));
        }
        rest = rest[name_end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {name}"))?
            .trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name} must be quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {name} is not closed")),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("unknown escape \\{other} in label {name}"));
                    }
                    None => return Err(format!("the value of label {name} is not closed")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} appears twice"));
        }
        labels.push((name.to_string(), value));
        rest = rest[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name}"));
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
            assert!(error.message.contains(words), "{error}");
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
