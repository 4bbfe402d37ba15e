//! `swarmpilot agents [ID]`: the fleet as a table, or one agent with its metrics beside their
//! baselines (the last hour's stored minutes), its alerts and the recommendations for its
//! pool.

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
    let mut baselines = serde_json::Map::new();
    for name in agent["metrics"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(n, _)| n)
    {
        baselines.insert(name.clone(), baseline(client, id, name, now_ms).await?);
    }
    if json {
        print_json(
            &json!({"agent": agent, "baselines": baselines, "alerts": alerts,
                           "recommendations": recommendations}),
        );
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
    let mut rows = vec![vec![
        "METRIC".to_string(),
        "VALUE".into(),
        "BASELINE 1H".into(),
        "RANGE 1H".into(),
        "ANOMALY".into(),
    ]];
    for (name, value) in agent["metrics"].as_object().into_iter().flatten() {
        let base = &baselines[name];
        rows.push(vec![
            name.clone(),
            number(value, 2),
            number(&base["mean"], 2),
            match (base["min"].as_f64(), base["max"].as_f64()) {
                (Some(low), Some(high)) => format!("{low:.2}..{high:.2}"),
                _ => "-".into(),
            },
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

/// One metric's baseline: the count-weighted mean, the range and the largest p95 of the
/// agent's stored minutes in the hour before `now_ms` (`null` fields when there are none).
async fn baseline(
    client: &ApiClient,
    id: &str,
    metric: &str,
    now_ms: i64,
) -> Result<Value, ClientError> {
    let query = [
        ("since", (now_ms - 3_600_000).to_string()),
        ("until", now_ms.to_string()),
        ("step", "3600".to_string()),
    ];
    let series = client
        .get(&format!("/api/v1/agents/{id}/series/{metric}"), &query)
        .await?;
    let (mut sum, mut count) = (0.0, 0.0);
    let (mut min, mut max, mut p95) = (f64::INFINITY, f64::NEG_INFINITY, None::<f64>);
    for point in series["points"].as_array().into_iter().flatten() {
        let n = point["count"].as_f64().unwrap_or(0.0);
        sum += point["mean"].as_f64().unwrap_or(0.0) * n;
        count += n;
        min = min.min(point["min"].as_f64().unwrap_or(f64::INFINITY));
        max = max.max(point["max"].as_f64().unwrap_or(f64::NEG_INFINITY));
        if let Some(p) = point["p95"].as_f64() {
            p95 = Some(p95.map_or(p, |q| q.max(p)));
        }
    }
    Ok(if count > 0.0 {
        json!({"mean": sum / count, "min": min, "max": max, "p95": p95, "samples": count})
    } else {
        json!({"mean": null, "min": null, "max": null, "p95": null, "samples": 0})
    })
}
