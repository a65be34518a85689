//! The executor's effects: writing the channel (identical manifest bytes, read back), and
//! writing or clearing the pin record. Each is one step the run loop takes after a decision.
//!
//! Must never: write a channel target that was not fetched by digest from the store right
//! before (S1), or report a write that was not read back.

use super::exec::{AppliedMove, Executor};
use super::gather::Gathered;
use super::ports::Cas;
use super::refs::PinRecord;
use crate::artifact::{fetch_existing, write_tag};
use crate::error::{CliError, Kind};
use mainline_core::{Action, ChannelHead, CommitId, Decision, Known, Move};
use mainline_store::ReferenceTarget;

impl Executor<'_> {
    /// Name the move's target under the channel tag: build it first if needed, fetch its exact
    /// manifest bytes by digest (it must exist: S1), write, read back.
    pub(super) fn apply(
        &self,
        g: &Gathered,
        d: &Decision,
        mv: &Move,
    ) -> Result<AppliedMove, CliError> {
        let (digest, packed) = match (&mv.to_digest, &mv.to_commit) {
            (Some(d), _) => (d.clone(), false),
            (None, Some(c)) => {
                let revision_ref = match mv.action {
                    Action::DeployCandidate => self
                        .group_ref_of(g, c)
                        .unwrap_or_else(|| self.config.branch.clone()),
                    _ => self.config.branch.clone(),
                };
                let d = self.builder.build(self.store, c, &revision_ref)?;
                self.cache.set_artifact(c, &d);
                (d, true)
            }
            (None, None) => {
                return Err(CliError::new(
                    Kind::Internal,
                    "the plan names neither a digest nor a commit (a bug in the decision core)",
                ))
            }
        };
        let manifest = fetch_existing(self.store, &ReferenceTarget::Digest(digest.clone()))?;
        write_tag(self.store, &manifest, &self.config.tag)?;
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
        Ok(AppliedMove {
            action: mv.action,
            verdict: d.verdict,
            from_digest,
            from_commit,
            to_digest: digest,
            to_commit: mv.to_commit.clone(),
            packed,
            reason: mv.reason.clone(),
        })
    }

    fn group_ref_of(&self, g: &Gathered, head: &CommitId) -> Option<String> {
        g.facts
            .groups_headed_by(head)
            .first()
            .map(|grp| grp.id.clone())
    }

    /// Record the pin on the remote before the channel moves to it, so a concurrent reconcile
    /// already sees it and holds.
    pub(super) fn write_pin(&self, g: &Gathered, pin: &mainline_core::Pin) -> Result<(), CliError> {
        let record = PinRecord {
            kind: pin.kind,
            digest: pin.digest.clone(),
            commit: pin.commit.clone(),
            reason: pin.reason.clone(),
            actor: pin.actor.clone(),
            expires_at: pin.expires_at,
            created_at: self.clock.now(),
        };
        let commit = self
            .repo
            .write_record(&record.to_message(), &[], self.clock.now())
            .map_err(repo_err)?;
        self.cas(
            &self.config.key.pin_ref(),
            g.pin_ref.as_ref(),
            Some(&commit),
        )
    }

    pub(super) fn clear_pin(&self, g: &Gathered) -> Result<(), CliError> {
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
    ) -> Result<(), CliError> {
        match self.repo.cas_ref(refname, expected, new).map_err(repo_err)? {
            Cas::Updated => Ok(()),
            Cas::Conflict { .. } => Err(CliError::new(
                Kind::Conflict,
                format!("{refname} on {} changed while this run was deciding", self.config.git_display),
            )
            .with_hint("another operator changed the pin at the same time; check `mainline status` and retry")),
        }
    }
}

pub fn repo_err(e: super::ports::RepoError) -> CliError {
    let kind = match e {
        super::ports::RepoError::Unavailable(_) => Kind::Unavailable,
        super::ports::RepoError::CommitNotFound { .. } => Kind::InvalidInput,
        super::ports::RepoError::Other(_) => Kind::Internal,
        super::ports::RepoError::NotARecord { .. } => Kind::Integrity,
    };
    CliError::new(kind, e.to_string())
}
