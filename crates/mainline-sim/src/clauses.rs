//! The two clauses that say what the lock and the gate are worth (DESIGN.md "The invariant"):
//!
//! - **S5 — no lost update.** Checked at every channel write: if the channel named the head of
//!   a group still in flight, the new artifact must contain that head. Moving the channel
//!   backwards along the queue (to an older group's head while a newer one is live) is the
//!   same violation, named as such. Operator pins aside: while a pin is active nothing here is
//!   counted (the operator said what prod runs), nor is a write its writer decided under the
//!   pin or in the pin-skew window after its expiry that the network held and landed later
//!   (a `pin_skew_writes` write: judged by when it was decided, as the README says; the
//!   simulator found one landing 83 s late, `simulate --seed 1 --history 367343`).
//! - **G — the gate is real.** A group's window opens when its run's deploy step returns
//!   successfully and closes when its checks conclude. The group counts as gated only if,
//!   throughout the window, the channel named its head or a newer group containing it. A
//!   merged group whose window broke is a G violation (its run claimed a gate that did not
//!   hold) and does not count as gated for `keeps_premerge_gate`. Windows spent under an
//!   operator pin are not judged (the pin is explicit and visible), nor is a window that a
//!   write under the pin ended — including a write in the pin-skew window just after the
//!   pin's expiry by a runner whose clock still saw it active (`pin_skew_writes`; README,
//!   "Pin expiry is the one absolute time").
//!
//! Must never: consult what an actor believes, or excuse a write because of when its writer
//! decided — a lost update is lost whatever the writer saw — except the one documented case
//! above: the world's pin (active, or within the skew window) at the world time it decided.

use super::monitor::{
    cause_now, pinned_for_observed_write, pinned_write, violation, Cause, Invariant, Violation,
};
use super::queue::End;
use super::world::{ActorId, State};
use mainline_core::Clause;

/// The live group whose head is `c`, if any.
fn live_group(s: &State, c: usize) -> Option<usize> {
    s.queue
        .in_flight
        .iter()
        .copied()
        .find(|&g| s.queue.groups[g].head == c)
}

/// S5: `actor` moved the channel from `before` to `after` (commits, as object indices).
pub fn check_lost_update(
    s: &mut State,
    actor: ActorId,
    before: Option<usize>,
    after: Option<usize>,
) {
    let Some(b) = before else { return };
    let Some(gb) = live_group(s, b) else { return };
    let decided = s.actors[actor].decided_at.0;
    if after.is_some_and(|c| s.git.is_ancestor(b, c)) || pinned_write(s, decided) {
        return;
    }
    let older = after
        .and_then(|c| live_group(s, c))
        .filter(|&g| s.queue.groups[g].serial < s.queue.groups[gb].serial);
    let name = s.actors[actor].name.clone();
    let to = after.map_or_else(
        || "an unknown commit".to_owned(),
        |c| s.git.id(c).short().to_owned(),
    );
    let detail = match older {
        Some(g) => format!(
            "{name} moved the channel backwards along the queue: from group {gb}, in flight, \
             to older group {g} ({to})"
        ),
        None => format!(
            "{name} replaced group {gb}'s candidate, in flight, with {to}, which does not \
             contain it"
        ),
    };
    let mut cause = cause_now(s, after);
    cause.writer = name;
    cause.overwrote_live_group = true;
    violation(s, Invariant::S5, detail, cause);
}

