//! The one `Clock` interface of mainline: where "now" comes from, and how to wait. The executor,
//! the GitHub client, the Kubernetes Lease lock and leader election, the guard and the
//! simulator all take a `&dyn Clock` / `Arc<dyn Clock>`; each runtime supplies one
//! implementation (the system clock in the adapters, a manual clock in tests, virtual time in
//! the simulator).
//!
//! This crate only defines the interface: nothing here reads a clock or sleeps, and the
//! decision functions never take a `Clock` — "now" reaches them as a [`Timestamp`] inside the
//! facts. Must never: grow a default that reads the system time or blocks the thread.

use crate::Timestamp;

/// Where "now" comes from, and how to wait.
pub trait Clock: Send + Sync {
    /// Wall-clock time: for records people read and for comparing with facts (pin expiry,
    /// token expiry, rate-limit resets).
    fn now(&self) -> Timestamp;
    /// Milliseconds on a clock that never jumps (no NTP steps), for measuring how long
    /// something took or stayed unchanged on this machine — lock leases are judged by it. Its
    /// origin is arbitrary; only differences mean anything. A virtual clock may return `now`.
    fn monotonic_ms(&self) -> i64 {
        self.now().millis()
    }
    /// Wait `millis` (lock back-off, rate-limit and retry waits). A virtual clock advances.
    fn sleep(&self, millis: u64);
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}
