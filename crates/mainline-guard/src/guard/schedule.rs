//! When channels reconcile: one loop per channel that waits for its jittered interval or a
//! trigger (webhook, API), then runs one reconcile on a blocking thread under the guard-wide
//! semaphore. So a slow or failing channel holds one permit and its own loop, never another
//! channel's turn; triggers that arrive during a run coalesce into one follow-up run.
//!
//! Invariants: at most `parallelism` reconciles run at once; runs of one channel never overlap;
//! after shutdown is signalled no new run starts, and a run already started is awaited (the
//! caller bounds that wait and then abandons it: the executor's lock expires by itself and the
//! next run settles its journal intent). Jitter comes from a seeded generator, so the same
//! seed gives the same schedule.
//! With leader election, only the leader's runs reconcile; a standby's runs are `status`
//! (read-only), so its page and metrics stay current without writing anything.
//! Must never: run the (blocking) executor on an async worker thread, or reconcile on a
//! standby.

use super::slot::Slot;
use mainline_core::Request;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// SplitMix64: a tiny seeded generator for jitter (not for anything secret).
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
    fraction: f64,
}

impl Jitter {
    pub fn new(seed: u64, fraction: f64) -> Jitter {
        Jitter {
            state: seed,
            fraction,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `base` varied by ±`fraction`.
    pub fn around(&mut self, base: Duration) -> Duration {
        let factor = 1.0 + self.fraction * (2.0 * self.unit() - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// What every channel loop shares.
pub struct Scheduler {
    pub interval: Duration,
    pub permits: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    /// Whether this replica may reconcile; a standby's passes are read-only.
    pub leader: Arc<super::leader::Leader>,
}

/// Run one request for `slot` on a blocking thread, holding the channel's run lock and one
/// permit. `None` when shutdown came first (nothing ran).
pub async fn run_blocking<T: Send + 'static>(
    slot: &Arc<Slot>,
    permits: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
    job: impl FnOnce(&Slot) -> T + Send + 'static,
) -> Option<T> {
    let _run = tokio::select! {
        g = slot.run_lock.lock() => g,
        _ = shutdown.wait_for(|s| *s) => return None,
    };
    let _permit = tokio::select! {
        p = permits.clone().acquire_owned() => p.ok()?,
        _ = shutdown.wait_for(|s| *s) => return None,
    };
    let slot = slot.clone();
    // Once started, the run is awaited even through shutdown: it finishes its step.
    match tokio::task::spawn_blocking(move || job(&slot)).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("a reconcile thread panicked: {e}");
            None
        }
    }
}

/// The loop of one channel: reconcile at once, then every jittered interval or on trigger,
/// until shutdown.
pub async fn channel_loop(slot: Arc<Slot>, sched: Arc<Scheduler>, mut jitter: Jitter) {
    let mut shutdown = sched.shutdown.clone();
    // Spread the first pass over a small window so a thousand channels do not start at once.
    let mut wait = Duration::from_millis(50).mul_f64(jitter.unit());
    loop {
        let trigger = tokio::select! {
            _ = tokio::time::sleep(wait) => "interval".to_owned(),
            _ = slot.trigger.notified() => slot.take_pending().unwrap_or_else(|| "trigger".into()),
            _ = shutdown.wait_for(|s| *s) => return,
        };
        if *shutdown.borrow() {
            return;
        }
        let leader = sched.leader.clone();
        let ran = run_blocking(&slot, &sched.permits, &mut shutdown, move |s| {
            // Leadership is checked as the run starts (after the permit): a standby's pass is
            // `status`, which reads the same facts and writes nothing.
            let (request, trigger) = if leader.may_reconcile() {
                (
                    Request::Reconcile {
                        force_restore: false,
                    },
                    trigger,
                )
            } else {
                (Request::Status, format!("{trigger} (standby: read-only)"))
            };
            // The outcome is recorded in the slot's state; nothing else needs it here.
            let _ = s.run(request, &trigger);
        })
        .await;
        if ran.is_none() {
            return;
        }
        wait = jitter.around(sched.interval);
    }
}
