//! The journal's settlement rule (pure): what a locked run appends for the intents killed
//! writers left behind, and for a channel that changed with no recorded move. The crash test
//! (tests/crash.rs) exercises the same rule end to end under SIGKILL; these cases pin it down.

use mainline::channel::journal::{settlement, Entry, EntryKind};
use mainline_core::{Digest, Timestamp};
use std::collections::BTreeMap;

fn d(n: u8) -> Digest {
    Digest::of(&[n])
}

fn entry(seq: u64, kind: EntryKind, after: Option<Digest>) -> Entry {
    let mut e = Entry::new(
        "oci://r/app:latest",
        kind,
        "someone",
        "why",
        Timestamp(seq as i64),
    );
    e.seq = seq;
    e.after = after;
    e
}

fn intent(seq: u64, from: Digest, to: Option<Digest>) -> Entry {
    let mut e = entry(seq, EntryKind::Intent, Some(from));
    e.to_digest = to;
    e
}

fn template() -> Entry {
    Entry::new(
        "oci://r/app:latest",
        EntryKind::Observed,
        "settler",
        "",
        Timestamp(1_000),
    )
}

#[test]
fn a_refusal_after_a_landed_intent_does_not_hide_it() {
    // newest first: refused (saw the new digest), intent A->B, moved ...->A
    let window = vec![
        entry(3, EntryKind::Refused, Some(d(2))),
        intent(2, d(1), Some(d(2))),
        entry(1, EntryKind::Moved, Some(d(1))),
    ];
    let targets = BTreeMap::from([(2, d(2))]);
    let out = settlement(&window, Some(&d(2)), &targets, &template());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, EntryKind::Moved);
    assert_eq!(out[0].intent, Some(2));
    assert_eq!(
        out[0].from_digest,
        Some(d(1)),
        "from where the journal left it, not the refusal's view"
    );
    assert_eq!(out[0].after, Some(d(2)));
    assert_eq!(out[0].actor, "settler");
}

#[test]
fn a_packed_intent_is_matched_by_its_commit_artifact() {
    let window = vec![
        intent(2, d(1), None),
        entry(1, EntryKind::Moved, Some(d(1))),
    ];
    let targets = BTreeMap::from([(2, d(7))]); // the artifact the packing pushed
    let out = settlement(&window, Some(&d(7)), &targets, &template());
    assert_eq!(out[0].kind, EntryKind::Moved);
    assert_eq!(out[0].to_digest, Some(d(7)));
}

#[test]
fn an_intent_that_never_wrote_is_abandoned_and_nothing_else_is_recorded() {
    let window = vec![
        intent(2, d(1), Some(d(2))),
        entry(1, EntryKind::Moved, Some(d(1))),
    ];
    let targets = BTreeMap::from([(2, d(2))]);
    let out = settlement(&window, Some(&d(1)), &targets, &template());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, EntryKind::Abandoned);
    assert_eq!(out[0].after, Some(d(1)));
}

#[test]
fn of_two_dead_intents_only_the_one_the_channel_names_landed() {
    let window = vec![
        intent(3, d(1), Some(d(3))),
        intent(2, d(1), Some(d(2))),
        entry(1, EntryKind::Moved, Some(d(1))),
    ];
    let targets = BTreeMap::from([(2, d(2)), (3, d(3))]);
    let out = settlement(&window, Some(&d(3)), &targets, &template());
    let kinds: Vec<(u64, EntryKind)> = out
        .iter()
        .map(|e| (e.intent.unwrap_or(0), e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![(2, EntryKind::Abandoned), (3, EntryKind::Moved)]
    );
    assert_eq!(out[0].after, Some(d(1)));
    assert_eq!(out[1].from_digest, Some(d(1)));
}

#[test]
fn a_change_nobody_recorded_is_observed() {
    let window = vec![
        entry(2, EntryKind::Pin, Some(d(1))),
        entry(1, EntryKind::Moved, Some(d(1))),
    ];
    let out = settlement(&window, Some(&d(9)), &BTreeMap::new(), &template());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, EntryKind::Observed);
    assert_eq!(
        (out[0].from_digest.clone(), out[0].after.clone()),
        (Some(d(1)), Some(d(9)))
    );
    // and nothing when the channel is where the journal left it
    assert!(settlement(&window, Some(&d(1)), &BTreeMap::new(), &template()).is_empty());
}
