//! `swarmpilot agents [ID]`: the fleet as a table, or one agent with its metrics, alerts and
//! the recommendations for its pool.

use serde_json::{Value, json};

use super::alerts::alert_rows;
use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::{ago, align, number, print_json, text};

/// Prints every agent the filters take, in id order (all pages).
pub async fn list(
    client: &ApiClient,
    filters: &[(&str, String)],
    json: bool,
    now_ms: i64,
) -> Result<(), ClientError> {
    let mut query = filters.to_vec();
    query.push(("limit", "5000".into()));
    let agents = client.get_all("/api/v1/agents", &query).await?;
    if json {
        print_json(&Value::Array(agents));
        return Ok(());
    }
    if agents.is_empty() {
        println!("no agents");
        return Ok(());
    }
    let mut rows = vec![
        [
            "AGENT",
            "POOL",
            "STATUS",
            "CPU %",
            "MEM %",
            "RESP MS",
            "ERR %",
            "ANOMALY",
            "LAST SAMPLE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for agent in &agents {
        rows.push(vec![
            text(&agent["id"]),
            text(&agent["pool"]),
            text(&agent["status"]),
            number(&agent["cpu_percent"], 1),
            number(&agent["memory_percent"], 1),
            number(&agent["response_time_ms"], 0),
            number(&agent["error_rate"], 2),
            number(&agent["anomaly_score"], 2),
            ago(&agent["last_sample_ms"], now_ms),
        ]);
    }
    print!("{}", align(&rows, ""));
    Ok(())
}

/// Prints one agent: who it is, every latest metric with its anomaly score, its alerts, and
/// the recommendations for its pool.
pub async fn one(client: &ApiClient, id: &str, json: bool, now_ms: i64) -> Result<(), ClientError> {
    let agent = client.get(&format!("/api/v1/agents/{id}"), &[]).await?;
    let alerts = client
        .get_all("/api/v1/alerts", &[("agent", id.to_string())])
        .await?;
    let pool = text(&agent["pool"]);
    let recommendations: Vec<Value> = client
        .get("/api/v1/recommendations", &[])
        .await?
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["pool"] == pool.as_str())
        .cloned()
        .collect();
    if json {
        print_json(&json!({"agent": agent, "alerts": alerts, "recommendations": recommendations}));
        return Ok(());
    }
    println!("{id}  pool {pool}  {}", text(&agent["status"]));
    let mut facts = Vec::new();
    if let Some(pid) = agent["pid"].as_u64() {
        facts.push(format!("pid {pid}"));
    }
    if let Some(endpoint) = agent["endpoint"].as_str() {
        facts.push(endpoint.to_string());
    }
    facts.push(format!("started {}", ago(&agent["started_ms"], now_ms)));
    facts.push(format!(
        "last sample {}",
        ago(&agent["last_sample_ms"], now_ms)
    ));
    println!("{}\n", facts.join(" · "));
    let mut rows = vec![vec!["METRIC".to_string(), "VALUE".into(), "ANOMALY".into()]];
    for (name, value) in agent["metrics"].as_object().into_iter().flatten() {
        rows.push(vec![
            name.clone(),
            number(value, 2),
            number(&agent["anomaly_scores"][name], 2),
        ]);
    }
    print!("{}", align(&rows, "  "));
    println!();
    if alerts.is_empty() {
        println!("alerts: none");
    } else {
        println!("alerts:");
        print!("{}", align(&alert_rows(&alerts, now_ms), "  "));
    }
    if recommendations.is_empty() {
        println!("recommendations for pool {pool}: none");
    } else {
        println!("recommendations for pool {pool}:");
        for r in &recommendations {
            println!("  {}: {}", text(&r["kind"]), text(&r["reason"]));
        }
    }
    Ok(())
}
