//! Reading the journal's newest records without the whole chain, and `history --verify`
//! resuming from a checkpoint (issue 21, item 3): real bare git remotes holding hash-chained
//! records written with `git fast-import` exactly as mainline appends them, read by the built
//! binary. A checkpoint is trusted only while its record is still on the chain unchanged.

mod support;

use mainline::channel::journal::{Entry, EntryKind};
use mainline_core::Timestamp;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const CHANNEL_REF: &str = "latest";

/// Write records `from..=to` onto `refname` of `remote`, continuing the chain whose last entry
/// is `prev` (`None`: a new chain). `tamper` changes the reason of that seq after hashing it
/// into nothing (its successor keeps the honest hash: a break). Returns the last entry.
fn chain(
    remote: &Path,
    refname: &str,
    from: u64,
    to: u64,
    prev: Option<Entry>,
    reason: &str,
    tamper: Option<u64>,
) -> Entry {
    let mut child = Command::new("git")
        .current_dir(remote)
        .args(["fast-import", "--quiet", "--force"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut w = child.stdin.take().expect("stdin");
    let mut last = prev;
    let parent = if from > 1 {
        support::git(remote, &["rev-parse", refname])
    } else {
        String::new()
    };
    for seq in from..=to {
        let mut e = Entry::new(
            "oci-layout:x:latest",
            EntryKind::Pin,
            "test@example",
            reason,
            Timestamp(1_714_564_800_000 + seq as i64 * 1000),
        );
        e.seq = seq;
        e.prev = last.as_ref().map(Entry::hash);
        let mut stored = e.clone();
        if tamper == Some(seq) {
            stored.reason = "rewritten afterwards".into();
        }
        let msg = format!("mainline journal #{seq} pin\n\n{}\n", stored.json());
        write!(
            w,
            "commit {refname}\ncommitter m <m@localhost> {} +0000\ndata {}\n{msg}\n",
            1_714_564_800 + seq,
            msg.len()
        )
        .expect("write");
        if seq == from && from > 1 && !parent.is_empty() {
            writeln!(w, "from {parent}").expect("write");
        }
        last = Some(e);
    }
    drop(w);
    assert!(child.wait().expect("wait").success());
    last.expect("at least one record")
}

struct Fixture {
    dir: tempfile::TempDir,
    remote: std::path::PathBuf,
    refname: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_repo, _) = support::fixture_repo(dir.path());
        support::git(dir.path(), &["clone", "-q", "--bare", "repo", "remote.git"]);
        support::empty_layout(&dir.path().join("store"));
        let remote = dir.path().join("remote.git");
        let mut f = Fixture {
            dir,
            remote,
            refname: String::new(),
        };
        f.refname = f.history(&[]).json()["journal_ref"]
            .as_str()
            .expect("ref")
            .to_owned();
        f
    }

    fn history(&self, extra: &[&str]) -> support::Run {
        let channel = format!(
            "oci-layout:{}:{CHANNEL_REF}",
            self.dir.path().join("store").display()
        );
        let cache = self.dir.path().join("cache");
        let mut args = vec![
            "history",
            "-o",
            "json",
            "--channel",
            &channel,
            "--git",
            self.remote.to_str().expect("utf8"),
            "--path",
            "k8s",
        ];
        args.extend_from_slice(extra);
        support::mainline_in(
            self.dir.path(),
            &args,
            &[("MAINLINE_CACHE_DIR", cache.to_str().expect("utf8"))],
        )
    }
}