/// G: the channel now names `c`; break the window of every deployed group it does not contain.
pub fn check_gates(s: &mut State, c: Option<usize>) {
    let pinned = pinned_for_observed_write(s);
    let now = s.now;
    for k in 0..s.queue.in_flight.len() {
        let g = s.queue.in_flight[k];
        let grp = &s.queue.groups[g];
        if !grp.deployed || grp.passed || grp.gate_broken.is_some() || grp.gate_pinned {
            continue;
        }
        if c.is_some_and(|c| s.git.is_ancestor(grp.head, c)) {
            continue;
        }
        if pinned {
            // The pin (or a runner that, by its own clock, still saw it) took the channel off
            // this candidate: the operator's explicit choice, not a gate mainline claimed.
            s.queue.groups[g].gate_pinned = true;
            s.note(|_| {
                format!("group {g}: the channel left its candidate under the pin; its window is not judged")
            });
            continue;
        }
        let cause = cause_now(s, c);
        let writer = cause.writer.clone();
        s.queue.groups[g].gate_broken = Some((now, cause));
        s.note(|_| {
            format!("group {g}: the channel no longer names its candidate (last written by {writer}) before its checks concluded")
        });
    }
}

/// G at the end: every merged group whose window broke.
pub fn finish_gates(s: &mut State) {
    let broken: Vec<(usize, i64, Cause, i64)> = s
        .queue
        .groups
        .iter()
        .filter_map(|g| {
            let (at, cause) = g.gate_broken.clone()?;
            match g.ended {
                Some((merged_at, super::queue::End::Merged)) => {
                    Some((g.serial, at, cause, merged_at))
                }
                _ => None,
            }
        })
        .collect();
    for (g, at, cause, merged_at) in broken {
        let who = cause.writer.clone();
        s.monitor.violations.push(Violation {
            invariant: Invariant::G,
            at,
            detail: format!(
                "group {g} merged at {} s as gated, but {who} moved the channel off its \
                 candidate at {} s, before its checks concluded",
                merged_at / 1000,
                at / 1000
            ),
            cause,
        });
    }
}

impl Invariant {
    pub const ALL: [Invariant; 7] = [
        Invariant::S1,
        Invariant::S2,
        Invariant::S3,
        Invariant::S4,
        Invariant::S5,
        Invariant::L1,
        Invariant::G,
    ];

    /// The clause in the core's list of the invariant (`mainline_core`'s crate docs name, for
    /// each, the function that enforces it and the property test that checks it). L2 has no
    /// violation of its own here: it is the end-of-history count `merged_never_deployed`.
    pub fn clause(self) -> Clause {
        match self {
            Invariant::S1 => Clause::S1,
            Invariant::S2 => Clause::S2,
            Invariant::S3 => Clause::S3,
            Invariant::S4 => Clause::S4,
            Invariant::S5 => Clause::S5,
            Invariant::L1 => Clause::L1,
            Invariant::G => Clause::G,
        }
    }

    pub fn name(self) -> &'static str {
        self.clause().name()
    }

    /// What the clause means, in a few words (tables, plot legends).
    pub fn meaning(self) -> &'static str {
        match self {
            Invariant::S1 => "unsigned or missing digest",
            Invariant::S2 => "went back past a landed merge",
            Invariant::S3 => "unmerged code past T",
            Invariant::S4 => "deployed an ended group",
            Invariant::S5 => "lost update over a live candidate",
            Invariant::L1 => "behind main past T",
            Invariant::G => "gate not held until checks ended",
        }
    }
}

/// How a group ended, as the trace says it.
pub fn end_words(end: End) -> &'static str {
    match end {
        End::Merged => "merged",
        End::Failed => "failed",
        End::Cancelled => "was cancelled",
        End::RunnerLost => "lost its runner",
        End::TimedOut => "timed out in the queue",
        End::Dequeued => "was dequeued",
        End::Invalidated => "was invalidated",
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "last written by {}",
            if self.writer.is_empty() {
                "nobody"
            } else {
                &self.writer
            }
        )?;
        if self.overwrote_live_group {
            f.write_str(", over a live candidate")?;
        }
        if self.wrote_behind_main {
            f.write_str(", naming a commit behind main")?;
        }
        match self.group {
            Some((g, None)) => write!(f, "; names group {g}, in flight"),
            Some((g, Some(end))) => write!(f, "; names group {g}, which {}", end_words(end)),
            None => Ok(()),
        }
    }
}
