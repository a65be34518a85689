//! The short path of a locked write (issue 15): the common move — a restore, a candidate deploy,
//! a promotion — in four git round trips instead of a dozen, with the same guarantees as the
//! general path in `rounds.rs`.
//!
//! 1. **List** (the observation every run makes): refs and the channel, then decide. A pin or
//!    an unpin is then decided as the reconcile that follows it, on the facts as they will be
//!    once it is recorded (the pin set or cleared).
//! 2. **Pack** a missing artifact, without the lock: a `sha-<commit>` push is idempotent (the
//!    same bytes from the same tree), so two writers packing at once cannot disagree.
//! 3. **Lock + intent, one atomic push**: create the lock ref (expected absent) *and* append the
//!    journal's intent with a compare-and-swap on the journal head that step 1 listed. A pin
//!    or an unpin rides in it: the pin ref moves from the value listed and its record goes in
//!    before the intent (alone, when the channel need not move; the release follows).
//! 4. **Write** the channel under the lease's fence and read it back (`effects.rs`).
//! 5. **Moved + release, one atomic push**: append the outcome after our intent and delete our
//!    lock record. Then decide again on fresh facts (a new listing, sent alongside that push
//!    with parallel reads: `release_and_list`), as every run does.
//!
//! Why step 3 may act on facts read before the lock: every locked mainline writer appends an
//! intent to the journal before it writes the channel and holds the lock until its outcome is
//! recorded. If the lock ref is absent and the journal head is still the one listed, no
//! mainline writer holds the lock or recorded anything since the listing — which is exactly
//! what observing again under the lock would establish. (Facts mainline does not own — the
//! branch, the queue, a hand move of the tag — can change under any lock; the re-decision in
//! step 5 answers them, as it does on the general path.)
//!
//! The short path hands over to the general path (which takes the lock the patient way,
//! observes under it and settles the journal) whenever its conditions do not hold: a lock ref is
//! present (a live or dead holder), the journal has something to settle (an unsettled intent, a
//! channel moved without a record), packing failed, or an atomic push lost a race (a pin
//! that lost it is recorded on the general path, from the start). Only the git lock with the
//! journal on takes it.
//!
//! Must never: act on a listing when the atomic push did not confirm both the absent lock and
//! the unchanged journal head; append an outcome twice (a push without an answer is checked
//! against the remote before anything is retried); or leave our lock behind when the run ends.

use super::effects::WriteOutcome;
use super::error::ExecError;
use super::exec::{channel_digest, Executor, LockMode, Locked, Report, MAX_ROUNDS};
use super::gather::{Gathered, Prior};
use super::journal::{settlement, Entry, EntryKind, Record};
use super::lock::{GitLock, Held};
use super::ports::{Cas, RefUpdate, RemoteView};
use super::record::{settles, SETTLE_WINDOW};
use super::rounds::Carried;
use mainline_core::{decide, CommitId, Decision, Pin, Plan, Request};

/// The reconcile that follows every move (and a pin change).
const RECONCILE: Request = Request::Reconcile {
    force_restore: false,
};

/// A pin or an unpin, recorded in the short path's first push beside the lock and the journal.
pub(super) struct PinChange {
    /// The pin ref, from the value listed to the new record (`None`: deleted).
    update: RefUpdate,
    /// Its journal record (`pin` or `unpin`).
    entry: Entry,
    /// The pin the facts show once it lands.
    pin: Option<Pin>,
    /// The active pin it replaces (reported).
    replaced: Option<Pin>,
}

/// How the short path ended.
pub(super) enum Short {
    Done(Box<Report>),
    /// Its conditions do not hold (any more): continue on the general path from here.
    Handover(Box<Carried>),
}

