//! A pin takes the short path (issue 15): the pin ref and its journal record ride in the push
//! that takes the lock, so an operator's pin during an incident costs what a restore costs.
//! What must hold, on a real git remote through the executor as the CLI runs it:
//!
//! - Unraced, the pin is recorded by that one atomic push (the pin ref is never pushed alone).
//! - Raced — another operator pins between our listing and our push — the push records
//!   nothing (the pin ref and the journal head it expected are gone), and the run starts over
//!   on the general path: under the lock it sees the other pin and replaces it *visibly* (the
//!   report and our journal record name whose pin it was). Exactly one pin record of ours.
//! - Answer lost — the push lands but its answer does not come back (a 503 after retries) —
//!   the remote is read to settle it: the lock is ours, so the pin counts as recorded; it is
//!   not pushed again, and exactly one pin record of ours is in the journal.

mod support;

use mainline::adapters::git::GitRepo;
use mainline::channel::journal::EntryKind;
use mainline::channel::ports::{Cas, RefUpdate, Repo, RepoError, RepoWrapper};
use mainline::channel::ChannelConfig;
use mainline_core::{CommitId, Pin, PinKind, Request};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::machine::{
    assert_chain_and_no_lock, behind, journal_records, machine, run_locked, Behind,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Unraced,
    /// Another operator pins just before our first push that carries the pin.
    Raced,
    /// That push lands, and its answer is lost.
    AnswerLost,
}

/// Counts the pushes that carry the pin ref, and stages `case` at the first of them.
struct Racing<'a> {
    inner: &'a GitRepo,
    config: &'a ChannelConfig,
    case: Case,
    other: Pin,
    /// Atomic pushes (several refs) that carry the pin ref: the short path's.
    pin_in_atomic: AtomicUsize,
    /// Pushes of the pin ref alone: the general path's.
    pin_alone: AtomicUsize,
}

impl RepoWrapper for Racing<'_> {
    fn inner(&self) -> &dyn Repo {
        self.inner
    }

    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        let pin_ref = self.config.key.pin_ref();
        let first = updates.iter().any(|u| u.refname == pin_ref)
            && self.pin_in_atomic.fetch_add(1, Ordering::SeqCst) == 0;
        match self.case {
            Case::Raced if first => {
                let report = run_locked(
                    self.config,
                    self.inner,
                    self.inner,
                    "operator-b",
                    true,
                    Request::Pin {
                        pin: self.other.clone(),
                    },
                )
                .expect("the other operator's pin");
                assert!(report.refusal.is_none(), "{report:?}");
                self.inner.cas_refs(updates)
            }
            Case::AnswerLost if first => {
                self.inner.cas_refs(updates)?;
                Err(RepoError::Unavailable(
                    "the git remote answered 503 after retries".into(),
                ))
            }
            _ => self.inner.cas_refs(updates),
        }
    }

    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        if refname == self.config.key.pin_ref() {
            self.pin_alone.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.cas_ref(refname, expected, new)
    }
}

fn pin_of(digest: &str, actor: &str, reason: &str) -> Pin {
    Pin {
        digest: digest.parse().expect("a digest"),
        commit: None,
        reason: reason.into(),
        actor: actor.into(),
        expires_at: None,
        kind: PinKind::Pin,
    }
}

#[test]
fn a_pin_rides_in_the_lock_push_a_raced_one_replaces_the_other_visibly_a_lost_answer_is_read_back()
{
    for case in [Case::Unraced, Case::Raced, Case::AnswerLost] {
        let Behind {
            tmp: _tmp,
            queue: q,
            channel,
            before,
        } = behind();
        let (config, inner) = machine(&q, &channel, "operator-laptop");
        let repo = Racing {
            inner: &inner,
            config: &config,
            case,
            other: pin_of(&before, "operator-b", "INC-7: B holds prod"),
            pin_in_atomic: AtomicUsize::new(0),
            pin_alone: AtomicUsize::new(0),
        };
        // What the channel names now (main has moved on since): hold it.
        let ours = pin_of(&before, "operator-a", "INC-7: A holds prod");
        let report = run_locked(
            &config,
            &repo,
            &inner,
            "operator-a",
            true,
            Request::Pin { pin: ours },
        )
        .unwrap_or_else(|e| panic!("{case:?}: {e:?}"));

        assert!(report.refusal.is_none(), "{case:?}: {report:?}");
        assert!(
            report.moves.is_empty(),
            "{case:?}: the channel names the pin"
        );
        assert_eq!(
            repo.pin_in_atomic.load(Ordering::SeqCst),
            1,
            "{case:?}: the first push carries the pin (with the lock and the journal)"
        );
        let records = journal_records(&inner, &config);
        let ours: Vec<_> = records
            .iter()
            .filter(|r| r.entry.kind == EntryKind::Pin && r.entry.actor == "operator-a")
            .collect();
        assert_eq!(ours.len(), 1, "{case:?}: one pin record of ours");
        match case {
            Case::Unraced | Case::AnswerLost => {
                assert_eq!(
                    repo.pin_alone.load(Ordering::SeqCst),
                    0,
                    "{case:?}: the pin ref is never pushed alone on the short path"
                );
                assert!(report.replaced_pin.is_none(), "{case:?}: {report:?}");
                assert_eq!(
                    records.last().map(|r| r.entry.kind),
                    Some(EntryKind::Pin),
                    "{case:?}: a pin without a move adds its record and nothing else"
                );
            }
            Case::Raced => {
                assert_eq!(
                    repo.pin_alone.load(Ordering::SeqCst),
                    1,
                    "the raced pin is recorded on the general path, under the lock"
                );
                let replaced = report
                    .replaced_pin
                    .as_ref()
                    .expect("the other pin, reported");
                assert_eq!(replaced.actor, "operator-b");
                assert!(
                    ours[0].entry.reason.contains("replaces the pin")
                        && ours[0].entry.reason.contains("operator-b"),
                    "our record says whose pin it replaced: {}",
                    ours[0].entry.reason
                );
                let theirs = records
                    .iter()
                    .position(|r| r.entry.kind == EntryKind::Pin && r.entry.actor == "operator-b");
                let mine = records
                    .iter()
                    .position(|r| r.entry.kind == EntryKind::Pin && r.entry.actor == "operator-a");
                assert!(
                    theirs < mine,
                    "theirs first, then ours: {theirs:?} {mine:?}"
                );
            }
        }
        assert_chain_and_no_lock(&q, &records, &format!("{case:?}"));
    }
}
