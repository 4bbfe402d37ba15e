//! The JSON error shape of every HTTP endpoint: `{"error": {"code", "message", "field"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `bad_request`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault, if one.
    pub field: Option<String>,
}

/// The body of every error answer.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorBody<'a> {
    /// What went wrong.
    pub error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorDetail<'a> {
    /// Machine-readable, e.g. `bad_request`, `not_found`, `forbidden`.
    pub code: &'a str,
    /// For a person.
    pub message: &'a str,
    /// The request field at fault, if one.
    pub field: Option<&'a str>,
}

impl ApiError {
    /// 400 with the field at fault.
    pub fn bad_request(field: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            field: field.map(str::to_string),
        }
    }

    /// 401: no or wrong credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            field: Some("Authorization".into()),
        }
    }

    /// 404 for a missing resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            field: None,
        }
    }

    /// 500: the server failed; the message says where, never a secret.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
            field: None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
    }
}

/// Turns a JSON body error into a 400 that names the field or the position.
pub fn json_error(error: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: error.to_string(),
                field: None,
            }
        }
        JsonPayloadError::Deserialize(inner) => invalid_body(inner),
        JsonPayloadError::Payload(inner) => timed_out(inner)
            .unwrap_or_else(|| ApiError::bad_request(None, format!("invalid JSON body: {error}"))),
        _ => ApiError::bad_request(None, format!("invalid JSON body: {error}")),
    };
    api.into()
}

/// A 400 for a JSON body that does not read as its type, naming the field when serde does.
fn invalid_body(error: &serde_json::Error) -> ApiError {
    let field = error.to_string().split('`').nth(1).map(str::to_string);
    ApiError {
        field,
        ..ApiError::bad_request(None, format!("invalid JSON body: {error}"))
    }
}

/// Reads an optional JSON body: none when it is empty or `null`, else a `T` or a 400 naming
/// the field (`Option<web::Json<T>>` would take a malformed body for no body).
pub(super) fn optional_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let named = (path != ".").then_some(path);
        let message = format!("invalid JSON body: {}", error.inner());
        ApiError {
            field: named.or_else(|| invalid_body(error.inner()).field),
            ..ApiError::bad_request(None, message)
        }
    })
}

/// Refuses free text (a comment, a reason) holding a control character other than a tab or a
/// line break, naming the field: PostgreSQL cannot store NUL, and escape sequences would drive
/// the terminal of whoever reads the log.
pub(super) fn free_text(field: &str, text: &str) -> Result<(), ApiError> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some((at, c)) => Err(ApiError::bad_request(
            Some(field),
            format!(
                "holds the control character U+{:04X} at character {at}; only tabs and line \
                 breaks are allowed",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// [`free_text`] for each field given, skipping those absent.
pub(super) fn free_texts(fields: &[(&str, &Option<String>)]) -> Result<(), ApiError> {
    for (field, value) in fields {
        if let Some(text) = value {
            free_text(field, text)?;
        }
    }
    Ok(())
}

/// Refuses a query value not among `allowed`, naming the field.
pub(super) fn one_of(
    field: &str,
    value: &Option<String>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::bad_request(
            Some(field),
            format!("{v:?} is not one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Reads a time given as RFC 3339 or epoch milliseconds, naming the field when it is neither.
pub(super) fn time(field: &str, text: &str) -> Result<i64, ApiError> {
    crate::clock::parse_time(text).ok_or_else(|| {
        ApiError::bad_request(
            Some(field),
            format!("{text:?} is neither RFC 3339 nor epoch milliseconds"),
        )
    })
}

/// The 408 for a body whose deadline passed while it was read (`api::admission` puts the
/// deadline on every body); `None` for other failures.
pub fn timed_out(error: &actix_web::error::PayloadError) -> Option<ApiError> {
    match error {
        actix_web::error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            Some(ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "request_timeout",
                message: format!("{e} (policy ingest.body_timeout_secs)"),
                field: Some("body".into()),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_keeps_tabs_and_line_breaks_and_names_a_control_character() {
        assert!(free_text("comment", "two lines\r\n\tindented").is_ok());
        let error = free_text("comment", "leak\u{0}").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("comment"));
        assert!(
            error.message.contains("U+0000 at character 4"),
            "{}",
            error.message
        );
        assert!(free_text("reason", "\u{9b}31m").is_err(), "C1 controls too");
    }
}
