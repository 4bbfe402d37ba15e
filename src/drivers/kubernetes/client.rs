//! One authenticated client of a Kubernetes API server, shared by the driver and the
//! leader's Lease: plain HTTPS requests with the credentials' bearer token, basic auth,
//! client certificate or exec plugin.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::credentials::{Auth, Credentials};
use super::exec;
use crate::drivers::{DriverError, transport_error};

/// A client of the API server named by its credentials.
pub struct ApiClient {
    credentials: Credentials,
    client: reqwest::Client,
    timeout: Duration,
    /// The exec plugin's last token, when the credentials run one.
    exec_token: exec::TokenCache,
}

impl ApiClient {
    /// A client of `credentials`' server whose requests each take at most `timeout`.
    pub fn new(credentials: Credentials, timeout: Duration) -> Result<Self, DriverError> {
        let client = credentials
            .client(timeout)
            .map_err(|error| DriverError::Setup {
                driver: "kubernetes",
                message: error.to_string(),
            })?;
        Ok(ApiClient {
            credentials,
            client,
            timeout,
            exec_token: Default::default(),
        })
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The full URL of an API `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.credentials.server.trim_end_matches('/'))
    }

    /// Sends one request to `url` with an optional body of the given content type; answers
    /// the status and the body, whatever the status.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&(&'static str, Value)>,
    ) -> Result<(u16, String), DriverError> {
        let mut request = self
            .client
            .request(method, url)
            .header("Accept", "application/json");
        if let Some((content_type, body)) = body {
            request = request
                .header("Content-Type", *content_type)
                .body(body.to_string());
        }
        request = match &self.credentials.auth {
            Auth::Anonymous => request,
            Auth::Token(token) => request.bearer_auth(token.expose()),
            Auth::TokenFile(path) => {
                let token =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|source| DriverError::Io {
                            context: format!("cannot read the token in {}", path.display()),
                            source,
                        })?;
                request.bearer_auth(token.trim())
            }
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Exec(plugin) => {
                let token = plugin
                    .token(&self.exec_token, crate::clock::now_ms())
                    .await?;
                request.bearer_auth(token.expose())
            }
        };
        let refused = |status: u16, message: String| DriverError::Refused {
            target: url.to_string(),
            status,
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|error| refused(0, transport_error(error, self.timeout)))?;
        let status = response.status().as_u16();
        if status == 401 {
            // A plugin's token the server no longer takes: the next request asks again.
            self.exec_token.clear();
        }
        let body = response
            .text()
            .await
            .map_err(|error| refused(status, transport_error(error, self.timeout)))?;
        Ok((status, body))
    }
}
