//! Issue 10 item 9, wrong exit codes and hints: each case is a real fault on real parts (a git
//! repository as the remote, the real registry, an OCI layout, a real full disk) and checks the
//! exit code of the public contract and that the message does not send the user the wrong way.

mod support;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use support::*;

/// A fixture repository as the git remote, a channel on the real registry, and a cache.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    channel: String,
    cache: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_owned();
        let (repo, _) = fixture_repo(&root);
        Setup {
            channel: format!("{}:latest", registry_store(name)),
            cache: root.join("cache"),
            root,
            repo,
            _tmp: tmp,
        }
    }

    fn run(&self, cmd: &str, path: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            cmd,
            "--channel",
            &self.channel,
            "--git",
            self.repo.to_str().expect("utf-8"),
            "--path",
            path,
            "--cache-dir",
            self.cache.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        mainline_in(&self.root, &args, &[])
    }

    fn json(&self, cmd: &str) -> Value {
        self.run(cmd, "k8s", &["-o", "json"]).json()
    }

    /// A commit in the remote whose message is `message` (a record mainline cannot read).
    fn garbage_commit(&self, message: &str) -> String {
        let tree = git(&self.repo, &["rev-parse", "HEAD^{tree}"]);
        git(&self.repo, &["commit-tree", &tree, "-m", message])
    }
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().expect("a word").to_owned()
}

#[test]
fn a_deploy_path_missing_at_mainline_is_invalid_input_not_retry_later() {
    let s = Setup::new("nopath");
    let run = s.run("reconcile", "no-such-dir", &[]);
    assert_eq!(
        run.code, 2,
        "a missing path is the caller's input (2), not an outage (6)\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("no-such-dir"), "{}", run.stderr);
    assert!(!run.stderr.contains("retry later"), "{}", run.stderr);
}

#[test]
fn history_verify_of_an_unreadable_journal_record_is_integrity_not_unavailable() {
    let s = Setup::new("badjournal");
    let journal = s.json("history")["journal_ref"]
        .as_str()
        .expect("journal_ref")
        .to_owned();
    let record = s.garbage_commit("this is not a journal record");
    git(&s.repo, &["update-ref", &journal, &record]);
    let run = s.run("history", "k8s", &["--verify"]);
    assert_eq!(
        run.code, 8,
        "an unreadable journal is an integrity failure\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
}

#[test]
fn a_journal_ref_pointing_at_a_tree_is_not_reported_as_missing_from_the_remote() {
    let s = Setup::new("treejournal");
    let journal = s.json("history")["journal_ref"]
        .as_str()
        .expect("journal_ref")
        .to_owned();
    let tree = git(&s.repo, &["rev-parse", "HEAD^{tree}"]);
    git(&s.repo, &["update-ref", &journal, &tree]);
    let run = s.run("history", "k8s", &["--verify"]);
    assert_eq!(
        run.code, 8,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        !run.stderr.contains("not on the git remote"),
        "the tree is on the remote; saying otherwise is false:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("a tree") && run.stderr.contains(&tree),
        "{}",
        run.stderr
    );
}

fn assert_unreadable_lock(s: &Setup, lock: &str) {
    let run = s.run("reconcile", "k8s", &[]);
    assert_eq!(
        run.code, 4,
        "an unreadable lock is UNKNOWN (4): not an internal error, not free\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let delete = format!("git push {} :{lock}", s.repo.display());
    assert!(
        run.stderr.contains(&delete),
        "the hint must give the command that deletes the ref ({delete}):\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("check access"), "{}", run.stderr);
    let moved = mainline_in(&s.root, &["inspect", &s.channel], &[]);
    assert_ne!(moved.code, 0, "nothing may be written: {}", moved.stdout);
}

#[test]
fn a_garbage_lock_ref_is_unknown_and_says_how_to_delete_it() {
    let s = Setup::new("garbagelock");
    let lock = first_word(
        s.json("status")["lock"]
            .as_str()
            .expect("lock")
            .trim_start_matches("git: "),
    );
    let record = s.garbage_commit("garbage, not a lock record");
    git(&s.repo, &["update-ref", &lock, &record]);
    assert_unreadable_lock(&s, &lock);
}

#[test]
fn a_lock_ref_pointing_at_a_tree_is_unknown_and_says_how_to_delete_it() {
    let s = Setup::new("treelock");
    let lock = first_word(
        s.json("status")["lock"]
            .as_str()
            .expect("lock")
            .trim_start_matches("git: "),
    );
    let tree = git(&s.repo, &["rev-parse", "HEAD^{tree}"]);
    git(&s.repo, &["update-ref", &lock, &tree]);
    assert_unreadable_lock(&s, &lock);
}

/// Write a blob into an OCI layout and return its digest.
fn layout_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).expect("write blob");
    format!("sha256:{hex}")
}

#[test]
fn status_reports_the_foreign_digest_a_channel_names_instead_of_tag_absent() {
    let s = Setup::new("foreign");
    let layout = s.root.join("store");
    let store = format!("oci-layout:{}", layout.display());
    let push = [
        "push",
        "--git",
        s.repo.to_str().expect("utf-8"),
        "--commit",
        "main",
        "--path",
        "k8s",
        "--to",
        &store,
    ];
    mainline_in(&s.root, &push, &[]).ok();
    // Someone points `latest` at a manifest mainline did not make (no revision annotation).
    let config = layout_blob(&layout, b"{}");
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{config}\",\"size\":2}},\"layers\":[]}}"
    );
    let foreign = layout_blob(&layout, manifest.as_bytes());
    let index_path = layout.join("index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": foreign,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }));
    std::fs::write(&index_path, index.to_string()).expect("write index");

    let channel = format!("{store}:latest");
    let args = |out: &[&'static str]| -> Run {
        let mut a = vec![
            "status",
            "--channel",
            &channel,
            "--git",
            s.repo.to_str().expect("utf-8"),
            "--path",
            "k8s",
            "--cache-dir",
            s.cache.to_str().expect("utf-8"),
        ];
        a.extend_from_slice(out);
        mainline_in(&s.root, &a, &[])
    };
    let json = args(&["-o", "json"]).json();
    assert_eq!(json["channel_digest"], foreign.as_str(), "{json}");
    assert!(
        json["channel_note"]
            .as_str()
            .is_some_and(|n| n.contains("not made by mainline")),
        "{json}"
    );
    let text = args(&[]);
    assert!(
        !text.stdout.contains("tag absent") && text.stdout.contains(&foreign[7..19]),
        "the text report must show the digest the tag names:\n{}",
        text.stdout
    );
}

