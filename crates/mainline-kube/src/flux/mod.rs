//! Flux's view of a channel: what the `OCIRepository` fetched (`status.artifact.revision`,
//! `<tag>@sha256:<digest>`) and what each `Kustomization` applied (`status.lastAppliedRevision`),
//! with their `Ready` / `SourceVerified` conditions, read into plain values ([`Observed`]);
//! the reconcile trigger ([`trigger`]); the pure verdict on them ([`applied::assess`]); and
//! the per-channel set of consumers that runs all of this in parallel under one deadline
//! ([`Consumers`]).
//!
//! Shapes follow Flux's published API docs (source.toolkit.fluxcd.io/v1 OCIRepository,
//! kustomize.toolkit.fluxcd.io/v1 Kustomization); the fields read are the same in `v1beta2`,
//! which Flux before 2.6 serves instead (the client discovers which; the observation records
//! the `apiVersion` it read). `fixtures/README.md` names the pages.
//! Note `status.artifact.digest` is the digest of Flux's *stored tarball*, not of the OCI
//! manifest: only the revision's digest is compared with the channel's.
//!
//! Must never: turn an unreadable status into "applied"; patch anything but the one
//! annotation; patch a Kustomization (read-only by RBAC).

pub mod applied;
mod consumers;
pub mod trigger;

pub use applied::{assess, revision_digest, AppliedState};
pub use consumers::{
    ConsumerState, Consumers, TriggerReport, WaitOptions, WaitOutcome, WaitProgress,
};
pub use trigger::{request_reconcile, ReconcileToken, REQUESTED_AT};

