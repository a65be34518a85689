//! What prod has applied, against the digest the channel names: a pure function of an
//! [`Observed`] status and the expected [`Digest`]. No I/O and no clock, so every case is a
//! unit test on a value (tests/applied.rs) and `status`, `deploy --wait` and the guard agree.
//!
//! Rules, in order (the first that matches wins):
//! 1. the OCIRepository's `SourceVerified` or `Ready` is `False` → STUCK with that message;
//! 2. its revision is not the expected digest → STUCK if it is suspended, or if a
//!    Kustomization's `Ready` is `False`; otherwise PENDING;
//! 3. its `Ready` is not `True` yet → PENDING;
//! 4. per Kustomization: `Ready` `False` → STUCK; `lastAppliedRevision` not the expected
//!    digest → STUCK if suspended, else PENDING; `Ready` not `True` (health checks) → PENDING;
//! 5. otherwise APPLIED.
//!
//! UNREACHABLE is never produced here: it is what the caller records when the status could
//! not be read at all. Must never: call a status APPLIED unless every object names the
//! expected digest and reports `Ready=True`.

use super::{ConditionState, ConditionStatus, KustomizationObservation, Observed};
use mainline_core::Digest;
use serde::Serialize;
use std::fmt;

/// What a consumer runs, compared with the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppliedState {
    /// Every object names the expected digest and is Ready.
    Applied,
    /// Flux has not caught up yet; `detail` says with what.
    Pending { detail: String },
    /// An object reports a failure (or is suspended) and will not get there on its own.
    Stuck {
        /// e.g. `Kustomization flux-system/app`.
        object: String,
        /// The condition's reason, e.g. `HealthCheckFailed`.
        reason: String,
        /// The condition's message, as Flux wrote it.
        message: String,
    },
    /// The status could not be read.
    Unreachable { reason: String },
}

impl AppliedState {
    /// `APPLIED`, `PENDING`, `STUCK`, `UNREACHABLE`.
    pub fn label(&self) -> &'static str {
        match self {
            AppliedState::Applied => "APPLIED",
            AppliedState::Pending { .. } => "PENDING",
            AppliedState::Stuck { .. } => "STUCK",
            AppliedState::Unreachable { .. } => "UNREACHABLE",
        }
    }

    pub fn is_applied(&self) -> bool {
        matches!(self, AppliedState::Applied)
    }

    /// How bad it is, to pick one state for several consumers: the worst wins.
    pub fn severity(&self) -> u8 {
        match self {
            AppliedState::Applied => 0,
            AppliedState::Pending { .. } => 1,
            AppliedState::Stuck { .. } => 2,
            AppliedState::Unreachable { .. } => 3,
        }
    }

    /// The worst of several states (`Pending` for none: nothing says it is applied).
    pub fn worst<'a>(states: impl IntoIterator<Item = &'a AppliedState>) -> AppliedState {
        states
            .into_iter()
            .max_by_key(|s| s.severity())
            .cloned()
            .unwrap_or_else(|| AppliedState::Pending {
                detail: "no consumer is configured".to_owned(),
            })
    }
}

impl fmt::Display for AppliedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppliedState::Applied => f.write_str("APPLIED"),
            AppliedState::Pending { detail } => write!(f, "PENDING: {detail}"),
            AppliedState::Stuck {
                object,
                reason,
                message,
            } => write!(f, "STUCK: {object}: {message} ({reason})"),
            AppliedState::Unreachable { reason } => write!(f, "UNREACHABLE: {reason}"),
        }
    }
}

/// The OCI manifest digest in a Flux revision: `<tag>@sha256:<hex>` (Flux 2), `sha256:<hex>`,
/// or the pre-2.0 `<tag>/<hex>`.
pub fn revision_digest(revision: &str) -> Option<Digest> {
    if let Some((_, digest)) = revision.rsplit_once('@') {
        return digest.parse().ok();
    }
    if let Ok(d) = revision.parse() {
        return Some(d);
    }
    let (_, hex) = revision.rsplit_once('/')?;
    format!("sha256:{hex}").parse().ok()
}

fn is(c: &Option<ConditionState>, status: ConditionStatus) -> bool {
    c.as_ref().is_some_and(|c| c.status == status)
}

fn stuck(object: String, c: &ConditionState) -> AppliedState {
    AppliedState::Stuck {
        object,
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

fn suspended(object: String, flux_cmd: &str) -> AppliedState {
    AppliedState::Stuck {
        object,
        reason: "Suspended".to_owned(),
        message: format!(
            "it is suspended (spec.suspend: true) and will not pick up the channel: resume it \
             with `{flux_cmd}`"
        ),
    }
}

fn failing_kustomization(ks: &[KustomizationObservation]) -> Option<AppliedState> {
    ks.iter().find_map(|k| match &k.ready {
        Some(c) if c.status == ConditionStatus::False => {
            Some(stuck(format!("Kustomization {}", k.object), c))
        }
        _ => None,
    })
}

/// Compare what `observed` reports with the digest the channel names.
pub fn assess(observed: &Observed, expected: &Digest) -> AppliedState {
    let src = &observed.source;
    let src_name = format!("OCIRepository {}", src.object);
    for c in [&src.source_verified, &src.ready].into_iter().flatten() {
        if c.status == ConditionStatus::False {
            return stuck(src_name, c);
        }
    }
    let fetched = src.revision.as_deref().and_then(revision_digest);
    if fetched.as_ref() != Some(expected) {
        if src.suspended {
            return suspended(
                src_name,
                &format!(
                    "flux resume source oci {} -n {}",
                    src.object.name, src.object.namespace
                ),
            );
        }
        if let Some(s) = failing_kustomization(&observed.kustomizations) {
            return s;
        }
        let detail = match &src.revision {
            None => format!("{src_name} has no artifact yet; waiting for {expected}"),
            Some(r) => format!("{src_name} is at {r}; waiting for it to fetch {expected}"),
        };
        return AppliedState::Pending { detail };
    }
    if !is(&src.ready, ConditionStatus::True) {
        return AppliedState::Pending {
            detail: format!("{src_name} fetched {expected}; waiting for it to be Ready"),
        };
    }
    for k in &observed.kustomizations {
        let name = format!("Kustomization {}", k.object);
        if let Some(c) = k
            .ready
            .as_ref()
            .filter(|c| c.status == ConditionStatus::False)
        {
            return stuck(name, c);
        }
        let applied = k.last_applied_revision.as_deref().and_then(revision_digest);
        if applied.as_ref() != Some(expected) {
            if k.suspended {
                return suspended(
                    name,
                    &format!(
                        "flux resume kustomization {} -n {}",
                        k.object.name, k.object.namespace
                    ),
                );
            }
            let detail = match &k.last_applied_revision {
                None => format!("{name} has applied nothing yet; waiting for {expected}"),
                Some(r) => format!("{name} last applied {r}; waiting for it to apply {expected}"),
            };
            return AppliedState::Pending { detail };
        }
        if !is(&k.ready, ConditionStatus::True) {
            return AppliedState::Pending {
                detail: format!("{name} applied {expected}; waiting for Ready (health checks)"),
            };
        }
    }
    AppliedState::Applied
}
