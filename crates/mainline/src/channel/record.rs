//! Journal bookkeeping the executor does around its writes: recording refusals of explicit
//! requests, and settling what a crashed writer left behind (a dangling intent, or a channel
//! that changed with no recorded move) before a locked run acts.
//!
//! Must never: settle the journal without holding the lock (another writer's in-progress
//! intent would look dangling), or fail a run because the journal could not be written after
//! the channel moved (the next locked run settles it).

use super::exec::{Executor, Report};
use super::journal::{Entry, EntryKind};
use mainline_core::Request;

impl Executor<'_> {
    /// Journal the refusal of an explicit request (deploy, promote, pin). A reconcile's refusal
    /// is a standing state, reported by `status`, not a new event. Returns warnings.
    pub(super) fn journal_refusal(&self, request: &Request, report: &Report) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(refusal) = &report.refusal else {
            return warnings;
        };
        let to_commit = match request {
            Request::DeployCandidate { head, .. } => Some(head.clone()),
            Request::Promote { commit } => Some(commit.clone()),
            Request::Pin { pin } => pin.commit.clone(),
            _ => return warnings,
        };
        if !self.journal {
            return warnings;
        }
        let mut e = Entry::new(
            &self.config.channel_display(),
            EntryKind::Refused,
            &self.actor,
            &format!("{}: {}", refusal.reason, refusal.message),
            self.clock.now(),
        );
        e.verdict = Some(report.decision.verdict);
        e.to_commit = to_commit;
        if let Some(f) = &report.facts {
            if let mainline_core::Known::Known(mainline_core::ChannelHead::Names {
                digest,
                commit,
            }) = &f.channel
            {
                e.from_digest = Some(digest.clone());
                e.from_commit = commit.known().cloned();
                e.after = Some(digest.clone());
            }
        }
        self.append(e, &mut warnings);
        warnings
    }

    /// Under the lock, before acting: settle a dangling intent (`moved` if the channel names its
    /// target, else `abandoned`), or record that the channel changed with no recorded move.
    pub(super) fn settle_journal(&self, warnings: &mut Vec<String>) {
        let head = match self.journal().head() {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                warnings.push(crate::error::chain_message(&e));
                return;
            }
        };
        let current = match self.store.resolve(&self.config.tag) {
            Ok(c) => c,
            Err(e) => {
                warnings.push(crate::error::chain_message(&e));
                return;
            }
        };
        let now = self.clock.now();
        let h = &head.entry;
        if h.kind == EntryKind::Intent {
            let mut e = h.clone();
            e.intent = Some(h.seq);
            e.time = now;
            e.actor = self.actor.clone();
            e.after = current.clone();
            if current.is_some() && current == h.to_digest {
                e.kind = EntryKind::Moved;
                e.reason = format!(
                    "settled by a later run (the writer stopped before recording it): {}",
                    h.reason
                );
            } else {
                e.kind = EntryKind::Abandoned;
                e.reason = "the writer stopped before writing the channel".into();
            }
            self.append(e, warnings);
        } else if h.after != current {
            let mut e = Entry::new(
                &self.config.channel_display(),
                EntryKind::Observed,
                &self.actor,
                "the channel changed without a recorded move (moved by hand, or by a run without the journal)",
                now,
            );
            e.from_digest = h.after.clone();
            e.to_digest = current.clone();
            e.after = current;
            self.append(e, warnings);
        }
    }
}
