//! Setting a local agent's concurrency over its HTTP API: `POST {endpoint}/concurrency` with
//! `{"limit": N}`, as the bundled worker takes it. Other agents of a process pool take the
//! limit at start from `SWARMPILOT_CONCURRENCY`.

use std::time::Duration;

use super::DriverError;

/// How long an agent may take to accept a new limit.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sets the concurrency of every agent serving at one of `endpoints` to `limit`, one after
/// the other; the first refusal stops it.
pub async fn post_limit(endpoints: &[String], limit: u32) -> Result<(), DriverError> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| DriverError::Refused {
            target: "the agents' /concurrency".into(),
            status: 0,
            message: e.to_string(),
        })?;
    for endpoint in endpoints {
        post_one(&client, endpoint, limit).await?;
    }
    Ok(())
}

async fn post_one(client: &reqwest::Client, endpoint: &str, limit: u32) -> Result<(), DriverError> {
    let url = format!("{}/concurrency", endpoint.trim_end_matches('/'));
    let refused = |status: u16, message: String| DriverError::Refused {
        target: url.clone(),
        status,
        message,
    };
    let response = client
        .post(&url)
        .json(&serde_json::json!({ "limit": limit }))
        .send()
        .await
        .map_err(|e| refused(0, super::transport_error(e, TIMEOUT)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(refused(status.as_u16(), super::excerpt(&body, 200)))
}
