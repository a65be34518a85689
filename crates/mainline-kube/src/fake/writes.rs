//! The fake API server's writes, as the real server makes them: POST (409 `AlreadyExists` on a
//! duplicate), PUT and PATCH (`application/merge-patch+json` only, 415 otherwise) with their
//! `metadata.resourceVersion` preconditions (409 `Conflict`), JSON merge patch (RFC 7386), the
//! `status` of Flux objects kept (a subresource there), Lease bodies checked by `schema`, and a
//! no-op write answered without a new `resourceVersion`. A PATCH that changes Flux's
//! `reconcile.fluxcd.io/requestedAt` schedules the reaction a test scripted for that object.
//!
//! Must never: store an object a refused write carried, or bump the `resourceVersion` for a
//! write that changes nothing (the real server stores nothing for it).

use super::patch::merge_patch;
use super::routes::{fill, Outcome, Req, Scheduled};
use super::schema::check_lease;
use super::state::{Key, State};
use super::status_body;
use crate::api::LEASE;
use serde_json::{json, Value};

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

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

pub(super) fn create(s: &mut State, req: &Req) -> Outcome {
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

pub(super) fn update(s: &mut State, req: &Req, key: Key) -> Outcome {
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

pub(super) fn patch(s: &mut State, req: &Req, key: Key) -> (Outcome, Scheduled) {
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
