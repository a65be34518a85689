//! `POST /webhooks/github`: GitHub's deliveries, verified and turned into immediate reconciles.
//!
//! Order per delivery: body size (a declared `Content-Length` over [`MAX_BODY_BYTES`] is refused
//! before reading, a longer stream when it passes the limit: 413, `too_large`), a body that
//! stops short — the client went away, or `body_timeout` passed — is `incomplete` (400/408, not
//! `too_large`), signature (`X-Hub-Signature-256`, constant-time: missing or wrong 401), the
//! event and delivery headers (400 when absent), the payload (malformed 400), the delivery id (a
//! replay of an accepted id is acknowledged with 200 and not acted on; an id is recorded only
//! once its payload verified *and* parsed, so GitHub's redelivery of a delivery we refused is
//! still heard), then the channels it concerns — by repository and mainline branch — are asked
//! to reconcile at once (202). Unknown events are acknowledged (202) and ignored.
//!
//! A standby replica (leader election) verifies and acknowledges a delivery (202, `"status":
//! "standby"`) but acts on nothing: GitHub does not redeliver, so the leader's next scheduled
//! pass covers the event (the detection bound is then the interval, not the webhook).
//!
//! Which events trigger is `Event::triggers_reconcile`'s rule: `merge_group.destroyed` with a
//! reason other than `merged`, and a push to the channel's branch.
//! Must never: act on a body before its signature verified, log the secret or the signature,
//! or let one delivery do more than queue reconciles (the decision is made from fresh facts).

use super::http::{error_response, Shared};
use crate::error::{CliError, Kind};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mainline_github::webhook::{
    parse_event, verify_signature, DestroyReason, Event, WebhookError, DELIVERY_HEADER,
    EVENT_HEADER, MAX_BODY_BYTES, SIGNATURE_HEADER,
};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An unauthenticated header value, safe to log: at most 64 characters, escaped.
fn shown(v: Option<&str>) -> String {
    format!("{:?}", v.unwrap_or("").chars().take(64).collect::<String>())
}

/// A short description of an event, for logs and the trigger reason.
fn label(e: &Event) -> String {
    match e {
        Event::MergeGroupChecksRequested { head_ref, .. } => {
            format!("merge_group.checks_requested {head_ref}")
        }
        Event::MergeGroupDestroyed {
            reason, head_ref, ..
        } => {
            let why = match reason {
                DestroyReason::Merged => "merged",
                DestroyReason::Invalidated => "invalidated",
                DestroyReason::Dequeued => "dequeued",
                DestroyReason::Other(s) => s.as_str(),
            };
            format!("merge_group.destroyed ({why}) {head_ref}")
        }
        Event::Push { git_ref, .. } => format!("push {git_ref}"),
        Event::Ping => "ping".into(),
        Event::Ignored { event } => format!("{event} (ignored)"),
    }
}

/// How a body that could not be read is answered and counted.
fn unreadable(shared: &Shared, delivery: Option<&str>, e: &axum::Error) -> Response {
    let counters = &shared.webhooks;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let (mut too_large, mut timed_out) = (false, false);
    while let Some(s) = source {
        too_large |= s.is::<http_body_util::LengthLimitError>();
        timed_out |= s.is::<tower_http::timeout::TimeoutError>();
        source = s.source();
    }
    let (status, message) = if too_large {
        counters.too_large.fetch_add(1, Ordering::Relaxed);
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the webhook body is over {MAX_BODY_BYTES} bytes"),
        )
    } else if timed_out {
        counters.incomplete.fetch_add(1, Ordering::Relaxed);
        (
            StatusCode::REQUEST_TIMEOUT,
            "the webhook body did not arrive within the guard's body_timeout".to_owned(),
        )
    } else {
        counters.incomplete.fetch_add(1, Ordering::Relaxed);
        (
            StatusCode::BAD_REQUEST,
            format!("the webhook body ended before its declared length ({e})"),
        )
    };
    tracing::warn!(delivery = %shown(delivery), "webhook refused: {message}");
    error_response(status, &CliError::invalid(message))
}

