//! A fresh runner sends its fetches while it lists the remote's refs (issue 15,
//! `Sources::warm_up`): the branch by name with the channel's commit by id, and the journal's
//! tail by name. Without that the fetch waited for the listing: one git round trip more, the
//! whole gap between a fresh runner and a warm one at a distance.
//!
//! What must hold, on a real git remote through the executor as the CLI runs it: the warm-up
//! really overlaps the listing (the listing here is held until both fetches started); a
//! warm-up that works leaves nothing for the fetch after the listing to do; and a warm-up that
//! fails changes nothing but that — the one move, to main's artifact, the journal's chain
//! intact — because the listing, never the warm-up, is the account of the remote's refs.

mod support;

use mainline::adapters::git::GitRepo;
use mainline::channel::journal::EntryKind;
use mainline::channel::ports::{RemoteView, Repo, RepoError, RepoWrapper};
use mainline_core::CommitId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::machine::{
    assert_chain_and_no_lock, behind, journal_records, machine, reconcile_locked, tag_digest,
    Behind,
};

/// How long the listing waits for the warm-up's fetches to start before the test calls the
/// two "not overlapped".
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Warmup {
    /// The warm-up's fetches go through to the remote.
    Works,
    /// They fail (a 503 after retries), touching nothing.
    Fails,
}

struct Counted {
    inner: GitRepo,
    warmup: Warmup,
    prefetch: AtomicUsize,
    prefetch_records: AtomicUsize,
    fetch: AtomicUsize,
    views: AtomicUsize,
    /// The first listing gave up waiting for the warm-up to start.
    waited_out: AtomicBool,
}

impl Counted {
    fn started(&self) -> bool {
        self.prefetch.load(Ordering::SeqCst) > 0 && self.prefetch_records.load(Ordering::SeqCst) > 0
    }
}

impl RepoWrapper for Counted {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }

    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        if self.views.fetch_add(1, Ordering::SeqCst) == 0 {
            let since = Instant::now();
            while !self.started() {
                if since.elapsed() > PATIENCE {
                    self.waited_out.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.inner.view(branch)
    }

    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError> {
        self.fetch.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch(commits)
    }

    fn prefetch(&self, branch: &str, commits: &[CommitId]) -> Result<(), RepoError> {
        self.prefetch.fetch_add(1, Ordering::SeqCst);
        match self.warmup {
            Warmup::Works => self.inner.prefetch(branch, commits),
            Warmup::Fails => Err(RepoError::Unavailable(
                "the git remote answered 503 after retries".into(),
            )),
        }
    }

    fn prefetch_records(&self, refname: &str) -> Result<(), RepoError> {
        self.prefetch_records.fetch_add(1, Ordering::SeqCst);
        match self.warmup {
            Warmup::Works => self.inner.prefetch_records(refname),
            Warmup::Fails => Err(RepoError::Unavailable(
                "the git remote answered 503 after retries".into(),
            )),
        }
    }
}

#[test]
fn a_fresh_runner_fetches_while_it_lists_and_decides_on_the_listing_alone() {
    for warmup in [Warmup::Works, Warmup::Fails] {
        let Behind {
            tmp: _tmp,
            queue: q,
            channel,
            before,
        } = behind();
        // A runner with nothing cached: its own git cache and an empty fact cache.
        let (config, inner) = machine(&q, &channel, "fresh-runner");
        let repo = Counted {
            inner: inner.clone(),
            warmup,
            prefetch: AtomicUsize::new(0),
            prefetch_records: AtomicUsize::new(0),
            fetch: AtomicUsize::new(0),
            views: AtomicUsize::new(0),
            waited_out: AtomicBool::new(false),
        };
        let report = reconcile_locked(&config, &repo, &inner, "fresh-run", true)
            .unwrap_or_else(|e| panic!("{warmup:?}: {e:?}"));

        assert_eq!(
            (
                repo.prefetch.load(Ordering::SeqCst),
                repo.prefetch_records.load(Ordering::SeqCst)
            ),
            (1, 1),
            "{warmup:?}: one warm-up of each cache, on the first gather only"
        );
        assert!(
            !repo.waited_out.load(Ordering::SeqCst),
            "{warmup:?}: the warm-up's fetches did not start while the refs were listed"
        );
        let fetches_after_listing = repo.fetch.load(Ordering::SeqCst);
        match warmup {
            Warmup::Works => assert_eq!(
                fetches_after_listing, 0,
                "the warm-up fetched every commit the listing named"
            ),
            Warmup::Fails => assert_eq!(
                fetches_after_listing, 1,
                "the fetch after the listing makes up for a failed warm-up"
            ),
        }

        assert_eq!(report.moves.len(), 1, "{warmup:?}: {report:?}");
        let now = tag_digest(&config, "latest");
        assert_ne!(now, Some(before), "{warmup:?}: the channel moved");
        assert_eq!(
            now,
            tag_digest(&config, &format!("sha-{}", q.main())),
            "{warmup:?}: the channel names main's artifact"
        );
        let records = journal_records(&inner, &config);
        let kinds: Vec<_> = records.iter().rev().take(2).map(|r| r.entry.kind).collect();
        assert_eq!(
            kinds,
            vec![EntryKind::Moved, EntryKind::Intent],
            "{warmup:?}"
        );
        assert_chain_and_no_lock(&q, &records, &format!("{warmup:?}"));
        assert_eq!(
            Some(report.moves[0].to_digest.to_string()),
            now,
            "{warmup:?}: the one move is to main's artifact"
        );
    }
}
