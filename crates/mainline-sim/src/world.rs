//! One history's world: virtual time, the agenda of future events, every actor's state, the
//! actors' processes, and the one place where an actor's call to the registry or the git
//! remote happens.
//!
//! Interleaving model. Every actor step that talks to the outside (a CI step, a reconcile run,
//! an operator command — each calling the real `Executor::run` or the CI glue) runs as its own
//! process: a stackful coroutine (the `generator` crate, as loom uses it). Each call through a
//! port ([`World::call`]) and each `Clock::sleep` suspends the process for its latency in
//! virtual time; the scheduler resumes processes and runs world events (merge-queue moves) in
//! (time, insertion) order, one at a time on one thread. So between any two calls of one actor
//! any number of other actors' calls and world events can happen: a group ends between a
//! deploy's read and its write, two writers read then both write (the lost update), a lock
//! holder renews while a waiter sleeps. What is not produced: interleavings *inside* one call
//! (a registry PUT or a ref CAS is atomic at its instant, as on the real servers), and local
//! git reads (ancestry, trees) take no time.
//!
//! Invariants: virtual time never goes backwards; exactly one process or event runs at a time;
//! the state lock is never held while a process is suspended (re-entry panics loudly).
//! Must never: read the wall clock, use OS randomness, or iterate a hash map.

use super::ci::Ci;
use super::faults::{Faults, Side};
use super::git::Remote;
use super::monitor::Monitor;
use super::queue::Queue;
use super::scenario::Params;
use super::store::Registry;
use super::{Event, Strategy};
use crate::channel::cache::FactCache;
use crate::channel::ChannelConfig;
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Virtual milliseconds since the history began.
pub type Ms = i64;
pub const SECOND: Ms = 1_000;
pub const MINUTE: Ms = 60_000;

