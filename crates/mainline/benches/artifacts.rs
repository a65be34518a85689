//! Issue 2's benchmark: push, re-push, requests per `tag`, and peak memory of `mainline` on a
//! generated tree of ~20,000 YAML files / ~200 MiB, side by side with `tar | gzip -6` on the
//! same tree and with skopeo copying the same artifact — ratios measured in one run. Issue 13
//! adds Go peers: `crane tag` (requests and time beside `mainline tag`) and Flux's own push
//! (`tests/flux-oracle push`, i.e. `flux push artifact`) of the same tree.
//!
//! Issue 15 item 3 compares the push with `tar --sort=name | gzip -n -6` (the reproducible
//! peer) on a 20,000-file / ~300 MiB tree, and checks push's peak memory stays under 100 MiB.
//!
//! Run: scripts/with-registry.sh cargo bench -p mainline --bench artifacts
//! (MAINLINE_BENCH_FILES / MAINLINE_BENCH_FILE_KIB scale the tree; KIB=52 gives ~1 GiB.)
//! Prints figures; asserts nothing about speed (a noisy 2-core machine makes timed asserts
//! flaky), only the memory bound.

#[path = "common/mod.rs"]
mod common;
#[path = "common/go_tools.rs"]
mod go_tools;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo bench -p mainline --bench artifacts",
    );
    let log =
        std::env::var("MAINLINE_TEST_REGISTRY_LOG").expect("MAINLINE_TEST_REGISTRY_LOG is not set");
    let files: usize = env_or("MAINLINE_BENCH_FILES", 20_000);
    let kib: usize = env_or("MAINLINE_BENCH_FILE_KIB", 15);
    let bin = mainline_binary();
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = tmp.path().join("tree");
    let t = Instant::now();
    let bytes = generate(&tree, files, kib);
    println!(
        "tree: {files} YAML files, {:.1} MiB (generated in {:.1} s)",
        mib(bytes),
        t.elapsed().as_secs_f64()
    );

    let rev = "main@sha1:00000000000000000000000000000000000000b1";
    let store = format!("oci://{registry}/bench/app-{}", std::process::id());
    let push = |to: &str| {
        measure(Command::new(&bin).args([
            "--plain-http",
            "push",
            tree.to_str().unwrap(),
            "--to",
            to,
            "--revision",
            rev,
            "--created",
            "2024-05-01T12:00:00Z",
            "--source",
            "https://example.com/bench",
            "-o",
            "json",
        ]))
    };

    let first = push(&store);
    let second = push(&store);
    let layout = tmp.path().join("layout");
    let layout_push = push(&format!("oci-layout:{}", layout.display()));
    let pushed: serde_json::Value = serde_json::from_slice(&first.stdout).expect("push json");
    let repushed: serde_json::Value = serde_json::from_slice(&second.stdout).expect("re-push json");

    let tar_gzip = measure(Command::new("bash").args([
        "-c",
        &format!(
            "tar --sort=name -C {} -cf - . | gzip -n -6 > {}/peer.tgz",
            tree.display(),
            tmp.path().display()
        ),
    ]));

    let tag = pushed["tag"].as_str().expect("tag");
    let before = count_requests(&log);
    let retag = measure(Command::new(&bin).args([
        "--plain-http",
        "tag",
        &format!("{store}:{tag}"),
        "latest",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tag_requests = count_requests(&log) - before;

    let src = store.trim_start_matches("oci://");
    let skopeo = measure(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{src}:{tag}"),
        &format!("docker://{src}-skopeo:{tag}"),
    ]));

    // Go peers (issue 13): crane re-tags the same artifact; Flux's push packs the same tree.
    let crane = go_tools::crane();
    let before = count_requests(&log);
    let crane_tag = measure(Command::new(&crane).args([
        "tag",
        "--insecure",
        &format!("{src}:{tag}"),
        "latest-crane",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let crane_requests = count_requests(&log) - before;
    let flux_push = measure(Command::new(go_tools::flux_oracle()).args([
        "push",
        tree.to_str().unwrap(),
        &format!("{src}-flux:v1"),
        "--source",
        "https://example.com/bench",
        "--revision",
        rev,
    ]));

    // Issue 15 item 4: the same tree pushed from git for three commits (B and C are empty
    // commits on A: the same tree). B reuses the layer through the store's tree index; C is
    // pushed with --repack, as every push was before the index (pack; blobs already there).
    let git_store = format!("{store}-git");
    let (git_first, git_reused, git_repacked, reuse_requests, repack_requests) =
        git_pushes(&bin, &tree, &git_store, &log);

    println!();
    println!(
        "{:<44} {:>9} {:>12} {:>10}",
        "operation", "seconds", "peak RSS MiB", "vs tar|gz"
    );
    let row = |name: &str, m: &Measured| {
        println!(
            "{name:<44} {:>9.2} {:>12.1} {:>9.2}x",
            m.seconds,
            m.peak_rss_kib as f64 / 1024.0,
            m.seconds / tar_gzip.seconds
        );
    };
    row("tar --sort=name | gzip -n -6 (peer, no upload)", &tar_gzip);
    row("mainline push -> registry (pack + upload)", &first);
    row("mainline re-push, unchanged tree", &second);
    row("mainline push -> oci-layout", &layout_push);
    row("skopeo copy of the same artifact (peer)", &skopeo);
    row("flux push artifact (Flux's Client.Push, peer)", &flux_push);
    row("push --git A (pack + upload + tree index)", &git_first);
    row("push --git B, same tree (tree index reuse)", &git_reused);
    row(
        "push --git C, same tree, --repack (no index)",
        &git_repacked,
    );
    row("mainline tag (re-tag)", &retag);
    row("crane tag (re-tag, peer)", &crane_tag);
    println!();
    println!(
        "push uploaded {} bytes; re-push uploaded {} bytes; layer {:.1} MiB",
        pushed["bytes_uploaded"],
        repushed["bytes_uploaded"],
        mib(pushed["layer_bytes"].as_u64().unwrap_or(0))
    );
    println!("registry requests for one `mainline tag`: {tag_requests}; for one `crane tag`: {crane_requests}");
    println!(
        "re-push of an unchanged git tree: {:.2} s and {reuse_requests} registry requests with the tree index, {:.2} s and {repack_requests} packing it again ({:.0}x faster)",
        git_reused.seconds,
        git_repacked.seconds,
        git_repacked.seconds / git_reused.seconds
    );
    println!(
        "re-tag: mainline {:.2}x crane's time; push: mainline {:.2}x flux push artifact's time",
        retag.seconds / crane_tag.seconds,
        first.seconds / flux_push.seconds
    );
    println!(
        "push vs skopeo copy: {:.2}x the time; push throughput {:.1} MiB/s of tree",
        first.seconds / skopeo.seconds,
        mib(bytes) / first.seconds
    );
    println!(
        "push (pack + upload) vs tar --sort=name | gzip -n -6: {:.2}x; to oci-layout: {:.2}x",
        first.seconds / tar_gzip.seconds,
        layout_push.seconds / tar_gzip.seconds
    );
    for (what, m) in [
        ("push", &first),
        ("re-push", &second),
        ("push -> oci-layout", &layout_push),
    ] {
        assert!(
            m.peak_rss_kib < 100 * 1024,
            "mainline {what} peaked at {:.1} MiB of memory: over the 100 MiB bound",
            m.peak_rss_kib as f64 / 1024.0
        );
    }
}

/// Commit `tree` as A, then B and C (empty commits: the same tree), and push A, B (tree
/// index) and C (`--repack`) from git. Returns the three runs and the registry requests (every
/// access-log line, 404s included) of B's and C's pushes.
fn git_pushes(
    bin: &Path,
    tree: &Path,
    store: &str,
    log: &str,
) -> (Measured, Measured, Measured, usize, usize) {
    let git = |args: &[&str]| common::git(tree, args);
    let t = Instant::now();
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    let mut commits = Vec::new();
    for message in ["A", "B", "C"] {
        git(&["commit", "-q", "--allow-empty", "-m", message]);
        commits.push(git(&["rev-parse", "HEAD"]));
    }
    println!(
        "git: committed the tree in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let push = |commit: &str, extra: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.args(["--plain-http", "push", "--git"])
            .arg(tree)
            .args(["--commit", commit, "--to", store, "-o", "json"])
            .args(["--source", "https://example.com/bench"])
            .args(extra);
        let m = measure(&mut cmd);
        let report: serde_json::Value = serde_json::from_slice(&m.stdout).expect("push json");
        (m, report)
    };
    let (first, _) = push(&commits[0], &[]);
    let before = count_all_requests(log);
    let (reused, report) = push(&commits[1], &[]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let reuse_requests = count_all_requests(log) - before;
    assert_eq!(report["tree_index"], "reused", "{report}");
    let before = count_all_requests(log);
    let (repacked, report_c) = push(&commits[2], &["--repack"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let repack_requests = count_all_requests(log) - before;
    assert_eq!(report_c["bytes_uploaded"], 0, "{report_c}");
    (first, reused, repacked, reuse_requests, repack_requests)
}

/// Every request in the registry's access log (404s too, unlike "response completed").
fn count_all_requests(log: &str) -> usize {
    std::fs::read_to_string(log)
        .expect("registry log")
        .lines()
        .filter(|l| l.contains("] \"") && l.contains(" /v2/"))
        .count()
}

struct Measured {
    seconds: f64,
    peak_rss_kib: i64,
    stdout: Vec<u8>,
}

/// Run a command to completion, with its wall time and peak resident memory (from wait4).
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Measured {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    std::thread::scope(|s| {
        let (stdout, stderr) = (&mut stdout, &mut stderr);
        let mut o = child.stdout.take().expect("stdout");
        let mut e = child.stderr.take().expect("stderr");
        s.spawn(move || std::io::copy(&mut o, stdout));
        s.spawn(move || std::io::copy(&mut e, stderr));
    });
    let mut status = 0;
    // SAFETY: plain FFI call on our own child pid with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&stderr)
    );
    Measured {
        seconds,
        peak_rss_kib: usage.ru_maxrss,
        stdout,
    }
}

fn count_requests(log: &str) -> usize {
    std::fs::read_to_string(log)
        .expect("registry log")
        .lines()
        .filter(|l| l.contains("msg=\"response completed\""))
        .count()
}

/// Deterministic YAML-ish files with enough entropy that gzip does real work.
fn generate(root: &Path, files: usize, kib: usize) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut total = 0;
    for i in 0..files {
        let dir = root.join(format!("team-{:02}/app-{:03}", i % 50, (i / 50) % 400));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(dir.join(format!("res-{i:05}.yaml"))).expect("create"),
        );
        let mut written = 0;
        writeln!(
            f,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: res-{i}\ndata:"
        )
        .unwrap();
        while written < kib * 1024 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let line = format!(
                "  key-{:x}: \"{:016x}{:016x}\"\n",
                state & 0xffff,
                state,
                state.rotate_left(21)
            );
            written += line.len();
            f.write_all(line.as_bytes()).unwrap();
        }
        total += written as u64;
    }
    total
}

fn mainline_binary() -> PathBuf {
    // Cargo builds the package's binaries for its benches, in the same profile.
    PathBuf::from(env!("CARGO_BIN_EXE_mainline"))
}

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}
