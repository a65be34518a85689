//! Journal bookkeeping the executor does around its writes: recording refusals of explicit
//! requests, and settling what a crashed writer left behind (a dangling intent, or a channel
//! that changed with no recorded move) before a locked run acts.
//!
//! Must never: settle the journal without holding the lock (another writer's in-progress
//! intent would look dangling), or fail a run because the journal could not be written after
//! the channel moved (the next locked run settles it).

use super::exec::{Executor, Report};
use super::journal::{settlement, Entry, EntryKind};
use mainline_core::{RefuseReason, Request};

impl Executor<'_> {
    /// Journal the refusal of an explicit request (deploy, promote, pin). A reconcile's refusal
    /// is a standing state, reported by `status`, not a new event — except an empty deploy
    /// tree or missing evidence, which hold mainline's change back (recorded once, not per
    /// reconcile, with what the evidence check found). A
    /// mistyped `--path` is invalid input and writes nothing. Returns warnings.
    pub(super) fn journal_refusal(&self, request: &Request, report: &Report) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(refusal) = &report.refusal else {
            return warnings;
        };
        if refusal.reason == RefuseReason::DeployPathMissing {
            return warnings;
        }
        let standing = matches!(request, Request::Reconcile { .. });
        let to_commit = match request {
            Request::DeployCandidate { head, .. } => Some(head.clone()),
            Request::Promote { commit } => Some(commit.clone()),
            Request::Pin { pin } => pin.commit.clone(),
            Request::Reconcile { .. }
                if matches!(
                    refusal.reason,
                    RefuseReason::EmptyTree | RefuseReason::EvidenceMissing
                ) =>
            {
                report
                    .facts
                    .as_ref()
                    .and_then(|f| f.mainline.known().cloned())
            }
            _ => return warnings,
        };
        if !self.journal {
            return warnings;
        }
        let reason = format!("{}: {}", refusal.reason, refusal.message);
        if standing {
            // Recorded once: a reconcile repeating the same refusal adds nothing.
            match self.journal().head() {
                Ok(Some(last))
                    if last.entry.kind == EntryKind::Refused
                        && last.entry.reason == reason
                        && last.entry.to_commit == to_commit =>
                {
                    return warnings
                }
                _ => {}
            }
        }
        let mut e = Entry::new(
            &self.config.channel_display(),
            EntryKind::Refused,
            &self.actor,
            &reason,
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

    /// Under the lock, before acting: settle what killed writers left, and record a channel
    /// change nobody recorded.
    ///
    /// The window is every record after the last one that says where the channel went
    /// (`moved`, `abandoned`, `observed`): refusals, pins and intents can pile up after it, since
    /// refusals are recorded without the lock. Each intent in the window belongs to a run that
    /// died (a live writer holds the lock we hold now). The newest intent whose target the
    /// channel names now landed (`moved`); the others did not (`abandoned`). An intent that had
    /// to pack its artifact first records only the commit, so its target is that commit's
    /// artifact tag.
    pub(super) fn settle_journal(
        &self,
        current: Option<Option<mainline_core::Digest>>,
        warnings: &mut Vec<String>,
    ) {
        let window = match self.journal().tail(SETTLE_WINDOW, |e| settles(e.kind)) {
            Ok(w) if !w.is_empty() => w,
            Ok(_) => return,
            Err(e) => {
                warnings.push(crate::error::chain_message(&e));
                return;
            }
        };
        let current = match current
            .map(Ok)
            .unwrap_or_else(|| self.store.resolve(&self.config.tag))
        {
            Ok(c) => c,
            Err(e) => {
                warnings.push(crate::error::chain_message(&e));
                return;
            }
        };
        // Packed intents name only their commit: their target is that commit's artifact tag.
        let targets: std::collections::BTreeMap<u64, mainline_core::Digest> = window
            .iter()
            .map(|r| &r.entry)
            .filter(|e| e.kind == EntryKind::Intent)
            .filter_map(|e| {
                let t = e.to_digest.clone().or_else(|| {
                    e.to_commit
                        .as_ref()
                        .and_then(|c| self.store.resolve(&c.artifact_tag()).ok().flatten())
                });
                t.map(|t| (e.seq, t))
            })
            .collect();
        let entries: Vec<Entry> = window.into_iter().map(|r| r.entry).collect();
        let template = self.settlement_template();
        for e in settlement(&entries, current.as_ref(), &targets, &template) {
            self.append(e, warnings);
        }
    }
}

impl Executor<'_> {
    /// Does the journal end in a window with an intent no record settled (a writer died or lost
    /// its answer after journaling it)? Read from the head the run's ref listing showed, so a
    /// journal that did not change costs no network round trip. Unreadable: `false` (the next
    /// writing run settles under the lock anyway).
    pub(super) fn dangling_intent(&self, g: &super::gather::Gathered) -> bool {
        let Some(view) = &g.view else { return false };
        let journal = self.journal();
        let Some(head) = view.mainline_refs.get(&journal.refname) else {
            return false;
        };
        journal
            .tail_from_commit(head, SETTLE_WINDOW, |e| settles(e.kind))
            .map(|w| w.iter().any(|r| r.entry.kind == EntryKind::Intent))
            .unwrap_or(false)
    }
}

/// How far back `settle_journal` looks for unsettled intents.
pub(super) const SETTLE_WINDOW: usize = 256;

/// Whether a record says where the channel went (it closes a settlement window).
pub(super) fn settles(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::Moved | EntryKind::Abandoned | EntryKind::Observed
    )
}

impl Executor<'_> {
    /// What `journal::settlement` stamps the records it makes from: this run's channel, actor
    /// and time (the general path's settlement and the short path's check use the same).
    pub(super) fn settlement_template(&self) -> Entry {
        Entry::new(
            &self.config.channel_display(),
            EntryKind::Observed,
            &self.actor,
            "",
            self.clock.now(),
        )
    }
}
