//! Wall-clock time and waiting, behind a trait so the API client's rate-limit waits and token
//! expiry can be driven by a test clock.
//!
//! Invariant: the client reads the time and sleeps only through a [`Clock`]; a rate-limit wait
//! or a token refresh decision is therefore replayable with [`ManualClock`] (feature `fake`).
//! Must never: be consulted by the webhook module, which is pure.

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time source and sleeper of a [`crate::GithubClient`].
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the unix epoch, UTC.
    fn now_unix_millis(&self) -> i64;
    /// Block the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The real clock: `SystemTime` and `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_millis(&self) -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that only moves when told to (or when something sleeps on it), and records every
/// sleep, so tests assert the exact waits without waiting.
#[cfg(feature = "fake")]
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: std::sync::Arc<std::sync::Mutex<ManualState>>,
}

#[cfg(feature = "fake")]
#[derive(Debug)]
struct ManualState {
    now_millis: i64,
    sleeps: Vec<Duration>,
}

#[cfg(feature = "fake")]
impl ManualClock {
    /// A clock reading `now_unix_millis`.
    pub fn at(now_unix_millis: i64) -> ManualClock {
        ManualClock {
            inner: std::sync::Arc::new(std::sync::Mutex::new(ManualState {
                now_millis: now_unix_millis,
                sleeps: Vec::new(),
            })),
        }
    }

    /// A clock starting at the real current time (the fake GitHub stamps real times).
    pub fn starting_now() -> ManualClock {
        ManualClock::at(SystemClock.now_unix_millis())
    }

    /// Move the clock forward without recording a sleep.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.now_millis = s.now_millis.saturating_add(duration_millis(by));
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panic while holding this lock can only come from a failing test; keep the state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(feature = "fake")]
impl Clock for ManualClock {
    fn now_unix_millis(&self) -> i64 {
        self.lock().now_millis
    }

    fn sleep(&self, duration: Duration) {
        let mut s = self.lock();
        s.sleeps.push(duration);
        s.now_millis = s.now_millis.saturating_add(duration_millis(duration));
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
