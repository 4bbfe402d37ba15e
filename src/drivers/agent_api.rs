//! A local agent's HTTP API, as the bundled worker serves it: `POST {endpoint}/concurrency`
//! with `{"limit": N}`, and `POST {endpoint}/model` with `{"model", "provider"?}`. Agents of a
//! process pool started later take the same from `SWARMPILOT_CONCURRENCY`, and an agent
//! restarted after a move its model from `SWARMPILOT_MODEL`.

use std::time::Duration;

use serde_json::{Value, json};

use super::DriverError;
use crate::policy::PoolModel;

/// How long an agent may take to accept a change.
const TIMEOUT: Duration = Duration::from_secs(5);

fn client(what: &str) -> Result<reqwest::Client, DriverError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| DriverError::Refused {
            target: what.into(),
            status: 0,
            message: e.to_string(),
        })
}

/// Sets the concurrency of every agent serving at one of `endpoints` to `limit`, one after
/// the other; the first refusal stops it.
pub async fn post_limit(endpoints: &[String], limit: u32) -> Result<(), DriverError> {
    let client = client("the agents' /concurrency")?;
    for endpoint in endpoints {
        post(&client, endpoint, "concurrency", &json!({ "limit": limit })).await?;
    }
    Ok(())
}

/// Tells the agent serving at `endpoint` to call `model` from now on.
pub async fn post_model(endpoint: &str, model: &PoolModel) -> Result<(), DriverError> {
    let client = client("the agent's /model")?;
    let body = json!({ "model": model.name, "provider": model.provider });
    post(&client, endpoint, "model", &body).await
}

async fn post(
    client: &reqwest::Client,
    endpoint: &str,
    path: &str,
    body: &Value,
) -> Result<(), DriverError> {
    let url = format!("{}/{path}", endpoint.trim_end_matches('/'));
    let refused = |status: u16, message: String| DriverError::Refused {
        target: url.clone(),
        status,
        message,
    };
    let response = client
        .post(&url)
        .json(body)
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
