//! Policy endpoints: the policy in force, validating a candidate, reloading.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorDetail};
use super::openapi::Endpoint;
use super::routes::read_store;
use crate::actors::policy::{GetPolicyStatus, PolicySource, ReloadOutcome, ReloadPolicy};
use crate::policy::{self, PolicyError, Role};

/// Most policy versions `GET /api/v1/policies` returns.
const HISTORY: usize = 20;

/// The policy routes under `/api/v1`.
pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/policies",
            "The policy in force and its version history",
            || web::get().to(status),
        )
        .answers::<PolicyStatusOut>(200, "The policy, its files, overlay and recent versions"),
        Endpoint::post(
            "/policies/validate",
            "Check a candidate policy file",
            || web::post().to(validate),
        )
        .query::<ValidateQuery>()
        .raw_body("text/plain")
        .answers::<Verdict>(200, "Whether it loads, with every error and warning")
        .errors(&[400]),
        Endpoint::post(
            "/policies/reload",
            "Reload the policy from its files",
            || web::post().to(reload),
        )
        .role(Role::Admin)
        .answers::<ReloadOutcome>(200, "The version in force after the reload")
        .answers::<InvalidPolicy>(422, "The files do not load; the running policy stays"),
    ]
}

/// `GET /api/v1/policies`.
#[derive(Serialize, JsonSchema)]
struct PolicyStatusOut<'a> {
    version: &'a str,
    source: &'a PolicySource,
    files: &'a [String],
    policy: &'a policy::Policy,
    warnings: &'a [PolicyError],
    overlay: &'a [policy::OverlayEntry],
    last_reload_error: Option<&'a crate::actors::policy::ReloadFailure>,
    /// The most recent versions, newest first, each with its diff.
    history: Vec<crate::store::PolicyVersionRow>,
}

/// A reload refused: the error shape, with every error and warning.
#[derive(Serialize, JsonSchema)]
struct InvalidPolicy<'a> {
    /// Its code is `invalid_policy`.
    error: ErrorDetail<'a>,
    errors: &'a [PolicyError],
    warnings: &'a [PolicyError],
}

async fn status(state: web::Data<ApiState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let status = state
        .policy_keeper
        .send(GetPolicyStatus)
        .await
        .map_err(|e| ApiError::internal(format!("policy keeper unavailable: {e}")))?;
    let history = read_store(&state.store, |store| store.policy_versions(HISTORY)).await?;
    Ok(HttpResponse::Ok().json(PolicyStatusOut {
        version: &status.loaded.version,
        source: &status.source,
        files: &status.loaded.files,
        policy: &status.loaded.policy,
        warnings: &status.loaded.warnings,
        overlay: &status.loaded.overlay,
        last_reload_error: status.last_reload_error.as_ref(),
        history,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ValidateQuery {
    /// Validate the body as this file of the policy directory, merged with the others.
    file: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Verdict {
    valid: bool,
    version: Option<String>,
    errors: Vec<PolicyError>,
    warnings: Vec<PolicyError>,
}

async fn validate(
    state: web::Data<ApiState>,
    _caller: Caller,
    query: web::Query<ValidateQuery>,
    body: String,
) -> Result<HttpResponse, ApiError> {
    let status = state.policy_keeper.send(GetPolicyStatus).await.ok();
    let sources = match (&query.file, status.map(|s| s.source)) {
        (Some(file), Some(PolicySource::Path(dir))) if dir.is_dir() => {
            if file.contains('/') || !file.ends_with(".toml") {
                return Err(ApiError::bad_request(
                    Some("file"),
                    "must be a *.toml file name without a directory",
                ));
            }
            let mut sources = policy::read_sources(&dir).unwrap_or_default();
            let target = dir.join(file).display().to_string();
            sources.retain(|(name, _)| *name != target);
            sources.push((target, body));
            sources.sort();
            sources
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                Some("file"),
                "the running policy is not a directory",
            ));
        }
        (None, _) => vec![("candidate.toml".to_string(), body)],
    };
    let verdict = match policy::load_sources(&sources) {
        Ok(loaded) => Verdict {
            valid: true,
            version: Some(loaded.version),
            errors: Vec::new(),
            warnings: loaded.warnings,
        },
        Err(error) => Verdict {
            valid: false,
            version: None,
            errors: error.errors,
            warnings: error.warnings,
        },
    };
    Ok(HttpResponse::Ok().json(verdict))
}

async fn reload(state: web::Data<ApiState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let outcome = state
        .policy_keeper
        .send(ReloadPolicy { actor: caller.name })
        .await
        .map_err(|e| ApiError::internal(format!("policy keeper unavailable: {e}")))?;
    match outcome {
        Ok(outcome) => Ok(HttpResponse::Ok().json(outcome)),
        Err(error) => Ok(HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(
            InvalidPolicy {
                error: ErrorDetail {
                    code: "invalid_policy",
                    message: &format!(
                        "the policy has {} error(s); the running policy stays",
                        error.errors.len()
                    ),
                    field: error.errors.first().and_then(|e| e.field.as_deref()),
                },
                errors: &error.errors,
                warnings: &error.warnings,
            },
        )),
    }
}
