//! The invariant checkers (DESIGN.md "The invariant"; each [`Invariant`] is a
//! `mainline_core::Clause`, whose list in `mainline_core`'s crate docs names the function that
//! enforces it and the property test that checks it), run on the true state of the world at
//! every step that can change it: a channel write, a signature push, a main or queue-ref move,
//! a pin record change or expiry.
//!
//! - S1: the channel names a digest the store holds and, under the evidence policy, one with a
//!   signature. Counted when the channel starts naming an unsigned digest (never suspended).
//! - S2: once a landed commit was contained in what the channel named, the channel never names
//!   an artifact without it (pins excepted: they reset the floor). A write that drops a change
//!   which landed *after* its writer decided is a race with the merge, counted apart
//!   (`s2_races`); L1 bounds how long the channel may then stay behind.
//! - S3: "unmerged" = the channel names a commit neither on main nor the head of an in-flight
//!   group. Metric: the longest such episode. Violation: an episode containing a stretch longer
//!   than `t_bound` (T plus the allowance of a run) with no injected fault anywhere and with
//!   main's artifact meeting the evidence policy — with the registry down, or with main's
//!   artifact unsigned (S1 forbids naming it: DESIGN.md scenario 8), nothing may heal, so only
//!   the rest counts against the bound. `evidence_gap_ms` reports the time main's artifact
//!   failed the policy.
//! - L1: "behind" = the channel does not contain main, nor names an ancestor of main with
//!   main's deploy tree. Same metric and bound as S3.
//! - S4: a candidate write that moved the channel to the head of a group that had already
//!   ended when the writer decided (its last ref listing before reading the channel, or, for
//!   glue that reads nothing, its step's start). A write racing the end is S3's business.
//! - L2 (at the end): merged deploy-changing PRs the final channel does not contain (those
//!   that landed at least T before the end: the last minutes' merges had no chance yet).
//! - S5 and G: see [`super::clauses`] (lost updates; the gate is real).
//!
//! Nothing is dropped silently: S2 races (`s2_races`), stretches of S3/L1 over the bound that
//! faults excused (`fault_excused_*`) and the evidence gap are reported as figures of their own.
//!
//! What a violation is and what the monitor remembers between steps is in `record`.
//!
//! Must never: consult what an actor believes; only the world's own state.

mod record;

pub(crate) use record::{cause_now, violation};
pub use record::{Cause, Invariant, Monitor, Violation};

use crate::channel::refs::PinRecord;
use crate::queue::PrState;
use crate::world::{ActorId, Ms, State, EPOCH_MS};
use mainline_core::Digest;

/// Is an operator pin active now (its record on the remote, not expired)?
pub(super) fn pinned(s: &mut State) -> bool {
    let now = s.now;
    pinned_at(s, now)
}

/// Is the channel write being judged a pin's: now under the pin, or decided under it (or in
/// the skew window after its expiry) and landing later because the network held it? World
/// times only: when the writer decided, never what it believed. README, "Pin expiry is the one
/// absolute time": such writes are `pin_skew_writes`, judged by when their writer decided.
pub(super) fn pinned_write(s: &mut State, decided: Ms) -> bool {
    pinned(s) || pinned_at(s, decided)
}

/// [`pinned_write`] for the write being observed now, [`pinned`] when none is.
pub(super) fn pinned_for_observed_write(s: &mut State) -> bool {
    match s.monitor.write_decided {
        Some((decided, _)) => pinned_write(s, decided),
        None => pinned(s),
    }
}

/// Whether the pin ref on the remote held a pin that was active (or within the grace window
/// after its expiry) at time `t`.
fn pinned_at(s: &mut State, t: Ms) -> bool {
    let Some(&idx) = s.git.refs.get(&s.monitor.pin_ref) else {
        return false;
    };
    let (created, expires) = match s.monitor.pin_cache {
        Some((i, c, e)) if i == idx => (c, e),
        _ => {
            let r = PinRecord::from_message(&s.git.objs[idx].message).ok();
            let c = r
                .as_ref()
                .map_or(Ms::MIN, |r| r.created_at.millis() - EPOCH_MS);
            let e = r.and_then(|r| r.expires_at).map(|t| t.millis() - EPOCH_MS);
            s.monitor.pin_cache = Some((idx, c, e));
            (c, e)
        }
    };
    // Both ends by the pinning runner's clock, so each is widened by the grace (twice the
    // runners' clock skew).
    let grace = s.monitor.pin_grace;
    created.saturating_sub(grace) <= t && expires.is_none_or(|e| t < e + grace)
}

/// Was `t` within the grace window after a pin's expiry (runners may disagree)?
fn in_pin_grace(s: &mut State, t: Ms) -> bool {
    let grace = s.monitor.pin_grace;
    pinned_at(s, t)
        && matches!(s.monitor.pin_cache, Some((_, _, Some(e))) if e <= t && t < e + grace)
}