use crate::api::{ApiCall, GET_KUSTOMIZATION, GET_OCI_REPOSITORY};
use crate::client::KubeClient;
use crate::config::{Consumer, ObjectRef};
use crate::error::{KubeError, ObjectName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One Kubernetes condition (`Ready`, `SourceVerified`, `Reconciling`, `Stalled`) as Flux
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionState {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    /// The generation the condition was written for: its own `observedGeneration`, else the
    /// object's `status.observedGeneration`; `None` when neither is reported.
    pub observed_generation: Option<i64>,
}

impl ConditionState {
    /// Whether the condition speaks of the object's current spec (`generation`), as kstatus
    /// reads it: a condition written for an older generation says nothing about this one.
    pub fn is_current(&self, generation: Option<i64>) -> bool {
        match (generation, self.observed_generation) {
            (Some(g), Some(o)) => o >= g,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// What an OCIRepository reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceObservation {
    pub object: ObjectRef,
    /// `apiVersion` as served (`source.toolkit.fluxcd.io/v1`, or `…/v1beta2` before Flux
    /// 2.6): the version the client discovered and read.
    pub api_version: Option<String>,
    /// `status.artifact.revision`, e.g. `latest@sha256:…`; `None` before the first fetch.
    pub revision: Option<String>,
    /// `metadata.annotations["reconcile.fluxcd.io/requestedAt"]`: the last token requested.
    pub requested_at: Option<String>,
    /// `status.lastHandledReconcileAt`: the last token source-controller acted on.
    pub last_handled_reconcile_at: Option<String>,
    pub ready: Option<ConditionState>,
    pub source_verified: Option<ConditionState>,
    pub reconciling: Option<ConditionState>,
    pub stalled: Option<ConditionState>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// What a Kustomization reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KustomizationObservation {
    pub object: ObjectRef,
    /// `apiVersion` as served (`kustomize.toolkit.fluxcd.io/v1` or `…/v1beta2`).
    pub api_version: Option<String>,
    /// `status.lastAppliedRevision`: the source revision last applied successfully.
    pub last_applied_revision: Option<String>,
    /// `status.lastAttemptedRevision`.
    pub last_attempted_revision: Option<String>,
    pub ready: Option<ConditionState>,
    pub reconciling: Option<ConditionState>,
    pub stalled: Option<ConditionState>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    pub suspended: bool,
}

/// One consumer's objects, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub source: SourceObservation,
    pub kustomizations: Vec<KustomizationObservation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<S> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    spec: WireSpec,
    #[serde(default = "Option::default")]
    status: Option<S>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMeta {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    generation: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct WireSpec {
    #[serde(default)]
    suspend: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSourceStatus {
    #[serde(default)]
    artifact: Option<WireArtifact>,
    #[serde(default)]
    conditions: Option<Vec<WireCondition>>,
    #[serde(default)]
    last_handled_reconcile_at: Option<String>,
    #[serde(default)]
    observed_generation: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct WireArtifact {
    #[serde(default)]
    revision: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireKustomizationStatus {
    #[serde(default)]
    conditions: Option<Vec<WireCondition>>,
    #[serde(default)]
    last_applied_revision: Option<String>,
    #[serde(default)]
    last_attempted_revision: Option<String>,
    #[serde(default)]
    observed_generation: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    observed_generation: Option<i64>,
}

fn condition(
    conditions: &Option<Vec<WireCondition>>,
    kind: &str,
    status_generation: Option<i64>,
) -> Option<ConditionState> {
    conditions
        .iter()
        .flatten()
        .find(|c| c.kind == kind)
        .map(|c| ConditionState {
            status: match c.status.as_str() {
                "True" => ConditionStatus::True,
                "False" => ConditionStatus::False,
                _ => ConditionStatus::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            observed_generation: c.observed_generation.or(status_generation),
        })
}

/// An OCIRepository object (JSON, as the API serves it) as a [`SourceObservation`]. Pure.
pub fn source_from_json(
    object: &ObjectRef,
    value: serde_json::Value,
) -> Result<SourceObservation, serde_json::Error> {
    let wire: Wire<WireSourceStatus> = serde_json::from_value(value)?;
    let status = wire.status.unwrap_or_default();
    let og = status.observed_generation;
    Ok(SourceObservation {
        object: object.clone(),
        api_version: wire.api_version,
        revision: status.artifact.and_then(|a| a.revision),
        requested_at: wire
            .metadata
            .annotations
            .and_then(|mut a| a.remove(REQUESTED_AT)),
        last_handled_reconcile_at: status.last_handled_reconcile_at,
        ready: condition(&status.conditions, "Ready", og),
        source_verified: condition(&status.conditions, "SourceVerified", og),
        reconciling: condition(&status.conditions, "Reconciling", og),
        stalled: condition(&status.conditions, "Stalled", og),
        generation: wire.metadata.generation,
        suspended: wire.spec.suspend.unwrap_or(false),
    })
}

/// A Kustomization object (JSON) as a [`KustomizationObservation`]. Pure.
pub fn kustomization_from_json(
    object: &ObjectRef,
    value: serde_json::Value,
) -> Result<KustomizationObservation, serde_json::Error> {
    let wire: Wire<WireKustomizationStatus> = serde_json::from_value(value)?;
    let status = wire.status.unwrap_or_default();
    let og = status.observed_generation;
    Ok(KustomizationObservation {
        object: object.clone(),
        api_version: wire.api_version,
        last_applied_revision: status.last_applied_revision,
        last_attempted_revision: status.last_attempted_revision,
        ready: condition(&status.conditions, "Ready", og),
        reconciling: condition(&status.conditions, "Reconciling", og),
        stalled: condition(&status.conditions, "Stalled", og),
        generation: wire.metadata.generation,
        suspended: wire.spec.suspend.unwrap_or(false),
    })
}

fn get<T>(
    client: &KubeClient,
    call: &'static ApiCall,
    object: &ObjectRef,
    deadline: Instant,
    parse: impl FnOnce(&ObjectRef, serde_json::Value) -> Result<T, serde_json::Error>,
) -> Result<T, KubeError> {
    let value = client.call(call, &object.namespace, &object.name, None, deadline)?;
    parse(object, value).map_err(|e| KubeError::Decode {
        verb: call.verb,
        object: ObjectName::new(call.resource, &object.namespace, &object.name),
        what: e.to_string(),
    })
}

/// Read an OCIRepository.
pub fn observe_source(
    client: &KubeClient,
    object: &ObjectRef,
    deadline: Instant,
) -> Result<SourceObservation, KubeError> {
    get(
        client,
        &GET_OCI_REPOSITORY,
        object,
        deadline,
        source_from_json,
    )
}

/// Read a Kustomization.
pub fn observe_kustomization(
    client: &KubeClient,
    object: &ObjectRef,
    deadline: Instant,
) -> Result<KustomizationObservation, KubeError> {
    get(
        client,
        &GET_KUSTOMIZATION,
        object,
        deadline,
        kustomization_from_json,
    )
}

/// Read a consumer's OCIRepository and Kustomizations (one request each).
pub fn observe(
    client: &KubeClient,
    consumer: &Consumer,
    deadline: Instant,
) -> Result<Observed, KubeError> {
    let source = observe_source(client, &consumer.source, deadline)?;
    let mut kustomizations = Vec::with_capacity(consumer.kustomizations.len());
    for k in &consumer.kustomizations {
        kustomizations.push(observe_kustomization(client, k, deadline)?);
    }
    Ok(Observed {
        source,
        kustomizations,
    })
}
