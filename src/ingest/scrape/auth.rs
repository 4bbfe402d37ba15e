//! A scrape's or a query's authentication (`HttpAuth`) applied to its request: the bearer
//! token or basic password read from their variable or file at each request, the headers, and
//! a client that trusts the CA file (built once per file).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Client, RequestBuilder};

use crate::policy::HttpAuth;

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A secret's variable is unset or its file unreadable.
    #[error("cannot read the {what}: {reason}")]
    Secret {
        /// Which secret.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The CA file is unreadable or holds no certificate.
    #[error("cannot use the CA file {file}: {reason}")]
    CaFile {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// `request` with `auth`'s credentials and headers.
pub fn authorize(request: RequestBuilder, auth: &HttpAuth) -> Result<RequestBuilder, AuthError> {
    let mut request = request;
    for (name, value) in &auth.headers {
        request = request.header(name, value);
    }
    if auth.bearer_token_env.is_some() || auth.bearer_token_file.is_some() {
        let token = read_secret(
            "bearer token",
            auth.bearer_token_env.as_deref(),
            auth.bearer_token_file.as_deref(),
        )?;
        request = request.bearer_auth(token);
    }
    if let Some(basic) = &auth.basic_auth {
        let password = read_secret(
            "basic auth password",
            basic.password_env.as_deref(),
            basic.password_file.as_deref(),
        )?;
        request = request.basic_auth(&basic.username, Some(password));
    }
    Ok(request)
}

fn read_secret(
    what: &'static str,
    env: Option<&str>,
    file: Option<&str>,
) -> Result<String, AuthError> {
    crate::policy::read_secret(env, file).map_err(|reason| AuthError::Secret { what, reason })
}

/// The HTTP clients of a source: the default one, and one per CA file.
#[derive(Debug, Clone)]
pub struct Clients {
    default: Client,
    by_ca: HashMap<String, Client>,
}

impl Clients {
    /// Clients that say they are swarmpilot.
    pub fn new() -> Result<Clients, reqwest::Error> {
        Ok(Clients {
            default: builder().build()?,
            by_ca: HashMap::new(),
        })
    }

    /// The client for `auth`: one that trusts only its CA file when it names one.
    pub fn client(&mut self, auth: &HttpAuth) -> Result<Client, AuthError> {
        let Some(file) = &auth.ca_file else {
            return Ok(self.default.clone());
        };
        if let Some(client) = self.by_ca.get(file) {
            return Ok(client.clone());
        }
        let fail = |reason: String| AuthError::CaFile {
            file: file.clone(),
            reason,
        };
        let pem = std::fs::read(file).map_err(|e| fail(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no certificate in it".into()));
        }
        let client = builder()
            .tls_certs_only(certs)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        self.by_ca.insert(file.clone(), client.clone());
        Ok(client)
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("swarmpilot/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
}
