//! DESIGN.md's scenario 6: two reconciles and a candidate deploy race, as separate `mainline`
//! processes with their own caches, against a real docker-registry and an OCI image layout and
//! a bare git remote driven like GitHub's merge queue (support::queue) — with the channel lock
//! (the default) and without one. Afterwards the channel satisfies the invariant and the
//! journal (`mainline history --verify`) shows every move, once, in order.

#[macro_use]
mod support;

use serde_json::Value;
use std::path::Path;
use support::queue::{app, deploy, field, first_deploy, moves, verdict, Channel, Queue};
use support::*;

// 6. Two reconciles and a candidate deploy race → afterwards the channel satisfies the
// invariant. Three rounds, each from a DIVERGED channel (a failed group's candidate) with a
// new group in flight; the racers are separate processes with their own caches.
fn race(store: &str, root: &Path, flags: &[&str]) {
    let locked = flags.is_empty();
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "setup").with(flags);
    let mut main_digest = first_deploy(&ch, &q);
    let racers = [ch.elsewhere("r1"), ch.elsewhere("r2"), ch.elsewhere("r3")];
    for round in 0..3u32 {
        let pr = u64::from(10 + 2 * round);
        let failed = q.enqueue(pr, &[("k8s/app.yaml", &app(10 + 2 * round))]);
        let failed_digest = deploy(&ch, &failed);
        q.end(&failed);
        let b = q.enqueue(pr + 1, &[("k8s/app.yaml", &app(11 + 2 * round))]);
        let deploy_b = [
            "deploy",
            "--candidate",
            "--group",
            b.id.as_str(),
            "--commit",
            b.head.as_str(),
        ];
        let seen = journal(&ch)
            .last()
            .map_or(0, |r| r["seq"].as_u64().expect("seq"));
        let runs: Vec<Run> = std::thread::scope(|s| {
            let handles = [
                s.spawn(|| racers[0].run(&["reconcile"])),
                s.spawn(|| racers[1].run(&deploy_b)),
                s.spawn(|| racers[2].run(&["reconcile"])),
            ];
            handles
                .into_iter()
                .map(|h| h.join().expect("racer thread"))
                .collect()
        });
        for r in &runs {
            assert_eq!(
                r.code, 0,
                "round {round}: every racer succeeds\nstdout:\n{}\nstderr:\n{}",
                r.stdout, r.stderr
            );
        }

        // The invariant: the channel names mainline's artifact or the live group's, never the
        // failed group's; and a further reconcile has nothing to do.
        let b_digest = ch.digest(&format!("sha-{}", b.head)).expect("B was packed");
        let s = ch.status(0);
        let now = field(&s, "channel_digest")
            .expect("channel digest")
            .to_owned();
        assert_ne!(now, failed_digest, "round {round}: {s}");
        match verdict(&s) {
            "CONVERGED" => assert_eq!(now, main_digest, "round {round}: {s}"),
            "CANDIDATE" => assert_eq!(now, b_digest, "round {round}: {s}"),
            other => panic!("round {round}: the race left {other}: {s}"),
        }
        let r = ch.expect(&["reconcile"], 0);
        assert!(moves(&r).is_empty(), "round {round}: settled: {r}");

        // The journal shows every move the racers reported, once each, in each racer's order,
        // on a chain that verifies; locked, the moves are serialised: each starts where the
        // previous record left the channel, and the last one is what the channel names.
        let records = journal(&ch);
        let fresh: Vec<&Value> = records
            .iter()
            .filter(|r| r["seq"].as_u64().expect("seq") > seen)
            .collect();
        let moved: Vec<&str> = fresh
            .iter()
            .filter(|r| r["kind"] == "moved")
            .map(|r| r["to_digest"].as_str().expect("to_digest"))
            .collect();
        let reported: usize = runs.iter().map(|r| moves(&r.json()).len()).sum();
        assert_eq!(moved.len(), reported, "round {round}: {fresh:#?}");
        for r in &runs {
            let mine: Vec<String> = moves(&r.json())
                .iter()
                .map(|m| m["to_digest"].as_str().expect("to_digest").to_owned())
                .collect();
            let mut rest = moved.iter();
            assert!(
                mine.iter().all(|d| rest.any(|j| j == d)),
                "round {round}: a racer's moves {mine:?} are not in the journal in order: {moved:?}"
            );
        }
        if locked {
            let mut after: Option<&str> = None;
            for r in &fresh {
                if r["kind"] == "moved" {
                    if let Some(prev) = after {
                        assert_eq!(r["from_digest"], prev, "round {round}: {fresh:#?}");
                    }
                }
                if let Some(a) = r["after"].as_str() {
                    after = Some(a);
                }
            }
            assert_eq!(after, Some(now.as_str()), "round {round}: {fresh:#?}");
        }

        // The group ends one way or the other; the next reconcile settles it.
        if round % 2 == 0 {
            q.merge(&b);
            main_digest = b_digest;
        } else {
            q.end(&b);
        }
        let r = ch.expect(&["reconcile"], 0);
        assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
        assert_eq!(ch.digest("latest").as_ref(), Some(&main_digest));
    }
}

// With the channel lock (the default: a compare-and-swap ref on the git remote).
fn scenario_06_racing_reconciles_and_candidate_deploy_converge(store: &str, root: &Path) {
    race(store, root, &[]);
}
on_both_stores!(scenario_06_racing_reconciles_and_candidate_deploy_converge);

// Without a lock backend mainline still converges: every run re-decides from fresh facts.
fn scenario_06_racing_unlocked_still_converges(store: &str, root: &Path) {
    race(store, root, &["--lock", "none"]);
}
on_both_stores!(scenario_06_racing_unlocked_still_converges);

/// The channel's journal (`mainline history --verify`), checked to verify.
fn journal(ch: &Channel) -> Vec<Value> {
    let h = ch.expect(&["history", "--verify"], 0);
    assert_eq!(
        h["verified"],
        serde_json::json!([]),
        "the chain verifies: {h}"
    );
    let records = h["records"].as_array().expect("records").clone();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq runs 1, 2, …: {h}"
        );
    }
    records
}
