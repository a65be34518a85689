//! Shared fixtures for the CLI tests: the real registry started by scripts/with-registry.sh,
//! real git repositories with fixed dates, and a runner for the `mainline` binary.
#![allow(dead_code)]

pub mod machine;
pub mod queue;

/// Run one behavioural test against both stores: `fn name(store: &str, tmp: &Path)` becomes
/// the tests `name::layout` (an OCI image layout in a temp dir) and `name::registry` (a fresh
/// repository on the real test registry). Use with `#[macro_use] mod support;`.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[test]
            fn layout() {
                let tmp = tempfile::tempdir().expect("tempdir");
                let store = super::layout_store(tmp.path(), "store");
                super::$name(&store, tmp.path());
            }
            #[test]
            fn registry() {
                let tmp = tempfile::tempdir().expect("tempdir");
                let name = stringify!($name);
                let store = super::registry_store(&name[..name.len().min(11)]);
                super::$name(&store, tmp.path());
            }
        }
    };
}

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// host:port of the open test registry. Fails loudly when it is not running.
pub fn registry() -> String {
    std::env::var("MAINLINE_TEST_REGISTRY").unwrap_or_else(|_| {
        panic!(
            "MAINLINE_TEST_REGISTRY is not set: these tests need a real docker-registry. \
             Run scripts/test.sh, or scripts/with-registry.sh cargo test -p mainline"
        )
    })
}

pub fn auth_registry() -> (String, String, String) {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run scripts/test.sh, or scripts/with-registry.sh cargo test")
        })
    };
    (
        get("MAINLINE_TEST_REGISTRY_AUTH"),
        get("MAINLINE_TEST_REGISTRY_USER"),
        get("MAINLINE_TEST_REGISTRY_PASSWORD"),
    )
}

/// A fresh repository name on the open registry, unique per test.
pub fn registry_store(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!(
        "oci://{}/test/{}-{}-{}",
        registry(),
        name,
        std::process::id(),
        n
    )
}

/// A fresh OCI layout store inside `dir`.
pub fn layout_store(dir: &Path, name: &str) -> String {
    format!("oci-layout:{}", dir.join(name).display())
}

/// Create an empty OCI image layout at `dir` (what the first push or promote would create):
/// read-only commands such as `status` refuse a path that is not a layout yet.
pub fn empty_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir layout");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    std::fs::write(
        dir.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .expect("write");
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mainline"))
}

/// Run mainline with `args` (plus --plain-http, for the loopback registry), isolated from the
/// user's docker config and git config.
pub fn mainline(args: &[&str]) -> Run {
    mainline_in(Path::new("."), args, &[])
}

pub fn mainline_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let empty = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd)
        .arg("--plain-http")
        .args(args)
        .env("DOCKER_CONFIG", empty.path())
        .env("HOME", empty.path())
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("MAINLINE_REGISTRY_USERNAME")
        .env_remove("MAINLINE_REGISTRY_PASSWORD")
        .env("MAINLINE_SOURCE", "https://example.com/acme/app");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mainline").into()
}

/// Run git with fixed identity and dates.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_at(dir, args, "2024-05-01T12:00:00Z")
}

pub fn git_at(dir: &Path, args: &[&str], date: &str) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Write files (path, content) under `root`, creating parent directories.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, c).expect("write");
    }
}

/// `mainline pull REFERENCE` into `out`, then the text of the pulled file `rel` there.
pub fn pulled_file(reference: &str, out: &Path, rel: &str) -> String {
    mainline(&[
        "pull",
        reference,
        "--output-dir",
        out.to_str().expect("utf-8"),
    ])
    .ok();
    std::fs::read_to_string(out.join(rel)).expect("pulled file")
}

/// A new repository at `root/repo` with one commit per step (its files written, then
/// everything committed at the step's date); returns (dir, commits oldest first).
pub fn repo_with_steps(root: &Path, steps: &[(&[(&str, &str)], &str)]) -> (PathBuf, Vec<String>) {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let mut commits = vec![];
    for (files, date) in steps {
        write_tree(&repo, files);
        git_at(&repo, &["add", "-A"], date);
        git_at(&repo, &["commit", "-q", "-m", "step"], date);
        commits.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    (repo, commits)
}

/// A repository whose commits A and B have the same `k8s/` tree (B only edits the README)
/// and C another one. Returns (repo, [A, B, C]).
pub fn same_tree_repo(root: &Path) -> (PathBuf, Vec<String>) {
    let steps: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("k8s/app.yaml", "kind: Deployment\nreplicas: 2\n"),
                ("k8s/base/svc.yaml", "kind: Service\n"),
                ("README.md", "v1\n"),
            ],
            "2024-05-01T10:00:00Z",
        ),
        (&[("README.md", "v2\n")], "2024-05-02T10:00:00Z"),
        (
            &[("k8s/app.yaml", "kind: Deployment\nreplicas: 3\n")],
            "2024-05-03T10:00:00Z",
        ),
    ];
    repo_with_steps(root, &steps)
}

/// A repository with a `k8s/` deploy folder and three commits; returns (dir, commits oldest first).
pub fn fixture_repo(root: &Path) -> (PathBuf, Vec<String>) {
    let steps: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("k8s/app.yaml", "kind: Deployment\nreplicas: 1\n"),
                ("README.md", "hi\n"),
            ],
            "2024-05-01T10:00:00Z",
        ),
        (
            &[
                ("k8s/base/svc.yaml", "kind: Service\n"),
                ("src/main.rs", "fn main(){}\n"),
            ],
            "2024-05-02T10:00:00Z",
        ),
        (
            &[("k8s/app.yaml", "kind: Deployment\nreplicas: 3\n")],
            "2024-05-03T10:00:00Z",
        ),
    ];
    repo_with_steps(root, &steps)
}

/// Count the HTTP requests the open registry logged so far.
pub fn registry_requests(store: &str) -> usize {
    // Only this store's repository: other tests run in parallel against the same registry.
    let repo = store
        .strip_prefix("oci://")
        .and_then(|r| r.split_once('/'))
        .map(|(_, repo)| repo)
        .expect("a registry store (oci://HOST/REPO)");
    let log = std::env::var("MAINLINE_TEST_REGISTRY_LOG")
        .expect("MAINLINE_TEST_REGISTRY_LOG is not set: run scripts/with-registry.sh");
    std::fs::read_to_string(log)
        .expect("read registry log")
        .lines()
        .filter(|l| l.contains("msg=\"response completed\"") && l.contains(&format!("/v2/{repo}/")))
        .count()
}
