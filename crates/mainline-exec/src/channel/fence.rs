//! Fencing the channel write (DESIGN.md, "Concurrency" → "Fencing").
//!
//! The registry tag is the one thing mainline writes that has no compare-and-swap, so the lock
//! must cover every attempt of that write from its first byte to the last moment it could still
//! land. Three rules:
//!
//! 1. **Declare a write hold, and admit only what it covers.** Right before each attempt (the
//!    first and every retry), [`LeaseFence::admit`] makes sure the lock record declares a write
//!    hold — twice the TTL (`lock::write_hold_ms`) — renewing it when it does not, or when what
//!    is left of it minus one TTL is under half a TTL. The attempt is then bounded by that
//!    budget: what remains of the hold by our own monotonic clock (see `lock/mod.rs` for why
//!    that is safe) minus one TTL. A lost lock, or a budget too short for any attempt, refuses
//!    the attempt: no request starts that could land after another writer took over. An
//!    external backend (a Kubernetes Lease) reports no hold of its own, so the run keeps the
//!    reckoning beside the lock (`Locked::External::write_hold_until`): the hold declared right
//!    before the intent admits the first attempt without another call, and a plain renewal,
//!    which shortens what takers see, clears it.
//! 2. **Fence the late landing of a cut-off attempt.** An attempt that ended without an answer
//!    (time limit, reset, 5xx) may still be applied by the registry later — even after a retry
//!    succeeded. The write hold already covers one TTL after the attempt's cut-off *as takers
//!    judge it*, so a landing in that window happens before anyone else can hold the lock even
//!    if this process is killed right after sending (history 580671 of `simulate --seed 1`
//!    found exactly that when the window was only the living writer's). The living writer also
//!    holds the lock until one TTL after the cut-off ([`LeaseFence::quarantine`]), then reads
//!    the channel again before it decides or writes anything else, so it sees the landing.
//! 3. **Say what is known.** A writer that lost its lock stops, reads the channel, and reports
//!    what it names and that an earlier attempt may still land; the next locked run settles the
//!    journal from what the channel names and re-decides.
//!
//! The guarantee, in numbers: an attempt's limit is at least the shorter of the registry's
//! request timeout and half a TTL, and a request held for less than that limit plus one TTL
//! lands while its writer holds the lock — alive or dead. The price: a taker that finds a
//! writer killed mid-write waits two TTLs from its first look instead of one.
//!
//! What it cannot do: a request held by something between us and the registry for longer than
//! its attempt's limit plus one TTL can still land late. Then the next locked run records the
//! change as `observed` and re-decides (S3 bounds the exposure by one reconcile interval).
//! Unlocked runs (`--lock none`) have no fence at all, and `status` says so.
//!
//! Must never: admit an attempt whose bounded duration plus one TTL reaches past the hold
//! declared to takers, or end a write with a cut-off attempt without the quarantine (when
//! locked).

use super::error::ExecError;
use super::exec::Locked;
use super::lock::{safety_margin_ms, write_hold_ms, LockError};
use super::ports::{ChannelLock, Clock, LockBackendError, LockToken};
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
    /// When (monotonic ms) the last attempt without a definite answer ended.
    uncertain_at: Cell<Option<i64>>,
    /// Attempts admitted.
    admitted: Cell<u32>,
}

impl<'r, 'l> LeaseFence<'r, 'l> {
    pub(super) fn new(
        locked: Option<&'r mut Locked<'l>>,
        clock: &'r dyn Clock,
    ) -> LeaseFence<'r, 'l> {
        LeaseFence {
            locked: RefCell::new(locked),
            clock,
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
            Some(Locked::External { ttl_ms, .. }) => Some(*ttl_ms),
        }
    }

    /// Make sure the lock declares a write hold that leaves an attempt at least half a TTL
    /// (renewing when it does not);
    /// returns the write budget: how long an attempt started now may run so that a late
    /// landing within one TTL after it still falls inside the hold.
    fn refresh(&self) -> Result<Option<i64>, String> {
        let mut slot = self.locked.borrow_mut();
        match slot.as_deref_mut() {
            None => Ok(None),
            Some(Locked::Git { lock, held }) => {
                let declared = held.record.effective_ttl_ms();
                if declared < lock.write_hold_ms() || lock.write_budget_ms(held) < lock.ttl_ms / 2 {
                    match lock.renew_for_write(held) {
                        Ok(()) => {}
                        // The remote did not answer, and our record is still there: the hold
                        // from the last sure renewal still counts, for what is left of it
                        // (a hold that is not a write hold leaves no budget).
                        Err(LockError::Repo { .. }) if lock.remaining_ms(held) > 0 => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(Some(lock.write_budget_ms(held)))
            }
            Some(Locked::External {
                lock,
                token,
                ttl_ms,
                write_hold_until,
            }) => {
                let ttl = *ttl_ms;
                let budget = |until: i64| until - ttl - self.clock.monotonic_ms();
                match *write_hold_until {
                    Some(until) if budget(until) >= ttl / 2 => Ok(Some(budget(until))),
                    _ => declare_external_hold(*lock, token, ttl, write_hold_until, self.clock)
                        .map(|until| Some(budget(until)))
                        .map_err(|e| e.to_string()),
                }
            }
        }
    }

    /// Rule 2: hold the lock until one TTL after the last cut-off attempt, so a late landing
    /// of it happens while we still hold the lock, then let the caller read the channel again.
    /// The write hold declared before the attempt already covers that window as takers judge
    /// it (a writer killed now leaves a lock that still does); the loop renews only when the
    /// hold runs short, and notices a lost lock. Unlocked: nothing to hold.
    pub(super) fn quarantine(&self) -> Result<(), ExecError> {
        let (Some(cut), Some(ttl)) = (self.uncertain_at.get(), self.ttl_ms()) else {
            return Ok(());
        };
        let until = cut + ttl;
        tracing::warn!(
            wait_ms = until - self.clock.monotonic_ms(),
            "a channel write attempt ended without an answer; holding the lock one TTL for a late landing"
        );
        loop {
            self.refresh().map_err(|reason| lost(&reason))?;
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
        let remaining = match self.refresh() {
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
                "the channel lock's write hold leaves only {remaining} ms for a write attempt (after one TTL kept for a late landing), too little; raise --lock-ttl"
            )));
        }
        self.admitted.set(self.admitted.get() + 1);
        Ok(Duration::from_millis(remaining as u64))
    }

    fn note_uncertain(&self) {
        self.uncertain_at.set(Some(self.clock.monotonic_ms()));
    }
}

/// Declare a write hold on an external backend (a Lease whose duration is two TTLs) and
/// remember until when it is ours: the backend reports no hold of its own, so the run keeps
/// the reckoning, from before the call was sent. Returns that instant (monotonic ms).
pub(super) fn declare_external_hold(
    lock: &dyn ChannelLock,
    token: &mut LockToken,
    ttl_ms: i64,
    write_hold_until: &mut Option<i64>,
    clock: &dyn Clock,
) -> Result<i64, LockBackendError> {
    let hold = write_hold_ms(ttl_ms);
    let sent = clock.monotonic_ms();
    // Forgotten while the call is out: after a failure the next attempt declares again.
    *write_hold_until = None;
    lock.renew_for(token, Duration::from_millis(hold.max(0) as u64))?;
    let until = sent + hold - safety_margin_ms(hold);
    *write_hold_until = Some(until);
    Ok(until)
}

fn lost(reason: &str) -> ExecError {
    ExecError::FenceLost {
        reason: reason.to_owned(),
    }
}