#[test]
fn last_reads_the_newest_records_and_verify_resumes_from_its_checkpoint() {
    let f = Fixture::new();
    let head = chain(&f.remote, &f.refname, 1, 2000, None, "first", None);

    let last = f.history(&["--last", "3"]).ok().json();
    let seqs: Vec<u64> = last["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![1998, 1999, 2000]);

    // First verify: no checkpoint, the whole chain. Second: resumed, nothing new to check.
    let v1 = f.history(&["--last", "5", "--verify"]).ok().json();
    assert_eq!(v1["verified"], serde_json::json!([]));
    assert_eq!(v1["verified_records"], 2000);
    assert!(v1["verified_from"].is_null());
    let v2 = f.history(&["--last", "5", "--verify"]).ok().json();
    assert_eq!(v2["verified_from"], 2000);
    assert_eq!(v2["verified_records"], 0);

    // 10 more records: only they are checked, against the checkpoint's hash.
    chain(&f.remote, &f.refname, 2001, 2010, Some(head), "more", None);
    let v3 = f.history(&["--last", "5", "--verify"]).ok().json();
    assert_eq!(
        (
            v3["verified_from"].as_u64(),
            v3["verified_records"].as_u64()
        ),
        (Some(2010 - 10), Some(10))
    );

    // The chain is rewritten under the checkpoint (a consistent forgery): the checkpoint's
    // record is not there any more, so the whole chain is checked again, not trusted.
    support::git(&f.remote, &["update-ref", "-d", &f.refname]);
    chain(&f.remote, &f.refname, 1, 2020, None, "forged", None);
    let v4 = f.history(&["--last", "5", "--verify"]).ok().json();
    assert!(v4["verified_from"].is_null(), "{v4}");
    assert_eq!(v4["verified_records"], 2020);

    // A break above the checkpoint is found by the resumed check (exit 8).
    let forged_head = f.history(&["--last", "1"]).ok().json()["records"][0].clone();
    let prev: Entry = serde_json::from_value(forged_head).expect("entry");
    chain(
        &f.remote,
        &f.refname,
        2021,
        2030,
        Some(prev),
        "tampered",
        Some(2025),
    );
    let v5 = f.history(&["--last", "5", "--verify"]);
    assert_eq!(v5.code, 8, "{}{}", v5.stdout, v5.stderr);
    let j = v5.json();
    assert_eq!(j["verified_from"], 2020);
    assert_eq!(j["verified"][0]["seq"], 2026, "{j}");
}

/// Every commit object in the bare repository at `git_dir` (shallow or not).
fn commits_in(git_dir: &Path) -> usize {
    let out = Command::new("git")
        .args(["--git-dir", git_dir.to_str().expect("utf8")])
        .args([
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype)",
        ])
        .output()
        .expect("git cat-file");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "commit")
        .count()
}

#[test]
fn a_fresh_cache_fetches_the_tail_of_a_long_journal_not_the_chain() {
    let f = Fixture::new();
    chain(&f.remote, &f.refname, 1, 3000, None, "long", None);

    let last = f.history(&["--last", "3"]).ok().json();
    assert_eq!(last["records"][2]["seq"], 3000, "{last}");
    // Records sit in their own cache beside the commit cache, fetched 256 deep.
    let caches: Vec<std::path::PathBuf> = std::fs::read_dir(f.dir.path().join("cache/git"))
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "git"))
        .collect();
    let records = caches
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".records.git"))
        .expect("a records cache");
    let commits = caches
        .iter()
        .find(|p| !p.to_string_lossy().ends_with(".records.git"))
        .expect("a commit cache");
    let fetched = commits_in(records);
    assert!(
        (3..=300).contains(&fetched),
        "the tail read fetched {fetched} of 3000 records"
    );
    assert!(
        !commits.join("shallow").exists(),
        "the commit cache must never become shallow (git drops its commit-graph)"
    );
    assert!(
        commits_in(commits) < 10,
        "records leaked into the commit cache"
    );

    // The whole chain is still there for whoever walks it: fetched deeper on each miss.
    let all = f.history(&["--verify"]).ok().json();
    assert_eq!(all["records"].as_array().map(Vec::len), Some(3000));
    assert_eq!(all["verified"], serde_json::json!([]));
    assert_eq!(commits_in(records), 3000);
}

/// A journal ref that something other than mainline pointed at a tree (a hostile or broken
/// tool; `git push` accepts it outside `refs/heads/`): a fresh runner, which asks for the
/// journal's head by id, and a warm one, which reads it by name, both refuse with exit 8
/// (integrity) naming the ref, and the channel is not written.
#[test]
fn a_journal_ref_pointing_at_a_tree_is_an_integrity_error_for_fresh_and_warm_runners() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = support::queue::Queue::new(tmp.path());
    let store = format!("oci-layout:{}", tmp.path().join("store").display());
    let ch = support::queue::Channel::new(&store, &q, "warm");
    let before = support::queue::first_deploy(&ch, &q);
    q.push_main(
        &[("k8s/app.yaml", &support::queue::app(5))],
        "main changes the deploy tree",
    );
    let journal = q.refs_under("refs/mainline/journal/");
    assert_eq!(journal.len(), 1, "{journal:?}");
    let tree = support::git(q.work(), &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    support::git(
        q.work(),
        &[
            "push",
            "-q",
            "--force",
            &q.url(),
            &format!("{}:{}", tree.trim(), journal[0]),
        ],
    );
    for runner in [ch.elsewhere("fresh"), ch] {
        let r = runner.run(&["reconcile"]);
        assert_eq!(
            r.code, 8,
            "exit 8 (integrity)\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.contains(&journal[0]) || r.stdout.contains(&journal[0]),
            "the error names the ref {}:\n{}\n{}",
            journal[0],
            r.stdout,
            r.stderr
        );
        assert_eq!(
            runner.digest("latest").as_deref(),
            Some(before.as_str()),
            "the channel was not written"
        );
    }
}
