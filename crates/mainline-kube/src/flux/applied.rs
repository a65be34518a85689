//! What prod has applied, against the digest the channel names: a pure function of an
//! [`Observed`] status and the expected [`Digest`]. No I/O and no clock, so every case is a
//! unit test on a value (tests/applied.rs) and `status`, `deploy --wait` and the guard agree.
//!
//! It follows kustomize-controller's and source-controller's own conditions (kstatus):
//! STUCK means Flux itself has given up on the expected digest, never merely that some
//! `Ready=False` is lying around. A condition counts only when it was written for the object's
//! current spec (its `observedGeneration`, else `status.observedGeneration`, is at least
//! `metadata.generation`); an older one says nothing and leaves the object PENDING.
//!
//! Rules, in order (the first that matches wins), for the OCIRepository, then each
//! Kustomization:
//! 1. behind the expected digest (`status.artifact.revision`, `lastAppliedRevision`) and
//!    suspended → STUCK (it will not move on its own);
//! 2. `Stalled=True` → STUCK with that condition's message;
//! 3. OCIRepository: `SourceVerified` or `Ready` is `False` while `Reconciling` is not `True`
//!    → STUCK (source-controller is not retrying); Kustomization: `Ready=False` while
//!    `lastAttemptedRevision` names the expected digest and `Reconciling` is not `True` → STUCK;
//! 4. anything short of every object naming the expected digest with a current `Ready=True`
//!    → PENDING, saying what it waits for (a failure Flux is retrying, or one left from
//!    another revision, is named in the detail);
//! 5. otherwise APPLIED.
//!
//! UNREACHABLE is never produced here: it is what the caller records when the status could
//! not be read at all. Must never: call a status APPLIED unless every object names the
//! expected digest and reports a current `Ready=True`; call it STUCK while Flux is still
//! retrying, or for a failure on another revision than the expected one.

use super::{
    ConditionState, ConditionStatus, KustomizationObservation, Observed, SourceObservation,
};
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

/// `c` when it is current for `generation` (see the module doc), else `None`.
fn current(c: &Option<ConditionState>, generation: Option<i64>) -> Option<&ConditionState> {
    c.as_ref().filter(|c| c.is_current(generation))
}

fn is(c: Option<&ConditionState>, status: ConditionStatus) -> bool {
    c.is_some_and(|c| c.status == status)
}

