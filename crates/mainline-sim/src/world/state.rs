//! What one history's state is: virtual time and its units, the actors (one per process that
//! calls the ports), the agenda of future events, and [`State`], everything mutable in a
//! history — the remote, the registry, the queue, CI, the faults and the monitor. The scheduler
//! that drives it is the parent module.
//!
//! Invariants: events due at the same millisecond run in insertion order (the agenda's
//! sequence number breaks ties), so a seed replays the same history.
//! Must never: order anything by a hash or an address, or read the wall clock.

use crate::ci::Ci;
use crate::faults::Faults;
use crate::git::Remote;
use crate::monitor::Monitor;
use crate::queue::Queue;
use crate::store::Registry;
use crate::Event;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Virtual milliseconds since the history began.
pub type Ms = i64;
pub const SECOND: Ms = 1_000;
pub const MINUTE: Ms = 60_000;

/// The unix time (ms) virtual time 0 maps to: 2024-05-01T10:00:00Z, fixed for replay.
pub const EPOCH_MS: i64 = 1_714_557_600_000;

/// An instant with a tie-break: virtual ms, and the count of state steps so far (two things
/// at the same millisecond are still ordered).
pub type Stamp = (Ms, u64);

/// An actor's index in [`State::actors`].
pub type ActorId = usize;

/// Someone who calls the ports: one CI step process, one reconcile run, the daemon, the
/// operator. A dead actor's calls fail at once and reach nothing.
#[derive(Debug)]
pub struct Actor {
    pub name: String,
    pub dead: bool,
    pub calls: u32,
    /// Dies on this call (1-based): the request may or may not reach the server.
    pub die_at: Option<u32>,
    /// Objects in this actor's git clone.
    pub local: Vec<u64>,
    /// When this actor last read the merge queue (a `view`) or, for CI glue that reads
    /// nothing, when its step started: what its decision was based on (S4).
    pub decided_at: Stamp,
    /// A ref listing not yet followed by a read of the channel tag. An executor's gather
    /// lists refs and then reads the channel; only that pair marks a decision's facts (the
    /// journal's and the lock's own listings come after the decision and do not count).
    pub pending_view: Option<Stamp>,
    /// How far this actor's wall clock is off (its runner's skew); its monotonic clock is true.
    pub skew_ms: Ms,
}

/// A call that did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The server failed (5xx, reset, timeout); the message says which.
    Failed(String),
    /// The actor died during or before this call.
    Dead,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Failed(m) => f.write_str(m),
            CallError::Dead => f.write_str("the process was killed"),
        }
    }
}

struct Scheduled {
    at: Ms,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Future events, earliest first; ties in insertion order.
#[derive(Default)]
pub struct Agenda {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

impl Agenda {
    pub fn push(&mut self, at: Ms, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }
    fn next_at(&self) -> Option<Ms> {
        self.heap.peek().map(|r| r.0.at)
    }
    pub(super) fn pop_due(&mut self, until: Ms) -> Option<(Ms, Event)> {
        if self.next_at()? > until {
            return None;
        }
        self.heap.pop().map(|r| (r.0.at, r.0.event))
    }
}

/// Everything mutable in one history.
pub struct State {
    pub git: Remote,
    pub registry: Registry,
    pub agenda: Agenda,
    pub actors: Vec<Actor>,
    pub faults: Faults,
    pub queue: Queue,
    pub ci: Ci,
    pub monitor: Monitor,
    /// The event log, when asked for (determinism test, `--trace`).
    pub log: Option<Vec<String>>,
    pub now: Ms,
    /// State steps so far: orders what happens within one millisecond.
    pub tick: u64,
}

impl State {
    pub fn add_actor(&mut self, name: String, die_at: Option<u32>, now: Ms) -> ActorId {
        let skew_ms = self.faults.skew();
        self.actors.push(Actor {
            skew_ms,
            name,
            dead: false,
            calls: 0,
            die_at,
            local: Vec::new(),
            decided_at: (now, self.tick),
            pending_view: None,
        });
        self.actors.len() - 1
    }

    /// Append a line to the event log (formatted only when logging).
    pub fn note(&mut self, line: impl FnOnce(&State) -> String) {
        if self.log.is_none() {
            return;
        }
        let (min, ms) = (self.now / 60_000, self.now % 60_000);
        let text = format!("{min:>4}:{:02}.{:03} {}", ms / 1000, ms % 1000, line(self));
        if let Some(log) = &mut self.log {
            log.push(text);
        }
    }

    pub fn at(&mut self, at: Ms, event: Event) {
        self.agenda.push(at, event);
    }
}
