//! What the monitor records: the clauses a violation can break, the cause it names (who put
//! the channel where it was, and what that was), and the monitor's memory between steps (open
//! episodes, main's tips, the S2 floor, the pin it last read). The checks that fill it are in
//! the parent module and in `crate::clauses`.
//!
//! Must never: hold what an actor believes (only what the world's own state showed), or drop a
//! violation once recorded.

use crate::queue::End;
use crate::world::{Ms, Stamp, State};
use mainline_core::Tag;
use serde::Serialize;

/// Which clause of the invariant broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Invariant {
    S1,
    S2,
    S3,
    S4,
    L1,
    /// No lost update: a write replaced a live candidate with something not containing it.
    S5,
    /// The gate is real: a group merged whose deploy the channel did not keep until its
    /// checks concluded.
    G,
}

/// Who put the channel where it was when an episode began, and what that was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// The actor that last wrote the channel (`ci#3`, `ci#3-heal`, `push#9`, `cron#4`, ...).
    pub writer: String,
    /// That write replaced the head of a group that was in flight at the time.
    pub overwrote_live_group: bool,
    /// That write named a commit behind main at the time (a stale read).
    pub wrote_behind_main: bool,
    /// The group whose head the channel names, and how it ended (if it did).
    pub group: Option<(usize, Option<End>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    /// Virtual ms since the history began.
    pub at: Ms,
    pub detail: String,
    pub cause: Cause,
}

pub struct Monitor {
    pub channel_tag: Tag,
    pub pin_ref: String,
    pub t_bound: Ms,
    pub require_signature: bool,
    pub(super) exposed_since: Option<(Ms, Cause)>,
    pub(super) behind_since: Option<(Ms, Cause)>,
    pub(super) unsigned: bool,
    pub(super) last_write: Cause,
    pub(super) floor: Option<usize>,
    /// Main's tips over time: when each first became main.
    pub(super) mains: Vec<(usize, Stamp)>,
    /// Since when main's artifact has failed the evidence policy (missing or unsigned).
    pub(super) evidence_gap_since: Option<Ms>,
    /// Total time main's artifact failed the evidence policy.
    pub evidence_gap_ms: Ms,
    /// While a channel write is being checked: when its writer decided.
    pub(super) write_decided: Option<Stamp>,
    /// Writes that dropped a landed change that landed after the writer decided (a race
    /// with the merge, not a violation; L1 bounds how long it may last).
    pub s2_races: u32,
    pub(super) pin_cache: Option<(usize, Ms, Option<Ms>)>,
    /// How long after a pin's expiry runners may still disagree about it: twice the largest
    /// clock skew between runners (a pin's expiry is a wall-clock time, judged by each
    /// runner's own clock — the one place mainline compares clocks across machines).
    pub pin_grace: Ms,
    /// Channel writes inside that window: runners flipping between "pinned" and "expired".
    /// Not judged as S2–S5 (which clock is right is undecidable), counted here instead.
    pub pin_skew_writes: u32,
    /// The channel's commit at the last observation.
    pub(super) channel: Option<usize>,
    pub max_unmerged: Ms,
    pub max_behind: Ms,
    pub violations: Vec<Violation>,
    pub merged_never_deployed: u32,
    /// S3/L1 episodes longer than the bound that faults (or the evidence gap) excused, and
    /// their total length.
    pub fault_excused_episodes: u32,
    pub fault_excused_ms: Ms,
}

impl Monitor {
    pub fn new(channel_tag: Tag, pin_ref: String, t_bound: Ms, require_signature: bool) -> Monitor {
        Monitor {
            channel_tag,
            pin_ref,
            t_bound,
            require_signature,
            exposed_since: None,
            behind_since: None,
            unsigned: false,
            last_write: Cause::default(),
            floor: None,
            mains: Vec::new(),
            evidence_gap_since: None,
            evidence_gap_ms: 0,
            write_decided: None,
            s2_races: 0,
            pin_cache: None,
            pin_grace: 0,
            pin_skew_writes: 0,
            channel: None,
            max_unmerged: 0,
            max_behind: 0,
            violations: Vec::new(),
            merged_never_deployed: 0,
            fault_excused_episodes: 0,
            fault_excused_ms: 0,
        }
    }
}

pub(crate) fn violation(s: &mut State, invariant: Invariant, detail: String, cause: Cause) {
    let at = s.now;
    s.note(|_| format!("VIOLATION of {}: {detail} ({cause})", invariant.name()));
    s.monitor.violations.push(Violation {
        invariant,
        at,
        detail,
        cause,
    });
}

/// The last write, with the group the channel names now and how that group ended.
pub(crate) fn cause_now(s: &State, c: Option<usize>) -> Cause {
    let mut cause = s.monitor.last_write.clone();
    cause.group = c.and_then(|c| {
        s.queue
            .groups
            .iter()
            .rev()
            .find(|g| g.head == c)
            .map(|g| (g.serial, g.ended.map(|(_, e)| e)))
    });
    cause
}
