//! Time and waiting, behind a trait, so a test can drive them with `ManualClock` (feature
//! `fake`). Two clocks: [`Clock::now`] (wall clock) stamps records people read;
//! [`Clock::monotonic_ms`] (never jumps) measures how long a Lease record stayed unchanged and
//! how long our own hold or leadership lasts — expiry is judged by it alone. The trait is
//! `mainline_core::Clock`, the executor's too, so one clock serves both.
//!
//! Network deadlines are a different thing: they bound real I/O and are `std::time::Instant`s.
//! Must never: be consulted by the pure modules (`flux::applied`, `lease::rules`), which take
//! "now" as a value.

use mainline_core::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where "now" comes from, and how to wait (between polls of a busy Lease): the one interface,
/// defined in the core.
pub use mainline_core::Clock;

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    fn monotonic_ms(&self) -> i64 {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let elapsed = ORIGIN.get_or_init(std::time::Instant::now).elapsed();
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    }

    fn sleep(&self, millis: u64) {
        std::thread::sleep(Duration::from_millis(millis));
    }
}

/// A clock that moves only when told to, or when something sleeps on it.
#[cfg(feature = "fake")]
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

#[cfg(feature = "fake")]
impl ManualClock {
    pub fn at(now: Timestamp) -> ManualClock {
        ManualClock {
            now: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(now.millis())),
        }
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(feature = "fake")]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn sleep(&self, millis: u64) {
        self.advance(Duration::from_millis(millis));
    }
}