/// A tmpfs of `size` at `dir`, unmounted on drop (needs root, as CI has).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn pull_onto_a_full_disk_is_unavailable_and_says_no_space() {
    let s = Setup::new("fulldisk");
    // 256 KiB of text in the deploy tree: extracted, it cannot fit on a 64 KiB disk.
    let big: String = (0..8192).map(|i| format!("line {i:026}\n")).collect();
    write_tree(&s.repo, &[("k8s/big.yaml", &big)]);
    git(&s.repo, &["add", "-A"]);
    git(&s.repo, &["commit", "-q", "-m", "big"]);
    let store = format!("oci-layout:{}", s.root.join("store").display());
    let push = [
        "push",
        "--git",
        s.repo.to_str().expect("utf-8"),
        "--commit",
        "main",
        "--path",
        "k8s",
        "--to",
        &store,
    ];
    let pushed = mainline_in(&s.root, &push, &[("MAINLINE_TIMEOUT", "60s")]).ok();
    let commit = git(&s.repo, &["rev-parse", "HEAD"]);
    assert!(pushed.stdout.contains(&commit[..7]) || !pushed.stdout.is_empty());
    let Some(disk) = SmallDisk::mount(&s.root.join("small"), "64k") else {
        panic!("cannot mount a 64k tmpfs: this test needs root (CI runs as root)");
    };
    let out = disk.0.join("out");
    let reference = format!("{store}:sha-{commit}");
    let run = mainline_in(
        &s.root,
        &[
            "pull",
            &reference,
            "--output-dir",
            out.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(
        run.code, 6,
        "a full disk is not bad input: it is 6-like (retry when there is room)\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("no space"), "{}", run.stderr);
}
