//! Issue 10 item 3, bounded waits: a registry, a token endpoint or a git remote that accepts
//! connections and never answers costs at most the command's deadline (`--timeout`), the
//! command exits 6 naming what did not answer, and no git process outlives it — not at the
//! deadline, and not when mainline itself is killed.
//!
//! Real parts: the `mainline` binary, real git (with its `git-remote-http` helper), real git
//! repositories and the real registry (scripts/with-registry.sh); the silent peers are loopback
//! listeners (support/loopback.rs), because no real server hangs on demand.

#[path = "support/loopback.rs"]
mod loopback;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// The deadline the tests give, and how much later than it a command may end (process start,
/// the final error, a loaded machine).
const TIMEOUT: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(3);

fn timed(cwd: &Path, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let run = mainline_in(cwd, args, &[]);
    (run, started.elapsed())
}

fn assert_deadline_exit(run: &Run, elapsed: Duration, names: &str) {
    eprintln!("exit {} after {elapsed:?}: {}", run.code, run.stderr.trim());
    assert_eq!(
        run.code, 6,
        "expected exit 6 (unavailable)\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(names) && run.stderr.contains("did not answer"),
        "the error must name {names} as what did not answer:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("deadline") && run.stderr.contains("--timeout"),
        "the error must say the deadline passed and how to allow more time:\n{}",
        run.stderr
    );
    assert!(
        elapsed < TIMEOUT + SLACK,
        "took {elapsed:?} with --timeout {TIMEOUT:?}"
    );
}

/// `status --timeout 3s` of `channel` with the git remote `git`, from a cache under `dir`.
fn status_within_3s(dir: &Path, channel: &str, git: &Path) -> (Run, Duration) {
    let cache = dir.join("cache");
    timed(
        dir,
        &[
            "status",
            "--timeout",
            "3s",
            "--channel",
            channel,
            "--git",
            git.to_str().expect("utf-8"),
            "--path",
            "k8s",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    )
}
#[test]
fn status_against_a_git_remote_that_accepts_and_never_answers_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = loopback::silent();
    let url = format!("http://127.0.0.1:{port}/silent-{}.git", std::process::id());
    let cache = tmp.path().join("cache");
    let channel = format!("{}:latest", registry_store("silentgit"));
    let (run, elapsed) = timed(
        tmp.path(),
        &[
            "status",
            "--timeout",
            "3s",
            "--channel",
            &channel,
            "--git",
            &url,
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    );
    assert_deadline_exit(&run, elapsed, &format!("127.0.0.1:{port}"));
    // The listing, or the fetch a fresh runner sends beside it (`Sources::warm_up`): both
    // hang on this remote, and the deadline names whichever it cut first.
    assert!(
        run.stderr.contains("git ls-remote") || run.stderr.contains("git fetch"),
        "{}",
        run.stderr
    );
    let left = loopback::wait_until_gone(&[&url, cache.to_str().expect("utf-8")], 2);
    assert!(
        left.is_empty(),
        "git processes survived the deadline: {left:?}"
    );
}

#[test]
fn reconcile_against_a_git_remote_that_accepts_and_never_answers_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = loopback::silent();
    let url = format!(
        "http://127.0.0.1:{port}/silent-w-{}.git",
        std::process::id()
    );
    let cache = tmp.path().join("cache");
    let channel = format!("{}:latest", registry_store("silentgitw"));
    // MAINLINE_TIMEOUT is the other spelling of --timeout.
    let started = Instant::now();
    let run = mainline_in(
        tmp.path(),
        &[
            "reconcile",
            "--channel",
            &channel,
            "--git",
            &url,
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
        &[("MAINLINE_TIMEOUT", "3s")],
    );
    assert_deadline_exit(&run, started.elapsed(), &format!("127.0.0.1:{port}"));
    let left = loopback::wait_until_gone(&[&url, cache.to_str().expect("utf-8")], 2);
    assert!(
        left.is_empty(),
        "git processes survived the deadline: {left:?}"
    );
}

#[test]
fn status_against_a_registry_that_accepts_and_never_answers_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, _) = fixture_repo(tmp.path());
    let port = loopback::silent();
    let channel = format!("oci://127.0.0.1:{port}/acme/app:latest");
    let (run, elapsed) = status_within_3s(tmp.path(), &channel, &repo);
    assert_deadline_exit(&run, elapsed, &format!("registry 127.0.0.1:{port}"));
}

#[test]
fn inspect_against_a_registry_whose_token_endpoint_never_answers_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, realm) = loopback::token_registry(loopback::Realm::Silent);
    let reference = format!("oci://127.0.0.1:{port}/acme/app:latest");
    let (run, elapsed) = timed(tmp.path(), &["inspect", "--timeout", "3s", &reference]);
    assert_deadline_exit(&run, elapsed, &realm);
    assert!(
        run.stderr.contains("token endpoint"),
        "the hint must say it was the token endpoint:\n{}",
        run.stderr
    );
}

