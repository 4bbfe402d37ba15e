//! `swarmpilot alerts` and `swarmpilot silences`.

use serde_json::Value;

use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::{ago, align, number, print_json, text};

/// Prints the alerts the filters take, oldest first (all pages).
pub async fn alerts(
    client: &ApiClient,
    filters: &[(&str, String)],
    json: bool,
    now_ms: i64,
) -> Result<(), ClientError> {
    let alerts = client.get_all("/api/v1/alerts", filters).await?;
    if json {
        print_json(&Value::Array(alerts));
    } else if alerts.is_empty() {
        println!("no alerts");
    } else {
        print!("{}", align(&alert_rows(&alerts, now_ms), ""));
    }
    Ok(())
}

/// The alerts as table rows, a header first.
pub fn alert_rows(alerts: &[Value], now_ms: i64) -> Vec<Vec<String>> {
    let header = [
        "ID",
        "LEVEL",
        "STATE",
        "RULE",
        "AGENT",
        "VALUE",
        "THRESHOLD",
        "SINCE",
        "MESSAGE",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for alert in alerts {
        let mut state = text(&alert["state"]);
        if alert["acked"].is_array() {
            state.push_str(" (acked)");
        }
        if alert["silenced_by"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
        {
            state.push_str(" (silenced)");
        }
        rows.push(vec![
            alert["id"].to_string(),
            text(&alert["level"]),
            state,
            text(&alert["rule"]),
            text(&alert["agent"]),
            number(&alert["value"], 2),
            number(&alert["threshold"], 2),
            ago(&alert["since_ms"], now_ms),
            text(&alert["message"]),
        ]);
    }
    rows
}

/// Prints every silence with its state.
pub async fn silences(client: &ApiClient, json: bool, now_ms: i64) -> Result<(), ClientError> {
    let silences = client.get("/api/v1/silences", &[]).await?;
    if json {
        print_json(&silences);
        return Ok(());
    }
    let silences = silences.as_array().cloned().unwrap_or_default();
    if silences.is_empty() {
        println!("no silences");
        return Ok(());
    }
    let mut rows = vec![
        ["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"]
            .map(String::from)
            .to_vec(),
    ];
    for silence in &silences {
        let matchers: Vec<String> = silence["matchers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let op = if m["is_regex"] == true { "=~" } else { "=" };
                format!("{}{op}{}", text(&m["name"]), text(&m["value"]))
            })
            .collect();
        let ends = match silence["ends_ms"].as_i64() {
            Some(ms) if ms > now_ms => format!("in {}", crate::cli::text::span(ms - now_ms)),
            _ => ago(&silence["ends_ms"], now_ms),
        };
        rows.push(vec![
            silence["id"].to_string(),
            text(&silence["state"]),
            matchers.join(","),
            ends,
            text(&silence["created_by"]),
            text(&silence["comment"]),
        ]);
    }
    print!("{}", align(&rows, ""));
    Ok(())
}
