//! Paged list routes: the page size a query may ask for, and the `Link` header that leads to
//! the next page (the log, the alert history, the agents, the actions, the alerts).

use super::error::ApiError;

/// The page size a query asks for: `default` when absent, at most `max` (larger asks get
/// `max`, as the `Link` header then says); 0 is refused, naming `limit`.
pub(super) fn page_limit(
    given: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match given {
        Some(0) => Err(ApiError::bad_request(
            Some("limit"),
            "limit must be at least 1",
        )),
        given => Ok(given.unwrap_or(default).min(max)),
    }
}

/// Adds the `Link: <PATH?CURSOR=VALUE&limit=N&...>; rel="next"` header of a page whose next
/// page starts at `cursor` (none when the page was the last), keeping the `filters` given.
pub(super) fn link_next(
    response: &mut actix_web::HttpResponseBuilder,
    path: &str,
    cursor: Option<(&str, String)>,
    limit: usize,
    filters: &[(&str, &Option<String>)],
) {
    let Some((name, value)) = cursor else {
        return;
    };
    let mut next = vec![
        format!("{name}={}", encode(&value)),
        format!("limit={limit}"),
    ];
    for (name, value) in filters {
        if let Some(value) = value {
            next.push(format!("{name}={}", encode(value)));
        }
    }
    response.insert_header(("Link", format!("<{path}?{}>; rel=\"next\"", next.join("&"))));
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
