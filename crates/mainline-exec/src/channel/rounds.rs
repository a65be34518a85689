//! The writing part of a run (see `exec.rs`): under the lock when one is configured, settle
//! the journal, observe again, then loop — renew the lock, journal an intent, write, read back,
//! journal the move, decide again — at most `MAX_ROUNDS` times.
//!
//! Must never: write on facts read outside the lock, write after a failed renew, or report a
//! move that was not read back.

use super::effects::WriteOutcome;
use super::error::ExecError;
use super::exec::{channel_digest, pin_word, AppliedMove, Executor, Locked, Report, MAX_ROUNDS};
use super::fence::declare_external_hold;
use super::gather::Gathered;
use super::journal::{Entry, EntryKind};
use super::lock::LockError;
use mainline_core::{Decision, Plan, Request};

/// What a run did before it came here (the short path's moves, when it handed over).
#[derive(Default)]
pub(super) struct Carried {
    /// The decision on the facts as first read.
    pub first: Option<Decision>,
    pub moves: Vec<AppliedMove>,
    pub warnings: Vec<String>,
    /// Writes another writer overtook at once (they count towards `MAX_ROUNDS`).
    pub overtakes: usize,
    /// The run's pin or unpin is recorded (the short path's first push): what is left is a
    /// reconcile under it.
    pub pin_recorded: bool,
    /// The pin that the run's pin replaced.
    pub replaced_pin: Option<mainline_core::Pin>,
}

