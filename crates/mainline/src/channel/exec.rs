//! The executor: the decide → act → read back → re-decide loop.
//!
//! One run: gather facts (cached depth first), ask `mainline_core::decide`, and if the plan
//! moves the channel, write the target's identical manifest bytes under the channel tag, read
//! the tag back, then decide again as a plain reconcile on fresh facts. That re-decision is
//! what undoes a candidate write that raced with its group's end (DESIGN.md S4), and what lets
//! any number of concurrent runs converge. A run stops at the first Hold or refusal, or fails
//! after `MAX_ROUNDS` moves (something keeps moving the channel under us).
//! Must never: write on a plan decided from deferred facts without re-gathering, or report a
//! move that was not read back.

use super::cache::FactCache;
use super::gather::{Depth, Gathered, Sources};
use super::ports::{Builder, Cas, Clock, Repo};
use super::refs::PinRecord;
use super::ChannelConfig;
use crate::artifact::{fetch_existing, write_tag};
use crate::error::{CliError, Kind};
use mainline_core::{
    decide, Action, ChannelHead, CommitId, Decision, Digest, Known, Move, Plan, Refusal,
    RefuseReason, Request, Verdict,
};
use mainline_store::{ReferenceTarget, Store};
use serde::Serialize;

/// At most this many channel writes in one run.
pub const MAX_ROUNDS: usize = 4;

/// A channel write that happened (and was read back).
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMove {
    pub action: Action,
    pub verdict: Verdict,
    pub from_digest: Option<Digest>,
    pub from_commit: Option<CommitId>,
    pub to_digest: Digest,
    pub to_commit: Option<CommitId>,
    /// True when the artifact was packed from git and pushed first.
    pub packed: bool,
    pub reason: String,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The decision on the facts as first read.
    pub decision: Decision,
    /// Every write, in order.
    pub moves: Vec<AppliedMove>,
    /// The decision after the last write (equal to `decision` when nothing moved).
    pub final_decision: Decision,
    /// Set when the request was refused.
    pub refusal: Option<Refusal>,
    /// The facts of the final decision, for `status` and the JSON report.
    #[serde(skip)]
    pub facts: Option<mainline_core::Facts>,
}

pub struct Executor<'a> {
    pub config: &'a ChannelConfig,
    pub store: &'a dyn Store,
    pub repo: &'a dyn Repo,
    pub builder: &'a dyn Builder,
    pub clock: &'a dyn Clock,
    pub cache: &'a FactCache,
    /// Who acts (CI run URL, user@host), recorded with pins.
    pub actor: String,
}

impl Executor<'_> {
    fn sources(&self) -> Sources<'_> {
        Sources {
            config: self.config,
            store: self.store,
            repo: self.repo,
            clock: self.clock,
            cache: self.cache,
        }
    }

    /// Gather and decide, escalating to full facts when a cached-depth decision depends on a
    /// fact it skipped.
    pub fn observe(&self, request: &Request) -> (Gathered, Decision) {
        let sources = self.sources();
        let g = sources.gather(request, Depth::Cached);
        let d = decide(&g.facts, request);
        let depends_on_unknown = d.verdict == Verdict::Unknown
            || matches!(&d.plan, Plan::Refuse(r) if r.reason == RefuseReason::FactsUnknown);
        if g.deferred && depends_on_unknown {
            let g = sources.gather(request, Depth::Full);
            let d = decide(&g.facts, request);
            return (g, d);
        }
        (g, d)
    }

    /// Run `request` to completion: at most `MAX_ROUNDS` writes, each read back and re-decided.
    pub fn run(&self, request: Request) -> Result<Report, CliError> {
        let mut request = request;
        let mut first: Option<Decision> = None;
        let mut moves = Vec::new();
        if let Request::Pin { pin } = &request {
            // The pin record goes first (even when the channel already names the digest), so
            // every later reconcile sees it; the channel follows in the loop below.
            let (g, d) = self.observe(&request);
            if let Plan::Refuse(r) = &d.plan {
                let r = r.clone();
                return Ok(Report {
                    decision: d.clone(),
                    moves,
                    final_decision: d,
                    refusal: Some(r),
                    facts: Some(g.facts),
                });
            }
            self.write_pin(&g, pin)?;
            first = Some(d);
            request = Request::Reconcile {
                force_restore: false,
            };
        }
        loop {
            let (g, d) = self.observe(&request);
            let first_decision = first.get_or_insert_with(|| d.clone()).clone();
            let done = |d: Decision, refusal: Option<Refusal>, g: Gathered, moves| {
                self.cache.save();
                Ok(Report {
                    decision: first_decision.clone(),
                    moves,
                    final_decision: d,
                    refusal,
                    facts: Some(g.facts),
                })
            };
            match d.plan.clone() {
                Plan::Hold => return done(d, None, g, moves),
                Plan::Refuse(r) => return done(d, Some(r), g, moves),
                _ if request == Request::Status => return done(d, None, g, moves),
                Plan::ClearPin => {
                    self.clear_pin(&g)?;
                    request = Request::Reconcile {
                        force_restore: false,
                    };
                }
                Plan::Move(mv) => {
                    if moves.len() >= MAX_ROUNDS {
                        return Err(CliError::new(
                            Kind::Unavailable,
                            format!(
                                "{} kept changing under this run ({} writes); another writer is active",
                                self.config.channel_display(),
                                moves.len()
                            ),
                        )
                        .with_hint("re-run; with a lock backend writers take turns"));
                    }
                    moves.push(self.apply(&g, &d, &mv)?);
                    // Re-decide on fresh facts: undo a write the world no longer allows.
                    request = Request::Reconcile {
                        force_restore: false,
                    };
                }
            }
        }
    }

    /// Name the move's target under the channel tag: build it first if needed, fetch its exact
    /// manifest bytes by digest (it must exist: S1), write, read back.
    fn apply(&self, g: &Gathered, d: &Decision, mv: &Move) -> Result<AppliedMove, CliError> {
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
    fn write_pin(&self, g: &Gathered, pin: &mainline_core::Pin) -> Result<(), CliError> {
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

    fn clear_pin(&self, g: &Gathered) -> Result<(), CliError> {
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
    };
    CliError::new(kind, e.to_string())
}
