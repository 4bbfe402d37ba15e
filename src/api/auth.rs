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
/// and files: (secret, holder, role). Files are read again every [`TOKEN_REFRESH`], so a
/// token rotated or revoked in its file takes effect within that time without a reload.
#[derive(Debug, Default)]
pub struct TokenCache {
    version: String,
    read_at: Option<std::time::Instant>,
    tokens: Vec<(String, String, Role)>,
}

/// How long resolved token secrets are trusted before their files are read again.
pub const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

impl TokenCache {
    /// Who holds `token` under `policy` (version `version`) at `now`, re-reading the secrets
    /// when the policy changed or they are older than [`TOKEN_REFRESH`].
    fn holder(
        &mut self,
        policy: &Policy,
        version: &str,
        token: &str,
        now: std::time::Instant,
    ) -> Option<Caller> {
        let stale = self
            .read_at
            .is_none_or(|at| now.saturating_duration_since(at) >= TOKEN_REFRESH);
        if self.version != version || stale {
            self.version = version.to_string();
            self.tokens = resolve_tokens(policy);
            self.read_at = Some(now);
        }
        self.tokens
            .iter()
            .find(|(secret, _, _)| same(token, secret))
            .map(|(_, name, role)| Caller {
                name: name.clone(),
                role: *role,
            })
    }
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
    let token = bearer(req)?;
    if same(token, &state.admin_token) {
        return Ok(Caller {
            name: "admin".to_string(),
            role: Role::Admin,
        });
    }
    let current = state.policy.current();
    // A poisoned cache only holds resolved tokens: safe to keep using.
    let mut cache = state.tokens.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .holder(
            &current.policy,
            &current.version,
            token,
            std::time::Instant::now(),
        )
        .ok_or_else(|| ApiError::unauthorized("unknown token"))
}

/// The token of a request's `Authorization: Bearer TOKEN` header.
fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer TOKEN header"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("Authorization must be Bearer TOKEN"))
}

/// The caller of a request to a standby, which has no API state: the admin token of its
/// data directory, or a token of `policy` (read anew each time).
pub(super) fn standby_caller(
    req: &HttpRequest,
    admin_token: &str,
    policy: &Policy,
) -> Result<Caller, ApiError> {
    let token = bearer(req)?;
    if same(token, admin_token) {
        return Ok(Caller {
            name: "admin".to_string(),
            role: Role::Admin,
        });
    }
    resolve_tokens(policy)
        .into_iter()
        .find(|(secret, _, _)| same(token, secret))
        .map(|(_, name, role)| Caller { name, role })
        .ok_or_else(|| ApiError::unauthorized("unknown token"))
}

/// The 429 answer for `caller` when its bucket is empty (`global.requests_per_sec_per_token`),
/// with `Retry-After` in whole seconds; `None` lets the request through.
pub(super) fn throttle(req: &HttpRequest, caller: &str) -> Option<actix_web::HttpResponse> {
    let state = req.app_data::<web::Data<ApiState>>()?;
    let (per_sec, burst) = {
        let global = &state.policy.current().policy.global;
        (
            global.requests_per_sec_per_token,
            global.request_burst_per_token,
        )
    };
    let now = state.clock.now_ms();
    // A poisoned lock only holds counts: safe to keep using.
    let mut buckets = state.rates.lock().unwrap_or_else(|p| p.into_inner());
    let (rate, size) = (f64::from(per_sec), f64::from(burst));
    let wait_ms = buckets.take(caller, now, rate, size).err()?;
    if buckets.len() > 1024 {
        buckets.forget_full(now, rate, size);
    }
    drop(buckets);
    let secs = ((wait_ms + 999) / 1000).max(1);
    let refused = ApiError {
        status: actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!(
            "{caller} made more than {per_sec} requests a second (policy \
             global.requests_per_sec_per_token); retry in {secs} s"
        ),
        field: Some("Authorization".into()),
    };
    let mut answer = actix_web::ResponseError::error_response(&refused);
    answer.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(secs),
    );
    Some(answer)
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

    #[test]
    fn a_token_rotated_in_its_file_takes_over_within_the_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ops.token");
        std::fs::write(&file, "first-secret\n").unwrap();
        let text = format!(
            "[[global.tokens]]\nname = \"ops\"\nrole = \"operator\"\ntoken_file = {:?}\n",
            file.display().to_string()
        );
        let loaded = crate::policy::load_str("t.toml", &text).unwrap();
        let mut cache = TokenCache::default();
        let at = std::time::Instant::now();
        let holder = |cache: &mut TokenCache, token: &str, at| {
            cache.holder(&loaded.policy, &loaded.version, token, at)
        };
        assert_eq!(holder(&mut cache, "first-secret", at).unwrap().name, "ops");
        std::fs::write(&file, "second-secret\n").unwrap();
        // Within the refresh the old secret still holds; after it, only the new one.
        assert!(holder(&mut cache, "first-secret", at + TOKEN_REFRESH / 2).is_some());
        let later = at + TOKEN_REFRESH;
        assert!(
            holder(&mut cache, "first-secret", later).is_none(),
            "revoked"
        );
        assert_eq!(
            holder(&mut cache, "second-secret", later).unwrap().role,
            Role::Operator
        );
    }
}
