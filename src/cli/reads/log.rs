//! `swarmpilot log`: the applied-optimization and rollback log, newest first.

use serde_json::Value;

use super::agents::text;
use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::{align, print_json};

/// Prints up to `limit` log rows the filters take, newest first, reading pages as needed.
pub async fn rows(
    client: &ApiClient,
    filters: &[(&str, String)],
    limit: usize,
    json: bool,
) -> Result<(), ClientError> {
    let mut rows: Vec<Value> = Vec::new();
    let mut query = filters.to_vec();
    while rows.len() < limit {
        let page = client.get("/api/v1/log", &query).await?;
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(last) = page.last().and_then(|r| r["seq"].as_i64()) else {
            break;
        };
        let full = page.len() >= query_limit(&query);
        rows.extend(page);
        if !full {
            break;
        }
        query.retain(|(name, _)| *name != "before");
        query.push(("before", last.to_string()));
    }
    rows.truncate(limit);
    if json {
        print_json(&Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no log rows");
        return Ok(());
    }
    let mut table = vec![
        [
            "SEQ",
            "TIME",
            "ACTION",
            "KIND",
            "POOL",
            "AGENT",
            "TRANSITION",
            "BY",
            "REASON",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for row in &rows {
        let from = row["from_state"].as_str().unwrap_or("");
        let to = text(&row["to_state"]);
        table.push(vec![
            row["seq"].to_string(),
            text(&row["time"]),
            format!("#{}", row["action_id"]),
            text(&row["kind"]),
            text(&row["pool"]),
            text(&row["agent"]),
            if from.is_empty() {
                to
            } else {
                format!("{from} → {to}")
            },
            text(&row["actor"]),
            text(&row["reason"]),
        ]);
    }
    print!("{}", align(&table, ""));
    Ok(())
}

fn query_limit(query: &[(&str, String)]) -> usize {
    query
        .iter()
        .find(|(name, _)| *name == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(100)
}