impl<'a> Executor<'a> {
    /// The writing part of a run, under the lock when one is configured. `original` is the
    /// run's request (for the journal's refusal records); `request` what to decide now (a
    /// reconcile after the short path's moves).
    pub(super) fn run_writes(
        &self,
        original: Request,
        request: Request,
        mut locked: Option<&mut Locked<'_>>,
        carried: Carried,
    ) -> Result<Report, ExecError> {
        let Carried {
            first,
            mut moves,
            mut warnings,
            mut overtakes,
            pin_recorded: _,
            mut replaced_pin,
        } = carried;
        // The first observation under the lock serves both the journal's settlement (what the
        // channel names now) and the first decision below: no second read of the same facts.
        let mut observed = Some(self.observe(&request));
        if locked.is_some() && self.journal {
            let current = observed
                .as_ref()
                .and_then(|(g, _)| channel_digest(&g.facts.channel));
            self.settle_journal(current, &mut warnings);
        }
        let mut request = request;
        let mut first = first;
        if let Request::Pin { pin } = &request {
            // The pin record goes first (even when the channel already names the digest), so
            // every later reconcile sees it; the channel follows in the loop below.
            let (g, d) = observed.take().unwrap_or_else(|| self.observe(&request));
            if matches!(d.plan, Plan::Refuse(_)) {
                let mut report = self.report(d.clone(), moves, d, g);
                warnings.extend(self.journal_refusal(&original, &report));
                report.journal_warnings = warnings;
                return Ok(report);
            }
            self.write_pin(&g, pin)?;
            let (e, replaced) = self.pin_entry(&g, pin);
            replaced_pin = replaced;
            self.append(e, &mut warnings);
            first = Some(d);
            request = Request::Reconcile {
                force_restore: false,
            };
        }
        loop {
            let (g, d) = observed.take().unwrap_or_else(|| self.observe(&request));
            let first_decision = first.get_or_insert_with(|| d.clone()).clone();
            match d.plan.clone() {
                Plan::Hold | Plan::Refuse(_) => {
                    let mut report = self.report(first_decision, moves, d, g);
                    report.replaced_pin = replaced_pin;
                    if report.refusal.is_some() {
                        warnings.extend(self.journal_refusal(&original, &report));
                    }
                    report.journal_warnings = warnings;
                    self.cache.save();
                    return Ok(report);
                }
                Plan::ClearPin => {
                    self.renew(&mut locked)?;
                    self.clear_pin(&g)?;
                    self.append(
                        self.entry(EntryKind::Unpin, "operator unpinned the channel", &g),
                        &mut warnings,
                    );
                    request = Request::Reconcile {
                        force_restore: false,
                    };
                }
                Plan::Move(mv) => {
                    if moves.len() + overtakes >= MAX_ROUNDS {
                        return Err(self.kept_changing(moves.len()));
                    }
                    // A write follows: declare the write hold now (see `fence.rs`), so the
                    // fence admits the first attempt without another renewal.
                    self.renew_for_write(&mut locked)?;
                    let intent = self.intent_entry(&g, &d, &mv);
                    // Without a recorded intent a crash would leave an unexplained move: a
                    // journal that cannot be written stops the move (except unlocked, where
                    // the journal is best effort).
                    let intent_seq = match self.journal_append(intent.clone()) {
                        Ok(seq) => seq,
                        Err(e) if locked.is_some() => return Err(e),
                        Err(e) => {
                            warnings.push(e.message());
                            None
                        }
                    };
                    let (error, abandoned, overtaken) =
                        match self.write_fenced(&g, &d, &mv, &mut locked, None) {
                            WriteOutcome::Moved(applied, note, _) => {
                                warnings.extend(note);
                                let mut done = intent;
                                done.kind = EntryKind::Moved;
                                done.intent = intent_seq;
                                done.to_digest = Some(applied.to_digest.clone());
                                done.after = Some(applied.to_digest.clone());
                                done.time = self.clock.now();
                                self.append(done, &mut warnings);
                                moves.push(applied);
                                // Re-decide on fresh facts: undo a write the world no longer allows.
                                request = Request::Reconcile {
                                    force_restore: false,
                                };
                                continue;
                            }
                            WriteOutcome::Overtaken { seen, error } => {
                                (error, Some(Some(seen)), true)
                            }
                            WriteOutcome::Failed { error, abandoned } => (error, abandoned, false),
                        };
                    if let Some(after) = abandoned {
                        let mut e = intent;
                        e.kind = EntryKind::Abandoned;
                        e.intent = intent_seq;
                        e.after = after;
                        e.reason = match overtaken {
                            true => error.message(),
                            false => format!("the write did not land: {}", error.message()),
                        };
                        e.time = self.clock.now();
                        self.append(e, &mut warnings);
                    }
                    if overtaken && moves.len() + overtakes + 1 < MAX_ROUNDS {
                        overtakes += 1;
                        warnings.push(error.message());
                        request = Request::Reconcile {
                            force_restore: false,
                        };
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The journal's record of `pin` (observed as `g`), and the pin it replaces: a second pin
    /// replaces the first, never silently — the record says whose it was.
    pub(super) fn pin_entry(
        &self,
        g: &Gathered,
        pin: &mainline_core::Pin,
    ) -> (Entry, Option<mainline_core::Pin>) {
        let replaced = g.facts.active_pin().cloned();
        let reason = match &replaced {
            Some(old) => format!(
                "{} (replaces the {} of {} by {}: {})",
                pin.reason,
                pin_word(old),
                old.digest.short(),
                old.actor,
                old.reason
            ),
            None => pin.reason.clone(),
        };
        let mut e = self.entry(EntryKind::Pin, &reason, g);
        e.to_digest = Some(pin.digest.clone());
        e.to_commit = pin.commit.clone();
        (e, replaced)
    }

    /// The error of a run that reached `MAX_ROUNDS` writes.
    pub(super) fn kept_changing(&self, moves: usize) -> ExecError {
        ExecError::KeptChanging {
            channel: self.config.channel_display(),
            moves,
        }
    }

    fn renew(&self, locked: &mut Option<&mut Locked<'_>>) -> Result<(), ExecError> {
        match locked {
            None => Ok(()),
            Some(Locked::Git { lock, held }) => lock.renew(held).map_err(|e| self.lock_err(e)),
            Some(Locked::External {
                lock,
                token,
                write_hold_until,
                ..
            }) => {
                lock.renew(token)?;
                *write_hold_until = None;
                Ok(())
            }
        }
    }

    fn renew_for_write(&self, locked: &mut Option<&mut Locked<'_>>) -> Result<(), ExecError> {
        match locked {
            None => Ok(()),
            Some(Locked::Git { lock, held }) => {
                lock.renew_for_write(held).map_err(|e| self.lock_err(e))
            }
            // The fence finds this hold and admits the first attempt without another call.
            Some(Locked::External {
                lock,
                token,
                ttl_ms,
                write_hold_until,
            }) => {
                declare_external_hold(*lock, token, *ttl_ms, write_hold_until, self.clock)?;
                Ok(())
            }
        }
    }

    /// A git lock failure, with where the lock ref is (for the way out the edge shows).
    pub(super) fn lock_err(&self, source: LockError) -> ExecError {
        ExecError::Lock {
            source: Box::new(source),
            remote: self.config.git_display.clone(),
            lock_ref: self.config.key.lock_ref(),
        }
    }
}
