//! The executor's effects: writing the channel (identical manifest bytes, read back), and
//! writing or clearing the pin record. Each is one step the run loop takes after a decision.
//!
//! Must never: write a channel target that was not fetched by digest from the store right
//! before (S1), write it without the run's fence (see `fence.rs`), or report a write that was
//! not read back.

use super::error::ExecError;
use super::exec::{channel_digest, AppliedMove, Executor, Locked};
use super::fence::LeaseFence;
use super::gather::Gathered;
use super::ports::Cas;
use super::refs::PinRecord;
use crate::artifact::write_tag_fenced;
use crate::artifact::ArtifactError;
use mainline_core::{Action, ChannelHead, CommitId, Decision, Digest, Known, Move};

/// How one fenced channel write ended (see [`Executor::write_fenced`]).
pub(super) enum WriteOutcome {
    /// Written and read back; with a warning when the registry never confirmed it. `true`
    /// when the read-back is the last read of the channel (no quarantine came after it), so
    /// the re-decision may take what the channel names from it.
    Moved(AppliedMove, Option<String>, bool),
    /// Another writer's digest was read back right after ours (unlocked writers racing, or a
    /// hand move): not a fault of this write; the run records it and re-decides.
    Overtaken { seen: Digest, error: ExecError },
    /// The write failed. `abandoned`: what the channel names, when this run may still speak
    /// for the journal (it holds the lock, or runs unlocked) and the channel was read.
    Failed {
        error: ExecError,
        abandoned: Option<Option<Digest>>,
    },
}

/// Why a channel write did not complete.
pub(super) enum ApplyError {
    /// Nothing was sent to the channel tag (building or fetching the target failed).
    BeforeWrite(ExecError),
    /// The write of `target` was attempted and failed, or its read-back differed: the channel
    /// may or may not name `target` now.
    Write { target: Digest, error: ExecError },
}

