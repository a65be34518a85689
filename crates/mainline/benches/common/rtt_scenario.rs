//! The channel at a distance: a bare git remote served over smart HTTP and the test registry
//! behind a delaying proxy ([`crate::http_delay`]), with the cases of issue 15's table —
//! no-op reconcile, deploy --candidate, restore (warm and fresh cache) — and the hand-made
//! locked restore (git + curl) that is the floor. Shared by the `rtt` bench and the
//! `request_counts` test (`#[path]`); every request either side sends is counted.
#![allow(dead_code)]

use crate::http_delay::Server;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Scenario {
    pub bin: PathBuf,
    pub root: PathBuf,
    /// The bare remote on disk (setup pushes here directly, uncounted).
    pub remote_dir: PathBuf,
    pub remote_url: String,
    pub work: PathBuf,
    pub registry: Server,
    pub git: Server,
    /// `HOST:PORT/REPO` through the proxy.
    pub repo_ref: String,
    pub channel: String,
    /// Registries and caches made by this scenario: a fresh name per cold run.
    runs: std::cell::Cell<usize>,
}

/// One measured command: wall time and the requests each server saw.
pub struct Sample {
    pub ms: f64,
    pub registry: Vec<String>,
    pub git: Vec<String>,
}

impl Scenario {
    /// Sets up a remote whose main holds `k8s/` (200 small manifests), promotes it, and warms
    /// the `runner` cache. `registry` is the test registry's `HOST:PORT`.
    pub fn new(bin: PathBuf, root: &Path, registry: &str, name: &str) -> Scenario {
        let git_root = root.join("git");
        std::fs::create_dir_all(&git_root).expect("mkdir");
        let registry = Server::proxy(registry, Duration::ZERO);
        let git = Server::git(&git_root, Duration::ZERO);
        let repo_ref = format!("{}/rtt/{name}-{}", registry.addr, std::process::id());
        let s = Scenario {
            bin,
            root: root.to_owned(),
            remote_dir: git_root.join("remote.git"),
            remote_url: format!("http://{}/remote.git", git.addr),
            work: root.join("work"),
            channel: format!("oci://{repo_ref}:latest"),
            repo_ref,
            registry,
            git,
            runs: std::cell::Cell::new(0),
        };
        s.init_remote();
        s.mainline(&["promote"], "runner", &[0]);
        s.mainline(&["reconcile"], "runner", &[0]);
        s
    }

    pub fn set_delays(&self, registry: Duration, git: Duration) {
        self.registry.set_delay(registry);
        self.git.set_delay(git);
    }

    pub fn git_cli(&self, args: &[&str]) -> String {
        crate::common::git(&self.work, args)
    }

    fn init_remote(&self) {
        std::fs::create_dir_all(&self.work).expect("mkdir");
        let remote = self.remote_dir.to_str().expect("utf-8");
        self.git_cli(&["init", "-q", "--bare", "-b", "main", remote]);
        self.git_cli(&["init", "-q", "-b", "main"]);
        self.git_cli(&["remote", "add", "origin", remote]);
        for i in 0..200 {
            let dir = self.work.join(format!("k8s/team-{}", i % 10));
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(
                dir.join(format!("cm-{i}.yaml")),
                format!("kind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{k: v{i}}}\n"),
            )
            .expect("write");
        }
        std::fs::write(self.work.join("README.md"), "bench\n").expect("write");
        self.git_cli(&["add", "-A"]);
        self.git_cli(&["commit", "-q", "-m", "initial"]);
        self.git_cli(&["push", "-q", "origin", "main"]);
    }

    pub fn main(&self) -> String {
        self.git_cli(&["fetch", "-q", "origin"]);
        self.git_cli(&["rev-parse", "origin/main"])
    }

    /// Group `pr`: a speculative merge commit on main, pushed to its queue ref. Returns
    /// (group ref name, head).
    pub fn queue_group(&self, pr: usize) -> (String, String) {
        let main = self.main();
        self.git_cli(&["checkout", "-q", "--detach", &main]);
        std::fs::write(
            self.work.join("k8s/team-0/cm-0.yaml"),
            format!("kind: ConfigMap\nmetadata: {{name: cm-0}}\ndata: {{pr: '{pr}'}}\n"),
        )
        .expect("write");
        self.git_cli(&["commit", "-q", "-am", &format!("Merge pull request #{pr}")]);
        let head = self.git_cli(&["rev-parse", "HEAD"]);
        let group = format!("gh-readonly-queue/main/pr-{pr}-{main}");
        self.git_cli(&[
            "push",
            "-q",
            "origin",
            &format!("{head}:refs/heads/{group}"),
        ]);
        self.git_cli(&["checkout", "-q", "--detach", &main]);
        (group, head)
    }

    /// Deletes a group's queue ref (the group failed), uncounted.
    pub fn drop_group(&self, group: &str) {
        self.git_cli(&["push", "-q", "origin", &format!(":refs/heads/{group}")]);
    }

    /// A cache folder never used before.
    pub fn fresh_cache(&self) -> String {
        self.runs.set(self.runs.get() + 1);
        format!("fresh-{}", self.runs.get())
    }

