//! Record commits: deterministic empty-tree commits with a fixed identity and explicit time,
//! chained by parents, pushed with compare-and-swap, and read back in order from another
//! cache directory.

mod support;

use mainline_git::{CasOutcome, GitError, GitRemote};
use support::{git, Fixture};

const JOURNAL: &str = "refs/mainline/journal/prod";

#[test]
fn a_chain_of_three_records_round_trips_through_the_remote() {
    let fx = Fixture::new();
    let head = fx.commit("deploy me", &[("k8s/a", "1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let writer = GitRemote::open(&fx.url(), &fx.cache_root("writer")).expect("open");
    writer
        .fetch(&[head.to_string()])
        .expect("fetch the group head");

    let messages = [
        "record 1\n\n{\"to\":\"a\"}\n",
        "record 2\n",
        "record 3 ünïcode\n",
    ];
    let mut tip: Option<mainline_core::CommitId> = None;
    let mut chain = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mut parents: Vec<_> = tip.iter().cloned().collect();
        if i == 1 {
            // A group head as second parent keeps it reachable on the remote.
            parents.push(head.clone());
        }
        let record = writer
            .create_record_commit(message, &parents, 1_700_000_100 + i as i64)
            .expect("record");
        assert_eq!(
            writer
                .push_ref_cas(JOURNAL, tip.as_ref(), Some(&record))
                .expect("append"),
            CasOutcome::Updated
        );
        chain.push(record.clone());
        tip = Some(record);
    }

    // Deterministic: the same inputs give the same id, also in another cache.
    let reader = GitRemote::open(&fx.url(), &fx.cache_root("reader")).expect("open");
    let fetched = reader
        .fetch_ref_chain(JOURNAL)
        .expect("fetch")
        .expect("journal exists");
    assert_eq!(Some(&fetched), tip.as_ref());

    // Walk back from the tip along first parents: newest first, messages intact.
    let mut walked = Vec::new();
    let mut at = Some(fetched);
    while let Some(commit) = at {
        let parents = reader.parents(&commit).expect("parents");
        walked.push((
            commit.clone(),
            reader.commit_message(&commit).expect("message"),
        ));
        at = parents.first().cloned();
    }
    walked.reverse();
    let ids: Vec<_> = walked.iter().map(|(c, _)| c.clone()).collect();
    let texts: Vec<_> = walked.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(ids, chain);
    assert_eq!(texts, messages);
    assert_eq!(
        reader.parents(&chain[1]).expect("parents"),
        vec![chain[0].clone(), head.clone()]
    );
    assert!(reader.parents(&chain[0]).expect("parents").is_empty());

    // Identity, time and tree, as git sees them on the remote.
    let shown = git(
        &fx.remote,
        &[
            "show",
            "-s",
            "--format=%an <%ae>|%cn <%ce>|%at|%ct|%T",
            chain[2].as_str(),
        ],
    );
    assert_eq!(
        shown,
        "mainline <mainline@localhost>|mainline <mainline@localhost>|1700000102|1700000102|4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    let again = reader
        .create_record_commit(messages[0], &[], 1_700_000_100)
        .expect("same record");
    assert_eq!(again, chain[0], "record commits are deterministic");
    let snap = reader.snapshot().expect("snapshot");
    assert_eq!(snap.commit_time(&chain[1]).expect("time"), 1_700_000_101);
    assert!(snap
        .is_ancestor(&head, &chain[2])
        .expect("the group head is in the chain's history"));
}

#[test]
fn fetching_an_absent_chain_is_none_and_forgets_a_stale_copy() {
    let fx = Fixture::new();
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    assert_eq!(remote.fetch_ref_chain(JOURNAL).expect("fetch"), None);

    let record = remote
        .create_record_commit("only\n", &[], 1_700_000_000)
        .expect("record");
    assert_eq!(
        remote
            .push_ref_cas(JOURNAL, None, Some(&record))
            .expect("create"),
        CasOutcome::Updated
    );
    assert_eq!(
        remote.fetch_ref_chain(JOURNAL).expect("fetch"),
        Some(record.clone())
    );
    assert_eq!(
        remote
            .snapshot()
            .expect("snap")
            .resolve(JOURNAL)
            .expect("cached"),
        record
    );

    fx.delete_remote_ref(JOURNAL);
    assert_eq!(remote.fetch_ref_chain(JOURNAL).expect("fetch"), None);
    let err = remote
        .snapshot()
        .expect("snap")
        .resolve(JOURNAL)
        .expect_err("forgotten");
    assert!(matches!(err, GitError::Unresolved { .. }), "{err}");
}

#[test]
fn record_inputs_are_validated() {
    let fx = Fixture::new();
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let err = remote
        .create_record_commit("nul\0byte", &[], 0)
        .expect_err("NUL");
    assert!(matches!(err, GitError::InvalidMessage { .. }), "{err}");
    let ghost: mainline_core::CommitId = "0123456789abcdef0123456789abcdef01234567"
        .parse()
        .expect("hex");
    let err = remote
        .create_record_commit("x\n", &[ghost], 0)
        .expect_err("unknown parent");
    assert!(matches!(err, GitError::NotInCache { .. }), "{err}");
}

#[test]
fn a_record_can_name_a_group_head_whose_queue_ref_is_already_gone() {
    let fx = Fixture::new();
    let base = fx.commit("base", &[("k8s/a", "1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let group = fx.commit(
        "group",
        &[("k8s/a", "2\n"), ("k8s/b", "new\n")],
        1_700_000_100,
    );
    let queue_ref = format!("refs/heads/gh-readonly-queue/main/pr-3-{base}");
    fx.push(&queue_ref);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    remote
        .fetch(&[group.to_string()])
        .expect("blob-less fetch of the group head");
    // The group ends before the record is pushed: the remote no longer advertises its head,
    // and the cache never had its blobs.
    fx.delete_remote_ref(&queue_ref);

    let record = remote
        .create_record_commit(
            "lease of group 3\n",
            std::slice::from_ref(&group),
            1_700_000_200,
        )
        .expect("record");
    let lease = "refs/mainline/lease/prod/3";
    assert_eq!(
        remote
            .push_ref_cas(lease, None, Some(&record))
            .expect("push"),
        CasOutcome::Updated
    );
    // The remote is consistent and the group head is reachable again, through the record.
    git(
        &fx.remote,
        &["fsck", "--connectivity-only", "--no-progress"],
    );
    let reachable = git(&fx.remote, &["rev-list", lease]);
    assert!(
        reachable.lines().any(|l| l == group.as_str()),
        "{reachable}"
    );
}

/// A journal's tail asked for by the listed commit's id: the records arrive (newest `depth`
/// of them), the local copy of the ref names that commit, and an id the remote does not
/// serve is an error that changes nothing (the caller then reads by name).
#[test]
fn a_tail_fetched_by_the_listed_id_reads_like_one_fetched_by_name() {
    let fx = Fixture::new();
    let writer = GitRemote::open(&fx.url(), &fx.cache_root("writer")).expect("open");
    let mut tip: Option<mainline_core::CommitId> = None;
    let mut chain = Vec::new();
    for i in 0..5 {
        let parents: Vec<_> = tip.iter().cloned().collect();
        let record = writer
            .create_record_commit(&format!("record {i}\n"), &parents, 1_700_000_000 + i)
            .expect("record");
        writer
            .push_ref_cas(JOURNAL, tip.as_ref(), Some(&record))
            .expect("append");
        chain.push(record.clone());
        tip = Some(record);
    }
    let head = tip.expect("a head");
    let reader = GitRemote::open(&fx.url(), &fx.cache_root("reader"))
        .expect("open")
        .records_cache()
        .expect("records cache");
    reader
        .fetch_commit_tail(JOURNAL, &head, 2)
        .expect("fetch by id");
    assert_eq!(reader.commit_message(&head).expect("head"), "record 4\n");
    assert_eq!(
        reader.commit_message(&chain[3]).expect("its parent"),
        "record 3\n"
    );
    assert!(
        reader.commit_message(&chain[1]).is_err(),
        "depth 2 brings two records, not the chain"
    );
    assert_eq!(
        git(
            reader.cache_path(),
            &["rev-parse", &format!("refs/mainline-cache/{JOURNAL}")]
        ),
        head.to_string(),
        "the local copy of the ref names the listed commit"
    );
    let absent: mainline_core::CommitId = "0123456789abcdef0123456789abcdef01234567"
        .parse()
        .expect("id");
    assert!(reader.fetch_commit_tail(JOURNAL, &absent, 2).is_err());
    assert_eq!(
        git(
            reader.cache_path(),
            &["rev-parse", &format!("refs/mainline-cache/{JOURNAL}")]
        ),
        head.to_string(),
        "a failed fetch changes nothing"
    );
}
