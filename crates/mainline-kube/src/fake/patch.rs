//! The fake's document operations: RFC 7386 JSON merge patch (what the API server applies for
//! `application/merge-patch+json`), and the controllers' side of a reconcile request (status
//! updates, the token echoed in `status.lastHandledReconcileAt`).

use super::state::{Key, Reaction, State};
use serde_json::{json, Value};

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in fields {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Play the controllers: set each status, and echo the token on the object that got it
/// (`status.lastHandledReconcileAt`, as source-controller does once it acted on the request).
pub(crate) fn apply_reaction(s: &mut State, token: &str, patched: &Key, reaction: Reaction) {
    let mut updates = reaction.updates;
    if !updates.iter().any(|(k, _)| k == patched) {
        let current = s
            .objects
            .get(patched)
            .and_then(|o| o.get("status").cloned())
            .unwrap_or_else(|| json!({}));
        updates.push((patched.clone(), current));
    }
    for (key, mut status) in updates {
        if key == *patched {
            if let Some(st) = status.as_object_mut() {
                st.insert("lastHandledReconcileAt".into(), json!(token));
            }
        }
        let rv = s.bump();
        if let Some(obj) = s.objects.get_mut(&key).and_then(Value::as_object_mut) {
            obj.insert("status".into(), status);
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
        }
    }
}