/// The channel's digest and the commit (object index) its artifact records.
fn channel(s: &State) -> (Option<Digest>, Option<usize>) {
    let digest = s.registry.tags.get(&s.monitor.channel_tag).cloned();
    let commit = digest
        .as_ref()
        .and_then(|d| s.registry.revisions.get(d).cloned().flatten())
        .and_then(|c| s.git.idx(&c));
    (digest, commit)
}

/// Close an S3 or L1 episode that began at `since`.
fn close(s: &mut State, invariant: Invariant, since: Ms, cause: Cause) {
    let now = s.now;
    let len = now - since;
    match invariant {
        Invariant::S3 => s.monitor.max_unmerged = s.monitor.max_unmerged.max(len),
        _ => s.monitor.max_behind = s.monitor.max_behind.max(len),
    }
    // While main's artifact fails the evidence policy no heal is allowed (S1 first): that
    // time counts like a fault.
    let open_gap = s.monitor.evidence_gap_since.map(|g| (g, now));
    s.faults.unclean.extend(open_gap);
    let clean = s.faults.longest_clean(since, now);
    if open_gap.is_some() {
        s.faults.unclean.pop();
    }
    if clean <= s.monitor.t_bound && len > s.monitor.t_bound {
        s.monitor.fault_excused_episodes += 1;
        s.monitor.fault_excused_ms += len;
        s.note(|_| {
            format!(
                "excused (faults or evidence gap): {} episode of {} s, at most {} s fault-free",
                invariant.name(),
                len / 1000,
                clean / 1000
            )
        });
    }
    if clean > s.monitor.t_bound {
        let what = if invariant == Invariant::S3 {
            "named unmerged code"
        } else {
            "stayed behind main"
        };
        violation(
            s,
            invariant,
            format!(
                "the channel {what} for {} s (from {} s), {} s of it with no fault injected",
                len / 1000,
                since / 1000,
                clean / 1000
            ),
            cause,
        );
    }
}

/// Re-check every invariant on the current state.
pub fn observe(s: &mut State) {
    let now = s.now;
    let pinned = pinned(s);
    let (digest, c) = channel(s);
    let main = s.git.main();
    let git = &s.git;
    let live = |c: usize| {
        s.queue
            .in_flight
            .iter()
            .any(|&g| s.queue.groups[g].head == c)
    };
    let on_main = |c: usize| main.is_some_and(|m| git.is_ancestor(c, m));
    let exposed = !pinned
        && match c {
            Some(c) => !on_main(c) && !live(c),
            None => digest.is_some(),
        };
    let behind = !pinned
        && match (c, main) {
            (Some(c), Some(m)) => {
                let contains_main = git.is_ancestor(m, c);
                let has_mains_tree = git.is_ancestor(c, m) && git.tree(c) == git.tree(m);
                !(contains_main || has_mains_tree)
            }
            (None, Some(_)) => true,
            _ => false,
        };
    // S2: the floor is the newest landed commit the channel contained.
    let mut broke_floor = None;
    let mut floor = if pinned { None } else { s.monitor.floor };
    if let (Some(f), Some(c)) = (floor, c) {
        if !git.is_ancestor(f, c) {
            broke_floor = Some((f, c));
            floor = None;
        }
    }
    if let (false, Some(c), Some(m)) = (pinned, c, main) {
        if git.is_ancestor(m, c) {
            floor = Some(m);
        } else if git.is_ancestor(c, m) && floor.is_none_or(|f| git.is_ancestor(f, c)) {
            floor = Some(c);
        }
    }
    s.monitor.floor = floor;
    if let Some(m) = main.filter(|&m| s.monitor.mains.last().is_none_or(|&(x, _)| x != m)) {
        s.monitor.mains.push((m, (now, s.tick)));
    }
    if let Some((f, c)) = broke_floor {
        let landed = s
            .monitor
            .mains
            .iter()
            .find(|&&(m, _)| s.git.is_ancestor(f, m))
            .map_or((0, 0), |&(_, t)| t);
        let decided = s.monitor.write_decided.unwrap_or((now, s.tick));
        let detail = format!(
            "the channel moved to {} which lacks {}, landed at {} s (the writer decided at {} s)",
            s.git.id(c).short(),
            s.git.id(f).short(),
            landed.0 / 1000,
            decided.0 / 1000
        );
        if landed < decided {
            let cause = cause_now(s, Some(c));
            violation(s, Invariant::S2, detail, cause);
        } else {
            s.monitor.s2_races += 1;
            s.note(|_| format!("race (not a violation): {detail}"));
        }
    }
    // S1: exists, and signed when the policy says so.
    let unsigned = digest.as_ref().is_some_and(|d| {
        !s.registry.manifests.contains_key(d)
            || (s.monitor.require_signature && !s.registry.signed(d))
    });
    if unsigned && !s.monitor.unsigned {
        let d = digest
            .as_ref()
            .map(|d| d.short().to_owned())
            .unwrap_or_default();
        let cause = cause_now(s, c);
        violation(
            s,
            Invariant::S1,
            format!("the channel names {d}, which has no signature"),
            cause,
        );
    }
    s.monitor.unsigned = unsigned;
    s.monitor.channel = c;
    super::clauses::check_gates(s, c);
    // Can main's artifact be named at all under the evidence policy?
    let blocked = s.monitor.require_signature
        && main.is_some_and(|m| {
            let tag = s.git.id(m).artifact_tag();
            s.registry
                .tags
                .get(&tag)
                .is_none_or(|d| !s.registry.signed(d))
        });
    match (blocked, s.monitor.evidence_gap_since) {
        (true, None) => s.monitor.evidence_gap_since = Some(now),
        (false, Some(g)) => {
            s.monitor.evidence_gap_since = None;
            s.monitor.evidence_gap_ms += now - g;
            s.faults.unclean.push((g, now));
        }
        _ => {}
    }
    for (flag, invariant) in [(exposed, Invariant::S3), (behind, Invariant::L1)] {
        let open = match invariant {
            Invariant::S3 => s.monitor.exposed_since.is_some(),
            _ => s.monitor.behind_since.is_some(),
        };
        let started = match (flag, open) {
            (true, false) => Some(Some((now, cause_now(s, c)))),
            (false, true) => Some(None),
            _ => None,
        };
        let Some(new) = started else { continue };
        let old = match invariant {
            Invariant::S3 => std::mem::replace(&mut s.monitor.exposed_since, new),
            _ => std::mem::replace(&mut s.monitor.behind_since, new),
        };
        if let Some((t0, cause)) = old {
            close(s, invariant, t0, cause);
        }
    }
}

