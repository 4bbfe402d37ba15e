//! `swarmpilot log`: the applied-optimization and rollback log, newest first.

use serde_json::Value;

use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::{align, print_json, text};

/// Prints up to `limit` log rows the filters take, newest first, reading pages as needed.
pub async fn rows(
    client: &ApiClient,
    filters: &[(&str, String)],
    limit: usize,
    json: bool,
) -> Result<(), ClientError> {
    let mut rows: Vec<Value> = Vec::new();
    let mut pages = client.pages("/api/v1/log", filters)?;
    while rows.len() < limit {
        let Some(page) = pages.next().await? else {
            break;
        };
        rows.extend(page);
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
