//! `swarmpilot status`: the system at a glance (`GET /api/v1/system`), with the pools and the
//! actions waiting for approval.

use serde_json::{Value, json};

use super::ATTENTION;
use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::{align, print_json, span};

/// Statuses in the order a person reads them.
const STATUSES: [&str; 6] = ["active", "busy", "idle", "starting", "error", "offline"];
/// Alert levels, worst first.
const LEVELS: [&str; 4] = ["emergency", "critical", "warning", "info"];

/// Prints the summary; answers [`ATTENTION`] when actuation is halted or a critical or
/// emergency alert fires, 0 otherwise.
pub async fn run(client: &ApiClient, json: bool, now_ms: i64) -> Result<i32, ClientError> {
    let system = client.get("/api/v1/system", &[]).await?;
    let pools = client.get("/api/v1/pools", &[]).await?;
    let waiting = [("status", "pending_approval".to_string())];
    let pending = client.get_all("/api/v1/actions", &waiting).await?;
    let automation = &system["automation"];
    let halted = automation.get("halted").is_some_and(|h| !h.is_null());
    let firing = &system["firing_alerts"];
    let severe = ["critical", "emergency"]
        .iter()
        .filter_map(|level| firing[*level].as_u64())
        .sum::<u64>();
    let code = if halted || severe > 0 { ATTENTION } else { 0 };
    if json {
        print_json(&json!({
            "system": system,
            "pools": pools,
            "pending_approvals": pending,
            "attention": code == ATTENTION,
        }));
        return Ok(code);
    }
    let version = system["policy_version"].as_str().unwrap_or("?");
    println!(
        "swarmpilot {} · up {} · policy {} · automation {}",
        system["version"].as_str().unwrap_or("?"),
        span(system["uptime_secs"].as_i64().unwrap_or(0) * 1000),
        short(version),
        automation_text(automation)
    );
    println!();
    print!("{}", pools_table(&pools));
    println!();
    let agents = system["agents"].as_u64().unwrap_or(0);
    let by_status = counts(&system["agents_by_status"], &STATUSES, "none");
    println!("agents:    {agents} ({by_status})");
    println!("firing:    {}", counts(firing, &LEVELS, "no alert"));
    println!("approvals: {}", approvals(&pending, now_ms));
    Ok(code)
}

/// `3 active, 1 offline` from a `{name: count}` object, in `order`, or `none` when every
/// count is zero.
fn counts(counts: &Value, order: &[&str], none: &str) -> String {
    let parts: Vec<String> = order
        .iter()
        .filter_map(|name| {
            let n = counts[*name].as_u64().filter(|n| *n > 0)?;
            Some(format!("{n} {name}"))
        })
        .collect();
    if parts.is_empty() {
        none.to_string()
    } else {
        parts.join(", ")
    }
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

fn automation_text(automation: &Value) -> String {
    if let Some(halted) = automation.get("halted").filter(|h| !h.is_null()) {
        return format!(
            "HALTED since {}: {}",
            halted["since"].as_str().unwrap_or("?"),
            halted["reason"].as_str().unwrap_or("?")
        );
    }
    let mode = if automation["dry_run"] == true {
        " (dry run)"
    } else {
        ""
    };
    if automation["paused"] == true {
        let by = automation["by"].as_str().unwrap_or("?");
        format!("paused by {by}{mode}")
    } else {
        format!("on{mode}")
    }
}

fn pools_table(pools: &Value) -> String {
    let mut rows = vec![
        [
            "POOL",
            "DRIVER",
            "AGENTS",
            "READY",
            "MIN",
            "MAX",
            "MEAN CPU",
            "IN FLIGHT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for pool in pools.as_array().into_iter().flatten() {
        let number = |field: &str| pool[field].as_u64().map_or("-".into(), |n| n.to_string());
        rows.push(vec![
            pool["name"].as_str().unwrap_or("?").to_string(),
            pool["driver"].as_str().unwrap_or("?").to_string(),
            number("agents"),
            number("ready_agents"),
            number("min_agents"),
            number("max_agents"),
            pool["mean_cpu_percent"]
                .as_f64()
                .map_or("-".into(), |c| format!("{c:.1}%")),
            pool["action_in_flight"]
                .as_i64()
                .map_or("-".into(), |id| format!("#{id}")),
        ]);
    }
    align(&rows, "")
}

/// `1 waiting: #7 restart worker-3 (expires in 40s)`, or `none waiting`.
fn approvals(pending: &[Value], now_ms: i64) -> String {
    if pending.is_empty() {
        return "none waiting".to_string();
    }
    let each: Vec<String> = pending
        .iter()
        .map(|action| {
            let target = action["agent"]
                .as_str()
                .or(action["pool"].as_str())
                .unwrap_or("?");
            let expiry = action["expires_ms"]
                .as_i64()
                .map(|ms| format!(" (expires in {})", span(ms - now_ms)))
                .unwrap_or_default();
            format!(
                "#{} {} {target}{expiry}",
                action["id"],
                action["kind"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!("{} waiting: {}", pending.len(), each.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_in_order_and_skip_zeros() {
        let by = json!({"offline": 1, "active": 2, "idle": 0});
        assert_eq!(counts(&by, &STATUSES, "none"), "2 active, 1 offline");
        assert_eq!(counts(&json!({}), &LEVELS, "no alert"), "no alert");
    }

    #[test]
    fn automation_says_halted_before_paused() {
        let halted = json!({"paused": true, "halted": {"since": "t", "reason": "disk full"}});
        assert_eq!(automation_text(&halted), "HALTED since t: disk full");
        let paused = json!({"paused": true, "by": "ann", "dry_run": true});
        assert_eq!(automation_text(&paused), "paused by ann (dry run)");
        assert_eq!(automation_text(&json!({"paused": false})), "on");
    }
}