impl Executor<'_> {
    /// Whether this observation allows the short path; if so, the journal head to append
    /// after (`None`: no journal yet).
    pub(super) fn short_path_start(&self, g: &Gathered) -> Option<Option<Record>> {
        if !matches!(self.lock, LockMode::Git { .. }) || !self.journal {
            return None;
        }
        let view = g.view.as_ref()?;
        if view.mainline_refs.contains_key(&self.config.key.lock_ref()) {
            return None;
        }
        let current = channel_digest(&g.facts.channel)?;
        let journal = self.journal();
        let Some(head) = view.mainline_refs.get(&journal.refname) else {
            return Some(None);
        };
        let window = journal
            .tail_from_commit(head, SETTLE_WINDOW, |e| settles(e.kind))
            .ok()?;
        // Nothing to settle: the general path's own rule (`journal::settlement`, pure) finds
        // no intent to settle and no unrecorded move in the window.
        let entries: Vec<Entry> = window.iter().map(|r| r.entry.clone()).collect();
        let template = self.settlement_template();
        let none = std::collections::BTreeMap::new();
        if !settlement(&entries, current.as_ref(), &none, &template).is_empty() {
            return None;
        }
        window.into_iter().next().map(Some)
    }

    /// Run the writes of `request` on the short path, from the observation `(g, d)` (whose plan
    /// is a move, or an unpin's `ClearPin`, and which passed [`Executor::short_path_start`]).
    pub(super) fn run_short(
        &self,
        request: &Request,
        g: Gathered,
        d: Decision,
    ) -> Result<Short, ExecError> {
        let mut carried = Carried {
            first: Some(d.clone()),
            ..Carried::default()
        };
        let mut pending_pin = match (request, &d.plan) {
            (Request::Pin { pin }, Plan::Move(_)) => Some(self.pin_change(&g, Some(pin))?),
            (Request::Unpin, Plan::ClearPin) => Some(self.pin_change(&g, None)?),
            _ => None,
        };
        let (mut g, mut d) = (g, d);
        loop {
            // A pin (or unpin) is recorded in the first push, and the channel then follows it:
            // decide that reconcile now, on the facts as they will be once the push lands.
            let pinning = pending_pin.take();
            if let Some(change) = &pinning {
                g.facts.pin = change.pin.clone();
                g.pin_ref = change.update.new.clone();
                d = decide(&g.facts, &RECONCILE);
            }
            let mv = match d.plan.clone() {
                Plan::Move(mv) => Some(mv),
                // The pin alone: the channel already names what it pins (or, unpinned, what
                // a reconcile keeps).
                _ if pinning.is_some() => None,
                Plan::Hold | Plan::Refuse(_)
                    if !carried.moves.is_empty()
                        || carried.overtakes > 0
                        || carried.pin_recorded =>
                {
                    let first = carried.first.take().unwrap_or_else(|| d.clone());
                    let mut report = self.report(first, carried.moves, d, g);
                    if report.refusal.is_some() {
                        carried
                            .warnings
                            .extend(self.journal_refusal(request, &report));
                    }
                    report.journal_warnings = carried.warnings;
                    report.replaced_pin = carried.replaced_pin;
                    self.cache.save();
                    return Ok(Short::Done(Box::new(report)));
                }
                _ => return Ok(Short::Handover(Box::new(carried))),
            };
            if carried.moves.len() + carried.overtakes >= MAX_ROUNDS {
                return Err(self.kept_changing(carried.moves.len()));
            }
            let Some(head) = self.short_path_start(&g) else {
                return Ok(Short::Handover(Box::new(carried)));
            };
            // The artifact first: packing and uploading never hold the lock.
            let prepared = match &mv {
                Some(mv) => match self.target(&g, mv) {
                    Ok(prepared) => Some(prepared),
                    // The general path packs again under the lock and journals the failure.
                    Err(_) => return Ok(Short::Handover(Box::new(carried))),
                },
                None => None,
            };
            let intent = mv.as_ref().map(|mv| self.intent_entry(&g, &d, mv));
            let lock = self.git_lock();
            let Some((held, last)) =
                self.lock_with_intent(&lock, head.as_ref(), pinning.as_ref(), intent)?
            else {
                return Ok(Short::Handover(Box::new(carried)));
            };
            if let Some(change) = pinning {
                carried.pin_recorded = true;
                carried.replaced_pin = change.replaced;
            }
            let (Some(mv), Some(prepared)) = (mv, prepared) else {
                // Only the pin was recorded: release, and decide again (the listing beside).
                let listed = self.release_and_list(&lock, held, &last, None, &mut carried.warnings);
                (g, d) = self.observe_from(
                    &RECONCILE,
                    Prior {
                        view: listed,
                        channel: None,
                    },
                );
                continue;
            };
            let intent = last;
            let mut locked = Locked::Git {
                lock: Box::new(lock),
                held,
            };
            let outcome = self.write_fenced(&g, &d, &mv, &mut Some(&mut locked), Some(prepared));
            let Locked::Git { lock, held } = locked else {
                unreachable!("the short path holds the git lock")
            };
            let settle = |kind: EntryKind, reason: Option<String>, after| {
                let mut e = intent.entry.clone();
                e.kind = kind;
                e.intent = Some(intent.entry.seq);
                e.after = after;
                if let Some(r) = reason {
                    e.reason = r;
                }
                e.time = self.clock.now();
                e
            };
            let read_back = matches!(outcome, WriteOutcome::Moved(_, _, true));
            let listed;
            match outcome {
                WriteOutcome::Moved(applied, note, _) => {
                    carried.warnings.extend(note);
                    let mut done = settle(EntryKind::Moved, None, Some(applied.to_digest.clone()));
                    done.to_digest = Some(applied.to_digest.clone());
                    listed = self.release_and_list(
                        &lock,
                        held,
                        &intent,
                        Some(done),
                        &mut carried.warnings,
                    );
                    carried.moves.push(applied);
                }
                WriteOutcome::Overtaken { seen, error } => {
                    let e = settle(EntryKind::Abandoned, Some(error.message()), Some(seen));
                    listed =
                        self.release_and_list(&lock, held, &intent, Some(e), &mut carried.warnings);
                    if carried.moves.len() + carried.overtakes + 1 >= MAX_ROUNDS {
                        return Err(error);
                    }
                    carried.overtakes += 1;
                    carried.warnings.push(error.message());
                }
                WriteOutcome::Failed { error, abandoned } => {
                    let e = abandoned.map(|after| {
                        settle(
                            EntryKind::Abandoned,
                            Some(format!("the write did not land: {}", error.message())),
                            after,
                        )
                    });
                    self.record_and_release(&lock, held, &intent, e, &mut carried.warnings);
                    return Err(error);
                }
            }
            // Decide again on fresh facts: undo a write the world no longer allows. What the
            // channel names is the write's own read-back (a moment old, like any read); the
            // refs, the listing taken alongside the release.
            let channel = carried.moves.last().map(|m| Some(m.to_digest.clone()));
            let prior = Prior {
                view: listed,
                channel: channel.filter(|_| read_back),
            };
            (g, d) = self.observe_from(
                &Request::Reconcile {
                    force_restore: false,
                },
                prior,
            );
        }
    }

    /// Step 3: create the lock ref and append `intent` after `head`, in one atomic push — with
    /// the run's pin change, when it has one: the pin ref moves (from the value listed) and its
    /// journal record goes before the intent. Returns the lock and the last record appended.
    /// `None`: the remote had moved on (a lock appeared, the journal or the pin changed),
    /// nothing was taken.
    fn lock_with_intent(
        &self,
        lock: &GitLock<'_>,
        head: Option<&Record>,
        pin: Option<&PinChange>,
        intent: Option<Entry>,
    ) -> Result<Option<(Held, Record)>, ExecError> {
        let journal = self.journal();
        let mut appended: Vec<Record> = Vec::new();
        for entry in pin.map(|p| p.entry.clone()).into_iter().chain(intent) {
            let after = appended.last().or(head);
            let record = journal.prepare(entry, after).map_err(ExecError::from)?;
            appended.push(record);
        }
        let Some(last) = appended.last().cloned() else {
            return Ok(None);
        };
        let (commit, record) = lock.new_record().map_err(|e| self.lock_err(e))?;
        let sent = self.clock.monotonic_ms();
        let mut updates = vec![
            RefUpdate {
                refname: lock.refname.clone(),
                expected: None,
                new: Some(commit.clone()),
            },
            RefUpdate {
                refname: journal.refname.clone(),
                expected: head.map(|h| h.commit.clone()),
                new: Some(last.commit.clone()),
            },
        ];
        updates.extend(pin.map(|p| p.update.clone()));
        match self.repo.cas_refs(&updates) {
            Ok(Cas::Updated) => {}
            Ok(Cas::Conflict { .. }) => return Ok(None),
            // No answer: the push may have landed. The remote says (every ref or none).
            Err(e) => match self.repo.view(&self.config.branch) {
                Ok(v) if v.mainline_refs.get(&lock.refname) == Some(&commit) => {}
                Ok(_) => return Ok(None),
                Err(_) => return Err(e.into()),
            },
        }
        appended.iter().for_each(|r| journal.remember(r));
        Ok(Some((lock.held_from(commit, record, sent), last)))
    }

    /// The pin ref update and journal record of the run's pin (`Some`) or unpin (`None`),
    /// observed as `g`, for the first push.
    fn pin_change(&self, g: &Gathered, pin: Option<&Pin>) -> Result<PinChange, ExecError> {
        let refname = self.config.key.pin_ref();
        let expected = g.pin_ref.clone();
        Ok(match pin {
            Some(pin) => {
                let (entry, replaced) = self.pin_entry(g, pin);
                PinChange {
                    update: RefUpdate {
                        refname,
                        expected,
                        new: Some(self.pin_record(pin)?),
                    },
                    entry,
                    pin: Some(pin.clone()),
                    replaced,
                }
            }
            None => PinChange {
                update: RefUpdate {
                    refname,
                    expected,
                    new: None,
                },
                entry: self.entry(EntryKind::Unpin, "operator unpinned the channel", g),
                pin: None,
                replaced: None,
            },
        })
    }

    /// Step 5: append `outcome` after our `intent` and release the lock, in one atomic push.
    /// When that does not land: if the lock is still ours (someone appended a refusal, which
    /// needs no lock), the general way — an append that retries, then the release; if it is
    /// not (it expired and was taken over), nothing: the holder settles our intent from what
    /// the channel names, and a second settlement of the same intent would contradict it.
    /// Without an `outcome` (a pin recorded alone, `intent` its record) only the release.
    /// Returns the journal head this push left, when it is confirmed.
    fn record_and_release(
        &self,
        lock: &GitLock<'_>,
        held: Held,
        intent: &Record,
        outcome: Option<Entry>,
        warnings: &mut Vec<String>,
    ) -> Option<CommitId> {
        let release_only = outcome.is_none();
        if let Some(entry) = outcome {
            let journal = self.journal();
            let pushed = match journal.prepare(entry.clone(), Some(intent)) {
                Ok(rec) => {
                    let updates = [
                        RefUpdate {
                            refname: journal.refname.clone(),
                            expected: Some(intent.commit.clone()),
                            new: Some(rec.commit.clone()),
                        },
                        RefUpdate {
                            refname: lock.refname.clone(),
                            expected: Some(held.commit.clone()),
                            new: None,
                        },
                    ];
                    let answer = self.repo.cas_refs(&updates);
                    Some((rec, answer))
                }
                Err(_) => None,
            };
            if let Some((rec, Ok(Cas::Updated))) = &pushed {
                journal.remember(rec);
                return Some(rec.commit.clone());
            }
            // Not confirmed: the remote says whether it landed and whose the lock is.
            match self.repo.view(&self.config.branch) {
                Ok(v) => {
                    let landed = pushed.as_ref().is_some_and(|(rec, _)| {
                        v.mainline_refs.get(&journal.refname) == Some(&rec.commit)
                    });
                    if landed {
                        return None;
                    }
                    if v.mainline_refs.get(&lock.refname) != Some(&held.commit) {
                        let w = format!(
                            "the channel lock was taken over before this run recorded how its write ended; the holder settles intent #{} from what the channel names",
                            intent.entry.seq
                        );
                        tracing::warn!("{w}");
                        warnings.push(w);
                        return None;
                    }
                    self.append(entry, warnings);
                }
                Err(e) => {
                    let w = format!(
                        "could not record how the write of intent #{} ended ({e}); the next locked run settles it",
                        intent.entry.seq
                    );
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
            }
        }
        match lock.release(held) {
            Ok(_) if release_only => Some(intent.commit.clone()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("could not release the channel lock (it expires by itself): {e}");
                None
            }
        }
    }

    /// Step 5 with the re-decision's listing alongside it (parallel reads): the two are one
    /// round trip at a distance instead of two. The listing may be answered before or after
    /// the push lands; since the push moves the journal and the lock atomically, a listing
    /// that still shows our intent and our lock was answered before it, and the push's own
    /// effect (journal at the outcome, lock gone) is what a listing right after would show.
    /// A release alone (a pin recorded without a move) moves only our lock.
    /// `None` (read again) when the push was not confirmed or the listing failed.
    fn release_and_list(
        &self,
        lock: &GitLock<'_>,
        held: Held,
        intent: &Record,
        outcome: Option<Entry>,
        warnings: &mut Vec<String>,
    ) -> Option<RemoteView> {
        if !self.parallel_reads {
            self.record_and_release(lock, held, intent, outcome, warnings);
            return None;
        }
        let release_only = outcome.is_none();
        let ours = held.commit.clone();
        let (appended, listed) = std::thread::scope(|s| {
            let listing = s.spawn(|| self.repo.view(&self.config.branch));
            let appended = self.record_and_release(lock, held, intent, outcome, warnings);
            (appended, listing.join().ok().and_then(Result::ok))
        });
        let (appended, mut view) = (appended?, listed?);
        let journal_ref = self.journal().refname;
        let shows_intent = view.mainline_refs.get(&journal_ref) == Some(&intent.commit);
        let shows_lock = view.mainline_refs.get(&lock.refname) == Some(&ours);
        match (shows_intent, shows_lock) {
            // A release alone moves only our lock: gone, whenever the listing was answered.
            (_, shows_lock) if release_only => {
                if shows_lock {
                    view.mainline_refs.remove(&lock.refname);
                }
                Some(view)
            }
            (true, true) => {
                view.mainline_refs.insert(journal_ref, appended);
                view.mainline_refs.remove(&lock.refname);
                Some(view)
            }
            (false, false) => Some(view),
            // Half of an atomic push: not a state the remote can be in. Read again.
            _ => None,
        }
    }
}
