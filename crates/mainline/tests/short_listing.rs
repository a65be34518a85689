//! The short path's re-decision listing goes out alongside its outcome + release push (issue
//! 15: one round trip for both). Whichever the remote answers first, the next decision must see
//! the world as it is after the push: our intent settled, our lock gone. A listing answered
//! before the push still shows both; the executor patches the push's own effect into it.
//!
//! Both orders are forced here on a real git remote: the remote's `main` moves during the first
//! write, so the re-decision must move the channel again — and it may take the short path
//! again only if the listing it acts on no longer shows our own lock (with the stale listing
//! unpatched it hands over to the patient path, whose single-ref pushes this test counts).

mod support;

use mainline::adapters::git::GitRepo;
use mainline::channel::journal::EntryKind;
use mainline::channel::ports::{Cas, RefUpdate, RemoteView, Repo, RepoError, RepoWrapper};
use mainline_core::CommitId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use support::machine::{
    assert_chain_and_no_lock, behind, journal_records, machine, reconcile_locked, tag_digest,
    Behind,
};
use support::queue::{app, Queue};

/// How long one side waits for the other before the test calls the two "not overlapped".
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Phase {
    /// The first push (lock + intent) landed and main moved on: the next listing is the
    /// re-decision's.
    armed: bool,
    listed: bool,
    released: bool,
    /// One side gave up waiting for the other: the listing and the push were not concurrent.
    waited_out: bool,
}

/// The remote, with the order of the re-decision's listing and the release push forced.
struct Ordered {
    inner: GitRepo,
    queue: Mutex<Queue>,
    /// The listing is answered before the push lands (else after).
    listing_first: bool,
    multi: AtomicUsize,
    single: AtomicUsize,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Ordered {
    fn wait_for(&self, done: impl Fn(&Phase) -> bool) {
        let guard = self.phase.lock().expect("phase");
        let (mut guard, timeout) = self
            .changed
            .wait_timeout_while(guard, PATIENCE, |p| !done(p))
            .expect("phase");
        if timeout.timed_out() {
            guard.waited_out = true;
        }
    }

    fn set(&self, f: impl FnOnce(&mut Phase)) {
        f(&mut self.phase.lock().expect("phase"));
        self.changed.notify_all();
    }
}

impl RepoWrapper for Ordered {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }

    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        let ours = std::mem::take(&mut self.phase.lock().expect("phase").armed);
        if !ours {
            return self.inner.view(branch);
        }
        if self.listing_first {
            let listed = self.inner.view(branch);
            self.set(|p| p.listed = true);
            self.wait_for(|p| p.released);
            listed
        } else {
            self.wait_for(|p| p.released);
            self.inner.view(branch)
        }
    }

    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.cas_ref(refname, expected, new)
    }

    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        match self.multi.fetch_add(1, Ordering::SeqCst) + 1 {
            1 => {
                let answer = self.inner.cas_refs(updates);
                // The world changes during the write: main moves on.
                self.queue
                    .lock()
                    .expect("queue")
                    .push_main(&[("k8s/app.yaml", &app(9))], "main moves during the write");
                self.set(|p| p.armed = true);
                answer
            }
            2 => {
                if self.listing_first {
                    self.wait_for(|p| p.listed);
                }
                let answer = self.inner.cas_refs(updates);
                self.set(|p| p.released = true);
                answer
            }
            _ => self.inner.cas_refs(updates),
        }
    }
}

#[test]
fn the_re_decision_sees_the_release_whichever_answer_comes_first() {
    for listing_first in [true, false] {
        let case = if listing_first {
            "listing answered before the release push"
        } else {
            "listing answered after the release push"
        };
        let Behind {
            tmp: _tmp,
            queue: q,
            channel,
            before,
        } = behind();
        let (config, inner) = machine(&q, &channel, "runner");
        let repo = Ordered {
            inner: inner.clone(),
            queue: Mutex::new(q),
            listing_first,
            multi: AtomicUsize::new(0),
            single: AtomicUsize::new(0),
            phase: Mutex::new(Phase::default()),
            changed: Condvar::new(),
        };
        let journal_before = journal_records(&inner, &config).len();
        let report = reconcile_locked(&config, &repo, &inner, "overlap-run", true)
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));

        let phase = repo.phase.lock().expect("phase");
        assert!(
            phase.listed || !listing_first,
            "{case}: the re-decision listed"
        );
        assert!(
            !phase.waited_out,
            "{case}: the listing and the release push were not sent together"
        );
        drop(phase);
        assert_eq!(
            report.moves.len(),
            2,
            "{case}: main moved twice: {report:?}"
        );
        assert_eq!(
            (
                repo.multi.load(Ordering::SeqCst),
                repo.single.load(Ordering::SeqCst)
            ),
            (4, 0),
            "{case}: both moves on the short path (two atomic pushes each, no single-ref push)"
        );
        let q = repo.queue.into_inner().expect("queue");
        let now = tag_digest(&config, "latest");
        assert_ne!(now, Some(before.clone()), "{case}: the channel moved");
        assert_eq!(
            now,
            tag_digest(&config, &format!("sha-{}", q.main())),
            "{case}: the channel names main's newest artifact"
        );
        let records = journal_records(&inner, &config);
        let kinds: Vec<_> = records[journal_before..]
            .iter()
            .map(|r| r.entry.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                EntryKind::Intent,
                EntryKind::Moved,
                EntryKind::Intent,
                EntryKind::Moved
            ],
            "{case}"
        );
        assert_chain_and_no_lock(&q, &records, case);
    }
}
