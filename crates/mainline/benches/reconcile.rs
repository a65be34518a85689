//! Issue 3's benchmark: what one `mainline reconcile` costs, in registry requests, git
//! commands and wall time, against the real test registry and a bare git remote:
//! - nothing changed, warm cache (the common case: one manifest HEAD plus the git ref listing);
//! - a restore (DIVERGED → re-tag of main's artifact), warm cache (the runner that deployed);
//! - the same restore from a fresh machine (empty cache: git fetch of commits and trees).
//!
//! Run: scripts/with-registry.sh cargo bench -p mainline --bench reconcile
//! (MAINLINE_BENCH_RUNS sets the runs per case, default 7; figures are medians.)
//! Registry requests are counted from the registry's access log (MAINLINE_TEST_REGISTRY_LOG),
//! git commands from GIT_TRACE. Prints figures; asserts nothing about speed (a shared 2-core
//! machine makes timed asserts flaky), but fails if a command fails or a restore did not move.

#[path = "common/mod.rs"]
mod common;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo bench -p mainline --bench reconcile",
    );
    let log = PathBuf::from(
        std::env::var("MAINLINE_TEST_REGISTRY_LOG")
            .expect("MAINLINE_TEST_REGISTRY_LOG is not set: run scripts/with-registry.sh"),
    );
    let runs: usize = std::env::var("MAINLINE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let repo = format!("bench/reconcile-{}", std::process::id());
    let b = Bench {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_mainline")),
        root: root.to_path_buf(),
        remote: root.join("remote.git"),
        work: root.join("work"),
        channel: format!("oci://{registry}/{repo}:latest"),
        log,
        repo,
        trace: root.join("git-trace"),
    };
    b.init_remote();
    b.mainline(&["promote"], "runner", &[0]);
    b.mainline(&["reconcile"], "runner", &[0]); // warm the cache

    let idle: Vec<Sample> = (0..runs)
        .map(|_| b.measure(&["reconcile"], "runner", false))
        .collect();
    let mut warm_restore = Vec::new();
    let mut cold_restore = Vec::new();
    for i in 0..2 * runs {
        // A group deploys its candidate, then fails: the channel is DIVERGED.
        let pr = 100 + i;
        let head = b.queue_group(pr);
        let group = format!("gh-readonly-queue/main/pr-{pr}-{}", b.main());
        b.mainline(
            &[
                "deploy",
                "--candidate",
                "--group",
                &group,
                "--commit",
                &head,
            ],
            "runner",
            &[0],
        );
        b.git(&["push", "-q", "origin", &format!(":refs/heads/{group}")]);
        if i % 2 == 0 {
            warm_restore.push(b.measure(&["reconcile"], "runner", true));
        } else {
            let fresh = format!("fresh-{i}");
            cold_restore.push(b.measure(&["reconcile"], &fresh, true));
        }
    }

    println!("mainline reconcile against {registry} and a local bare git remote; {runs} runs per case, medians\n");
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "case", "median ms", "min ms", "max ms", "registry", "git cmds"
    );
    for (name, samples) in [
        ("nothing changed (warm cache)", &idle),
        ("restore DIVERGED -> main (warm cache)", &warm_restore),
        ("restore DIVERGED -> main (fresh machine)", &cold_restore),
    ] {
        report(name, samples);
    }
    println!();
    for (name, samples) in [
        ("nothing changed", &idle),
        ("restore, warm", &warm_restore),
        ("restore, fresh machine", &cold_restore),
    ] {
        let s = typical(samples);
        println!("{name}: registry {}", breakdown(&s.requests));
        println!("{name}: git {}", breakdown(&s.git));
    }
}

struct Bench {
    bin: PathBuf,
    root: PathBuf,
    remote: PathBuf,
    work: PathBuf,
    channel: String,
    log: PathBuf,
    repo: String,
    trace: PathBuf,
}

struct Sample {
    ms: f64,
    requests: Vec<String>,
    git: Vec<String>,
}

impl Bench {
    fn git(&self, args: &[&str]) -> String {
        common::git(&self.work, args)
    }

