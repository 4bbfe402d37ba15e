//! A client of the running controller's REST API, for the commands that talk to it
//! (`swarmpilot actions ...`): where the controller is, which token to send, and one-line
//! errors that say what went wrong and what to try.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use reqwest::{RequestBuilder, Url};
use serde_json::Value;

use crate::api::auth::TOKEN_FILE;

/// The controller's address when neither `--url` nor `SWARMPILOT_URL` says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The environment variable a token may come from.
pub const TOKEN_ENV: &str = "SWARMPILOT_TOKEN";

/// How long a connection may take to open; a controller on the network answers much faster.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one request may take: a rollback waits for the driver to undo the change.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the controller is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of the controller's API.
    #[arg(long, global = true, env = "SWARMPILOT_URL", default_value = DEFAULT_URL, value_parser = parse_url)]
    pub url: Url,
    /// Bearer token (visible to other local users in the process list: prefer --token-file
    /// or SWARMPILOT_TOKEN).
    #[arg(long, global = true, conflicts_with = "token_file")]
    pub token: Option<Token>,
    /// File holding the bearer token.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// The controller's data directory: its `admin.token` is used when no other token is
    /// given (--token, --token-file, then the SWARMPILOT_TOKEN environment variable).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// A bearer token; its `Debug` form hides the secret so it never lands in a log or a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// What can go wrong talking to the controller.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No token anywhere the client looks.
    #[error(
        "no API token: pass --token-file PATH or --token TOKEN, set {TOKEN_ENV}, or pass \
         --data-dir DIR of the controller to use its admin.token"
    )]
    NoToken,
    /// A token file could not be read.
    #[error("cannot read the token file {path}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A token file holds nothing but whitespace.
    #[error("the token file {0} is empty")]
    EmptyToken(PathBuf),
    /// Nothing answers at the URL.
    #[error(
        "cannot reach the controller at {url}: {cause}; is it running there? Pass --url URL \
         or set SWARMPILOT_URL"
    )]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// The innermost cause, e.g. `connection refused`.
        cause: String,
    },
    /// An export could not be written to stdout.
    #[error("cannot write the export: {0}")]
    Output(String),
    /// The controller did not answer in time.
    #[error("no answer from {url} within {} ms", .timeout.as_millis())]
    Timeout {
        /// The request's URL.
        url: String,
        /// The bound it overran.
        timeout: Duration,
    },
    /// The request failed some other way.
    #[error("request to {url} failed: {cause}")]
    Request {
        /// The request's URL.
        url: String,
        /// The innermost cause.
        cause: String,
    },
    /// The controller refused: a 4xx or 5xx answer, with its error code and message.
    #[error("{status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The API's error code (spaces for underscores), or the status's reason phrase.
        code: String,
        /// The API's message, or the start of the body.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {from}: {cause}")]
    Decode {
        /// The request's URL, or what was asked.
        from: String,
        /// What did not parse.
        cause: String,
    },
}

/// An authenticated client of one controller.
pub struct ApiClient {
    base: String,
    token: Token,
    http: reqwest::Client,
    /// Each request's bound, connecting included.
    timeout: Duration,
}

// === impl Token ===

impl FromStr for Token {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let token = text.trim();
        if token.is_empty() {
            return Err("the token is empty".to_string());
        }
        Ok(Token(token.to_string()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

// === impl ClientArgs ===

impl ClientArgs {
    /// The token to send: --token, --token-file, `SWARMPILOT_TOKEN`, then the data
    /// directory's admin token.
    pub fn token(&self) -> Result<Token, ClientError> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Some(path) = &self.token_file {
            return read_token_file(path);
        }
        if let Ok(text) = std::env::var(TOKEN_ENV)
            && let Ok(token) = text.parse()
        {
            return Ok(token);
        }
        match &self.data_dir {
            Some(dir) => read_token_file(&dir.join(TOKEN_FILE)),
            None => Err(ClientError::NoToken),
        }
    }
}

fn read_token_file(path: &Path) -> Result<Token, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse()
        .map_err(|_| ClientError::EmptyToken(path.to_path_buf()))
}

/// Why `--url` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The text is not a URL at all: what the URL parser said (its error type is not
    /// exported by reqwest, and the `url` crate is not a direct dependency).
    #[error("{0}")]
    Parse(String),
    /// The URL is not `http` or `https`, or has no host.
    #[error("must start with http:// or https://, e.g. {DEFAULT_URL}")]
    Scheme,
}

