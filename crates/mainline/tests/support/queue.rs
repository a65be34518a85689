//! A bare git remote driven the way GitHub's merge queue drives one, and a runner for the
//! channel commands against it.
//!
//! [`Queue`] owns a bare remote (what GitHub hosts) and a scratch clone (where PR authors and
//! the queue make commits). Like GitHub, it creates a group's speculative merge commit (a real
//! `--no-ff` merge of the PR onto its base: mainline, or the previous group's head) and pushes
//! it to `refs/heads/gh-readonly-queue/main/pr-<N>-<base sha>`; it deletes that ref when the
//! group fails, is cancelled or times out, and on merge fast-forwards `main` to the group's
//! head and deletes the ref in one atomic push. Direct pushes and force-pushes of `main` are
//! there too.
//!
//! Invariants: every commit gets a fixed identity and a date one minute after the previous
//! one (from 2024-05-01T10:00:00Z), so the same script gives the same commit ids on every
//! machine; nothing reads the user's git config.
//! Must never: touch anything outside the directory it was given.

use super::{git, git_at, mainline_in, write_tree, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The deploy folder every scenario uses.
pub const DEPLOY_PATH: &str = "k8s";

/// A merge group in flight: its number, base, speculative merge commit and queue ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub pr: u64,
    /// What the group was built on: mainline's tip, or the previous group's head.
    pub base: String,
    /// The speculative merge commit (the group's head).
    pub head: String,
    /// The queue ref without `refs/heads/`: mainline's group id.
    pub id: String,
}

/// A bare remote with a protected `main`, and the queue that writes to it.
pub struct Queue {
    pub root: PathBuf,
    pub remote: PathBuf,
    work: PathBuf,
    tick: u32,
}

