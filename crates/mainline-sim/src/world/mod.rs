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
//! This file is the scheduler (virtual time, the processes, the one `call`); what a history's
//! state is — actors, the agenda, the time units — is in `state`.
//!
//! Invariants: virtual time never goes backwards; exactly one process or event runs at a time;
//! the state lock is never held while a process is suspended (re-entry panics loudly).
//! Must never: read the wall clock, use OS randomness, or iterate a hash map.

mod state;

pub use state::{Actor, ActorId, Agenda, CallError, Ms, Stamp, State, EPOCH_MS, MINUTE, SECOND};

use crate::channel::cache::FactCache;
use crate::channel::ChannelConfig;
use crate::faults::Side;
use crate::scenario::Params;
use crate::{Event, Strategy};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Stack size of an actor process, in words (the executor, serde and the journal fit easily).
const STACK_WORDS: usize = 64 * 1024;

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
