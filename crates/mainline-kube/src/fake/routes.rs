//! The fake API server's request handling, following the Kubernetes wire format: namespaced
//! object and collection paths under `/apis/{group}/{version}`, bearer-token authentication
//! (401), optional RBAC (403), `application/merge-patch+json` for PATCH (415 otherwise), JSON
//! merge patch semantics (RFC 7386), `metadata.resourceVersion` preconditions on PUT and PATCH
//! (409 `Conflict`), 409 `AlreadyExists` on a duplicate POST, 404 `NotFound`, the `status`
//! of Flux objects left alone by writes to the main resource (it is a subresource there),
//! Lease bodies refused as the real server refuses them (`schema`: 400 for a wrong field type
//! or `MicroTime` format, 422 for an invalid value), and no-op writes that keep the
//! `resourceVersion` (the real server stores nothing for them).
//!
//! This file is the HTTP edge: routing, authentication, RBAC, scripted failures and the
//! request log; the write verbs (POST, PUT, PATCH) and their rules are in `writes`.
//!
//! Must never: record or echo a bearer token.

use super::patch::apply_reaction;
use super::state::{Failure, Key, Reaction, Recorded, State};
use super::writes::{create, patch, update};
use super::{status_body, SERVED};
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) type Shared = Arc<Mutex<State>>;

pub(super) struct Req {
    pub(super) method: Method,
    pub(super) group: String,
    pub(super) version: String,
    pub(super) namespace: String,
    pub(super) resource: String,
    pub(super) name: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) bearer: Option<String>,
    pub(super) body: Bytes,
}

pub(super) enum Outcome {
    Answer(u16, Value),
    Hang(Duration),
}

fn answer(code: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

pub(crate) async fn object(
    AxState(state): AxState<Shared>,
    Path((group, version, namespace, resource, name)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        state,
        Req::new(
            method,
            group,
            version,
            namespace,
            resource,
            Some(name),
            &headers,
            body,
        ),
    )
    .await
}

pub(crate) async fn collection(
    AxState(state): AxState<Shared>,
    Path((group, version, namespace, resource)): Path<(String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        state,
        Req::new(
            method, group, version, namespace, resource, None, &headers, body,
        ),
    )
    .await
}

/// `GET /apis/{group}/{version}`: the `APIResourceList` of what the fake serves there (401
/// without a known token, 404 for a version it does not serve), as the API server answers
/// discovery. Scripted failures are not consumed here: they are for object requests.
pub(crate) async fn discovery(
    AxState(state): AxState<Shared>,
    Path((group, version)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let authenticated = bearer.as_ref().is_some_and(|t| s.tokens.contains(t));
    let resources: Vec<Value> = SERVED
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural, "singularName": "", "namespaced": true, "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
            })
        })
        .collect();
    let (code, body) = if !authenticated {
        (401, status_body("status_unauthorized", &[]))
    } else if method != Method::GET {
        (405, status_body("status_bad_request", &[]))
    } else if resources.is_empty() {
        (404, status_body("status_resource_not_served", &[]))
    } else {
        (
            200,
            json!({
                "kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": format!("{group}/{version}"), "resources": resources
            }),
        )
    };
    s.discovery_log.push(Recorded {
        method: method.to_string(),
        path: format!("/apis/{group}/{version}"),
        content_type: None,
        verb: "get".to_owned(),
        authenticated,
        status: code,
    });
    answer(code, body)
}

pub(crate) async fn fallback() -> Response {
    answer(404, status_body("status_resource_not_served", &[]))
}

impl Req {
    #[allow(clippy::too_many_arguments)]
    fn new(
        method: Method,
        group: String,
        version: String,
        namespace: String,
        resource: String,
        name: Option<String>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Req {
        let header = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Req {
            method,
            group,
            version,
            namespace,
            resource,
            name,
            content_type: header("content-type"),
            bearer: header("authorization")
                .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned)),
            body,
        }
    }

    pub(super) fn verb(&self) -> &'static str {
        match (&self.method, self.name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, _) => "delete",
            _ => "unknown",
        }
    }

    fn path(&self) -> String {
        let base = format!(
            "/apis/{}/{}/namespaces/{}/{}",
            self.group, self.version, self.namespace, self.resource
        );
        match &self.name {
            Some(n) => format!("{base}/{n}"),
            None => base,
        }
    }
}

