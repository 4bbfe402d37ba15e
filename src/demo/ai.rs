//! The demo's AI phase: the workers are AI agents that call a local mock model provider
//! (started here, loopback only) on every task. Late in the run the provider starts refusing
//! calls past a rate limit, then the load steps up: the controller lowers the workers'
//! concurrency instead of scaling out, though their CPU is as high as in the first step.

use std::path::Path;

use tokio::sync::oneshot;

use crate::drivers::process::ProcessConfig;
use crate::mock_provider::{self, Limits};
use crate::policy::{ConcurrencyPolicy, DriverConfig, Policy};

/// When the provider starts refusing calls, as a share of the run.
pub const THROTTLE_AT: f64 = 0.70;
/// The second load step, while the provider refuses: as shares of the run.
pub const STEP: std::ops::Range<f64> = 0.75..0.93;
/// Calls a second the provider answers once it throttles.
const THROTTLED_RATE: f64 = 8.0;
/// How long the provider takes to answer, milliseconds.
const LATENCY_MS: u64 = 20;

/// Starts the mock provider on a free loopback port; answers its base URL.
pub async fn start_provider() -> anyhow::Result<String> {
    let (tx, rx) = oneshot::channel();
    let limits = Limits {
        requests_per_sec: 0.0,
        burst: THROTTLED_RATE,
        latency_ms: LATENCY_MS,
    };
    actix::spawn(async move {
        let ready = move |addr| {
            let _ = tx.send(addr);
        };
        if let Err(error) = mock_provider::run(0, limits, ready).await {
            tracing::error!(message = "Mock provider failed.", %error);
        }
    });
    let addr = rx.await?;
    Ok(format!("http://{addr}"))
}

/// Makes `pool` a pool of AI agents: the bundled workers call `provider`, expose their model
/// use (scraped), and may have their concurrency lowered by the controller by itself.
/// Only a pool of bundled workers is changed; answers whether it was.
pub fn equip(policy: &mut Policy, pool: &str, exe: &Path, provider: &str) -> bool {
    let Some(settings) = policy.pools.get_mut(pool) else {
        return false;
    };
    let DriverConfig::Process { command, .. } = &mut settings.driver else {
        return false;
    };
    if !command.is_empty() {
        return false;
    }
    *command = ProcessConfig::bundled_worker(exe);
    command.extend(["--provider".to_string(), provider.to_string()]);
    settings.concurrency.get_or_insert(ConcurrencyPolicy {
        max: 8,
        min: 1,
        throttle_percent: crate::policy::DEFAULT_THROTTLE_PERCENT,
        recover_secs: 60,
    });
    policy
        .ingest
        .scrape_pools
        .entry(pool.to_string())
        .or_default();
    let auto = &mut policy.automation.auto_apply;
    if !auto.iter().any(|k| k == "adjust_concurrency") {
        auto.push("adjust_concurrency".into());
    }
    true
}

/// The provider's side of the phase: it starts refusing at [`THROTTLE_AT`].
pub struct AiPhase {
    provider: String,
    client: reqwest::Client,
    throttled: bool,
}

impl AiPhase {
    /// The phase against the provider at `provider`.
    pub fn new(provider: String) -> AiPhase {
        AiPhase {
            provider,
            client: reqwest::Client::new(),
            throttled: false,
        }
    }

    /// Runs what is due at `share` of the run; answers lines saying what happened.
    pub async fn step(&mut self, share: f64) -> Vec<String> {
        if self.throttled || share < THROTTLE_AT {
            return Vec::new();
        }
        let limits = Limits {
            requests_per_sec: THROTTLED_RATE,
            burst: THROTTLED_RATE,
            latency_ms: LATENCY_MS,
        };
        let sent = self
            .client
            .post(format!("{}/admin/limits", self.provider))
            .json(&limits)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                self.throttled = true;
                vec![format!(
                    "provider: the model provider now answers {THROTTLED_RATE} calls a second \
                     and refuses the rest (429); the load steps up again shortly"
                )]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pool_of_bundled_workers_is_equipped() {
        let mut policy = crate::policy::load_embedded().unwrap().policy;
        let exe = Path::new("/bin/swarmpilot");
        assert!(equip(&mut policy, "worker", exe, "http://127.0.0.1:9"));
        let pool = &policy.pools["worker"];
        let DriverConfig::Process { command, .. } = &pool.driver else {
            panic!("a process pool");
        };
        assert_eq!(
            command[command.len() - 2..],
            ["--provider", "http://127.0.0.1:9"]
        );
        assert_eq!(pool.concurrency.as_ref().map(|c| c.max), Some(8));
        assert!(policy.ingest.scrape_pools.contains_key("worker"));
        assert!(
            policy
                .automation
                .auto_apply
                .contains(&"adjust_concurrency".to_string())
        );
        assert!(
            !equip(&mut policy, "worker", exe, "x"),
            "its command is set now"
        );
        assert!(!equip(&mut policy, "nope", exe, "x"));
    }
}
