//! Bearer-token authentication and roles. The controller always has an admin token in the
//! data directory; policy may add tokens by reference (`token_env`, `token_file`), each with
//! a role: `viewer < operator < approver < admin`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::ApiState;
use super::error::ApiError;
use crate::policy::{Policy, Role};

/// File name of the generated admin token inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who the token belongs to; the log names this user.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
}

impl Caller {
    /// Refuses with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            return Ok(());
        }
        Err(ApiError {
            status: actix_web::http::StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!(
                "{} has role {:?}; this needs {:?} or above",
                self.name, self.role, role
            )
            .to_lowercase(),
            field: Some("Authorization".into()),
        })
    }
}

/// The configured tokens of one policy version, resolved from their environment variables
/// and files: (secret, holder, role).
#[derive(Debug, Default)]
pub struct TokenCache {
    version: String,
    tokens: Vec<(String, String, Role)>,
}

/// Reads every configured token's secret; unreadable ones are skipped (policy checks report
/// them).
fn resolve_tokens(policy: &Policy) -> Vec<(String, String, Role)> {
    policy
        .global
        .tokens
        .iter()
        .filter_map(|token| {
            let secret = match (&token.token_env, &token.token_file) {
                (Some(var), _) => std::env::var(var).ok(),
                (None, Some(file)) => std::fs::read_to_string(file).ok(),
                (None, None) => None,
            }?;
            let secret = secret.trim().to_string();
            (!secret.is_empty()).then(|| (secret, token.name.clone(), token.role))
        })
        .collect()
}

/// Reads the admin token from `data_dir`, creating it (mode 0600) when missing.
pub fn ensure_admin_token(data_dir: &Path) -> std::io::Result<(PathBuf, String)> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_string();
        if !token.is_empty() {
            return Ok((path, token));
        }
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{token}")?;
    Ok((path, token))
}

/// Compares in time independent of where the strings first differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

/// The caller a request's `Authorization: Bearer TOKEN` header names.
pub(super) fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .ok_or_else(|| ApiError::internal("API state missing"))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer TOKEN header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("Authorization must be Bearer TOKEN"))?;
    let token = token.trim();
    if same(token, &state.admin_token) {
        return Ok(Caller {
            name: "admin".to_string(),
            role: Role::Admin,
        });
    }
    let current = state.policy.current();
    // A poisoned cache only holds resolved tokens: safe to keep using.
    let mut cache = state.tokens.lock().unwrap_or_else(|p| p.into_inner());
    if cache.version != current.version {
        cache.version = current.version.clone();
        cache.tokens = resolve_tokens(&current.policy);
    }
    cache
        .tokens
        .iter()
        .find(|(secret, _, _)| same(token, secret))
        .map(|(_, name, role)| Caller {
            name: name.clone(),
            role: *role,
        })
        .ok_or_else(|| ApiError::unauthorized("unknown token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (path, first) = ensure_admin_token(dir.path()).unwrap();
        let (_, second) = ensure_admin_token(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 48);
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
