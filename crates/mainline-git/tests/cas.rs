//! Compare-and-swap on remote refs: create, update, conflict with the actual value reported,
//! delete, and a race of 8 writers from the same expected value with exactly one winner.

mod support;

use mainline_git::{CasOutcome, GitError, GitRemote};
use std::sync::{Arc, Barrier};
use support::{git, Fixture};

const LOCK: &str = "refs/mainline/lock/prod";

fn remote_value(fx: &Fixture, refname: &str) -> Option<String> {
    let out = git(
        &fx.remote,
        &["for-each-ref", "--format=%(objectname)", refname],
    );
    (!out.is_empty()).then_some(out)
}

#[test]
fn create_update_conflict_and_delete() {
    let fx = Fixture::new();
    fx.commit("base", &[("k8s/a", "1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let a = remote
        .create_record_commit("lock a\n", &[], 1_700_000_100)
        .expect("record a");
    let b = remote
        .create_record_commit("lock b\n", &[], 1_700_000_200)
        .expect("record b");
    let c = remote
        .create_record_commit("lock c\n", &[], 1_700_000_300)
        .expect("record c");

    // Create from nothing.
    assert_eq!(
        remote.push_ref_cas(LOCK, None, Some(&a)).expect("create"),
        CasOutcome::Updated
    );
    assert_eq!(remote_value(&fx, LOCK).as_deref(), Some(a.as_str()));
    assert_eq!(remote.read_ref(LOCK).expect("read"), Some(a.clone()));

    // Creating again (expecting absence) conflicts and reports what is there.
    assert_eq!(
        remote.push_ref_cas(LOCK, None, Some(&b)).expect("cas"),
        CasOutcome::Conflict {
            actual: Some(a.clone())
        }
    );
    // Update from the right old value (not a fast-forward: records are unrelated).
    assert_eq!(
        remote
            .push_ref_cas(LOCK, Some(&a), Some(&b))
            .expect("update"),
        CasOutcome::Updated
    );
    assert_eq!(remote_value(&fx, LOCK).as_deref(), Some(b.as_str()));

    // A stale expected value conflicts; the remote is untouched.
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&a), Some(&c)).expect("cas"),
        CasOutcome::Conflict {
            actual: Some(b.clone())
        }
    );
    assert_eq!(remote_value(&fx, LOCK).as_deref(), Some(b.as_str()));

    // Writing the value already there counts only when it was the expected one.
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&b), Some(&b)).expect("noop"),
        CasOutcome::Updated
    );
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&a), Some(&b)).expect("cas"),
        CasOutcome::Conflict {
            actual: Some(b.clone())
        }
    );

    // Delete: stale first, then right.
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&a), None).expect("cas"),
        CasOutcome::Conflict {
            actual: Some(b.clone())
        }
    );
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&b), None).expect("delete"),
        CasOutcome::Updated
    );
    assert_eq!(remote_value(&fx, LOCK), None);
    assert_eq!(remote.read_ref(LOCK).expect("read"), None);
    // Deleting again while expecting something conflicts with "absent".
    assert_eq!(
        remote.push_ref_cas(LOCK, Some(&b), None).expect("cas"),
        CasOutcome::Conflict { actual: None }
    );
}

#[test]
fn pushing_a_commit_that_is_not_in_the_cache_is_refused() {
    let fx = Fixture::new();
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let ghost: mainline_core::CommitId = "0123456789abcdef0123456789abcdef01234567"
        .parse()
        .expect("hex");
    let err = remote
        .push_ref_cas(LOCK, None, Some(&ghost))
        .expect_err("not in cache");
    assert!(matches!(err, GitError::NotInCache { .. }), "{err}");
    let err = remote
        .push_ref_cas("mainline/lock", None, None)
        .expect_err("not a full ref");
    assert!(matches!(err, GitError::InvalidRefName { .. }), "{err}");
}

#[test]
fn eight_racing_writers_from_the_same_expected_value_have_exactly_one_winner() {
    let fx = Fixture::new();
    let setup = GitRemote::open(&fx.url(), &fx.cache_root("cache-0")).expect("open");
    let start = setup
        .create_record_commit("start\n", &[], 1_700_000_000)
        .expect("start");
    assert_eq!(
        setup
            .push_ref_cas(LOCK, None, Some(&start))
            .expect("create"),
        CasOutcome::Updated
    );

    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            // Half share one cache dir, half have their own: both must behave.
            let name = if i % 2 == 0 {
                "shared".to_owned()
            } else {
                format!("own-{i}")
            };
            let cache = fx.cache_root(&name);
            let url = fx.url();
            let start = start.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let remote = GitRemote::open(&url, &cache).expect("open");
                let mine = remote
                    .create_record_commit(&format!("writer {i}\n"), &[], 1_700_000_100 + i)
                    .expect("record");
                barrier.wait();
                let outcome = remote
                    .push_ref_cas(LOCK, Some(&start), Some(&mine))
                    .expect("cas");
                (mine, outcome)
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect();
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, o)| *o == CasOutcome::Updated)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:?}");
    let winner = &winners[0].0;
    assert_eq!(remote_value(&fx, LOCK).as_deref(), Some(winner.as_str()));
    for (mine, outcome) in &results {
        if mine != winner {
            // A loser may re-read just before the winner's update lands (it lost on the
            // server's ref lock), but never sees its own value.
            match outcome {
                CasOutcome::Conflict { actual } => assert_ne!(actual.as_ref(), Some(mine)),
                CasOutcome::Updated => unreachable!("counted above"),
            }
        }
    }
}

/// `push --atomic` with one ref the remote already holds at its new value: git calls that ref
/// up to date and skips its lease, so the push's other refs move although that ref's expected
/// value did not hold. Never answered as a clean conflict ("nothing moved") then.
#[test]
fn an_atomic_push_whose_unchecked_ref_let_others_move_is_not_a_conflict() {
    use mainline_git::RefCas;
    const JOURNAL: &str = "refs/mainline/journal/prod";
    const OTHER: &str = "refs/mainline/pin/prod";
    let fx = Fixture::new();
    fx.commit("base", &[("k8s/a", "1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let rec = |m: &str, t: i64| remote.create_record_commit(m, &[], t).expect("record");
    let (a, b, c) = (rec("a\n", 1), rec("b\n", 2), rec("c\n", 3));
    let cas = |refname, expected, new| RefCas {
        refname,
        expected,
        new,
    };
    assert_eq!(
        remote
            .push_refs_cas(&[cas(LOCK, None, Some(&a)), cas(JOURNAL, None, Some(&b))])
            .expect("create both"),
        CasOutcome::Updated
    );
    // The same push again: both refs already hold their new values and nothing moves, but
    // neither was absent as expected: a conflict, as for one ref.
    assert_eq!(
        remote
            .push_refs_cas(&[cas(LOCK, None, Some(&a)), cas(JOURNAL, None, Some(&b))])
            .expect("again"),
        CasOutcome::Conflict {
            actual: Some(a.clone())
        }
    );
    // The lock "expected absent" holds `a` already (unchecked by git); the other ref is new
    // and moves: not a conflict — an error that says to read the refs.
    let err = remote
        .push_refs_cas(&[cas(LOCK, None, Some(&a)), cas(OTHER, None, Some(&c))])
        .expect_err("partly applied");
    assert!(
        matches!(&err, GitError::AtomicPartlyApplied { refname, .. } if refname == LOCK),
        "{err}"
    );
    assert_eq!(remote_value(&fx, OTHER).as_deref(), Some(c.as_str()));
    assert_eq!(remote_value(&fx, LOCK).as_deref(), Some(a.as_str()));
}