/// Parses `--url`: an absolute `http` or `https` URL (a bare `host:port` is refused here
/// rather than read as a URL whose scheme is the host name).
fn parse_url(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text).map_err(|error| UrlError::Parse(error.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        _ => Err(UrlError::Scheme),
    }
}

/// The pages of a paged list, read one at a time by following each `Link` header.
pub struct Pages<'a> {
    client: &'a ApiClient,
    next: Option<Url>,
}

impl Pages<'_> {
    /// The next page's items; none after the last page.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, ClientError> {
        let Some(page) = self.next.take() else {
            return Ok(None);
        };
        let (body, next) = self
            .client
            .send(self.client.http.get(page.clone()), page.clone())
            .await?;
        self.next = next.map(|next| self.client.url(&next)).transpose()?;
        match body {
            Value::Array(rows) => Ok(Some(rows)),
            other => Err(ClientError::Decode {
                from: page.to_string(),
                cause: format!("expected a list, got {other}"),
            }),
        }
    }
}

// === impl ApiClient ===

impl ApiClient {
    /// A client of the controller at `args.url`, with the token `args` lead to.
    pub fn new(args: &ClientArgs) -> Result<ApiClient, ClientError> {
        ApiClient::with_timeout(args, REQUEST_TIMEOUT)
    }

    /// The same, each request (connecting included) bounded by `timeout`.
    pub fn with_timeout(args: &ClientArgs, timeout: Duration) -> Result<ApiClient, ClientError> {
        let token = args.token()?;
        let base = args.url.as_str().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("swarmpilot-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ClientError::Request {
                url: base.clone(),
                cause: innermost(&error),
            })?;
        Ok(ApiClient {
            base,
            token,
            http,
            timeout,
        })
    }

    /// GETs `path` (e.g. `/api/v1/actions`) with `query` pairs; returns the JSON body.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let url = self.query_url(path, query)?;
        Ok(self.send(self.http.get(url.clone()), url).await?.0)
    }

    /// The first page of the paged list at `path`; [`Page::next`] reads the following ones.
    pub fn pages(&self, path: &str, query: &[(&str, String)]) -> Result<Pages<'_>, ClientError> {
        Ok(Pages {
            client: self,
            next: Some(self.query_url(path, query)?),
        })
    }

    /// Every item of the paged list at `path`, following each `Link: <...>; rel="next"` to
    /// the last page.
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ClientError> {
        let mut pages = self.pages(path, query)?;
        let mut items = Vec::new();
        while let Some(page) = pages.next().await? {
            items.extend(page);
        }
        Ok(items)
    }

    fn query_url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// POSTs `body` (none when `None`) to `path`; returns the JSON body.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = self.url(path)?;
        let mut request = self.http.post(url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(self.send(request, url).await?.0)
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        let text = format!("{}{path}", self.base);
        Url::parse(&text).map_err(|e| ClientError::Request {
            url: text,
            cause: e.to_string(),
        })
    }

    /// Sends `request`; answers its JSON body and the path of the next page, if its `Link`
    /// header names one.
    async fn send(
        &self,
        request: RequestBuilder,
        url: Url,
    ) -> Result<(Value, Option<String>), ClientError> {
        let response = request
            .bearer_auth(&self.token.0)
            .send()
            .await
            .map_err(|error| self.failed(&error, &url))?;
        let status = response.status();
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|link| link.to_str().ok())
            .filter(|link| link.ends_with("rel=\"next\""))
            .and_then(|link| Some(link.strip_prefix('<')?.split_once('>')?.0.to_string()));
        let body = response
            .bytes()
            .await
            .map_err(|error| self.failed(&error, &url))?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        let body = serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            from: url.to_string(),
            cause: e.to_string(),
        })?;
        Ok((body, next))
    }

    fn failed(&self, error: &reqwest::Error, url: &Url) -> ClientError {
        if error.is_connect() {
            ClientError::Unreachable {
                url: self.base.clone(),
                cause: innermost(error),
            }
        } else if error.is_timeout() {
            ClientError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            }
        } else {
            ClientError::Request {
                url: url.to_string(),
                cause: innermost(error),
            }
        }
    }
}

