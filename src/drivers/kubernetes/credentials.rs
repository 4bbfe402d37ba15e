//! Where the Kubernetes driver finds its API server and credentials: a kubeconfig file (the
//! policy's path, else the first existing `$KUBECONFIG` entry, else `~/.kube/config`), else
//! the pod's service account when running in a cluster.
//!
//! From a kubeconfig it takes the current context (or the policy's `context`), its cluster's
//! `server`, `certificate-authority(-data)` and `insecure-skip-tls-verify`, and its user's
//! `token`, `tokenFile`, `username`/`password`, client certificate and key
//! (`client-certificate(-data)`, `client-key(-data)`), or `exec` credential plugin (`exec.rs`:
//! what EKS, GKE and AKS use). Relative paths are relative to the kubeconfig's directory.
//! Auth providers (removed from kubectl) are not run. Several `$KUBECONFIG`
//! files are not merged: the first that exists is used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::drivers::Secret;

/// The service account directory every pod gets.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Errors while finding or reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig is not YAML of the expected shape.
    #[error("{path} is not a valid kubeconfig")]
    Yaml {
        /// The kubeconfig.
        path: PathBuf,
        /// What the parser said (boxed: the parser's error is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The kubeconfig parses but cannot be used.
    #[error("{path}: {message}")]
    Kubeconfig {
        /// The kubeconfig.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No kubeconfig, no service account, and no `api_server`.
    #[error(
        "no kubeconfig (policy `kubeconfig`, $KUBECONFIG, ~/.kube/config), and not running in a pod (KUBERNETES_SERVICE_HOST is not set)"
    )]
    NotFound,
}

/// Why no HTTP client can be built from the credentials. The reqwest error each cause
/// carries is in the message, so it is not a `source` too: a chain would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The cluster's CA is not PEM.
    #[error("the cluster CA of {origin} is not PEM: {error}")]
    CaNotPem {
        /// Where the credentials came from.
        origin: String,
        /// What reqwest said.
        error: reqwest::Error,
    },
    /// The cluster's CA is PEM without a certificate in it.
    #[error("the cluster CA of {origin} holds no certificate")]
    NoCaCertificate {
        /// Where the credentials came from.
        origin: String,
    },
    /// The client certificate and key cannot be used.
    #[error("the client certificate of {origin} is not usable: {error}")]
    Identity {
        /// Where the credentials came from.
        origin: String,
        /// What reqwest said.
        error: reqwest::Error,
    },
    /// reqwest could not build the client.
    #[error("cannot build an HTTP client: {0}")]
    Build(reqwest::Error),
}

/// How requests prove who sends them.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// No credentials (e.g. through `kubectl proxy`).
    Anonymous,
    /// A bearer token.
    Token(Secret),
    /// A bearer token read from this file before each request (service account tokens rotate).
    TokenFile(PathBuf),
    /// A bearer token from a kubeconfig `exec` credential plugin.
    Exec(super::exec::ExecPlugin),
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

/// Everything needed to talk to one API server.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// Base URL, e.g. `https://10.0.0.1:443`.
    pub server: String,
    /// The namespace the kubeconfig context or the pod names, if any.
    pub namespace: Option<String>,
    /// PEM certificates of the cluster's CA; when set, only they are trusted.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate followed by its private key.
    pub identity_pem: Option<Secret>,
    /// Whether the server's certificate goes unchecked.
    pub insecure_skip_tls_verify: bool,
    /// How requests authenticate.
    pub auth: Auth,
    /// Where these came from, for error messages.
    pub origin: String,
}

