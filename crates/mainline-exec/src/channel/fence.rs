//! Fencing the channel write (DESIGN.md, "Concurrency" → "Fencing").
//!
//! The registry tag is the one thing mainline writes that has no compare-and-swap, so the lock
//! must cover every attempt of that write from its first byte to its time limit. Three rules:
//!
//! 1. **Admit only what the lease covers.** Right before each attempt (the first and every
//!    retry), [`LeaseFence::admit`] renews the lock when less than half its TTL is left, then
//!    bounds the attempt by what remains of the lease by our own monotonic clock (see
//!    `lock.rs` for why that is safe). A lost lock, or a lease too short for any attempt,
//!    refuses the attempt: no request starts that could land after another writer took over.
//! 2. **Fence the late landing of a cut-off attempt.** An attempt that ended without an answer
//!    (time limit, reset, 5xx) may still be applied by the registry later — even after a retry
//!    succeeded. So after such a write the executor holds the lock, renewing it, for one more
//!    TTL after the cut-off ([`LeaseFence::quarantine`]), then reads the channel again before it
//!    decides or writes anything else. A request that lands within that window lands while we
//!    hold the lock, and the re-decision sees it. The quarantine renews at once, so a writer
//!    that dies during it (its deadline, a kill) leaves a lock that still covers the window.
//! 3. **Say what is known.** A writer that lost its lock stops, reads the channel, and reports
//!    what it names and that an earlier attempt may still land; the next locked run settles the
//!    journal from what the channel names and re-decides.
//!
//! The guarantee, in numbers: an attempt's limit is at least the shorter of the registry's
//! request timeout and half a TTL (with less lease left the writer renews first), so a request
//! held for less than that limit plus one TTL lands while its writer still holds the lock.
//!
//! What it cannot do: a request held by something between us and the registry for longer than
//! its attempt's limit plus one TTL can still land late. Then the next locked run records the
//! change as `observed` and re-decides (S3 bounds the exposure by one reconcile interval).
//! Unlocked runs (`--lock none`) have no fence at all, and `status` says so.
//!
//! Must never: admit an attempt whose bounded duration reaches past the lease, or end a write
//! with a cut-off attempt without the quarantine (when locked).

use super::error::ExecError;
use super::exec::Locked;
use super::lock::{safety_margin_ms, LockError};
use super::ports::Clock;
use mainline_store::{FenceRefused, WriteFence};
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// The shortest attempt worth starting: a lease with less left than this is renewed first, and
/// refused when a renewal does not give more.
const MIN_ATTEMPT_MS: i64 = 500;
/// How often the quarantine re-checks its lease.
const QUARANTINE_POLL_MS: u64 = 250;

/// The fence of one channel write, over the run's lock (or none, unlocked).
pub(super) struct LeaseFence<'r, 'l> {
    locked: RefCell<Option<&'r mut Locked<'l>>>,
    clock: &'r dyn Clock,
    /// The TTL of an external lock backend (the git lock knows its own).
    external_ttl_ms: i64,
    /// When (monotonic ms) the last attempt without a definite answer ended.
    uncertain_at: Cell<Option<i64>>,
    /// Attempts admitted.
    admitted: Cell<u32>,
}

impl<'r, 'l> LeaseFence<'r, 'l> {
    pub(super) fn new(
        locked: Option<&'r mut Locked<'l>>,
        clock: &'r dyn Clock,
        external_ttl_ms: i64,
    ) -> LeaseFence<'r, 'l> {
        LeaseFence {
            locked: RefCell::new(locked),
            clock,
            external_ttl_ms,
            uncertain_at: Cell::new(None),
            admitted: Cell::new(0),
        }
    }

    /// When the last attempt without a definite answer ended, if one did.
    pub(super) fn uncertain_at(&self) -> Option<i64> {
        self.uncertain_at.get()
    }

    pub(super) fn admitted(&self) -> u32 {
        self.admitted.get()
    }

    fn ttl_ms(&self) -> Option<i64> {
        match self.locked.borrow().as_deref() {
            None => None,
            Some(Locked::Git { lock, .. }) => Some(lock.ttl_ms),
            Some(Locked::External { .. }) => Some(self.external_ttl_ms),
        }
    }

    /// Renew when less than half the lease is left (the git lock), or always (an external
    /// backend, which reports no lease of its own); returns how long the lock is still ours.
    fn refresh(&self, force: bool) -> Result<Option<i64>, String> {
        let mut slot = self.locked.borrow_mut();
        match slot.as_deref_mut() {
            None => Ok(None),
            Some(Locked::Git { lock, held }) => {
                if force || lock.remaining_ms(held) < lock.ttl_ms / 2 {
                    match lock.renew(held) {
                        Ok(()) => {}
                        // The remote did not answer, and our record is still there: the hold
                        // from the last sure renewal still counts, for what is left of it.
                        Err(LockError::Repo { .. }) if lock.remaining_ms(held) > 0 => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(Some(lock.remaining_ms(held)))
            }
            Some(Locked::External { lock, token }) => {
                let sent = self.clock.monotonic_ms();
                lock.renew(token).map_err(|e| e.to_string())?;
                let ttl = self.external_ttl_ms;
                Ok(Some(
                    sent + ttl - safety_margin_ms(ttl) - self.clock.monotonic_ms(),
                ))
            }
        }
    }

    /// Rule 2: hold the lock (renewing it) until one TTL after the last cut-off attempt, so a
    /// late landing of it happens while we still hold the lock. Unlocked: nothing to hold.
    pub(super) fn quarantine(&self) -> Result<(), ExecError> {
        let (Some(cut), Some(ttl)) = (self.uncertain_at.get(), self.ttl_ms()) else {
            return Ok(());
        };
        let until = cut + ttl;
        tracing::warn!(
            wait_ms = until - self.clock.monotonic_ms(),
            "a channel write attempt ended without an answer; holding the lock one TTL for a late landing"
        );
        // Renew at once: should this process die during the wait (its deadline, a kill), the
        // lock it leaves behind still covers one TTL after the cut-off, as others judge it.
        let mut force = true;
        loop {
            self.refresh(force).map_err(|reason| lost(&reason))?;
            force = false;
            let left = until - self.clock.monotonic_ms();
            if left <= 0 {
                return Ok(());
            }
            self.clock.sleep((left as u64).min(QUARANTINE_POLL_MS));
        }
    }
}

impl WriteFence for LeaseFence<'_, '_> {
    fn admit(&self) -> Result<Duration, FenceRefused> {
        let remaining = match self.refresh(false) {
            Ok(None) => return Ok(Duration::MAX),
            Ok(Some(ms)) => ms,
            Err(reason) => {
                return Err(FenceRefused(format!(
                    "the channel lock could not be renewed ({reason})"
                )))
            }
        };
        if remaining < MIN_ATTEMPT_MS {
            return Err(FenceRefused(format!(
                "the channel lock covers only {remaining} ms more, too little for a write attempt; raise --lock-ttl"
            )));
        }
        self.admitted.set(self.admitted.get() + 1);
        Ok(Duration::from_millis(remaining as u64))
    }

    fn note_uncertain(&self) {
        self.uncertain_at.set(Some(self.clock.monotonic_ms()));
    }
}

fn lost(reason: &str) -> ExecError {
    ExecError::FenceLost {
        reason: reason.to_owned(),
    }
}
