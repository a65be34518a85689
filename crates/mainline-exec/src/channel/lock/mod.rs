//! The channel lock: a compare-and-swap on a git ref, `refs/mainline/lock/<channel key>`, on the
//! source remote — a system every writer already reaches. (A registry tag cannot be a lock: the
//! distribution API has no conditional PUT.)
//!
//! The ref points at a record commit naming the holder, a nonce and the holder's TTL. Acquire:
//! create the ref from "absent", or take it over from a holder whose record this process has
//! watched stay unchanged for that TTL, by swapping from the exact commit that was read. Renew:
//! swap from our own record to a fresh one. Release: delete from our own record. Every step is
//! a CAS, so of several writers exactly one wins; a holder whose renew fails (someone took over)
//! has lost the lock and must stop before writing.
//!
//! **Time.** Expiry is judged only by locally observed, monotonic time since the record last
//! changed (as client-go's leader election judges a Lease) — never by comparing the holder's
//! clock, written in the record, with ours. So a holder whose clock is hours ahead cannot freeze
//! the channel, and a taker whose clock is fast cannot steal a live lock. The TTL a record
//! declares is capped at [`MAX_DECLARED_TTL_MS`]. The price: a new process that finds a dead
//! holder's record waits one declared TTL from its first look, however old the record is.
//!
//! **Fencing.** A lease is not a fence by itself: a write that stalls can land after the lease
//! ran out. So the holder computes how long it still holds the lock from *its own* send time of
//! the last successful acquire or renew: `valid_until = sent + TTL − margin`. Any taker starts
//! its TTL at a later moment (it cannot observe our record before we sent it), so while our
//! monotonic clock is before `valid_until`, nobody else can hold the lock. The executor admits
//! a registry write attempt only when the attempt's whole bounded duration fits before
//! `valid_until` (renewing first when it does not); see `exec::LeaseFence`.
//!
//! Must never: take over a lock before observing it unchanged for its (capped) TTL, trust a
//! remote clock, write (or let the executor write) after a failed renew, or treat an
//! unreadable lock record as free.

mod record;

pub use record::{
    default_wait_ms, safety_margin_ms, write_hold_ms, LockRecord, DEFAULT_TTL_MS,
    MAX_DECLARED_TTL_MS, MAX_TTL_MS, MIN_TTL_MS,
};

use super::ports::{Cas, Clock, Repo, RepoError};
use super::refs::ChannelKey;
use mainline_core::{CommitId, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock {refname}: {source}")]
    Repo {
        refname: String,
        #[source]
        source: RepoError,
    },
    #[error("lock {refname} is held by {holder}: its record stayed unchanged for {unchanged_ms} ms of its {ttl_ms} ms TTL while this run watched; gave up waiting after {waited_ms} ms")]
    Busy {
        refname: String,
        holder: String,
        /// By the holder's clock (shown, never compared).
        expires_at: Timestamp,
        waited_ms: u64,
        /// How long this process saw the record unchanged.
        unchanged_ms: i64,
        /// The record's (capped) TTL: the takeover comes after this much unchanged time.
        ttl_ms: i64,
    },
    #[error("lock {refname} was lost: another writer took it over after it expired")]
    Lost { refname: String },
    #[error(
        "lock {refname} points at an unreadable record ({reason}); delete the ref if it is stale"
    )]
    Unreadable { refname: String, reason: String },
}

/// The lock while held: the record commit we own, and until when (by our monotonic clock,
/// [`Clock::monotonic_ms`]) nobody else can hold it.
#[derive(Debug, Clone)]
pub struct Held {
    pub commit: CommitId,
    pub record: LockRecord,
    /// Our send time of the acquire/renew that wrote `commit`, plus TTL, minus the margin.
    pub valid_until_ms: i64,
}

/// The lock of one channel.
pub struct GitLock<'a> {
    pub repo: &'a dyn Repo,
    pub clock: &'a dyn Clock,
    pub refname: String,
    pub branch: String,
    pub holder: String,
    /// How long a holder may go without renewing.
    pub ttl_ms: i64,
    /// How long `acquire` waits for a live holder before giving up.
    pub wait_ms: u64,
    /// The record this process last saw and when it first saw it (monotonic ms): the clock a
    /// takeover is judged by.
    seen: std::sync::Mutex<Option<(CommitId, i64)>>,
}