/// The error of a 4xx or 5xx answer: the API's `{"error": {"code", "message"}}` when the
/// body is one, else the reason phrase and the start of the body (a proxy's page, say).
fn status_error(status: reqwest::StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let code = error.and_then(|e| e["code"].as_str());
    let message = error.and_then(|e| e["message"].as_str());
    let field = error.and_then(|e| e["field"].as_str());
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    match (code, message) {
        (Some(code), Some(message)) => ClientError::Status {
            status: status.as_u16(),
            code: code.replace('_', " "),
            // The field a refused request names leads, as a compiler names the line (not
            // the `Authorization` header of a refused token).
            message: match field {
                Some(field) if status.as_u16() == 400 || status.as_u16() == 422 => {
                    format!("{field}: {message}")
                }
                _ => message.to_string(),
            },
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let first_line = text.lines().next().unwrap_or("").trim();
            let message: String = first_line.chars().take(200).collect();
            ClientError::Status {
                status: status.as_u16(),
                code: reason,
                message: if message.is_empty() {
                    "(empty body)".to_string()
                } else {
                    message
                },
            }
        }
    }
}

/// The innermost cause of an error, e.g. `connection refused` rather than reqwest's and
/// hyper's wrappers around it: the one part that tells a person what to fix.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() != std::io::ErrorKind::Other => io.kind().to_string(),
        _ => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_must_be_http_with_a_host() {
        assert!(parse_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_url("https://swarm.example/").is_ok());
        let error = parse_url("localhost:8080").unwrap_err().to_string();
        assert!(error.contains("http://"), "{error}");
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn api_errors_and_other_bodies_become_one_line() {
        let body = br#"{"error": {"code": "already_approved", "message": "ann already approved action 7", "field": null}}"#;
        let error = status_error(reqwest::StatusCode::CONFLICT, body);
        assert_eq!(
            error.to_string(),
            "409 already approved: ann already approved action 7"
        );
        let error = status_error(
            reqwest::StatusCode::BAD_GATEWAY,
            b"<html>upstream down\n</html>",
        );
        assert_eq!(error.to_string(), "502 bad gateway: <html>upstream down");
        let error = status_error(reqwest::StatusCode::NOT_FOUND, b"");
        assert_eq!(error.to_string(), "404 not found: (empty body)");
    }

    #[test]
    fn token_is_never_shown_and_comes_from_the_first_source_given() {
        let token: Token = " s3cret\n".parse().unwrap();
        assert_eq!(token, Token("s3cret".into()));
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!("  ".parse::<Token>().is_err());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "admin-secret\n").unwrap();
        let file = dir.path().join("mine.token");
        std::fs::write(&file, "file-secret\n").unwrap();
        let args = |token: Option<&str>, token_file: Option<&Path>| ClientArgs {
            url: parse_url(DEFAULT_URL).unwrap(),
            token: token.map(|t| t.parse().unwrap()),
            token_file: token_file.map(Path::to_path_buf),
            data_dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(args(Some("flag"), None).token().unwrap().0, "flag");
        assert_eq!(args(None, Some(&file)).token().unwrap().0, "file-secret");
        // The environment variable outranks the data directory: check that fallback only
        // where it is unset.
        if std::env::var_os(TOKEN_ENV).is_none() {
            assert_eq!(args(None, None).token().unwrap().0, "admin-secret");
        }
        let missing = args(None, Some(&dir.path().join("nope"))).token();
        assert!(matches!(missing, Err(ClientError::TokenFile { .. })));
    }
}
