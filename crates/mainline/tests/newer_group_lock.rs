//! "A newer group holds the channel" answers a deploy as deployed with that group (DESIGN.md, G):
//! a claim about what the channel keeps naming, so it is made under the lock, where no other
//! writer has a move in flight (`tests/sim_mainline.rs`,
//! `a_newer_group_holds_answer_is_given_under_the_lock`, replays the history that found it).
//! Here, on a real git remote through the executor: the late deploy of an older group takes the
//! lock, decides there, answers with the refusal, and leaves no lock and an intact journal.

mod support;

use mainline::adapters::git::GitRepo;
use mainline::channel::ports::{Cas, RefUpdate, Repo, RepoError, RepoWrapper};
use mainline::channel::ChannelConfig;
use mainline_core::{CommitId, RefuseReason, Request};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::machine::{
    assert_chain_and_no_lock, journal_records, layout_channel, machine, run_locked, tag_digest,
};
use support::queue::{deploy, first_deploy, Channel, Queue};

/// Counts the takes of the channel lock (a push creating the lock ref).
struct Takes<'a> {
    inner: &'a GitRepo,
    config: &'a ChannelConfig,
    takes: AtomicUsize,
}

impl Takes<'_> {
    fn count(&self, refname: &str, expected: Option<&CommitId>, new: Option<&CommitId>) {
        if refname == self.config.key.lock_ref() && expected.is_none() && new.is_some() {
            self.takes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl RepoWrapper for Takes<'_> {
    fn inner(&self) -> &dyn Repo {
        self.inner
    }

    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        self.count(refname, expected, new);
        self.inner.cas_ref(refname, expected, new)
    }

    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        for u in updates {
            self.count(&u.refname, u.expected.as_ref(), u.new.as_ref());
        }
        self.inner.cas_refs(updates)
    }
}

#[test]
fn a_late_deploy_that_a_newer_group_holds_answers_under_the_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let cli = Channel::new(channel.trim_end_matches(":latest"), &q, "cli");
    first_deploy(&cli, &q);
    // A and B are in the queue together, B built on A; B's candidate is deployed.
    let a = q.enqueue(1, &[("k8s/a.yaml", "kind: ConfigMap\nname: a\n")]);
    let b = q.enqueue_behind(2, &[("k8s/b.yaml", "kind: ConfigMap\nname: b\n")], &a);
    deploy(&cli, &a);
    let b_digest = deploy(&cli, &b);

    let (config, inner) = machine(&q, &channel, "runner-a");
    let repo = Takes {
        inner: &inner,
        config: &config,
        takes: AtomicUsize::new(0),
    };
    // A's deploy job retries late, while A is still in flight.
    let report = run_locked(
        &config,
        &repo,
        &inner,
        "runner-a",
        true,
        Request::DeployCandidate {
            group_id: a.id.clone(),
            head: a.head.parse().expect("a commit id"),
        },
    )
    .expect("the run");

    let refusal = report.refusal.as_ref().expect("a refusal");
    assert_eq!(refusal.reason, RefuseReason::NewerGroupHolds, "{report:?}");
    assert_eq!(
        repo.takes.load(Ordering::SeqCst),
        1,
        "the answer was given under the lock, taken once"
    );
    assert!(report.moves.is_empty(), "{report:?}");
    assert_eq!(
        tag_digest(&config, "latest"),
        Some(b_digest),
        "B's candidate is kept"
    );
    assert_chain_and_no_lock(&q, &journal_records(&inner, &config), "late deploy");
}
