//! Wall-clock time and waiting, behind a trait so the API client's rate-limit waits and token
//! expiry can be driven by a test clock.
//!
//! Invariant: the client reads the time and sleeps only through a [`Clock`]; a rate-limit wait
//! or a token refresh decision is therefore replayable with [`ManualClock`] (feature `fake`).
//! Must never: be consulted by the webhook module, which is pure.

use mainline_core::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time source and sleeper of a [`crate::GithubClient`]: the one interface, defined in the
/// core (`now` is unix milliseconds, UTC; `sleep` blocks the calling thread).
pub use mainline_core::Clock;

/// The real clock: `SystemTime` and `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system time, unix milliseconds.
    pub fn now_unix_millis(&self) -> i64 {
        self.now().millis()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    fn sleep(&self, millis: u64) {
        std::thread::sleep(Duration::from_millis(millis));
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
        ManualClock::at(SystemClock.now().millis())
    }

    /// Move the clock forward without recording a sleep.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.now_millis = s.now_millis.saturating_add(duration_millis(by));
    }

    /// The clock's reading, unix milliseconds.
    pub fn now_unix_millis(&self) -> i64 {
        self.lock().now_millis
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
    fn now(&self) -> Timestamp {
        Timestamp(self.now_unix_millis())
    }

    fn sleep(&self, millis: u64) {
        let duration = Duration::from_millis(millis);
        let mut s = self.lock();
        s.sleeps.push(duration);
        s.now_millis = s.now_millis.saturating_add(duration_millis(duration));
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A wait in whole milliseconds for [`Clock::sleep`] (rounded up: never shorter than asked).
pub(crate) fn wait_millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}
