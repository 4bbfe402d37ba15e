//! Agent metric names on the controller's `/metrics` page: Prometheus' conventions, as
//! promtool's linter checks them, with the factor that converts values to base units.

/// A metric name in Prometheus' conventions, and the factor that converts its values:
/// snake_case, `:` as `_`, abbreviated and prefixed units as base units (`ms` → `seconds`
/// × 0.001, `kb` → `bytes` × 1000, `per_s` → `per_second`), the type words promlint refuses
/// dropped, and `_value` after a suffix reserved for counters, histograms and summaries.
pub fn exported_name(metric: &str) -> (String, f64) {
    let mut snake = String::with_capacity(metric.len() + 4);
    let mut previous: Option<char> = None;
    for c in metric.chars() {
        if c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            snake.push('_');
        }
        snake.push(if c == ':' {
            '_'
        } else {
            c.to_ascii_lowercase()
        });
        previous = Some(c);
    }
    let tokens: Vec<&str> = snake.split('_').filter(|t| !t.is_empty()).collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut factor = 1.0;
    for (i, token) in tokens.iter().enumerate() {
        if matches!(*token, "counter" | "gauge" | "histogram" | "summary") {
            continue;
        }
        let per = i > 0 && tokens[i - 1] == "per";
        match base_unit(token) {
            Some((base, to_base)) => {
                let singular = base.strip_suffix('s').filter(|_| per).unwrap_or(base);
                out.push(singular.to_string());
                // x per millisecond is 1000 x per second.
                factor *= if per { 1.0 / to_base } else { to_base };
            }
            None => out.push(token.to_string()),
        }
    }
    if out.is_empty() {
        out.push("value".into());
    }
    let mut name = out.join("_");
    if ["_total", "_count", "_sum", "_bucket"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || ["total", "count", "sum", "bucket"].contains(&name.as_str())
    {
        name.push_str("_value");
    }
    (name, factor)
}

/// The base unit a token names and the factor to it, for units promlint wants in base form.
fn base_unit(token: &str) -> Option<(&'static str, f64)> {
    let fixed = match token {
        "s" | "sec" | "secs" => Some(("seconds", 1.0)),
        "ms" => Some(("seconds", 1e-3)),
        "us" => Some(("seconds", 1e-6)),
        "ns" => Some(("seconds", 1e-9)),
        "m" | "minutes" | "minute" => Some(("seconds", 60.0)),
        "h" | "hours" | "hour" => Some(("seconds", 3600.0)),
        "d" | "days" | "day" => Some(("seconds", 86_400.0)),
        "weeks" | "week" => Some(("seconds", 604_800.0)),
        "b" => Some(("bytes", 1.0)),
        "kb" => Some(("bytes", 1e3)),
        "mb" => Some(("bytes", 1e6)),
        "gb" => Some(("bytes", 1e9)),
        "tb" => Some(("bytes", 1e12)),
        "pb" => Some(("bytes", 1e15)),
        "bits" => Some(("bytes", 0.125)),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    const PREFIXES: [(&str, f64); 18] = [
        ("pico", 1e-12),
        ("nano", 1e-9),
        ("micro", 1e-6),
        ("milli", 1e-3),
        ("centi", 1e-2),
        ("deci", 1e-1),
        ("deca", 1e1),
        ("hecto", 1e2),
        ("kilo", 1e3),
        ("kibi", 1024.0),
        ("mega", 1e6),
        ("mibi", 1_048_576.0),
        ("giga", 1e9),
        ("gibi", 1_073_741_824.0),
        ("tera", 1e12),
        ("tebi", 1_099_511_627_776.0),
        ("peta", 1e15),
        ("pebi", 1_125_899_906_842_624.0),
    ];
    const BASES: [&str; 7] = [
        "seconds", "bytes", "meters", "metres", "grams", "amperes", "joules",
    ];
    PREFIXES.iter().find_map(|(prefix, to_base)| {
        let base = token.strip_prefix(prefix)?;
        BASES.iter().find(|b| **b == base).map(|b| (*b, *to_base))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(metric: &str, expected: &str, factor: f64) {
        let (name, got) = exported_name(metric);
        assert_eq!((name.as_str(), got), (expected, factor), "{metric}");
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        check("cpu_percent", "cpu_percent", 1.0);
        check("response_time_ms", "response_time_seconds", 1e-3);
        check("throughput_per_s", "throughput_per_second", 1.0);
        check(
            "system_disk_read_bytes_per_s",
            "system_disk_read_bytes_per_second",
            1.0,
        );
        check("requests_per_ms", "requests_per_second", 1e3);
        check("heap_kb", "heap_bytes", 1e3);
        check("gc_pause_milliseconds", "gc_pause_seconds", 1e-3);
        check("uptime_h", "uptime_seconds", 3600.0);
        check("queueSize", "queue_size", 1.0);
        check("node:load1", "node_load1", 1.0);
        check("tasks_total", "tasks_total_value", 1.0);
        check("batch_count", "batch_count_value", 1.0);
        check("queue_gauge", "queue", 1.0);
        check("gauge", "value", 1.0);
        check("load1", "load1", 1.0);
    }
}