impl<'a> GitLock<'a> {
    pub fn new(
        repo: &'a dyn Repo,
        clock: &'a dyn Clock,
        key: &ChannelKey,
        branch: &str,
        holder: &str,
    ) -> GitLock<'a> {
        GitLock {
            repo,
            clock,
            refname: key.lock_ref(),
            branch: branch.to_owned(),
            holder: holder.to_owned(),
            ttl_ms: DEFAULT_TTL_MS,
            wait_ms: default_wait_ms(DEFAULT_TTL_MS),
            seen: std::sync::Mutex::new(None),
        }
    }

    /// How long this process has seen `commit` as the lock record, unchanged (0 the first time).
    fn unchanged_for(&self, commit: &CommitId, now_ms: i64) -> i64 {
        let mut seen = self
            .seen
            .lock()
            .expect("the observation slot is never poisoned");
        match &*seen {
            Some((c, since)) if c == commit => now_ms - since,
            _ => {
                *seen = Some((commit.clone(), now_ms));
                0
            }
        }
    }

    /// Until when (monotonic ms) a hold declaring `declared_ms`, written by a request sent at
    /// `sent_ms`, is ours alone.
    fn valid_until(sent_ms: i64, declared_ms: i64) -> i64 {
        sent_ms + declared_ms - safety_margin_ms(declared_ms)
    }

    /// The TTL a write hold of this lock declares ([`write_hold_ms`]).
    pub fn write_hold_ms(&self) -> i64 {
        write_hold_ms(self.ttl_ms)
    }

    /// How long a registry write attempt started now may run so that a late landing of it
    /// (within one TTL after its cut-off) still falls inside `held`: what is left of the hold
    /// minus one TTL. Negative for anything but a fresh write hold.
    pub fn write_budget_ms(&self, held: &Held) -> i64 {
        self.remaining_ms(held) - self.ttl_ms
    }

    /// How long `held` is still ours alone, by our monotonic clock (negative: not any more).
    pub fn remaining_ms(&self, held: &Held) -> i64 {
        held.valid_until_ms - self.clock.monotonic_ms()
    }

    fn err(&self, source: RepoError) -> LockError {
        LockError::Repo {
            refname: self.refname.clone(),
            source,
        }
    }

    /// The current holder, if any (whether it is still live is for `acquire` to judge, by
    /// watching the record).
    ///
    /// The ref is listed, then its record fetched; a holder may release or renew in between,
    /// which makes the listed commit unfetchable. That is a changed lock, not an error: list
    /// again (a few times, then report).
    pub fn current(&self) -> Result<Option<Held>, LockError> {
        let mut attempts = 0;
        loop {
            let view = self.repo.view(&self.branch).map_err(|e| self.err(e))?;
            let Some(commit) = view.mainline_refs.get(&self.refname).cloned() else {
                return Ok(None);
            };
            let message = match self.repo.read_record(&self.refname, &commit) {
                Ok(m) => m,
                Err(RepoError::CommitNotFound { .. }) if attempts < 8 => {
                    attempts += 1;
                    self.clock.sleep(10 * attempts);
                    continue;
                }
                Err(e) => return Err(self.err(e)),
            };
            let record = LockRecord::parse(&message).map_err(|reason| LockError::Unreadable {
                refname: self.refname.clone(),
                reason,
            })?;
            // A record read from the remote is ours to hold only through acquire/renew.
            return Ok(Some(Held {
                commit,
                record,
                valid_until_ms: i64::MIN,
            }));
        }
    }

    /// [`GitLock::current`] from a listing already made (`listed`: the lock ref's value in
    /// it): no second listing. A record gone since (released, renewed) is listed again.
    pub fn current_listed(&self, listed: Option<&CommitId>) -> Result<Option<Held>, LockError> {
        let Some(commit) = listed else {
            return Ok(None);
        };
        let message = match self.repo.read_record(&self.refname, commit) {
            Ok(m) => m,
            Err(RepoError::CommitNotFound { .. }) => return self.current(),
            Err(e) => return Err(self.err(e)),
        };
        let record = LockRecord::parse(&message).map_err(|reason| LockError::Unreadable {
            refname: self.refname.clone(),
            reason,
        })?;
        Ok(Some(Held {
            commit: commit.clone(),
            record,
            valid_until_ms: i64::MIN,
        }))
    }

    fn record(&self, acquired_at: Timestamp, declared_ms: i64) -> LockRecord {
        let now = self.clock.now();
        LockRecord {
            holder: self.holder.clone(),
            nonce: nonce(now),
            acquired_at,
            expires_at: now.plus_millis(declared_ms),
            ttl_ms: Some(declared_ms),
        }
    }

    /// A fresh record of ours declaring a write hold, written locally but not pushed: for a
    /// caller that creates the lock ref in one push with other refs and writes the registry
    /// right after (`short.rs`), then calls [`GitLock::held_from`].
    pub fn new_record(&self) -> Result<(CommitId, LockRecord), LockError> {
        let record = self.record(self.clock.now(), self.write_hold_ms());
        let commit = self
            .repo
            .write_record(&record.message(), &[], record.acquired_at)
            .map_err(|e| self.err(e))?;
        Ok((commit, record))
    }

    /// The hold a push of `commit` (sent at `sent_ms`, monotonic) gave, once the remote
    /// accepted it: the same reckoning as [`GitLock::acquire`].
    pub fn held_from(&self, commit: CommitId, record: LockRecord, sent_ms: i64) -> Held {
        let declared = record.effective_ttl_ms();
        Held {
            commit,
            record,
            valid_until_ms: Self::valid_until(sent_ms, declared),
        }
    }

    /// Take the lock: create it, or take it over once this process has seen the holder's
    /// record unchanged for the record's TTL; wait (polling) while a live holder has it, up to
    /// `wait_ms`.
    ///
    /// A read that fails while this process is already watching a holder's record (the remote
    /// answered before: a 503, a time-out) does not end the wait: it is read again after the
    /// next pause, until `wait_ms` is spent. The watch keeps its start — seeing the same record
    /// commit again proves nobody renewed in between (every renewal writes a new commit). A
    /// holder's two-TTL write hold means many polls; giving up on the first failed one let a
    /// flaky remote starve every writer in turn (`simulate --seed 1 --history 420209`). The
    /// first read of a run still fails at once: an unreachable remote is reported, not waited on.
    ///
    /// A take that gets no answer is settled by reading the lock: our record there means we
    /// hold it (from when the take was sent); anything else means it did not land, and the
    /// loop looks again while the wait lasts. Ending the run instead left a landed take as a
    /// lock nobody held, which every other writer then had to wait out.
    pub fn acquire(&self) -> Result<Held, LockError> {
        let start = self.clock.monotonic_ms();
        let waited_ms = || (self.clock.monotonic_ms() - start).max(0) as u64;
        let mut pause = 50u64;
        loop {
            let current = match self.current() {
                Ok(c) => c,
                Err(e @ LockError::Repo { .. }) => {
                    let watching = self
                        .seen
                        .lock()
                        .expect("the observation slot is never poisoned")
                        .is_some();
                    let waited = waited_ms();
                    if !watching || waited >= self.wait_ms {
                        return Err(e);
                    }
                    tracing::debug!(
                        "reading the lock failed while waiting for its holder ({e}); reading again"
                    );
                    self.clock.sleep(pause.min((self.wait_ms - waited).max(1)));
                    pause = (pause * 2).min(1_000);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let now = self.clock.monotonic_ms();
            let expected = match &current {
                None => None,
                Some(h) => {
                    let ttl = h.record.effective_ttl_ms();
                    let unchanged = self.unchanged_for(&h.commit, now);
                    if unchanged >= ttl {
                        Some(h.commit.clone())
                    } else {
                        let waited = (now - start).max(0) as u64;
                        if waited >= self.wait_ms {
                            return Err(LockError::Busy {
                                refname: self.refname.clone(),
                                holder: h.record.holder.clone(),
                                expires_at: h.record.expires_at,
                                waited_ms: waited,
                                unchanged_ms: unchanged,
                                ttl_ms: ttl,
                            });
                        }
                        let until_takeover = (ttl - unchanged).max(1) as u64;
                        let until_give_up = (self.wait_ms - waited).max(1);
                        self.clock
                            .sleep(pause.min(until_takeover).min(until_give_up));
                        pause = (pause * 2).min(1_000);
                        continue;
                    }
                }
            };
            let sent = self.clock.monotonic_ms();
            let record = self.record(self.clock.now(), self.ttl_ms);
            let commit = self
                .repo
                .write_record(&record.message(), &[], record.acquired_at)
                .map_err(|e| self.err(e))?;
            let outcome = match self
                .repo
                .cas_ref(&self.refname, expected.as_ref(), Some(&commit))
            {
                Ok(cas) => cas,
                // No answer (a lost response, a 503 after retries): the take may have landed
                // or not. The remote says which: ours (held from `sent`, as if answered), or
                // anything else (not taken: look again, as after a conflict, while the wait
                // lasts). An unreadable remote ends the wait with the push's error.
                Err(e) => {
                    let waited = waited_ms();
                    match self.current() {
                        Ok(Some(h)) if h.commit == commit => Cas::Updated,
                        Ok(other) if waited < self.wait_ms => {
                            tracing::debug!("taking the lock got no answer ({e}); looking again");
                            Cas::Conflict {
                                actual: other.map(|h| h.commit),
                            }
                        }
                        _ => return Err(self.err(e)),
                    }
                }
            };
            match outcome {
                Cas::Updated => {
                    return Ok(Held {
                        commit,
                        record,
                        valid_until_ms: Self::valid_until(sent, self.ttl_ms),
                    })
                }
                Cas::Conflict { .. } => self.clock.sleep(pause.min(200)),
            }
        }
    }

    /// Extend our hold by one TTL. Fails with `Lost` when someone else's record is there now:
    /// the caller must stop before writing anything.
    pub fn renew(&self, held: &mut Held) -> Result<(), LockError> {
        self.renew_declaring(held, self.ttl_ms)
    }

    /// Extend our hold by a write hold ([`write_hold_ms`]): what a holder declares before it
    /// writes the registry. Fails like [`GitLock::renew`].
    pub fn renew_for_write(&self, held: &mut Held) -> Result<(), LockError> {
        self.renew_declaring(held, self.write_hold_ms())
    }

    fn renew_declaring(&self, held: &mut Held, declared_ms: i64) -> Result<(), LockError> {
        let sent = self.clock.monotonic_ms();
        let record = self.record(held.record.acquired_at, declared_ms);
        let commit = self
            .repo
            .write_record(&record.message(), &[], self.clock.now())
            .map_err(|e| self.err(e))?;
        let outcome = match self
            .repo
            .cas_ref(&self.refname, Some(&held.commit), Some(&commit))
        {
            Ok(cas) => cas,
            // No answer: the swap may have landed or not. The remote says which; our hold is
            // unchanged either way until we know (its validity runs from the last sure renewal).
            Err(e) => match self.current() {
                Ok(Some(h)) if h.commit == commit => Cas::Updated,
                Ok(Some(h)) if h.commit == held.commit => return Err(self.err(e)),
                Ok(other) => Cas::Conflict {
                    actual: other.map(|h| h.commit),
                },
                Err(_) => return Err(self.err(e)),
            },
        };
        match outcome {
            Cas::Updated => {
                *held = Held {
                    commit,
                    record,
                    valid_until_ms: Self::valid_until(sent, declared_ms),
                };
                Ok(())
            }
            Cas::Conflict { .. } => Err(LockError::Lost {
                refname: self.refname.clone(),
            }),
        }
    }

    /// Give the lock back (only if it is still ours; a conflict means it already was not).
    pub fn release(&self, held: Held) -> Result<(), LockError> {
        self.repo
            .cas_ref(&self.refname, Some(&held.commit), None)
            .map_err(|e| self.err(e))
            .map(|_| ())
    }
}

/// A nonce from the time and the process: unique enough to tell two runs apart.
fn nonce(now: Timestamp) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now.millis(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
