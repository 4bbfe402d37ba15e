//! What a request must get past before its handler, after its token: a cap on the requests
//! each token has in flight (`global.max_requests_in_flight_per_token`), and a deadline on
//! its body (`ingest.body_timeout_secs`), so that a token holder cannot hold thousands of
//! connections open by sending bodies slowly or not at all.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use futures_util::Stream;

use super::ApiState;
use crate::http_error::ApiError;

/// Requests in flight per token name.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<String, u32>>>);

/// A request's place among its token's requests in flight; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    held: InFlight,
    caller: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // A poisoned lock only holds counts: safe to keep using.
        let mut counts = self.held.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.caller);
            }
        }
    }
}

/// A slot for `caller`'s request, or the 429 answer (with `Retry-After: 1`) when it has the
/// policy's cap in flight already; no slot when the policy sets no cap.
pub(super) fn admit(
    req: &actix_web::HttpRequest,
    caller: &str,
) -> Result<Option<Slot>, Box<actix_web::HttpResponse>> {
    let Some(state) = req.app_data::<web::Data<ApiState>>() else {
        return Ok(None);
    };
    let cap = state
        .policy
        .current()
        .policy
        .global
        .max_requests_in_flight_per_token;
    if cap == 0 {
        return Ok(None);
    }
    let held = state.inflight.clone();
    let mut counts = held.0.lock().unwrap_or_else(|p| p.into_inner());
    let count = counts.entry(caller.to_string()).or_insert(0);
    if *count >= cap {
        let refused = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_in_flight",
            message: format!(
                "{caller} has {cap} requests in flight already (policy \
                 global.max_requests_in_flight_per_token); retry when one has finished"
            ),
            field: Some("Authorization".into()),
        };
        let mut answer = actix_web::ResponseError::error_response(&refused);
        answer.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(1),
        );
        return Err(Box::new(answer));
    }
    *count += 1;
    drop(counts);
    Ok(Some(Slot {
        held,
        caller: caller.to_string(),
    }))
}

/// Puts the policy's deadline on `req`'s body: past it, reading the body fails with a
/// timeout that [`timed_out`] answers.
pub(super) fn bound_body(req: &mut ServiceRequest) {
    let Some(state) = req.app_data::<web::Data<ApiState>>() else {
        return;
    };
    let secs = state.policy.current().policy.ingest.body_timeout_secs;
    let inner = req.take_payload();
    let bounded = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(secs))),
        secs,
        ended: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(bounded);
    req.set_payload(Payload::from(boxed));
}

/// A body that fails once its deadline passes.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    secs: u64,
    ended: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let error = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the body did not arrive within {} s", self.secs),
            );
            return Poll::Ready(Some(Err(PayloadError::Io(error))));
        }
        Poll::Pending
    }
}

pub use crate::http_error::timed_out;