pub async fn github(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let counters = &shared.webhooks;
    let Some(secret) = &shared.webhook_secret else {
        return error_response(
            StatusCode::NOT_FOUND,
            &CliError::invalid("webhooks are disabled on this guard").with_hint(
                "start it with MAINLINE_WEBHOOK_SECRET or webhook_secret_file set to the \
                 secret of the GitHub webhook",
            ),
        );
    };
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let delivery = header(&headers, DELIVERY_HEADER);
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return unreadable(&shared, delivery, &e),
    };
    if let Err(e) = verify_signature(
        secret.expose().as_bytes(),
        &body,
        header(&headers, SIGNATURE_HEADER),
    ) {
        let (status, counter) = match e {
            WebhookError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, &counters.too_large),
            _ => (StatusCode::UNAUTHORIZED, &counters.unauthorized),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(delivery = %shown(delivery), "webhook refused: {e}");
        return error_response(status, &CliError::new(Kind::Unauthorized, e.to_string()));
    }
    let (Some(event), Some(delivery)) = (header(&headers, EVENT_HEADER), delivery) else {
        counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "webhook refused: a signed delivery without {EVENT_HEADER} or {DELIVERY_HEADER}"
        );
        return error_response(
            StatusCode::BAD_REQUEST,
            &CliError::invalid(format!(
                "the delivery has no {EVENT_HEADER} or {DELIVERY_HEADER} header"
            ))
            .with_hint("GitHub always sends both: check that the sender is GitHub"),
        );
    };
    let parsed = match parse_event(event, delivery, &body) {
        Ok(e) => e,
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(delivery, event, "webhook refused: {e}");
            return error_response(StatusCode::BAD_REQUEST, &CliError::invalid(e.to_string()));
        }
    };
    let seen = shared
        .replay
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check_and_record(delivery);
    match seen {
        Ok(()) => {}
        Err(WebhookError::Replayed { .. }) => {
            counters.replayed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                delivery,
                event,
                "webhook replayed: acknowledged, not acted on"
            );
            return (
                StatusCode::OK,
                Json(json!({ "delivery": delivery, "status": "replayed", "triggered": [] })),
            )
                .into_response();
        }
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(delivery = %shown(Some(delivery)), "webhook refused: {e}");
            return error_response(StatusCode::BAD_REQUEST, &CliError::invalid(e.to_string()));
        }
    }
    let what = label(&parsed);
    if matches!(parsed, Event::Ignored { .. } | Event::Ping) {
        counters.ignored.fetch_add(1, Ordering::Relaxed);
        tracing::info!(delivery, "webhook {what}: acknowledged");
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "delivery": delivery, "status": "ignored", "event": what, "triggered": [] })),
        )
            .into_response();
    }
    if !shared.leader.may_reconcile() {
        // GitHub does not redeliver: the leader's next scheduled pass covers this event.
        counters.standby.fetch_add(1, Ordering::Relaxed);
        let leader = shared.leader.known_leader();
        tracing::info!(delivery, leader = ?leader,
            "webhook {what}: acknowledged by a standby, not acted on (the leader's next pass covers it)");
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "delivery": delivery, "status": "standby", "event": what, "leader": leader, "triggered": [] })),
        )
            .into_response();
    }
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    let reason = format!("webhook {what} ({delivery})");
    let triggered: Vec<&str> = shared
        .slots
        .iter()
        .filter(|s| {
            s.spec.github.as_ref().is_some_and(|repo| {
                parsed.triggers_reconcile(&repo.full_name(), &s.spec.config.branch)
            })
        })
        .map(|s| {
            s.request(&reason);
            s.name()
        })
        .collect();
    tracing::info!(delivery, triggered = ?triggered, "webhook {what}");
    (
        StatusCode::ACCEPTED,
        Json(json!({ "delivery": delivery, "status": "accepted", "event": what, "triggered": triggered })),
    )
        .into_response()
}