fn stuck(object: &str, c: &ConditionState) -> AppliedState {
    AppliedState::Stuck {
        object: object.to_owned(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

fn suspended(object: &str, flux_cmd: &str) -> AppliedState {
    AppliedState::Stuck {
        object: object.to_owned(),
        reason: "Suspended".to_owned(),
        message: format!(
            "it is suspended (spec.suspend: true) and will not pick up the channel: resume it \
             with `{flux_cmd}`"
        ),
    }
}

/// When `ready` exists but was written for an older generation: what the wait is for.
fn stale_ready(ready: &Option<ConditionState>, generation: Option<i64>) -> Option<String> {
    let c = ready.as_ref().filter(|c| !c.is_current(generation))?;
    Some(format!(
        "waiting for Flux to observe generation {} (its Ready={:?} is for generation {})",
        generation.map_or_else(|| "?".to_owned(), |g| g.to_string()),
        c.status,
        c.observed_generation
            .map_or_else(|| "unknown".to_owned(), |g| g.to_string())
    ))
}

/// Why a failing condition is not (yet) STUCK, for the PENDING detail.
fn retrying(object: &str, c: &ConditionState, why: &str) -> String {
    format!(
        "{object} reports {} ({}) but {why}",
        c.message.trim_end_matches('.'),
        c.reason
    )
}

/// The OCIRepository's verdict when it is STUCK, or what it is PENDING on (`None`: fetched the
/// expected digest and Ready).
fn assess_source(src: &SourceObservation, expected: &Digest) -> Option<AppliedState> {
    let name = format!("OCIRepository {}", src.object);
    let fetched = src.revision.as_deref().and_then(revision_digest);
    let behind = fetched.as_ref() != Some(expected);
    if behind && src.suspended {
        let cmd = format!(
            "flux resume source oci {} -n {}",
            src.object.name, src.object.namespace
        );
        return Some(suspended(&name, &cmd));
    }
    let generation = src.generation;
    if let Some(c) = current(&src.stalled, generation).filter(|c| c.status == ConditionStatus::True)
    {
        return Some(stuck(&name, c));
    }
    let failing = [&src.source_verified, &src.ready]
        .into_iter()
        .find_map(|c| current(c, generation).filter(|c| c.status == ConditionStatus::False));
    let is_retrying = is(current(&src.reconciling, generation), ConditionStatus::True);
    if let Some(c) = failing {
        if !is_retrying {
            return Some(stuck(&name, c));
        }
        return Some(AppliedState::Pending {
            detail: retrying(&name, c, "source-controller is retrying (Reconciling=True)"),
        });
    }
    if behind {
        let detail = match &src.revision {
            None => format!("{name} has no artifact yet; waiting for {expected}"),
            Some(r) => format!("{name} is at {r}; waiting for it to fetch {expected}"),
        };
        return Some(AppliedState::Pending { detail });
    }
    if !is(current(&src.ready, generation), ConditionStatus::True) {
        return Some(AppliedState::Pending {
            detail: format!(
                "{name} fetched {expected}; waiting for it to be Ready for generation {}",
                generation.map_or_else(|| "?".to_owned(), |g| g.to_string())
            ),
        });
    }
    None
}

/// A Kustomization's verdict when it is STUCK, or what it is PENDING on (`None`: applied the
/// expected digest and Ready).
fn assess_kustomization(k: &KustomizationObservation, expected: &Digest) -> Option<AppliedState> {
    let name = format!("Kustomization {}", k.object);
    let applied = k.last_applied_revision.as_deref().and_then(revision_digest);
    let behind = applied.as_ref() != Some(expected);
    if behind && k.suspended {
        let cmd = format!(
            "flux resume kustomization {} -n {}",
            k.object.name, k.object.namespace
        );
        return Some(suspended(&name, &cmd));
    }
    let generation = k.generation;
    if let Some(c) = current(&k.stalled, generation).filter(|c| c.status == ConditionStatus::True) {
        return Some(stuck(&name, c));
    }
    let ready = current(&k.ready, generation);
    if let Some(c) = ready.filter(|c| c.status == ConditionStatus::False) {
        let attempted = k
            .last_attempted_revision
            .as_deref()
            .and_then(revision_digest);
        let is_retrying = is(current(&k.reconciling, generation), ConditionStatus::True);
        if attempted.as_ref() == Some(expected) && !is_retrying {
            return Some(stuck(&name, c));
        }
        let why = if attempted.as_ref() != Some(expected) {
            format!(
                "for {} (lastAttemptedRevision), not {expected}: waiting for Flux to try it",
                k.last_attempted_revision
                    .as_deref()
                    .unwrap_or("no revision")
            )
        } else {
            "kustomize-controller is retrying (Reconciling=True)".to_owned()
        };
        return Some(AppliedState::Pending {
            detail: retrying(&name, c, &why),
        });
    }
    if behind {
        let detail = match &k.last_applied_revision {
            None => format!("{name} has applied nothing yet; waiting for {expected}"),
            Some(r) => format!("{name} last applied {r}; waiting for it to apply {expected}"),
        };
        return Some(AppliedState::Pending { detail });
    }
    if let Some(stale) = stale_ready(&k.ready, generation) {
        return Some(AppliedState::Pending {
            detail: format!("{name} applied {expected}; {stale}"),
        });
    }
    if !is(ready, ConditionStatus::True) {
        return Some(AppliedState::Pending {
            detail: format!("{name} applied {expected}; waiting for Ready (health checks)"),
        });
    }
    None
}

/// Compare what `observed` reports with the digest the channel names: any STUCK object wins,
/// then the first PENDING one (source first), else APPLIED.
pub fn assess(observed: &Observed, expected: &Digest) -> AppliedState {
    let verdicts = std::iter::once(assess_source(&observed.source, expected)).chain(
        observed
            .kustomizations
            .iter()
            .map(|k| assess_kustomization(k, expected)),
    );
    let mut first_pending = None;
    for v in verdicts.flatten() {
        match v {
            AppliedState::Stuck { .. } => return v,
            other => {
                first_pending.get_or_insert(other);
            }
        }
    }
    first_pending.unwrap_or(AppliedState::Applied)
}