impl Queue {
    /// A bare remote whose `main` has one commit with `k8s/app.yaml` (replicas: 1) and a README.
    pub fn new(root: &Path) -> Queue {
        let remote = root.join("remote.git");
        let work = root.join("work");
        std::fs::create_dir_all(&work).expect("mkdir work");
        git(
            root,
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                remote.to_str().expect("utf-8 path"),
            ],
        );
        git(&work, &["init", "-q", "-b", "main"]);
        git(
            &work,
            &[
                "remote",
                "add",
                "origin",
                remote.to_str().expect("utf-8 path"),
            ],
        );
        let mut q = Queue {
            root: root.to_path_buf(),
            remote,
            work,
            tick: 0,
        };
        q.push_main(
            &[
                ("k8s/app.yaml", "kind: Deployment\nreplicas: 1\n"),
                ("README.md", "app\n"),
            ],
            "initial",
        );
        q
    }

    /// The remote as mainline's `--git` takes it.
    pub fn url(&self) -> String {
        self.remote.display().to_string()
    }

    /// The scratch clone where commits are made (for commits the helpers cannot express).
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// `main` on the remote now.
    pub fn main(&self) -> String {
        self.remote_ref("refs/heads/main").expect("main exists")
    }

    /// A ref on the remote, or `None`.
    pub fn remote_ref(&self, refname: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["--git-dir", self.remote.to_str().expect("utf-8 path")])
            .args([
                "rev-parse",
                "-q",
                "--verify",
                &format!("{refname}^{{commit}}"),
            ])
            .output()
            .expect("run git rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Every ref on the remote under `prefix` (e.g. `refs/mainline/`).
    pub fn refs_under(&self, prefix: &str) -> Vec<String> {
        let out = git(
            &self.root,
            &[
                "--git-dir",
                self.remote.to_str().expect("utf-8 path"),
                "for-each-ref",
                "--format=%(refname)",
                prefix,
            ],
        );
        out.lines().map(str::to_owned).collect()
    }

    /// The in-flight groups' queue refs on the remote.
    pub fn queue_refs(&self) -> Vec<String> {
        self.refs_under("refs/heads/gh-readonly-queue/")
    }

    fn next_date(&mut self) -> String {
        let t = self.tick;
        self.tick += 1;
        format!("2024-05-01T{:02}:{:02}:00Z", 10 + t / 60, t % 60)
    }

    /// A commit on top of `parent` writing `files`; not pushed.
    pub fn commit_on(&mut self, parent: Option<&str>, files: &[(&str, &str)], msg: &str) -> String {
        if let Some(p) = parent {
            git(&self.work, &["checkout", "-q", "--detach", p]);
        }
        write_tree(&self.work, files);
        let date = self.next_date();
        git_at(&self.work, &["add", "-A"], &date);
        git_at(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &date,
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    fn push(&self, refspecs: &[&str]) {
        let mut args = vec!["push", "-q", "--atomic", "origin"];
        args.extend_from_slice(refspecs);
        git(&self.work, &args);
    }

    /// A direct push to `main` (no queue): a commit on main's tip writing `files`.
    pub fn push_main(&mut self, files: &[(&str, &str)], msg: &str) -> String {
        let parent = self.remote_ref("refs/heads/main");
        let c = self.commit_on(parent.as_deref(), files, msg);
        self.push(&[&format!("{c}:refs/heads/main")]);
        c
    }

    /// Force-push `main` to `commit` (e.g. to remove a landed commit).
    pub fn force_push_main(&self, commit: &str) {
        self.push(&[&format!("+{commit}:refs/heads/main")]);
    }

    /// PR #`pr`'s branch: one commit writing `files`, forked from main's tip, pushed to
    /// `refs/pull/<pr>/head` as GitHub keeps it.
    pub fn open_pr(&mut self, pr: u64, files: &[(&str, &str)]) -> String {
        let main = self.main();
        let c = self.commit_on(Some(&main), files, &format!("PR #{pr}"));
        self.push(&[&format!("{c}:refs/pull/{pr}/head")]);
        c
    }

    /// Enqueue PR #`pr` (branch head `pr_head`) on `base`: the queue makes the speculative
    /// merge commit and pushes its `gh-readonly-queue` ref.
    pub fn enqueue_on(&mut self, pr: u64, pr_head: &str, base: &str) -> Group {
        git(&self.work, &["checkout", "-q", "--detach", base]);
        let date = self.next_date();
        git_at(
            &self.work,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-m",
                &format!("Merge pull request #{pr}"),
                pr_head,
            ],
            &date,
        );
        let head = git(&self.work, &["rev-parse", "HEAD"]);
        let id = format!("gh-readonly-queue/main/pr-{pr}-{base}");
        self.push(&[&format!("{head}:refs/heads/{id}")]);
        Group {
            pr,
            base: base.to_owned(),
            head,
            id,
        }
    }

    /// Open PR #`pr` writing `files` and enqueue it on mainline's tip.
    pub fn enqueue(&mut self, pr: u64, files: &[(&str, &str)]) -> Group {
        let pr_head = self.open_pr(pr, files);
        let main = self.main();
        self.enqueue_on(pr, &pr_head, &main)
    }

    /// Open PR #`pr` and enqueue it behind `ahead` (its group contains `ahead`'s changes).
    pub fn enqueue_behind(&mut self, pr: u64, files: &[(&str, &str)], ahead: &Group) -> Group {
        let pr_head = self.open_pr(pr, files);
        self.enqueue_on(pr, &pr_head, &ahead.head)
    }

    /// The group failed, was cancelled, timed out or was invalidated: GitHub deletes its ref.
    pub fn end(&self, g: &Group) {
        self.push(&[&format!(":refs/heads/{}", g.id)]);
    }

    /// The group's checks passed: main fast-forwards to its head, its ref goes, atomically.
    pub fn merge(&self, g: &Group) {
        assert_eq!(
            self.main(),
            g.base,
            "the queue merges a group only onto its base"
        );
        self.push(&[
            &format!("{}:refs/heads/main", g.head),
            &format!(":refs/heads/{}", g.id),
        ]);
    }

    /// Push `commit` to `refs/heads/<branch>` (e.g. a candidate branch on a host without a
    /// merge queue).
    pub fn push_branch(&self, branch: &str, commit: &str) {
        self.push(&[&format!("{commit}:refs/heads/{branch}")]);
    }
}

/// `mainline` channel commands for one channel, against a [`Queue`]'s remote.
#[derive(Clone)]
pub struct Channel {
    /// `oci://HOST/REPO` or `oci-layout:PATH`.
    pub store: String,
    pub git: String,
    pub cache: PathBuf,
    /// Extra flags every command gets (e.g. `--require-signature`).
    pub extra: Vec<String>,
    /// The working directory the binary runs in (holds no mainline.toml).
    pub cwd: PathBuf,
}

impl Channel {
    pub fn new(store: &str, queue: &Queue, cache_name: &str) -> Channel {
        Channel {
            store: store.to_owned(),
            git: queue.url(),
            cache: queue.root.join(cache_name),
            extra: vec![],
            cwd: queue.root.clone(),
        }
    }

    /// The same channel seen from another machine: a fresh, empty cache.
    pub fn elsewhere(&self, cache_name: &str) -> Channel {
        Channel {
            cache: self.cwd.join(cache_name),
            ..self.clone()
        }
    }

    pub fn with(&self, flags: &[&str]) -> Channel {
        let mut c = self.clone();
        c.extra.extend(flags.iter().map(|s| s.to_string()));
        c
    }

    /// `STORE:latest`.
    pub fn reference(&self) -> String {
        format!("{}:latest", self.store)
    }

    /// Run `mainline <args…> --channel … --git … --path k8s --cache-dir … -o json`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let cache = self.cache.display().to_string();
        let reference = self.reference();
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--channel",
            &reference,
            "--git",
            &self.git,
            "--path",
            DEPLOY_PATH,
            "--cache-dir",
            &cache,
            "-o",
            "json",
        ]);
        all.extend(self.extra.iter().map(String::as_str));
        mainline_in(&self.cwd, &all, env)
    }

    /// `status -o json`, with its exit code checked against `expect_code`.
    pub fn status(&self, expect_code: i32) -> Value {
        let r = self.run(&["status"]);
        assert_eq!(
            r.code, expect_code,
            "status exit code\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.json()
    }

    /// Run a command that must exit with `code`; its JSON report.
    pub fn expect(&self, args: &[&str], code: i32) -> Value {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "mainline {args:?}: exit code\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.json()
    }

    /// Push `commit`'s artifact from git objects as CI would (`mainline push --git`).
    pub fn push_artifact(&self, commit: &str) -> String {
        let r = mainline_in(
            &self.cwd,
            &[
                "push",
                "--git",
                &self.git,
                "--commit",
                commit,
                "--path",
                DEPLOY_PATH,
                "--to",
                &self.store,
                "-o",
                "json",
            ],
            &[],
        )
        .ok();
        r.json()["digest"].as_str().expect("digest").to_owned()
    }

    /// The exact manifest bytes `tag` names (read by skopeo), or `None` when the tag is absent.
    pub fn raw_manifest(&self, tag: &str) -> Option<Vec<u8>> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect").arg("--raw");
        match self.store.strip_prefix("oci-layout:") {
            Some(path) => cmd.arg(format!("oci:{path}:{tag}")),
            None => cmd.arg("--tls-verify=false").arg(format!(
                "docker://{}:{tag}",
                self.store.strip_prefix("oci://").expect("oci:// store")
            )),
        };
        let out = cmd.output().expect("run skopeo (apt-get install skopeo)");
        out.status.success().then_some(out.stdout)
    }

    /// `sha256:<hex>` of what `tag` names now, computed from its bytes; `None` when absent.
    pub fn digest(&self, tag: &str) -> Option<String> {
        self.raw_manifest(tag).map(|b| sha256(&b))
    }
}

