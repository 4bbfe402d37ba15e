//! kubeconfig `exec` credential plugins (`client.authentication.k8s.io`), the way EKS
//! (`aws eks get-token`), GKE (`gke-gcloud-auth-plugin`) and AKS (`kubelogin`) hand out
//! tokens: the command runs with `KUBERNETES_EXEC_INFO` set, prints an `ExecCredential` whose
//! `status.token` is the bearer token, and the token is kept until its
//! `expirationTimestamp` (a minute before it), or until the API server refuses it (401).
//! Client certificates from a plugin are not taken: it must answer a token.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;

use crate::drivers::{DriverError, Secret};

/// How long a plugin may take to answer.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A token is renewed this long before it expires.
const RENEW_BEFORE_MS: i64 = 60_000;

/// One exec plugin, as the kubeconfig's user names it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecPlugin {
    /// The command (a path, relative ones from the kubeconfig's directory, or a name on
    /// `PATH`).
    pub command: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables set for it, beside the controller's environment.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The `ExecCredential` version it speaks.
    #[serde(default = "default_api_version")]
    pub api_version: String,
}

/// One variable for the plugin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

fn default_api_version() -> String {
    "client.authentication.k8s.io/v1".into()
}

/// The token a plugin last gave and when it expires (epoch milliseconds; none: it does not).
#[derive(Debug, Default)]
pub struct TokenCache(Mutex<Option<(Secret, Option<i64>)>>);

#[derive(Deserialize)]
struct ExecCredential {
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    token: Option<String>,
    expiration_timestamp: Option<String>,
}

impl TokenCache {
    /// Forgets the token (the API server refused it).
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl ExecPlugin {
    /// A token from `cache` while it is good at `now_ms`, else from running the plugin.
    pub async fn token(&self, cache: &TokenCache, now_ms: i64) -> Result<Secret, DriverError> {
        {
            let kept = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((token, expires)) = kept.as_ref()
                && expires.is_none_or(|at| now_ms < at - RENEW_BEFORE_MS)
            {
                return Ok(token.clone());
            }
        }
        let (token, expires) = self.run().await?;
        *cache.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((token.clone(), expires));
        Ok(token)
    }

    async fn run(&self) -> Result<(Secret, Option<i64>), DriverError> {
        let name = self.command.display().to_string();
        let fail = |message: String| DriverError::Setup {
            driver: "kubernetes",
            message: format!("the exec credential plugin {name}: {message}"),
        };
        let info = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": false},
        });
        let mut command = tokio::process::Command::new(&self.command);
        command
            .args(&self.args)
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for var in &self.env {
            command.env(&var.name, &var.value);
        }
        let output = tokio::time::timeout(PLUGIN_TIMEOUT, command.output())
            .await
            .map_err(|_| fail(format!("no answer within {} s", PLUGIN_TIMEOUT.as_secs())))?
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(fail(format!(
                "exited with {}: {}",
                output.status,
                stderr.trim().chars().take(300).collect::<String>()
            )));
        }
        let credential: ExecCredential = serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("its output is not an ExecCredential: {e}")))?;
        let status = credential
            .status
            .ok_or_else(|| fail("its ExecCredential has no status".into()))?;
        let token = status
            .token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| fail("it gave no token (client certificates are not taken)".into()))?;
        let expires = match status.expiration_timestamp {
            None => None,
            Some(at) => Some(
                crate::clock::parse_time(&at)
                    .ok_or_else(|| fail(format!("expirationTimestamp {at:?} is not RFC 3339")))?,
            ),
        };
        Ok((Secret::new(token.trim()), expires))
    }
}
