//! The JSON API behind the status page (`/api/channels`, `/api/channels/{name}`,
//! `/api/channels/{name}/history`) and the action endpoints (`POST …/reconcile`, `…/pin`,
//! `…/unpin`, `/api/reconcile`).
//!
//! Invariants: read-only views need no login unless `api_auth = "token"`, and are rate limited
//! per client (both checked in `auth`); they do no I/O — history included, which is the journal
//! tail the reconcile loop read when the journal head last moved, so a flood of requests
//! costs no git process and no thread; with leader election, reconcile-now is refused
//! (503, naming the leader) on a standby, while pins and unpins run anywhere (they take the
//! channel lock and journal like the CLI's); every action needs a bearer token (checked by
//! `auth` before the body is read), and a pin or unpin records the token's name in the journal;
//! a pin or unpin runs through the same executor, lock and journal as the CLI's, serialised
//! with the channel's reconciles.
//! Must never: echo a token, or answer a malformed action with anything but a 4xx that says
//! what to send.

use super::auth::TokenName;
use super::http::{error_response, Shared};
use super::slot::Slot;
use super::state::{AppliedView, LastError, LockView};
use crate::channel::report::ChannelReport;
use crate::error::{CliError, Kind};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mainline_core::{CommitId, Digest, Group, Pin, PinKind, Refusal, Request, Timestamp, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What prod runs.
#[derive(Debug, Clone, Serialize)]
pub struct ProdView {
    pub digest: Option<Digest>,
    pub commit: Option<CommitId>,
    /// Pull requests of the in-flight group prod runs (a candidate).
    pub prs: Vec<u64>,
}

/// One channel as `/api/channels` shows it. Keys are a public contract.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub name: String,
    pub channel: String,
    pub git: String,
    pub branch: String,
    pub path: String,
    pub queue: &'static str,
    pub github_repository: Option<String>,
    pub verdict: Verdict,
    pub explanation: Option<String>,
    pub first_verdict: Option<Verdict>,
    pub prod: ProdView,
    pub mainline: Option<CommitId>,
    pub groups: Vec<Group>,
    pub pin: Option<Pin>,
    pub refusal: Option<Refusal>,
    pub lock: LockView,
    /// What the Flux consumers applied (APPLIED / PENDING / STUCK / UNREACHABLE), when the
    /// channel has consumers and a run could read them.
    pub applied: Option<AppliedView>,
    pub error: Option<LastError>,
    pub queue_warning: Option<String>,
    pub history_error: Option<String>,
    pub running: bool,
    pub reconciles: u64,
    pub errors: u64,
    pub moves: BTreeMap<&'static str, u64>,
    pub restores: u64,
    pub refusals: u64,
    pub last_started: Option<Timestamp>,
    pub last_finished: Option<Timestamp>,
    pub last_trigger: Option<String>,
    pub last_duration_ms: Option<u64>,
    pub seconds_since_mainline: f64,
    pub unmerged_seconds: f64,
}

impl ChannelView {
    pub fn of(slot: &Slot, now: Timestamp) -> ChannelView {
        let c = &slot.spec.config;
        let s = slot.state();
        let snap = s.snapshot.as_ref();
        ChannelView {
            name: slot.name().to_owned(),
            channel: c.channel_display(),
            git: c.git_display.clone(),
            branch: c.branch.clone(),
            path: c.path.clone(),
            queue: if slot.spec.queue_api {
                "github-api"
            } else if c.queue == crate::channel::QueueSource::Lease {
                "lease"
            } else {
                "github-refs"
            },
            github_repository: slot.spec.github.as_ref().map(|r| r.full_name()),
            verdict: s.verdict(),
            explanation: snap.map(|x| x.explanation.clone()),
            first_verdict: snap.map(|x| x.first_verdict),
            prod: ProdView {
                digest: snap.and_then(|x| x.channel_digest.clone()),
                commit: snap.and_then(|x| x.channel_commit.clone()),
                prs: snap.map(|x| x.prs.clone()).unwrap_or_default(),
            },
            mainline: snap.and_then(|x| x.mainline_commit.clone()),
            groups: snap.map(|x| x.groups.clone()).unwrap_or_default(),
            pin: snap.and_then(|x| x.pin.clone()),
            refusal: snap.and_then(|x| x.refusal.clone()),
            lock: s.lock.clone(),
            applied: s.applied.clone(),
            error: s.error.clone(),
            queue_warning: s.queue_warning.clone(),
            history_error: s.history_error.clone(),
            running: s.running,
            reconciles: s.reconciles,
            errors: s.errors,
            moves: s.moves.clone(),
            restores: s.restores(),
            refusals: s.refusals,
            last_started: s.last_started,
            last_finished: s.last_finished,
            last_trigger: s.last_trigger.clone(),
            last_duration_ms: s.last_duration_ms,
            seconds_since_mainline: s.seconds_since_mainline(now),
            unmerged_seconds: s.unmerged_seconds(now),
        }
    }
}

/// A response that ends a handler early (boxed: a `Response` is large).
pub type Early = Box<Response>;

fn find(shared: &Shared, name: &str) -> Result<Arc<Slot>, Early> {
    shared.slot(name).ok_or_else(|| {
        Box::new(error_response(
            StatusCode::NOT_FOUND,
            &CliError::invalid(format!("no channel named {name:?}"))
                .with_hint("GET /api/channels lists the channels this guard watches"),
        ))
    })
}