/// Where to look for credentials; `from_env` reads the real environment, tests fill it in.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The policy's `kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// The policy's `context`.
    pub context: Option<String>,
    /// `$KUBECONFIG`.
    pub kubeconfig_env: Option<String>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$KUBERNETES_SERVICE_HOST` and `$KUBERNETES_SERVICE_PORT`.
    pub service: Option<(String, String)>,
    /// The pod's service account directory.
    pub service_account_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    value: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    cluster: Option<String>,
    user: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    exec: Option<super::exec::ExecPlugin>,
    auth_provider: Option<serde::de::IgnoredAny>,
}

// === impl Sources ===

impl Sources {
    /// The policy's settings plus the process environment.
    pub fn from_env(kubeconfig: Option<PathBuf>, context: Option<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Sources {
            kubeconfig,
            context,
            kubeconfig_env: var("KUBECONFIG"),
            home: var("HOME").map(PathBuf::from),
            service: var("KUBERNETES_SERVICE_HOST").zip(var("KUBERNETES_SERVICE_PORT")),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

// === impl Credentials ===

#[cfg(test)]
impl Credentials {
    /// Credentials for a test's server: `auth` sent to `server`, no namespace, no TLS.
    pub(crate) fn for_test(server: &str, auth: Auth) -> Self {
        Credentials {
            server: server.to_string(),
            namespace: None,
            ca_pem: None,
            identity_pem: None,
            insecure_skip_tls_verify: false,
            auth,
            origin: "the test".into(),
        }
    }
}

impl Credentials {
    /// Credentials from the first source that has them; with an `api_server`, that server
    /// replaces the found one, and no source at all means anonymous requests to it.
    pub fn resolve(sources: &Sources, api_server: Option<&str>) -> Result<Self, CredentialsError> {
        let from_env = sources.kubeconfig_env.as_deref().and_then(|list| {
            std::env::split_paths(list).find(|path| !path.as_os_str().is_empty() && path.is_file())
        });
        let from_home = sources
            .home
            .as_ref()
            .map(|home| home.join(".kube").join("config"))
            .filter(|path| path.is_file());
        let context = sources.context.as_deref();
        let found = match (&sources.kubeconfig, from_env, from_home, &sources.service) {
            (Some(path), ..) => Some(Credentials::from_kubeconfig(path, context)?),
            (None, Some(path), ..) | (None, None, Some(path), _) => {
                Some(Credentials::from_kubeconfig(&path, context)?)
            }
            (None, None, None, Some((host, port))) => Some(Credentials::in_cluster(
                host,
                port,
                &sources.service_account_dir,
            )?),
            (None, None, None, None) => None,
        };
        match (found, api_server) {
            (Some(credentials), Some(server)) => Ok(Credentials {
                server: server.to_string(),
                ..credentials
            }),
            (Some(credentials), None) => Ok(credentials),
            (None, Some(server)) => Ok(Credentials {
                server: server.to_string(),
                namespace: None,
                ca_pem: None,
                identity_pem: None,
                insecure_skip_tls_verify: false,
                auth: Auth::Anonymous,
                origin: "no credentials".into(),
            }),
            (None, None) => Err(CredentialsError::NotFound),
        }
    }

    /// The pod's service account: `token`, `ca.crt` and `namespace` in `dir`.
    pub fn in_cluster(host: &str, port: &str, dir: &Path) -> Result<Self, CredentialsError> {
        let token = dir.join("token");
        // Fail now rather than at the first request when the token is not there.
        read(&token)?;
        let namespace = std::fs::read_to_string(dir.join("namespace"))
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(Credentials {
            server: format!("https://{host}:{port}"),
            namespace,
            ca_pem: Some(read(&dir.join("ca.crt"))?),
            identity_pem: None,
            insecure_skip_tls_verify: false,
            auth: Auth::TokenFile(token),
            origin: format!("the service account in {}", dir.display()),
        })
    }

    /// The credentials of `context` (default: the current one) in the kubeconfig at `path`.
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, CredentialsError> {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        let config: Kubeconfig =
            serde_saphyr::from_str(&text).map_err(|source| CredentialsError::Yaml {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        let fail = |message: String| CredentialsError::Kubeconfig {
            path: path.to_path_buf(),
            message,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |file: &Path| dir.join(file);
        let decode = |field: &str, data: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|error| fail(format!("{field} is not base64: {error}")))
        };

        let context_name = context
            .map(str::to_string)
            .or(config.current_context.clone())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| fail("no current-context, and the policy names no `context`".into()))?;
        let context = find(&config.contexts, &context_name)
            .ok_or_else(|| fail(format!("no context named {context_name:?}")))?;
        let cluster_name = context.cluster.as_deref().unwrap_or_default();
        let cluster = find(&config.clusters, cluster_name).ok_or_else(|| {
            fail(format!(
                "context {context_name:?} names no known cluster ({cluster_name:?})"
            ))
        })?;
        let server = cluster
            .server
            .clone()
            .ok_or_else(|| fail(format!("cluster {cluster_name:?} has no server")))?;
        let default_user = User::default();
        let user = match context.user.as_deref() {
            Some(name) => find(&config.users, name).ok_or_else(|| {
                fail(format!(
                    "context {context_name:?} names no known user ({name:?})"
                ))
            })?,
            None => &default_user,
        };

        let ca_pem = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) => Some(decode("certificate-authority-data", data)?),
            (None, Some(file)) => Some(read(&resolve(file))?),
            (None, None) => None,
        };
        let certificate = match (&user.client_certificate_data, &user.client_certificate) {
            (Some(data), _) => Some(decode("client-certificate-data", data)?),
            (None, Some(file)) => Some(read(&resolve(file))?),
            (None, None) => None,
        };
        let key = match (&user.client_key_data, &user.client_key) {
            (Some(data), _) => Some(decode("client-key-data", data)?),
            (None, Some(file)) => Some(read(&resolve(file))?),
            (None, None) => None,
        };
        let identity_pem = match (certificate, key) {
            (Some(mut certificate), Some(key)) => {
                certificate.push(b'\n');
                certificate.extend_from_slice(&key);
                Some(Secret::new(String::from_utf8_lossy(&certificate)))
            }
            (None, None) => None,
            _ => {
                return Err(fail(
                    "a client certificate needs both the certificate and its key".into(),
                ));
            }
        };
        let auth = match (
            &user.token,
            &user.token_file,
            &user.username,
            &user.password,
        ) {
            (Some(token), ..) => Auth::Token(Secret::new(token.trim())),
            (None, Some(file), ..) => Auth::TokenFile(resolve(file)),
            (None, None, Some(username), Some(password)) => Auth::Basic {
                username: username.clone(),
                password: Secret::new(password.clone()),
            },
            (None, None, ..) if identity_pem.is_none() && user.exec.is_some() => {
                let mut plugin = user.exec.clone().unwrap_or_else(|| unreachable!());
                // A relative command with a directory part is relative to the kubeconfig.
                if plugin.command.is_relative() && plugin.command.components().count() > 1 {
                    plugin.command = resolve(&plugin.command);
                }
                Auth::Exec(plugin)
            }
            _ if identity_pem.is_none() && user.auth_provider.is_some() => {
                return Err(fail(format!(
                    "the user of context {context_name:?} authenticates through an auth provider (deprecated in Kubernetes, removed from kubectl), which swarmpilot does not run; use its exec plugin, a token or a client certificate"
                )));
            }
            _ => Auth::Anonymous,
        };
        Ok(Credentials {
            server,
            namespace: context.namespace.clone().filter(|n| !n.is_empty()),
            ca_pem,
            identity_pem,
            insecure_skip_tls_verify: cluster.insecure_skip_tls_verify,
            auth,
            origin: format!("context {context_name:?} of {}", path.display()),
        })
    }

    /// An HTTP client that trusts the cluster's CA and presents the client certificate.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(pem) = &self.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
                HttpClientError::CaNotPem {
                    origin: self.origin.clone(),
                    error,
                }
            })?;
            if certificates.is_empty() {
                return Err(HttpClientError::NoCaCertificate {
                    origin: self.origin.clone(),
                });
            }
            builder = builder.tls_certs_only(certificates);
        }
        if let Some(pem) = &self.identity_pem {
            let identity =
                reqwest::Identity::from_pem(pem.expose().as_bytes()).map_err(|error| {
                    HttpClientError::Identity {
                        origin: self.origin.clone(),
                        error,
                    }
                })?;
            builder = builder.identity(identity);
        }
        if self.insecure_skip_tls_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder.build().map_err(HttpClientError::Build)
    }
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items
        .iter()
        .find(|item| item.name == name)
        .map(|item| &item.value)
}

fn read(path: &Path) -> Result<Vec<u8>, CredentialsError> {
    std::fs::read(path).map_err(|source| CredentialsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
