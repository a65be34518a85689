//! A middleware that keeps every exchange the fake served (request and answer, bytes as sent),
//! so a test can hand them to the schema checker in `tests/github-schemas/`, which holds each
//! one against GitHub's published description of that request and answer.
//!
//! Invariant: the request and the answer pass through unchanged.

use super::routes::Shared;
use super::state::Exchange;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State as Extract};
use axum::middleware::Next;
use axum::response::Response;

/// The fake's answers and the requests mainline sends are small; a larger body is a bug.
const MAX_RECORDED_BYTES: usize = 16 * 1024 * 1024;

pub(crate) async fn record(
    Extract(shared): Extract<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let (parts, body) = request.into_parts();
    let request_body = to_bytes(body, MAX_RECORDED_BYTES).await.unwrap_or_default();
    let response = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let (parts, body) = response.into_parts();
    let response_body = to_bytes(body, MAX_RECORDED_BYTES).await.unwrap_or_default();
    shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .exchanges
        .push(Exchange {
            method,
            path,
            query,
            request_body: String::from_utf8_lossy(&request_body).into_owned(),
            status: parts.status.as_u16(),
            response_body: String::from_utf8_lossy(&response_body).into_owned(),
        });
    Response::from_parts(parts, Body::from(response_body))
}