#[test]
fn status_against_a_registry_whose_token_endpoint_never_answers_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, _) = fixture_repo(tmp.path());
    let (port, realm) = loopback::token_registry(loopback::Realm::Silent);
    let channel = format!("oci://127.0.0.1:{port}/acme/app:latest");
    let (run, elapsed) = status_within_3s(tmp.path(), &channel, &repo);
    assert_deadline_exit(&run, elapsed, &realm);
}

#[test]
fn a_live_lock_holder_is_waited_for_no_longer_than_the_deadline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, _) = fixture_repo(tmp.path());
    let channel = format!("{}:latest", registry_store("busylock"));
    let cache = tmp.path().join("cache");
    let args = |cmd: &'static str| -> Vec<String> {
        [
            cmd,
            "--channel",
            &channel,
            "--git",
            repo.to_str().expect("utf-8"),
            "--path",
            "k8s",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let status: Vec<String> = [vec!["-o".to_owned(), "json".to_owned()], args("status")].concat();
    let status: Vec<&str> = status.iter().map(String::as_str).collect();
    let lock = mainline_in(tmp.path(), &status, &[]).json()["lock"]
        .as_str()
        .expect("status names the lock")
        .trim_start_matches("git: ")
        .split_whitespace()
        .next()
        .expect("a ref name")
        .to_owned();
    // Another writer holds the lock for the next hour.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let message = format!(
        "mainline lock held by busy-writer-elsewhere\n\n{{\"holder\":\"busy-writer-elsewhere\",\"nonce\":\"n1\",\"acquired_at\":{now},\"expires_at\":{}}}\n",
        now + 3_600_000
    );
    let tree = git(&repo, &["rev-parse", "HEAD^{tree}"]);
    let record = git(&repo, &["commit-tree", &tree, "-m", &message]);
    git(&repo, &["update-ref", &lock, &record]);

    let reconcile: Vec<String> =
        [args("reconcile"), vec!["--timeout".into(), "4s".into()]].concat();
    let reconcile: Vec<&str> = reconcile.iter().map(String::as_str).collect();
    let started = Instant::now();
    let run = mainline_in(tmp.path(), &reconcile, &[]);
    let elapsed = started.elapsed();
    eprintln!("exit {} after {elapsed:?}: {}", run.code, run.stderr.trim());
    assert_eq!(
        run.code, 6,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("busy-writer-elsewhere"),
        "the error must name the holder that did not let go:\n{}",
        run.stderr
    );
    assert!(
        elapsed < Duration::from_secs(4) + SLACK,
        "the lock wait (2m by default) was not cut to --timeout 4s: took {elapsed:?}"
    );
    assert_eq!(
        git(&repo, &["rev-parse", &lock]),
        record,
        "the live holder's lock must be left alone"
    );
}

#[test]
fn a_killed_mainline_leaves_no_git_or_remote_helper_running() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, accepted) = loopback::silent_counted();
    let url = format!("http://127.0.0.1:{port}/killed-{}.git", std::process::id());
    let cache = tmp.path().join("cache");
    let channel = format!("{}:latest", registry_store("killed"));
    let empty = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin())
        .current_dir(tmp.path())
        .args([
            "--plain-http",
            "status",
            "--timeout",
            "60s",
            "--channel",
            &channel,
            "--git",
            &url,
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ])
        .env("HOME", empty.path())
        .env("DOCKER_CONFIG", empty.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mainline");
    // Wait until git's http helper has sent its request to the silent remote and waits for
    // the answer (killed earlier, it would see git's pipe close and exit by itself).
    let until = Instant::now() + Duration::from_secs(20);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0
        || !loopback::processes_with(&[&url])
            .iter()
            .any(|p| p.contains("remote-http"))
    {
        assert!(
            Instant::now() < until,
            "git-remote-http never started: {:?}",
            loopback::processes_with(&[&url, cache.to_str().expect("utf-8")])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL mainline");
    child.wait().expect("reap mainline");
    let killed = Instant::now();
    let left = loopback::wait_until_gone(&[&url, cache.to_str().expect("utf-8")], 5);
    eprintln!(
        "all git processes gone {:?} after SIGKILL",
        killed.elapsed()
    );
    assert!(
        left.is_empty(),
        "processes outlived a SIGKILLed mainline: {left:?}"
    );
}

#[test]
fn timeout_is_documented_in_help() {
    let top = mainline(&["--help"]).ok();
    for needle in [
        "--timeout",
        "MAINLINE_TIMEOUT",
        "60s",
        "120s",
        "names what did not answer",
    ] {
        assert!(
            top.stdout.contains(needle),
            "mainline --help does not document {needle:?}:\n{}",
            top.stdout
        );
    }
    let zero = mainline(&["status", "--timeout", "0s"]);
    assert_eq!(
        zero.code, 2,
        "--timeout 0 is invalid input: {}",
        zero.stderr
    );
}
