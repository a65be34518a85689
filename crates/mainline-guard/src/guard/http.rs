//! The guard's HTTP surface on one listener: the status page (`/`), its JSON API, `/metrics`,
//! `/healthz`, `/readyz`, and `POST /webhooks/github`.
//!
//! Invariants: handlers never block (they read the slots' states, queue triggers, or hand work
//! to the blocking lane); a body whose `Content-Length` is over its route's limit is refused
//! (413) before a byte of it is read, and every body is capped while it streams (64 KiB, the
//! webhook's [`MAX_BODY_BYTES`]) and bounded in time (`body_timeout`, see `server`); tokens and
//! the rate limit are checked by route middleware before any extractor runs (see `auth`);
//! error bodies are JSON `{ "error": { kind, message, hint } }`.
//! Must never: serve an action without the bearer check (see `auth`), or put a secret in a
//! response.

use super::metrics::{render, WebhookCounters};
use super::secret::Secret;
use super::slot::Slot;
use super::{api, page, webhook};
use crate::channel::ports::{Clock, SystemClock};
use crate::error::CliError;
use crate::error::Kind;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mainline_core::Timestamp;
use mainline_github::webhook::{ReplayGuard, MAX_BODY_BYTES};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// What every handler shares.
pub struct Shared {
    pub slots: Vec<Arc<Slot>>,
    pub index: HashMap<String, usize>,
    pub permits: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    pub stopping: AtomicBool,
    pub webhook_secret: Option<Secret>,
    pub replay: Mutex<ReplayGuard>,
    pub webhooks: WebhookCounters,
    /// Action tokens by name.
    pub tokens: Vec<(String, Secret)>,
    pub api_auth: super::limits::ApiAuth,
    pub rate: super::auth::RateLimit,
    pub conns: Arc<super::server::ConnCounters>,
    pub interval: Duration,
    pub started_at: Timestamp,
    /// Who acts for API pins (`guard@host`).
    pub actor: String,
    /// Whether this replica leads (always, without leader election).
    pub leader: Arc<super::leader::Leader>,
}

impl Shared {
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.index.get(name).map(|i| self.slots[*i].clone())
    }

    pub fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

/// `{ "error": { kind, message, hint } }` with `status`.
pub fn error_response(status: StatusCode, e: &CliError) -> Response {
    let body = json!({ "error": { "kind": e.kind, "message": e.message, "hint": e.hint } });
    (status, Json(body)).into_response()
}

/// The body limit of every route but the webhook's.
pub const MAX_API_BODY: usize = 64 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    let reads = Router::new()
        .route("/", get(index))
        .route("/api/channels", get(api::channels))
        .route("/api/channels/{name}", get(api::channel))
        .route("/api/channels/{name}/history", get(api::history))
        .route_layer(from_fn_with_state(shared.clone(), super::auth::reads));
    let actions = Router::new()
        .route("/api/channels/{name}/reconcile", post(api::reconcile_one))
        .route("/api/channels/{name}/pin", post(api::pin))
        .route("/api/channels/{name}/unpin", post(api::unpin))
        .route("/api/reconcile", post(api::reconcile_all))
        .route_layer(from_fn_with_state(shared.clone(), super::auth::actions));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/webhooks/github",
            post(webhook::github).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .merge(reads)
        .merge(actions)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .layer(from_fn_with_state(shared.clone(), declared_size))
        .with_state(shared)
}

/// What a connection in the health reserve is served: `/healthz` and `/readyz`, nothing else.
pub fn health_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(busy)
        .with_state(shared)
}

async fn busy() -> Response {
    let mut r = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &CliError::new(
            Kind::Unavailable,
            "the guard is serving its connection limit; this connection may only ask /healthz or /readyz",
        )
        .with_hint("retry shortly; raise [guard] max_connections if this is regular load"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

/// Refuse (413) a request whose declared `Content-Length` is over its route's limit, before
/// reading any of it: a client that declares 100 MiB and sends nothing is answered at once.
async fn declared_size(
    State(shared): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let limit = if req.uri().path() == "/webhooks/github" {
        MAX_BODY_BYTES
    } else {
        MAX_API_BODY
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            if req.uri().path() == "/webhooks/github" {
                shared.webhooks.too_large.fetch_add(1, Ordering::Relaxed);
            }
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &CliError::invalid(format!(
                    "the request declares a {n}-byte body; at most {limit} bytes are accepted here"
                )),
            )
        }
        _ => next.run(req).await,
    }
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &CliError::invalid("no such page").with_hint(
            "the guard serves /, /api/channels, /metrics, /healthz, /readyz and POST /webhooks/github",
        ),
    )
}

async fn index(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(page::render(&shared))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once every channel finished its first reconcile (whatever the outcome), and until
/// shutdown begins. A standby is ready at once: it serves the read-only views and must stay
/// behind the Service to take over.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.stopping.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if !shared.leader.may_reconcile() {
        return (StatusCode::OK, "ready (standby)\n").into_response();
    }
    let waiting = shared
        .slots
        .iter()
        .filter(|s| s.state().last_finished.is_none())
        .count();
    if waiting == 0 {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{waiting} of {} channels have not finished a first reconcile\n",
                shared.slots.len()
            ),
        )
            .into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut text = render(
        &shared.slots,
        &shared.webhooks,
        shared.leader.may_reconcile(),
        shared.now(),
    );
    super::metrics::render_connections(&mut text, &shared.conns);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
