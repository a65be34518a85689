//! The reconcile trigger: a JSON merge patch of one annotation,
//! `metadata.annotations["reconcile.fluxcd.io/requestedAt"] = <token>`, which makes Flux
//! reconcile the object now instead of at its next interval (Flux docs, "Triggering a
//! reconcile"; `flux reconcile source oci` does the same). source-controller echoes the token
//! back in `status.lastHandledReconcileAt` once it has acted on it.
//!
//! Best-effort by contract: one request, bounded by the caller's deadline, never retried here.
//! The caller triggers *after* the registry write; a failed or slow trigger is reported and
//! Flux's own polling interval remains the fallback.
//! Must never: touch anything but that annotation.

use crate::api::PATCH_OCI_REPOSITORY;
use crate::client::KubeClient;
use crate::clock::Clock;
use crate::config::ObjectRef;
use crate::error::{KubeError, ObjectName};
use serde::Serialize;
use std::fmt;
use std::time::Instant;

/// The annotation Flux watches for manual reconcile requests.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The value written to [`REQUESTED_AT`]: the request time, RFC 3339 UTC (as `flux reconcile`
/// writes a time). Flux compares it for equality with `status.lastHandledReconcileAt`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ReconcileToken(pub String);

impl fmt::Display for ReconcileToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ask Flux to reconcile the OCIRepository `source` now. Returns the token written, once the
/// API server has echoed it back in the patched object.
pub fn request_reconcile(
    client: &KubeClient,
    source: &ObjectRef,
    clock: &dyn Clock,
    deadline: Instant,
) -> Result<ReconcileToken, KubeError> {
    let token = ReconcileToken(clock.now().to_string());
    let patch = serde_json::json!({ "metadata": { "annotations": { REQUESTED_AT: token.0 } } });
    let answer = client.call(
        &PATCH_OCI_REPOSITORY,
        &source.namespace,
        &source.name,
        Some(&patch),
        deadline,
    )?;
    let echoed = answer
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(REQUESTED_AT))
        .and_then(|v| v.as_str());
    if echoed != Some(token.0.as_str()) {
        return Err(KubeError::Decode {
            verb: PATCH_OCI_REPOSITORY.verb,
            object: ObjectName::new(
                PATCH_OCI_REPOSITORY.resource,
                &source.namespace,
                &source.name,
            ),
            what: format!(
                "the patched object does not carry {REQUESTED_AT}={token} (it has {echoed:?})"
            ),
        });
    }
    tracing::debug!(object = %source, %token, "requested a Flux reconcile");
    Ok(token)
}