/// `sha256:<hex>` of `bytes` (by sha256sum, so the test does not trust our own hashing).
pub fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", hex.split_whitespace().next().expect("a hash"))
}

/// A JSON string field, or `None` for null/absent.
pub fn field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The open registry's log lines for requests to `store`'s repository (other tests share the
/// registry, so lines are filtered by repository). Empty for a layout store.
pub fn requests_to(store: &str) -> Vec<String> {
    let Some(rest) = store.strip_prefix("oci://") else {
        return vec![];
    };
    let repo = rest.split_once('/').expect("oci://HOST/REPO").1;
    let log = std::env::var("MAINLINE_TEST_REGISTRY_LOG")
        .expect("MAINLINE_TEST_REGISTRY_LOG is not set: run scripts/with-registry.sh");
    std::fs::read_to_string(log)
        .expect("read registry log")
        .lines()
        .filter(|l| l.contains("response completed") && l.contains(&format!("/v2/{repo}/")))
        .map(str::to_owned)
        .collect()
}

pub fn app(replicas: u32) -> String {
    format!("kind: Deployment\nreplicas: {replicas}\n")
}

pub fn verdict(v: &Value) -> &str {
    field(v, "verdict").expect("verdict")
}

pub fn moves(v: &Value) -> &Vec<Value> {
    v["moves"].as_array().expect("moves")
}

pub fn short(c: &str) -> &str {
    &c[..12]
}

/// Promote mainline's tip (first deploy) and return the digest the channel names.
pub fn first_deploy(ch: &Channel, q: &Queue) -> String {
    let r = ch.expect(&["promote"], 0);
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
    let d = ch.digest("latest").expect("channel written");
    assert_eq!(ch.digest(&format!("sha-{}", q.main())).as_ref(), Some(&d));
    d
}

/// Deploy group `g`'s candidate; returns the channel's digest afterwards.
pub fn deploy(ch: &Channel, g: &Group) -> String {
    let r = ch.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        0,
    );
    assert_eq!(field(&r, "final_verdict"), Some("CANDIDATE"), "{r}");
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(moves(&r)[0]["action"], "deploy_candidate");
    let d = ch.digest("latest").expect("channel");
    assert_eq!(ch.digest(&format!("sha-{}", g.head)).as_ref(), Some(&d));
    d
}