    /// Runs mainline against the HTTP remote and the proxied channel with cache `cache`; the
    /// exit code must be one of `ok`. Returns stdout.
    pub fn mainline(&self, args: &[&str], cache: &str, ok: &[i32]) -> String {
        let cache = self.root.join(cache);
        let empty = self.root.join("home");
        std::fs::create_dir_all(&empty).expect("mkdir");
        let out = Command::new(&self.bin)
            .current_dir(&self.root)
            .arg("--plain-http")
            .args(args)
            .args(["--channel", &self.channel, "--git", &self.remote_url])
            .args(["--path", "k8s", "--cache-dir"])
            .arg(&cache)
            .args(["-o", "json"])
            .env("HOME", &empty)
            .env("DOCKER_CONFIG", &empty)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("run mainline");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            ok.contains(&code),
            "mainline {args:?} exited {code}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Times `f` and collects the requests both servers saw while it ran.
    pub fn measure(&self, f: impl FnOnce()) -> Sample {
        self.registry.clear();
        self.git.clear();
        let start = Instant::now();
        f();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        Sample {
            ms,
            registry: self.registry.requests(),
            git: self.git.requests(),
        }
    }

    /// A mainline command, measured; `moves` is how many moves its JSON report must list.
    pub fn measure_mainline(&self, args: &[&str], cache: &str, moves: usize) -> Sample {
        self.measure(|| {
            let stdout = self.mainline(args, cache, &[0]);
            let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
            let moved = report["moves"].as_array().map_or(0, Vec::len);
            assert_eq!(moved, moves, "unexpected moves: {report}");
        })
    }

    /// `group` deploys its candidate `head` from the warm runner's cache.
    pub fn deploy_candidate(&self, group: &str, head: &str) {
        let args = ["deploy", "--candidate", "--group", group, "--commit", head];
        self.mainline(&args, "runner", &[0]);
    }

    /// The DIVERGED case: a group deploys its candidate (measured, warm cache), then fails
    /// (its queue ref is deleted). `pr` must be new.
    pub fn diverge(&self, pr: usize) -> Sample {
        let (group, head) = self.queue_group(pr);
        let sample = self.measure(|| self.deploy_candidate(&group, &head));
        self.drop_group(&group);
        sample
    }

    /// The floor, by hand: a locked restore of `latest` to `manifest` (the bytes of main's
    /// artifact) with git and curl, in the fewest round trips the design allows:
    /// (1) ls-remote and HEAD of the channel in parallel; (2) one atomic push creating the
    /// lock ref (expected absent) and appending the journal intent (CAS on the listed head);
    /// (3) PUT the manifest; (4) HEAD read-back; (5) one atomic push appending "moved" and
    /// deleting the lock. Journal commits are made locally, before the clock starts.
    pub fn floor(&self, manifest: &Path, run: usize) -> Sample {
        let journal = "refs/rtt-floor/journal";
        let lock = "refs/rtt-floor/lock";
        let empty_tree = self.git_cli(&["hash-object", "-t", "tree", "-w", "/dev/null"]);
        let listed = self.git_cli(&["ls-remote", self.remote_dir.to_str().unwrap(), journal]);
        let head = listed.split_whitespace().next().map(str::to_owned);
        let commit = |msg: &str, parent: Option<&str>| {
            let mut args = vec!["commit-tree", &empty_tree, "-m", msg];
            if let Some(p) = parent {
                args.extend(["-p", p]);
            }
            self.git_cli(&args)
        };
        let intent = commit(&format!("intent {run}"), head.as_deref());
        let moved = commit(&format!("moved {run}"), Some(&intent));
        let url = format!(
            "http://{}/v2/{}/manifests/latest",
            self.registry.addr,
            self.repo_path()
        );
        let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
        let expect_head = head.clone().unwrap_or_default();
        self.measure(|| {
            let ls = Command::new("git")
                .args(["ls-remote", &self.remote_url])
                .current_dir(&self.work)
                .output();
            let curl_head = Command::new("curl")
                .args(["-sfI", "-H", accept, &url])
                .output();
            std::thread::scope(|s| {
                let a = s.spawn(|| ls);
                let b = s.spawn(|| curl_head);
                ok("ls-remote", a.join().expect("join").expect("git"));
                ok("HEAD", b.join().expect("join").expect("curl"));
            });
            let push = |args: &[&str]| {
                let out = Command::new("git")
                    .current_dir(&self.work)
                    .args(["push", "-q", "--atomic"])
                    .args(args)
                    .output()
                    .expect("git push");
                ok("git push --atomic", out);
            };
            push(&[
                &format!("--force-with-lease={lock}:"),
                &format!("--force-with-lease={journal}:{expect_head}"),
                &self.remote_url,
                &format!("{intent}:{lock}"),
                &format!("{intent}:{journal}"),
            ]);
            let put = Command::new("curl")
                .args(["-sf", "-X", "PUT", "-H"])
                .arg("Content-Type: application/vnd.oci.image.manifest.v1+json")
                .arg("--data-binary")
                .arg(format!("@{}", manifest.display()))
                .arg(&url)
                .output()
                .expect("curl");
            ok("PUT manifest", put);
            let back = Command::new("curl")
                .args(["-sfI", "-H", accept, &url])
                .output()
                .expect("curl");
            ok("HEAD read-back", back);
            push(&[
                &format!("--force-with-lease={lock}:{intent}"),
                &format!("--force-with-lease={journal}:{intent}"),
                &self.remote_url,
                &format!(":{lock}"),
                &format!("{moved}:{journal}"),
            ]);
        })
    }

    fn repo_path(&self) -> &str {
        self.repo_ref.split_once('/').map_or("", |(_, p)| p)
    }

    /// Main's artifact manifest bytes (GET sha-<main> through the proxy, uncounted).
    pub fn main_manifest(&self, into: &Path) {
        let main = self.main();
        let url = format!(
            "http://{}/v2/{}/manifests/sha-{main}",
            self.registry.addr,
            self.repo_path()
        );
        let out = Command::new("curl")
            .args(["-sf", "-o"])
            .arg(into)
            .args([
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
                &url,
            ])
            .output()
            .expect("curl");
        ok("GET main's manifest", out);
    }
}

fn ok(what: &str, out: std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