async fn serve(state: Shared, req: Req) -> Response {
    let (outcome, reaction) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let (outcome, reaction) = handle(&mut s, &req);
        let status = match &outcome {
            Outcome::Answer(code, _) => *code,
            Outcome::Hang(_) => 504,
        };
        let authenticated = req.bearer.as_ref().is_some_and(|t| s.tokens.contains(t));
        s.log.push(Recorded {
            method: req.method.to_string(),
            path: req.path(),
            content_type: req.content_type.clone(),
            verb: req.verb().to_owned(),
            authenticated,
            status,
        });
        (outcome, reaction)
    };
    if let Some((delay, token, key, reaction)) = reaction {
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            apply_reaction(&mut s, &token, &key, reaction);
        });
    }
    match outcome {
        Outcome::Answer(code, body) => answer(code, body),
        Outcome::Hang(d) => {
            tokio::time::sleep(d).await;
            answer(504, status_body("status_gateway_timeout", &[]))
        }
    }
}

pub(super) type Scheduled = Option<(Duration, String, Key, Reaction)>;

fn handle(s: &mut State, req: &Req) -> (Outcome, Scheduled) {
    if let Some(f) = s.failures.pop_front() {
        return match f {
            Failure::Hang(d) => (Outcome::Hang(d), None),
            Failure::Status(code) => {
                let template = match code {
                    401 => "status_unauthorized",
                    404 => "status_resource_not_served",
                    409 => "status_conflict",
                    c if c >= 500 => "status_internal_error",
                    _ => "status_bad_request",
                };
                (
                    Outcome::Answer(code, fill(req, template, s, "scripted failure")),
                    None,
                )
            }
        };
    }
    let authenticated = req.bearer.as_ref().is_some_and(|t| s.tokens.contains(t));
    if !authenticated {
        return (
            Outcome::Answer(401, status_body("status_unauthorized", &[])),
            None,
        );
    }
    if !SERVED
        .iter()
        .any(|r| r.group == req.group && r.version == req.version && r.plural == req.resource)
    {
        return (
            Outcome::Answer(404, status_body("status_resource_not_served", &[])),
            None,
        );
    }
    let name = req.name.clone().unwrap_or_default();
    if let Some(grants) = &s.grants {
        if !grants
            .iter()
            .any(|g| g.allows(&req.group, &req.resource, req.verb(), &req.namespace, &name))
        {
            return (
                Outcome::Answer(403, fill(req, "status_forbidden", s, "")),
                None,
            );
        }
    }
    let key: Key = (
        req.group.clone(),
        req.resource.clone(),
        req.namespace.clone(),
        name.clone(),
    );
    match (&req.method, req.name.is_some()) {
        (&Method::GET, true) => match s.objects.get(&key) {
            Some(obj) => (Outcome::Answer(200, obj.clone()), None),
            None => (
                Outcome::Answer(404, fill(req, "status_not_found", s, "")),
                None,
            ),
        },
        (&Method::POST, false) => (create(s, req), None),
        (&Method::PUT, true) => (update(s, req, key), None),
        (&Method::PATCH, true) => patch(s, req, key),
        _ => (
            Outcome::Answer(
                405,
                fill(
                    req,
                    "status_bad_request",
                    s,
                    "method not supported by the fake",
                ),
            ),
            None,
        ),
    }
}

/// A `Status` template filled for this request.
pub(super) fn fill(req: &Req, template: &str, s: &State, message: &str) -> Value {
    let name = match &req.name {
        Some(n) => n.clone(),
        None => serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|b| {
                b.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default(),
    };
    status_body(
        template,
        &[
            ("{name}", &name),
            ("{group}", &req.group),
            ("{resource}", &req.resource),
            ("{namespace}", &req.namespace),
            ("{verb}", req.verb()),
            ("{user}", &s.user),
            ("{message}", message),
        ],
    )
}
