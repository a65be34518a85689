//! Test support: real git repositories built with the git CLI, with fixed identities and
//! dates, in temporary directories. Nothing here is mocked.
#![allow(dead_code)] // each test binary uses a different part of it

pub mod history;

use mainline_core::CommitId;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A fixed, deterministic environment for every git command of the fixtures.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Fixture Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Fixture Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
        .env("LC_ALL", "C");
    cmd
}

/// Run git in `dir`, panic with its stderr on failure, return trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_stdin(dir, args, &[])
}

/// Like [`git`], feeding `stdin`.
pub fn git_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> String {
    let mut child = git_cmd(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().expect("git finishes");
    writer.join().expect("stdin writer");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Whether `git <args>` exits 0 (for oracles like `merge-base --is-ancestor`).
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_cmd(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs")
        .success()
}

pub fn commit_id(hex: &str) -> CommitId {
    hex.parse().expect("git printed a commit id")
}

/// A bare "remote" configured like GitHub (partial clone and fetch-by-id allowed) and a working
/// clone that pushes to it, in one temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub remote: PathBuf,
    pub work: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let remote = dir.path().join("remote.git");
        let work = dir.path().join("work");
        git(
            dir.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        configure_like_github(&remote);
        git(dir.path(), &["init", "--quiet", "-b", "main", "work"]);
        git(
            &work,
            &[
                "remote",
                "add",
                "origin",
                remote.to_str().expect("utf-8 path"),
            ],
        );
        Fixture { dir, remote, work }
    }

    /// The remote as a `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.remote.display())
    }

    /// A fresh cache root inside the fixture.
    pub fn cache_root(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `files` (path, content) in the working clone, commit them with `message` at
    /// `time`, and return the commit id.
    pub fn commit(&self, message: &str, files: &[(&str, &str)], time: i64) -> CommitId {
        for (path, content) in files {
            let full = self.work.join(path);
            std::fs::create_dir_all(full.parent().expect("file has a parent")).expect("mkdir");
            std::fs::write(&full, content).expect("write file");
        }
        git(&self.work, &["add", "-A"]);
        let date = format!("@{time} +0000");
        let out = git_cmd(&self.work)
            .args(["commit", "--quiet", "--allow-empty", "-m", message])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .expect("git commit runs");
        assert!(
            out.status.success(),
            "commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        commit_id(&git(&self.work, &["rev-parse", "HEAD"]))
    }

    /// Push the working clone's HEAD to `refname` on the remote.
    pub fn push(&self, refname: &str) {
        git(
            &self.work,
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("HEAD:{refname}"),
            ],
        );
    }

    /// Set a ref directly on the bare remote (as GitHub's merge queue does).
    pub fn set_remote_ref(&self, refname: &str, commit: &CommitId) {
        git(&self.remote, &["update-ref", refname, commit.as_str()]);
    }

    pub fn delete_remote_ref(&self, refname: &str) {
        git(&self.remote, &["update-ref", "-d", refname]);
    }
}

/// What GitHub allows and `git daemon`/file remotes do not by default.
pub fn configure_like_github(bare: &Path) {
    git(bare, &["config", "uploadpack.allowFilter", "true"]);
    git(bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
}

/// SplitMix64: a tiny deterministic generator, so a seed replays the same test on any machine
/// and any version of a random-number crate.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}