/// `actor` moved the channel to `digest`: check S4, then everything else.
pub fn on_channel_write(s: &mut State, actor: ActorId, digest: &Digest) {
    let before = s.monitor.channel; // observed after every change: the previous value
                                    // A write is judged by the pin as it was when its writer decided, not when it landed: a
                                    // runner whose skewed clock still saw the pin re-applies it, and a network that holds that
                                    // write makes it land later (under the writer's fenced lock) — still a pin-skew write.
    let decided = s.actors[actor].decided_at;
    if in_pin_grace(s, decided.0) {
        s.monitor.pin_skew_writes += 1;
        let name = s.actors[actor].name.clone();
        s.note(|_| {
            format!("{name} moved the channel just after the pin's expiry, judged by its own skewed clock (counted as a pin-skew write)")
        });
    }
    let commit = s
        .registry
        .revisions
        .get(digest)
        .cloned()
        .flatten()
        .and_then(|c| s.git.idx(&c));
    if let (Some(c), false) = (commit, pinned_at(s, decided.0)) {
        let ended = s
            .queue
            .groups
            .iter()
            .find(|g| g.head == c)
            .and_then(|g| g.ended.map(|(t, end)| (g.serial, (t, g.ended_tick), end)));
        if let Some((g, t, end)) =
            ended.filter(|&(_, t, end)| t < decided && end != super::queue::End::Merged)
        {
            let name = s.actors[actor].name.clone();
            let mut cause = cause_now(s, Some(c));
            cause.writer = name.clone();
            violation(
                s,
                Invariant::S4,
                format!(
                    "{name} deployed group {g}, which {} at {} s, before it decided at {} s",
                    super::clauses::end_words(end),
                    t.0 / 1000,
                    decided.0 / 1000
                ),
                cause,
            );
        }
    }
    let main = s.git.main();
    let live = |c: usize| {
        s.queue
            .in_flight
            .iter()
            .any(|&g| s.queue.groups[g].head == c)
    };
    s.monitor.last_write = Cause {
        writer: s.actors[actor].name.clone(),
        overwrote_live_group: before.is_some_and(live),
        wrote_behind_main: match (commit, main) {
            (Some(c), Some(m)) => !s.git.is_ancestor(m, c) && s.git.tree(c) != s.git.tree(m),
            _ => false,
        },
        group: None,
    };
    super::clauses::check_lost_update(s, actor, before, commit);
    s.monitor.write_decided = Some(s.actors[actor].decided_at);
    observe(s);
    s.monitor.write_decided = None;
}

/// End of history: close open episodes, count merged changes the channel never got.
pub fn finish(s: &mut State) {
    if let Some((t0, cause)) = s.monitor.exposed_since.take() {
        close(s, Invariant::S3, t0, cause);
    }
    if let Some((t0, cause)) = s.monitor.behind_since.take() {
        close(s, Invariant::L1, t0, cause);
    }
    super::clauses::finish_gates(s);
    let (_, c) = channel(s);
    let missing = s
        .queue
        .prs
        .iter()
        // A change that landed within T of the end has not had its chance yet.
        .filter(|p| p.state == PrState::Merged && p.draw.touches)
        .filter(|p| p.landed_at.is_some_and(|t| t + s.monitor.t_bound <= s.now))
        .filter(|p| c.is_none_or(|c| !s.git.is_ancestor(p.commit, c)))
        .count() as u32;
    s.monitor.merged_never_deployed = missing;
}