    /// A bare remote whose main holds a `k8s/` tree of 200 small manifests.
    fn init_remote(&self) {
        std::fs::create_dir_all(&self.work).expect("mkdir");
        self.git(&[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            self.remote.to_str().expect("utf-8"),
        ]);
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&[
            "remote",
            "add",
            "origin",
            self.remote.to_str().expect("utf-8"),
        ]);
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
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "initial"]);
        self.git(&["push", "-q", "origin", "main"]);
    }

    fn main(&self) -> String {
        self.git(&["rev-parse", "origin/main"])
    }

    /// Group `pr`: a speculative merge commit on main changing one manifest, pushed to its
    /// queue ref. Returns its head.
    fn queue_group(&self, pr: usize) -> String {
        self.git(&["fetch", "-q", "origin"]);
        let main = self.main();
        self.git(&["checkout", "-q", "--detach", &main]);
        std::fs::write(
            self.work.join("k8s/team-0/cm-0.yaml"),
            format!("kind: ConfigMap\nmetadata: {{name: cm-0}}\ndata: {{pr: '{pr}'}}\n"),
        )
        .expect("write");
        self.git(&["commit", "-q", "-am", &format!("Merge pull request #{pr}")]);
        let head = self.git(&["rev-parse", "HEAD"]);
        self.git(&[
            "push",
            "-q",
            "origin",
            &format!("{head}:refs/heads/gh-readonly-queue/main/pr-{pr}-{main}"),
        ]);
        self.git(&["checkout", "-q", "--detach", &main]);
        head
    }

    /// Run mainline with the channel flags and `cache` as its cache dir; the exit code must be
    /// one of `ok`. Returns stdout.
    fn mainline(&self, args: &[&str], cache: &str, ok: &[i32]) -> String {
        let cache = self.root.join(cache);
        let empty = self.root.join("home");
        std::fs::create_dir_all(&empty).expect("mkdir");
        let out = Command::new(&self.bin)
            .current_dir(&self.root)
            .arg("--plain-http")
            .args(args)
            .args(["--channel", &self.channel, "--git"])
            .arg(&self.remote)
            .args(["--path", "k8s", "--cache-dir"])
            .arg(&cache)
            .args(["-o", "json"])
            .env("HOME", &empty)
            .env("DOCKER_CONFIG", &empty)
            .env("GIT_TRACE", &self.trace)
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

    fn registry_lines(&self) -> Vec<String> {
        let needle = format!("/v2/{}/", self.repo);
        std::fs::read_to_string(&self.log)
            .expect("registry log")
            .lines()
            .filter(|l| l.contains("response completed") && l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    /// One timed run; `must_move` checks that it restored.
    fn measure(&self, args: &[&str], cache: &str, must_move: bool) -> Sample {
        std::thread::sleep(Duration::from_millis(200)); // let the registry flush its log
        let before = self.registry_lines().len();
        std::fs::write(&self.trace, "").expect("truncate trace");
        let start = Instant::now();
        let stdout = self.mainline(args, cache, &[0]);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
        let moved = report["moves"].as_array().map_or(0, Vec::len);
        assert_eq!(moved, usize::from(must_move), "unexpected moves: {report}");
        std::thread::sleep(Duration::from_millis(200));
        let requests = self
            .registry_lines()
            .split_off(before)
            .iter()
            .map(|l| request_kind(l, &self.repo))
            .collect();
        let git = std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("trace: built-in: git ").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or("?").to_owned())
            .collect();
        Sample { ms, requests, git }
    }
}

/// `HEAD manifests/<tag>`, `PUT manifests/<tag>`, `GET blobs`, … from one access-log line.
fn request_kind(line: &str, repo: &str) -> String {
    let value = |key: &str| {
        line.split(&format!("{key}="))
            .nth(1)
            .map(|v| v.trim_start_matches('"'))
            .and_then(|v| v.split(['"', ' ']).next())
            .unwrap_or("?")
            .to_owned()
    };
    let method = value("http.request.method");
    let uri = value("http.request.uri");
    let path = uri
        .split(&format!("/v2/{repo}/"))
        .nth(1)
        .unwrap_or(&uri)
        .split('?')
        .next()
        .unwrap_or("?")
        .to_owned();
    let path = match path.split_once('/') {
        Some(("manifests", r)) if r.starts_with("sha256:") => "manifests/<digest>".to_owned(),
        Some(("manifests", r)) if r.starts_with("sha-") => "manifests/sha-<commit>".to_owned(),
        Some(("blobs", _)) => "blobs/…".to_owned(),
        _ => path,
    };
    format!("{method} {path}")
}

fn breakdown(items: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    format!("{} total: {}", items.len(), parts.join(", "))
}

/// The run whose request count is the median one.
fn typical(samples: &[Sample]) -> &Sample {
    let mut counts: Vec<usize> = samples.iter().map(|s| s.requests.len()).collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    samples
        .iter()
        .find(|s| s.requests.len() == median)
        .expect("the median is one of the samples")
}

fn report(name: &str, samples: &[Sample]) {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.ms).collect();
    ms.sort_by(f64::total_cmp);
    let mut reqs: Vec<usize> = samples.iter().map(|s| s.requests.len()).collect();
    reqs.sort_unstable();
    let mut git: Vec<usize> = samples.iter().map(|s| s.git.len()).collect();
    git.sort_unstable();
    println!(
        "{name:<40} {:>9.0} {:>9.0} {:>9.0} {:>10} {:>9}",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1],
        reqs[reqs.len() / 2],
        git[git.len() / 2]
    );
}
