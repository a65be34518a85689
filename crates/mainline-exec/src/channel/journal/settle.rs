//! Settling what killed writers left: which `moved` / `abandoned` / `observed` records follow
//! from the journal's tail and what the channel names now.
//!
//! Why apart: it is a pure function of plain values (no repo, no clock), so it is tested on its
//! own (`tests/settle.rs`) and the executor only appends what it returns, under the lock.
//! Must never: read or write anything, or report a move the channel's current digest does not
//! show (an intent whose target the channel does not name is `abandoned`, never `moved`).

use super::entry::{Entry, EntryKind};
use mainline_core::Digest;

/// Which records settle what killed writers left (pure; the executor appends them under the
/// lock). `window` is the journal's tail, newest first, ending at (and including) the last
/// settling record (`moved` / `abandoned` / `observed`) when there is one. `current` is what the
/// channel names now; `targets` maps an intent's seq to the digest it meant to write (for a
/// packed target, its commit's artifact). `template` carries channel, actor and time.
///
/// The newest intent whose target the channel names now landed (`moved`), every other intent
/// did not (`abandoned`); with no landed intent, a channel that is not where the window's first
/// record left it changed without a recorded move (`observed`). The position each record
/// reports is where the channel stands as the settlements are read in order. (Not a refusal's
/// `after`: refusals are recorded without the lock, so they may already see the unrecorded
/// write being settled.)
pub fn settlement(
    window: &[Entry],
    current: Option<&Digest>,
    targets: &std::collections::BTreeMap<u64, Digest>,
    template: &Entry,
) -> Vec<Entry> {
    let settles = |k: EntryKind| {
        matches!(
            k,
            EntryKind::Moved | EntryKind::Abandoned | EntryKind::Observed
        )
    };
    let known = window
        .last()
        .filter(|e| settles(e.kind))
        .and_then(|e| e.after.clone());
    let mut intents: Vec<&Entry> = window
        .iter()
        .filter(|e| e.kind == EntryKind::Intent)
        .collect();
    intents.reverse(); // oldest first
    let landed = intents
        .iter()
        .rev()
        .find(|e| current.is_some() && targets.get(&e.seq) == current)
        .map(|e| e.seq);
    let mut out = Vec::new();
    let mut position = known.clone();
    for h in intents {
        let mut e = h.clone();
        e.intent = Some(h.seq);
        e.time = template.time;
        e.actor = template.actor.clone();
        if Some(h.seq) == landed {
            e.kind = EntryKind::Moved;
            e.from_digest = position.clone();
            e.to_digest = current.cloned();
            e.after = current.cloned();
            position = current.cloned();
            e.reason = format!(
                "settled by a later run (the writer stopped before recording it): {}",
                h.reason
            );
        } else {
            e.kind = EntryKind::Abandoned;
            e.after = position.clone();
            e.reason = "the writer stopped before writing the channel".into();
        }
        out.push(e);
    }
    if landed.is_none() && known.as_ref() != current && !(window.is_empty()) {
        let mut e = template.clone();
        e.kind = EntryKind::Observed;
        e.reason = "the channel changed without a recorded move (moved by hand, or by a run without the journal)".into();
        e.from_digest = position;
        e.to_digest = current.cloned();
        e.after = current.cloned();
        out.push(e);
    }
    out
}