/// Stack size of an actor process, in words (the executor, serde and the journal fit easily).
const STACK_WORDS: usize = 64 * 1024;

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
    fn pop_due(&mut self, until: Ms) -> Option<(Ms, Event)> {
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

/// One history: parameters, the channel configuration, virtual time and the state.
pub struct World {
    pub params: Params,
    pub strategy: Strategy,
    pub config: ChannelConfig,
    /// The daemon's fact cache (it lives as long as the daemon process).
    pub daemon_cache: FactCache,
    now: AtomicI64,
    /// The process being resumed (processes never nest).
    current: AtomicUsize,
    procs: Mutex<Procs>,
    state: Mutex<State>,
}

type Process = generator::Generator<'static, (), ()>;
type Task = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The task the worker about to be resumed is to run (one process runs at a time on a
    /// thread, so one slot suffices).
    static NEXT_TASK: RefCell<Option<Task>> = const { RefCell::new(None) };
    /// Set by a worker that finished its task and parked; read (and cleared) by `resume`.
    static PARKED: Cell<bool> = const { Cell::new(false) };
    /// Parked workers left over from earlier histories on this thread. A coroutine stack is an
    /// mmap with a guard page, and a fresh one faults in every page it touches; reusing them
    /// across histories saves that on every history.
    static POOL: RefCell<Vec<Process>> = const { RefCell::new(Vec::new()) };
}

/// Parked workers kept per thread between histories.
const POOL_MAX: usize = 32;

/// A worker: runs each task it is handed, parks between tasks, and ends when resumed with none.
/// It refers to no history, so one history's workers serve the next.
fn new_worker() -> Process {
    generator::Gn::<()>::new_opt(STACK_WORDS, || loop {
        let Some(task) = NEXT_TASK.with(|t| t.borrow_mut().take()) else {
            return;
        };
        task();
        PARKED.with(|p| p.set(true));
        #[allow(deprecated)] // see `World::wait`
        generator::yield_with(());
    })
}

/// This history's worker coroutines (borrowed from the thread's pool, returned at the end).
#[derive(Default)]
struct Procs {
    /// The coroutines (taken out while one runs).
    gens: Vec<Option<Process>>,
    /// Parked workers, ready for a task.
    idle: Vec<usize>,
}

impl World {
    pub fn new(
        params: Params,
        strategy: Strategy,
        config: ChannelConfig,
        state: State,
        daemon_cache: FactCache,
    ) -> World {
        // A history that panicked on this thread may have left a task or a flag behind.
        NEXT_TASK.with(|t| t.borrow_mut().take());
        PARKED.with(|p| p.set(false));
        World {
            params,
            strategy,
            config,
            daemon_cache,
            now: AtomicI64::new(0),
            current: AtomicUsize::new(usize::MAX),
            procs: Mutex::new(Procs::default()),
            state: Mutex::new(state),
        }
    }

    pub fn now(&self) -> Ms {
        self.now.load(Ordering::Relaxed)
    }

    fn advance_to(&self, t: Ms) {
        if t > self.now() {
            self.now.store(t, Ordering::Relaxed);
        }
    }

    /// Run `f` on the state. Never call `with` (or anything that waits) inside `f`.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard: MutexGuard<'_, State> = self
            .state
            .try_lock()
            .expect("sim state re-entered: a `with` closure waited or nested (simulator bug)");
        guard.now = self.now();
        guard.tick += 1;
        f(&mut guard)
    }

    /// Let `ms` of virtual time pass. Inside a process: suspend it until then (everything due
    /// meanwhile runs). Outside one (setup code): run what is due inline.
    pub fn wait(self: &Arc<Self>, ms: Ms) {
        let until = self.now() + ms.max(0);
        if generator::is_generator() {
            let me = self.current.load(Ordering::Relaxed);
            self.with(|s| s.agenda.push(until, Event::Resume(me)));
            // The "scope" API the crate now prefers needs its handle at the yield site, which
            // is deep inside the executor's port calls; the free function (as loom uses it)
            // yields the current coroutine from anywhere.
            #[allow(deprecated)]
            generator::yield_with(());
        } else {
            self.run_until(until);
            self.advance_to(until);
        }
    }

    /// The workers' table. Like `with`: never held across a resume (re-entry panics).
    fn procs(&self) -> MutexGuard<'_, Procs> {
        self.procs
            .try_lock()
            .expect("sim workers re-entered: a guard was held across a resume (simulator bug)")
    }

    /// Start `body` as a new process, running it now until its first wait.
    pub fn spawn(self: &Arc<Self>, body: impl FnOnce() + Send + 'static) {
        let parked = self.procs().idle.pop();
        let id = match parked {
            Some(id) => id,
            None => {
                let worker = POOL
                    .with(|p| p.borrow_mut().pop())
                    .unwrap_or_else(new_worker);
                let mut p = self.procs();
                p.gens.push(Some(worker));
                p.gens.len() - 1
            }
        };
        NEXT_TASK.with(|t| *t.borrow_mut() = Some(Box::new(body)));
        self.resume(id);
    }

    fn resume(&self, p: usize) {
        let taken = self.procs().gens.get_mut(p).and_then(Option::take);
        let Some(mut process) = taken else {
            return;
        };
        PARKED.with(|f| f.set(false));
        self.current.store(p, Ordering::Relaxed);
        process.resume();
        self.current.store(usize::MAX, Ordering::Relaxed);
        let parked = PARKED.with(|f| f.replace(false));
        if !process.is_done() {
            let mut procs = self.procs();
            procs.gens[p] = Some(process);
            if parked {
                procs.idle.push(p);
            }
        }
    }

    /// Some process is in the middle of a task.
    fn busy(&self) -> bool {
        let p = self.procs();
        (0..p.gens.len()).any(|i| p.gens[i].is_some() && !p.idle.contains(&i))
    }

    /// Run every event due by `until`, in order.
    pub fn run_until(self: &Arc<Self>, until: Ms) {
        while let Some((at, event)) = self.with(|s| s.agenda.pop_due(until)) {
            self.advance_to(at);
            match event {
                Event::Resume(p) => self.resume(p),
                other => super::dispatch(self, other),
            }
        }
    }

    /// The history is over: let the processes still running finish their calls (no new
    /// events start), then stop the parked workers, so no coroutine is dropped half-way.
    pub fn drain(self: &Arc<Self>) {
        while self.busy() {
            let Some((at, event)) = self.with(|s| s.agenda.pop_due(Ms::MAX)) else {
                break;
            };
            if let Event::Resume(p) = event {
                self.advance_to(at);
                self.resume(p);
            }
        }
        // Parked workers go back to the thread's pool for the next history; beyond the pool's
        // size they are resumed with no task and return.
        let idle = std::mem::take(&mut self.procs().idle);
        for id in idle {
            let Some(mut worker) = self.procs().gens[id].take() else {
                continue;
            };
            if POOL.with(|p| p.borrow().len() >= POOL_MAX) {
                NEXT_TASK.with(|t| t.borrow_mut().take());
                worker.resume(); // no task: the worker returns
            } else {
                POOL.with(|p| p.borrow_mut().push(worker));
            }
        }
    }

    /// One call by `actor` to the registry or the git remote: wait its latency (the world
    /// moves meanwhile), then act at one instant. `write` calls may be applied and still
    /// answer with an error (a lost response). `op` runs under the state lock.
    pub fn call<T>(
        self: &Arc<Self>,
        actor: ActorId,
        side: Side,
        write: bool,
        op: impl FnOnce(&mut State) -> T,
    ) -> Result<T, CallError> {
        let gate = self.with(|s| {
            let now = s.now;
            let a = &mut s.actors[actor];
            if a.dead {
                return None;
            }
            a.calls += 1;
            let dies = a.die_at == Some(a.calls);
            let gate = s.faults.gate(side, write, dies, now);
            if dies {
                s.actors[actor].dead = true;
                let name = s.actors[actor].name.clone();
                s.note(|_| format!("{name}: killed during a call to {side}"));
            }
            Some(gate)
        });
        let Some(gate) = gate else {
            return Err(CallError::Dead);
        };
        self.wait(gate.latency);
        let value = if gate.apply {
            Some(self.with(op))
        } else {
            None
        };
        match (gate.error, value) {
            (Some(e), _) => Err(e),
            (None, Some(v)) => Ok(v),
            (None, None) => Err(CallError::Failed("request not sent".into())),
        }
    }
}
