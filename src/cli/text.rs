//! What the commands that talk to the controller share to show its answers: aligned tables,
//! short durations, cells from JSON values, the raw JSON for `--json`, and reading an answer
//! into a type.

use serde_json::Value;

use super::client::ClientError;

/// A duration in its largest whole unit: `45s`, `12m`, `5h`, `3d`.
pub fn span(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

pub use crate::reports::text::align;

/// Prints an answer as the API gave it, pretty (for `--json`).
pub fn print_json(body: &Value) {
    // Pretty-printing a `Value` cannot fail; the compact form is only a formal fallback.
    println!(
        "{}",
        serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())
    );
}

/// Reads an answer of the controller into `T`.
pub fn decode<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ClientError> {
    serde_json::from_value(body).map_err(|e| ClientError::Decode {
        from: "the controller".to_string(),
        cause: e.to_string(),
    })
}

/// A JSON string as text, `-` when absent.
pub fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| "-".into(), str::to_string)
}

/// A JSON number with `decimals`, `-` when absent.
pub fn number(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".into(), |n| format!("{n:.decimals$}"))
}

/// `12s ago` from epoch milliseconds, `never` for none or 0.
pub fn ago(value: &Value, now_ms: i64) -> String {
    match value.as_i64() {
        Some(ms) if ms > 0 => format!("{} ago", span(now_ms - ms)),
        _ => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_values_read_as_a_dash_and_times_as_ago() {
        assert_eq!(number(&Value::Null, 1), "-");
        assert_eq!(number(&json!(12.345), 1), "12.3");
        assert_eq!(ago(&json!(0), 10_000), "never");
        assert_eq!(ago(&json!(5_000), 65_000), "1m ago");
        assert_eq!(text(&json!("w-1")), "w-1");
    }
}