impl Executor<'_> {
    /// The digest a move names: its own, or — for a commit without an artifact — the one
    /// built and pushed now (`true`: packed). The short path calls this before taking the lock.
    pub(super) fn target(&self, g: &Gathered, mv: &Move) -> Result<(Digest, bool), ExecError> {
        match (&mv.to_digest, &mv.to_commit) {
            (Some(d), _) => Ok((d.clone(), false)),
            (None, Some(c)) => {
                // A candidate, or a restore of a live group an ended one contained, records
                // its group's ref: the same bytes (and digest) the group's own deploy packs.
                let group_target = match mv.action {
                    Action::DeployCandidate => true,
                    Action::Restore => g.facts.mainline.known() != Some(c),
                    _ => false,
                };
                let revision_ref = if group_target {
                    self.group_ref_of(g, c)
                        .unwrap_or_else(|| self.config.branch.clone())
                } else {
                    self.config.branch.clone()
                };
                let d = self.builder.build(self.store, c, &revision_ref)?;
                self.cache.set_artifact(c, &d);
                Ok((d, true))
            }
            (None, None) => Err(ExecError::PlanWithoutTarget),
        }
    }

    /// Name the move's target under the channel tag: build it first if needed (unless
    /// `prepared` already says what it is), fetch its exact manifest bytes by digest (it must
    /// exist: S1), write under `fence`, read back.
    pub(super) fn apply(
        &self,
        g: &Gathered,
        d: &Decision,
        mv: &Move,
        fence: &LeaseFence<'_, '_>,
        prepared: Option<(Digest, bool)>,
    ) -> Result<AppliedMove, ApplyError> {
        let (digest, packed) = match prepared {
            Some(p) => p,
            None => self.target(g, mv).map_err(ApplyError::BeforeWrite)?,
        };
        let manifest = self
            .target_manifest(&digest)
            .map_err(ApplyError::BeforeWrite)?;
        write_tag_fenced(self.store, &manifest, &self.config.tag, fence).map_err(|error| {
            ApplyError::Write {
                target: digest.clone(),
                error: error.into(),
            }
        })?;
        Ok(self.applied(g, d, mv, digest, packed))
    }

    /// The exact bytes of the target `digest`, from the fact cache when this runner read them
    /// before. Both stores refuse a manifest whose config or layer blob they lack (a registry
    /// with MANIFEST_BLOB_UNKNOWN, the OCI layout with `ManifestBlobMissing`), so cached bytes
    /// can never make the channel name a partial artifact, and the read-back proves the digest
    /// exists (S1).
    fn target_manifest(
        &self,
        digest: &Digest,
    ) -> Result<mainline_store::StoredManifest, ExecError> {
        let found = super::gather::manifest_by_digest(self.store, self.cache, digest)?;
        found.ok_or_else(|| {
            ArtifactError::NoSuchManifest {
                location: self.store.location().to_string(),
                digest: digest.clone(),
            }
            .into()
        })
    }

    /// The record of a write of `digest` that was read back.
    pub(super) fn applied(
        &self,
        g: &Gathered,
        d: &Decision,
        mv: &Move,
        digest: Digest,
        packed: bool,
    ) -> AppliedMove {
        let (from_digest, from_commit) = match &g.facts.channel {
            Known::Known(ChannelHead::Names { digest, commit }) => {
                (Some(digest.clone()), commit.known().cloned())
            }
            _ => (None, None),
        };
        tracing::info!(
            channel = %self.config.channel_display(),
            action = ?mv.action,
            to = %digest,
            "channel moved: {}",
            mv.reason
        );
        AppliedMove {
            action: mv.action,
            verdict: d.verdict,
            from_digest,
            from_commit,
            to_digest: digest,
            to_commit: mv.to_commit.clone(),
            packed,
            reason: mv.reason.clone(),
        }
    }

    /// One channel write under the run's fence (see `fence.rs`): the write, the quarantine
    /// after an attempt that ended without an answer, and a truthful account when it failed.
    pub(super) fn write_fenced(
        &self,
        g: &Gathered,
        d: &Decision,
        mv: &mainline_core::Move,
        locked: &mut Option<&mut Locked<'_>>,
        prepared: Option<(Digest, bool)>,
    ) -> WriteOutcome {
        let fence = LeaseFence::new(locked.as_deref_mut(), self.clock);
        let outcome = self.apply(g, d, mv, &fence, prepared);
        let held = match fence.uncertain_at() {
            Some(_) => fence.quarantine(),
            None => Ok(()),
        };
        let attempts = fence.admitted();
        let read_back_is_last = fence.uncertain_at().is_none();
        let (target, error) = match outcome {
            Ok(applied) => {
                return match held {
                    Ok(()) => WriteOutcome::Moved(applied, None, read_back_is_last),
                    Err(lost) => WriteOutcome::Failed {
                        error: ExecError::LostAfterWrite {
                            lost: Box::new(lost),
                            written: applied.to_digest,
                        },
                        abandoned: None,
                    },
                };
            }
            Err(ApplyError::BeforeWrite(e)) => {
                let now = channel_digest(&g.facts.channel);
                return WriteOutcome::Failed {
                    error: e,
                    abandoned: now,
                };
            }
            Err(ApplyError::Write { target, error }) => (target, error),
        };
        // The write failed, or its outcome is unknown: read what the channel names now.
        let now = self.store.resolve(&self.config.tag);
        match (now, held) {
            (Ok(Some(seen)), Ok(())) if seen == target => {
                let note = format!(
                    "the registry did not confirm the write of {target} ({}), but the channel names it when read back after the fence",
                    error.message()
                );
                tracing::warn!("{note}");
                WriteOutcome::Moved(self.applied(g, d, mv, target, false), Some(note), true)
            }
            // Another writer's digest was read back after ours (unlocked writers racing, or a
            // hand move): not a fault of this write. Re-decide from fresh facts.
            (Ok(Some(seen)), Ok(())) if read_back_mismatch(&error) => WriteOutcome::Overtaken {
                error: ExecError::Overtaken {
                    channel: self.config.channel_display(),
                    seen: seen.clone(),
                },
                seen,
            },
            (Ok(seen), Ok(())) => WriteOutcome::Failed {
                error: ExecError::WriteFailed {
                    write: Box::new(error),
                    attempts,
                    seen: seen.clone(),
                    target,
                },
                abandoned: Some(seen),
            },
            (Ok(seen), Err(lost)) => WriteOutcome::Failed {
                error: ExecError::WriteLockLost {
                    write: Box::new(error),
                    lost: Box::new(lost),
                    seen,
                    target,
                },
                abandoned: None,
            },
            (Err(read), _) => WriteOutcome::Failed {
                error: ExecError::WriteUnknown {
                    write: Box::new(error),
                    read,
                    target,
                },
                abandoned: None,
            },
        }
    }

    fn group_ref_of(&self, g: &Gathered, head: &CommitId) -> Option<String> {
        g.facts
            .groups_headed_by(head)
            .first()
            .map(|grp| grp.id.clone())
    }

    /// Record the pin on the remote before the channel moves to it, so a concurrent reconcile
    /// already sees it and holds.
    pub(super) fn write_pin(
        &self,
        g: &Gathered,
        pin: &mainline_core::Pin,
    ) -> Result<(), ExecError> {
        let commit = self.pin_record(pin)?;
        self.cas(
            &self.config.key.pin_ref(),
            g.pin_ref.as_ref(),
            Some(&commit),
        )
    }

    /// The pin record commit for `pin`, made locally (a push puts it at the pin ref).
    pub(super) fn pin_record(&self, pin: &mainline_core::Pin) -> Result<CommitId, ExecError> {
        let record = PinRecord {
            kind: pin.kind,
            digest: pin.digest.clone(),
            commit: pin.commit.clone(),
            reason: pin.reason.clone(),
            actor: pin.actor.clone(),
            expires_at: pin.expires_at,
            created_at: self.clock.now(),
        };
        Ok(self
            .repo
            .write_record(&record.to_message(), &[], self.clock.now())?)
    }

    pub(super) fn clear_pin(&self, g: &Gathered) -> Result<(), ExecError> {
        match &g.pin_ref {
            None => Ok(()),
            Some(old) => self.cas(&self.config.key.pin_ref(), Some(old), None),
        }
    }

    fn cas(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<(), ExecError> {
        match self.repo.cas_ref(refname, expected, new)? {
            Cas::Updated => Ok(()),
            Cas::Conflict { .. } => Err(ExecError::PinChanged {
                refname: refname.to_owned(),
                remote: self.config.git_display.clone(),
            }),
        }
    }
}

/// Whether a failed write read back another digest than the one written (see
/// [`ArtifactError::is_read_back_mismatch`]).
fn read_back_mismatch(e: &ExecError) -> bool {
    match e {
        ExecError::Artifact(a) => a.is_read_back_mismatch(),
        ExecError::Store(s) => s.kind == mainline_store::ErrorKind::Integrity,
        _ => false,
    }
}
