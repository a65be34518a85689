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
//! Must never: record or echo a bearer token.

use super::patch::{apply_reaction, merge_patch};
use super::schema::check_lease;
use super::state::{Failure, Key, Reaction, Recorded, State};
use super::{status_body, SERVED};
use crate::api::LEASE;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) type Shared = Arc<Mutex<State>>;

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

struct Req {
    method: Method,
    group: String,
    version: String,
    namespace: String,
    resource: String,
    name: Option<String>,
    content_type: Option<String>,
    bearer: Option<String>,
    body: Bytes,
}

enum Outcome {
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

    fn verb(&self) -> &'static str {
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

type Scheduled = Option<(Duration, String, Key, Reaction)>;

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
fn fill(req: &Req, template: &str, s: &State, message: &str) -> Value {
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

fn json_body(req: &Req, s: &State) -> Result<Value, Outcome> {
    serde_json::from_slice(&req.body).map_err(|e| {
        Outcome::Answer(
            400,
            fill(req, "status_bad_request", s, &format!("invalid JSON: {e}")),
        )
    })
}

/// Flux kinds have a `status` subresource: writes to the main resource do not change it.
fn keep_status(req: &Req, obj: &mut Value, current: &Value) {
    if !req.group.ends_with(".toolkit.fluxcd.io") {
        return;
    }
    if let Some(o) = obj.as_object_mut() {
        match current.get("status") {
            Some(st) => o.insert("status".into(), st.clone()),
            None => o.remove("status"),
        };
    }
}

fn stamp(s: &mut State, obj: &mut Value, req: &Req, name: &str) {
    let rv = s.bump();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("namespace".into(), json!(req.namespace));
        meta.insert("name".into(), json!(name));
        meta.entry("uid")
            .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{:012}", s.next_rv)));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!("2025-06-14T11:00:00Z"));
    }
}

fn is_lease(req: &Req) -> bool {
    req.group == LEASE.group && req.resource == LEASE.plural
}

/// A Lease body the real server would refuse, as its answer (see [`super::schema`]).
fn lease_refusal(req: &Req, s: &State, obj: &Value) -> Option<Outcome> {
    if !is_lease(req) {
        return None;
    }
    let refusal = check_lease(obj).err()?;
    if refusal.code == 400 {
        return Some(Outcome::Answer(
            400,
            fill(req, "status_bad_request", s, &refusal.message),
        ));
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let field = refusal.message.split(':').next().unwrap_or_default();
    Some(Outcome::Answer(
        422,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{}.{} \"{name}\" is invalid: {}", req.resource, req.group, refusal.message),
            "reason": "Invalid",
            "details": {"name": name, "group": req.group, "kind": req.resource,
                "causes": [{"reason": "FieldValueInvalid", "message": refusal.message, "field": field}]},
            "code": 422
        }),
    ))
}

/// Whether `obj`, stamped as `current` is, equals `current`: the real server then stores
/// nothing and keeps the `resourceVersion` (a no-op write is not a change).
fn unchanged(obj: &Value, current: &Value) -> bool {
    let mut candidate = obj.clone();
    if let (Some(meta), Some(cur)) = (
        candidate.get_mut("metadata").and_then(Value::as_object_mut),
        current.get("metadata").and_then(Value::as_object),
    ) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
        ] {
            match cur.get(k) {
                Some(v) => meta.insert(k.to_owned(), v.clone()),
                None => meta.remove(k),
            };
        }
    }
    &candidate == current
}

fn create(s: &mut State, req: &Req) -> Outcome {
    if req.content_type.as_deref() != Some("application/json") {
        return Outcome::Answer(415, status_body("status_unsupported_media_type", &[]));
    }
    let mut obj = match json_body(req, s) {
        Ok(v) => v,
        Err(o) => return o,
    };
    if let Some(refused) = lease_refusal(req, s, &obj) {
        return refused;
    }
    let Some(name) = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Outcome::Answer(
            400,
            fill(
                req,
                "status_bad_request",
                s,
                "metadata.name: Required value",
            ),
        );
    };
    if obj
        .pointer("/metadata/resourceVersion")
        .is_some_and(|v| !v.is_null())
    {
        return Outcome::Answer(
            400,
            fill(
                req,
                "status_bad_request",
                s,
                "resourceVersion should not be set on objects to be created",
            ),
        );
    }
    let key: Key = (
        req.group.clone(),
        req.resource.clone(),
        req.namespace.clone(),
        name.clone(),
    );
    if s.objects.contains_key(&key) {
        let named = Req {
            name: Some(name),
            ..clone_req(req)
        };
        return Outcome::Answer(409, fill(&named, "status_already_exists", s, ""));
    }
    stamp(s, &mut obj, req, &name);
    s.objects.insert(key, obj.clone());
    Outcome::Answer(201, obj)
}