pub async fn channels(State(shared): State<Arc<Shared>>) -> Response {
    let now = shared.now();
    let views: Vec<ChannelView> = shared
        .slots
        .iter()
        .map(|s| ChannelView::of(s, now))
        .collect();
    Json(json!({ "generated_at": now, "guard": shared.leader.view(), "channels": views }))
        .into_response()
}

/// A standby does not reconcile: say who does.
fn standby(shared: &Shared) -> Result<(), Early> {
    if shared.leader.may_reconcile() {
        return Ok(());
    }
    let leader = shared
        .leader
        .known_leader()
        .unwrap_or_else(|| "not known yet".into());
    Err(Box::new(error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &CliError::new(
            Kind::Unavailable,
            format!("this guard replica is a standby; the leader ({leader}) reconciles"),
        )
        .with_hint("send it to the leader's pod, or retry: the Service may route you there"),
    )))
}

pub async fn channel(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match find(&shared, &name) {
        Ok(slot) => Json(ChannelView::of(&slot, shared.now())).into_response(),
        Err(r) => *r,
    }
}

/// The journal's newest records, as the reconcile loop last read them (it re-reads the tail
/// whenever a run sees the journal head move, and after every write of its own): no I/O here.
pub async fn history(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let slot = match find(&shared, &name) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let mut s = slot.state();
    let failed = s.history_error.is_some();
    let body = match &s.history_body {
        Some(b) => b.clone(),
        None => {
            let text = json!({
                "channel": slot.name(),
                "journal_ref": slot.spec.config.key.journal_ref(),
                "records": s.history,
                "error": s.history_error,
                "head": s.history_head,
                "read_at": s.history_read_at,
            })
            .to_string();
            let b: Arc<str> = Arc::from(text);
            s.history_body = Some(b.clone());
            b
        }
    };
    drop(s);
    let status = if failed {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn reconcile_one(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = standby(&shared) {
        return *r;
    }
    match find(&shared, &name) {
        Ok(slot) => {
            slot.request("api");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "queued": [slot.name()] })),
            )
                .into_response()
        }
        Err(r) => *r,
    }
}

pub async fn reconcile_all(State(shared): State<Arc<Shared>>) -> Response {
    if let Err(r) = standby(&shared) {
        return *r;
    }
    let names: Vec<&str> = shared
        .slots
        .iter()
        .map(|s| {
            s.request("api");
            s.name()
        })
        .collect();
    (StatusCode::ACCEPTED, Json(json!({ "queued": names }))).into_response()
}

/// `POST /api/channels/{name}/pin` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// A digest (`sha256:…`) in the channel's repository, or a commit whose artifact exists.
    pub target: String,
    pub reason: String,
    /// e.g. `2h`; absent: until unpinned.
    pub expires: Option<String>,
}

pub async fn pin(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Extension(token): Extension<TokenName>,
    body: axum::body::Bytes,
) -> Response {
    let body: PinBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error_response(
            StatusCode::BAD_REQUEST,
            &CliError::invalid(format!("the pin request is not valid JSON: {e}")).with_hint(
                "send {\"target\": \"sha256:…|<commit>\", \"reason\": \"…\", \"expires\": \"2h\"}",
            ),
        ),
    };
    let expires = match body.expires.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &CliError::invalid(format!("expires {:?}: {e}", body.expires)),
            )
        }
    };
    let actor = api_actor(&shared, &token);
    act(&shared, &name, move |slot| {
        let (digest, commit) = slot.pin_target(&body.target)?;
        let by = actor.clone();
        let now = crate::channel::ports::Clock::now(&slot.clock);
        let pin = Pin {
            digest,
            commit,
            reason: body.reason,
            actor,
            expires_at: expires.map(|d| now.plus_millis(d.as_millis() as i64)),
            kind: PinKind::Pin,
        };
        slot.run_as(Request::Pin { pin }, "api pin", &by)
    })
    .await
}

pub async fn unpin(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Extension(token): Extension<TokenName>,
) -> Response {
    let actor = api_actor(&shared, &token);
    act(&shared, &name, move |slot| {
        slot.run_as(Request::Unpin, "api unpin", &actor)
    })
    .await
}

/// Who the journal names for an API action: the guard and the token's name,
/// `guard@host (API, token alice)`.
fn api_actor(shared: &Shared, token: &TokenName) -> String {
    format!("{} (API, token {})", shared.actor, token.0)
}

/// Run an action on the channel's blocking lane and answer with its report.
async fn act(
    shared: &Arc<Shared>,
    name: &str,
    job: impl FnOnce(&Slot) -> Result<crate::channel::exec::Report, CliError> + Send + 'static,
) -> Response {
    let slot = match find(shared, name) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let mut shutdown = shared.shutdown.clone();
    let config = slot.spec.config.clone();
    match super::schedule::run_blocking(&slot, &shared.permits, &mut shutdown, job).await {
        None => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &CliError::new(Kind::Unavailable, "the guard is shutting down")
                .with_hint("retry on the next guard"),
        ),
        Some(Err(e)) => error_response(status_of(e.kind), &e),
        Some(Ok(report)) => {
            let r = ChannelReport::new(&config, &report);
            let status = if r.refusal.is_some() {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            (status, Json(r)).into_response()
        }
    }
}

/// The HTTP status for an error kind.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::InvalidInput => StatusCode::BAD_REQUEST,
        Kind::Refused | Kind::Conflict | Kind::Unknown => StatusCode::CONFLICT,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Unauthorized | Kind::Integrity => StatusCode::BAD_GATEWAY,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
