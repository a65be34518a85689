//! Checks on a move's target before the plan may name it: which digest to write (or that the
//! artifact must be packed first), and whether the evidence policy allows it (S1).
//!
//! Invariants: a target whose deploy tree holds no file is refused `empty_tree` unless the
//! policy allows empty trees (Flux would prune everything); under `require_signature` a
//! target is allowed only with evidence read as present; evidence read as absent refuses
//! `evidence_missing`, evidence that could not be read refuses `facts_unknown`, and an
//! artifact that must still be packed is unsigned by definition and refused.
//! Must never: let a move through on unknown evidence or an unknown artifact.

use crate::facts::{Facts, Pin};
use crate::ids::{CommitId, Digest};
use crate::known::{Known, MissingFact};
use crate::plan::RefuseReason;

/// Why a target may not be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error(transparent)]
    Missing(#[from] MissingFact),
    #[error(
        "the artifact {} of {} has no valid evidence{} and the policy requires it: sign it, \
         then reconcile",
        .digest.short(), .commit.short(),
        .problem.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    Unsigned {
        commit: CommitId,
        digest: Digest,
        problem: Option<String>,
    },
    #[error(
        "{} has no artifact yet and a freshly packed artifact is unsigned, but the policy \
         requires evidence: push and sign {}, then reconcile",
        .commit.short(), .commit.artifact_tag()
    )]
    UnsignedPack { commit: CommitId },
    #[error(
        "no evidence is known for {} (it is not the artifact of any commit mainline knows) and \
         the policy requires it",
        .digest.short()
    )]
    NoEvidenceKnown { digest: Digest },
    #[error(
        "the deploy tree of {} holds no file, and an empty artifact would make Flux prune \
         everything it deployed; add the manifests, or pass --allow-empty if that is intended",
        .commit.short()
    )]
    EmptyTree { commit: CommitId },
}

impl TargetError {
    /// The refusal reason this error maps to.
    pub(crate) fn reason(&self) -> RefuseReason {
        match self {
            TargetError::Missing(_) => RefuseReason::FactsUnknown,
            TargetError::Unsigned { .. }
            | TargetError::UnsignedPack { .. }
            | TargetError::NoEvidenceKnown { .. } => RefuseReason::EvidenceMissing,
            TargetError::EmptyTree { .. } => RefuseReason::EmptyTree,
        }
    }
}

/// The digest to write for a move to `commit`'s artifact (`None`: pack it from git first),
/// after the empty-tree rule and the evidence policy allowed it.
pub(crate) fn commit_target(
    facts: &Facts,
    commit: &CommitId,
) -> Result<Option<Digest>, TargetError> {
    if !facts.policy.allow_empty && facts.empty_tree(commit)? {
        return Err(TargetError::EmptyTree {
            commit: commit.clone(),
        });
    }
    let artifact = facts.artifact(commit)?;
    if facts.policy.require_signature {
        match artifact {
            None => {
                return Err(TargetError::UnsignedPack {
                    commit: commit.clone(),
                })
            }
            Some(digest) if !facts.signed(commit, digest)? => {
                return Err(TargetError::Unsigned {
                    commit: commit.clone(),
                    digest: digest.clone(),
                    problem: facts.evidence_problem(commit).map(str::to_owned),
                })
            }
            Some(_) => {}
        }
    }
    Ok(artifact.cloned())
}

/// The commit whose artifact is `pin.digest`: the pin's own commit when it names one,
/// otherwise any gathered commit whose artifact is that digest. `Ok(None)`: no known commit.
pub(crate) fn pin_artifact_commit<'f>(
    facts: &'f Facts,
    pin: &Pin,
) -> Result<Option<&'f CommitId>, MissingFact> {
    if let Some(c) = &pin.commit {
        let (commit, _) = facts
            .commits
            .get_key_value(c)
            .ok_or_else(|| MissingFact::CommitNotGathered { commit: c.clone() })?;
        return Ok((facts.artifact(commit)? == Some(&pin.digest)).then_some(commit));
    }
    Ok(facts
        .commits
        .iter()
        .find(|(_, f)| f.artifact == Known::Known(Some(pin.digest.clone())))
        .map(|(c, _)| c))
}

/// Whether the evidence policy allows naming the pin's digest.
pub(crate) fn pin_evidence(facts: &Facts, pin: &Pin) -> Result<(), TargetError> {
    if !facts.policy.require_signature {
        return Ok(());
    }
    match pin_artifact_commit(facts, pin)? {
        Some(commit) if facts.signed(commit, &pin.digest)? => Ok(()),
        Some(commit) => Err(TargetError::Unsigned {
            commit: commit.clone(),
            digest: pin.digest.clone(),
            problem: facts.evidence_problem(commit).map(str::to_owned),
        }),
        None => Err(TargetError::NoEvidenceKnown {
            digest: pin.digest.clone(),
        }),
    }
}