fn clone_req(req: &Req) -> Req {
    Req {
        method: req.method.clone(),
        group: req.group.clone(),
        version: req.version.clone(),
        namespace: req.namespace.clone(),
        resource: req.resource.clone(),
        name: req.name.clone(),
        content_type: req.content_type.clone(),
        bearer: None,
        body: req.body.clone(),
    }
}

/// 409 unless `wanted` (a `resourceVersion` from the request, if any) is the current one.
fn precondition(
    s: &State,
    req: &Req,
    current: &Value,
    wanted: Option<&Value>,
) -> Result<(), Outcome> {
    let Some(wanted) = wanted.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    if current.pointer("/metadata/resourceVersion") == Some(wanted) {
        Ok(())
    } else {
        Err(Outcome::Answer(409, fill(req, "status_conflict", s, "")))
    }
}

fn update(s: &mut State, req: &Req, key: Key) -> Outcome {
    if req.content_type.as_deref() != Some("application/json") {
        return Outcome::Answer(415, status_body("status_unsupported_media_type", &[]));
    }
    let mut obj = match json_body(req, s) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let Some(current) = s.objects.get(&key).cloned() else {
        return Outcome::Answer(404, fill(req, "status_not_found", s, ""));
    };
    let body_name = obj.pointer("/metadata/name").and_then(Value::as_str);
    if body_name != Some(key.3.as_str()) {
        let msg = format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            body_name.unwrap_or(""),
            key.3
        );
        return Outcome::Answer(400, fill(req, "status_bad_request", s, &msg));
    }
    if let Some(refused) = lease_refusal(req, s, &obj) {
        return refused;
    }
    let wanted = obj
        .pointer("/metadata/resourceVersion")
        .filter(|v| !v.is_null());
    if wanted.is_none() && is_lease(req) {
        // Leases allow no unconditional update: the real kube-apiserver answers 422 (found by
        // the real-server tests, issue 19), so a lock write can never be last-writer-wins.
        return Outcome::Answer(422, fill(req, "status_invalid", s, ""));
    }
    if let Err(o) = precondition(s, req, &current, wanted) {
        return o;
    }
    keep_status(req, &mut obj, &current);
    if unchanged(&obj, &current) {
        return Outcome::Answer(200, current);
    }
    stamp(s, &mut obj, req, &key.3);
    s.objects.insert(key, obj.clone());
    Outcome::Answer(200, obj)
}

fn patch(s: &mut State, req: &Req, key: Key) -> (Outcome, Scheduled) {
    if req.content_type.as_deref() != Some("application/merge-patch+json") {
        return (
            Outcome::Answer(415, status_body("status_unsupported_media_type", &[])),
            None,
        );
    }
    let patch = match json_body(req, s) {
        Ok(v) => v,
        Err(o) => return (o, None),
    };
    let Some(current) = s.objects.get(&key).cloned() else {
        return (
            Outcome::Answer(404, fill(req, "status_not_found", s, "")),
            None,
        );
    };
    if let Err(o) = precondition(s, req, &current, patch.pointer("/metadata/resourceVersion")) {
        return (o, None);
    }
    let mut obj = current.clone();
    merge_patch(&mut obj, &patch);
    keep_status(req, &mut obj, &current);
    if unchanged(&obj, &current) {
        return (Outcome::Answer(200, current), None);
    }
    stamp(s, &mut obj, req, &key.3);
    let before = current
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(REQUESTED_AT))
        .cloned();
    let token = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(REQUESTED_AT))
        .and_then(Value::as_str)
        .map(str::to_owned);
    s.objects.insert(key.clone(), obj.clone());
    let reaction = s.reactions.get(&key).cloned();
    let scheduled = match (token, reaction) {
        (Some(t), Some(r)) if before.as_ref().and_then(Value::as_str) != Some(t.as_str()) => {
            Some((r.delay, t, key, r))
        }
        _ => None,
    };
    (Outcome::Answer(200, obj), scheduled)
}
