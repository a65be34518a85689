//! Issue 14, the CLI as a newcomer meets it — the channel commands: before → action → after
//! (item 1), both missing deploy inputs at once (8), one config schema with the guard (9),
//! `--channel-name` (10), a hand-moved channel naming a commit the remote lacks (13), a pin
//! that replaces a pin (15), a group that never existed (17), and `| head` (18). Each runs the
//! real binary against a real git remote and an OCI layout (the registry-only items are in
//! `newcomer_registry.rs`).

#[macro_use]
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use support::queue::{app, deploy, field, first_deploy, short, Channel, Queue};
use support::*;

/// A channel on a layout store in `tmp`, promoted once to mainline's first commit.
fn promoted(tmp: &Path) -> (Queue, Channel, String) {
    let q = Queue::new(tmp);
    let ch = Channel::new(&layout_store(tmp, "store"), &q, "cache");
    let main_digest = first_deploy(&ch, &q);
    (q, ch, main_digest)
}

/// The text of a channel command (the harness's `Channel::run` asks for JSON).
fn text(ch: &Channel, args: &[&str]) -> Run {
    let cache = ch.cache.display().to_string();
    let reference = ch.reference();
    let mut all = args.to_vec();
    all.extend([
        "--channel",
        &reference,
        "--git",
        &ch.git,
        "--path",
        "k8s",
        "--cache-dir",
        &cache,
    ]);
    mainline_in(&ch.cwd, &all, &[])
}

#[test]
fn reconcile_shows_before_action_after_in_json_and_text() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut q, ch, main_digest) = promoted(tmp.path());
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(2))]);
    let candidate = deploy(&ch, &g);
    q.end(&g);

    let r = ch.expect(&["reconcile"], 0);
    // The verdict the decision was made on, with the facts it was made on...
    assert_eq!(field(&r, "verdict"), Some("DIVERGED"), "{r}");
    assert_eq!(field(&r, "channel_digest"), Some(candidate.as_str()), "{r}");
    assert_eq!(field(&r, "channel_commit"), Some(g.head.as_str()), "{r}");
    // ...the action...
    assert_eq!(r["moves"][0]["action"], "restore", "{r}");
    // ...and the channel after it.
    assert_eq!(r["after"]["verdict"], "CONVERGED", "{r}");
    assert_eq!(r["after"]["channel_digest"], main_digest.as_str(), "{r}");
    assert_eq!(r["after"]["channel_commit"], q.main().as_str(), "{r}");
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "kept: {r}");

    // Nothing moved: after is the channel as it was.
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(r["after"]["channel_digest"], r["channel_digest"], "{r}");
    assert_eq!(r["after"]["verdict"], "CONVERGED", "{r}");

    // Text reads top to bottom in the same order, each state with its own digest.
    let g = q.enqueue(8, &[("k8s/app.yaml", &app(4))]);
    let candidate = deploy(&ch, &g);
    q.end(&g);
    let r = text(&ch, &["reconcile"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let at = |needle: &str| {
        r.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{}", r.stdout))
    };
    let before = at("before    DIVERGED");
    let action = at("action    Restore");
    let after = at("after     CONVERGED");
    assert!(before < action && action < after, "{}", r.stdout);
    let prod_before = at(&format!("  prod     {}", &candidate[..19]));
    let prod_after = at(&format!("  prod     {}", &main_digest[..19]));
    assert!(before < prod_before && prod_before < action, "{}", r.stdout);
    assert!(after < prod_after, "{}", r.stdout);
    assert!(!r.stdout.contains("verdict   "), "{}", r.stdout);
}

#[test]
fn deploy_candidate_names_every_missing_input_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_q, ch, _) = promoted(tmp.path());
    let r = ch.run_env(
        &["deploy", "--candidate"],
        &[
            ("GITHUB_SHA", ""),
            ("GITHUB_EVENT_PATH", ""),
            ("GITHUB_REF", ""),
        ],
    );
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    for flag in ["--commit", "--group"] {
        assert!(r.stderr.contains(flag), "{flag} not named: {}", r.stderr);
    }
    assert_eq!(r.json()["error"]["kind"], "invalid_input");
}

#[test]
fn a_group_that_never_existed_is_not_found() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, ch, _) = promoted(tmp.path());
    let r = ch.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            "gh-readonly-queue/main/pr-9-0000000000000000000000000000000000000000",
            "--commit",
            &q.main(),
        ],
        5,
    );
    let said = r["refusal"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("not found"), "{r}");
    assert!(!said.contains(": it ended"), "claims it ended: {r}");
}

/// A `mainline.toml` shared with the guard: guard-only keys at the top level, channels under
/// `[[channels]]`.
fn guard_toml(dir: &Path, q: &Queue, store: &str) -> std::path::PathBuf {
    let path = dir.join("guard.toml");
    std::fs::write(
        &path,
        format!(
            "git = {:?}\npath = \"k8s\"\nqueue = \"github-api\"\ngithub_repository = \"acme/app\"\n\
             cache_dir = {:?}\n\n[guard]\nlisten = \"127.0.0.1:0\"\n\n\
             [[channels]]\nname = \"prod\"\nchannel = \"{store}:latest\"\n\n\
             [[channels]]\nname = \"staging\"\nchannel = \"{store}:staging\"\nqueue = \"lease\"\n",
            q.url(),
            dir.join("cache").display().to_string(),
        ),
    )
    .expect("write guard.toml");
    path
}

#[test]
fn one_config_file_serves_the_cli_and_the_guard() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, ch, main_digest) = promoted(tmp.path());
    let config = guard_toml(tmp.path(), &q, &ch.store);
    let config = config.to_str().expect("utf-8");

    // No channel picked: the error lists the entries and the flag.
    let r = mainline_in(tmp.path(), &["status", "--config", config], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--channel-name"), "{}", r.stderr);
    assert!(r.stderr.contains("prod, staging"), "{}", r.stderr);

    // Picked: the entry over the top-level keys; github-api is read from the refs, said so.
    let r = mainline_in(
        tmp.path(),
        &[
            "status",
            "--config",
            config,
            "--channel-name",
            "prod",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["verdict"], "CONVERGED");
    assert_eq!(r.json()["channel_digest"], main_digest.as_str());
    assert!(r.stderr.contains("github-api"), "no note: {}", r.stderr);

    // The same through the environment, for every channel command.
    let r = mainline_in(
        tmp.path(),
        &["reconcile", "--config", config, "-o", "json"],
        &[("MAINLINE_CHANNEL_NAME", "prod")],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);

    // A name that is not there: the names that are.
    let r = mainline_in(
        tmp.path(),
        &["status", "--config", config, "--channel-name", "prdo"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("prod, staging"), "{}", r.stderr);

    // The guard reads the same file.
    let r = mainline_in(
        tmp.path(),
        &["guard", "--config", config, "--check", "-o", "json"],
        &[("GITHUB_TOKEN", "test-token-not-used")],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let channels = r.json()["channels"].as_array().expect("channels").clone();
    assert_eq!(channels.len(), 2, "{}", r.stdout);
    assert_eq!(channels[0]["queue"], "github-api", "{}", r.stdout);

    // --queue github-api is accepted by the CLI too.
    let r = ch.run(&["status", "--queue", "github-api"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn a_channel_on_a_commit_the_remote_lacks_is_diverged_and_restored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, ch, main_digest) = promoted(tmp.path());
    // An artifact made by mainline for a commit that was never pushed, tagged by hand.
    let ghost = "0123456789abcdef0123456789abcdef01234567";
    let dir = tmp.path().join("ghost");
    write_tree(&dir, &[("app.yaml", &app(9))]);
    mainline(&[
        "push",
        dir.to_str().expect("utf-8"),
        "--to",
        &ch.store,
        "--revision",
        &format!("main@sha1:{ghost}"),
        "-o",
        "json",
    ])
    .ok();
    mainline(&["tag", &format!("{}:sha-{ghost}", ch.store), "latest"]).ok();

    let s = ch.status(3);
    assert_eq!(s["verdict"], "DIVERGED", "runbook: {s}");
    assert_eq!(s["channel_commit"], ghost, "{s}");
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(r["after"]["channel_digest"], main_digest.as_str(), "{r}");
    assert_eq!(r["after"]["channel_commit"], q.main().as_str(), "{r}");

    let runbook = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbook.md"),
    )
    .expect("read docs/runbook.md");
    assert!(
        runbook.contains("does not have the commit makes the\nchannel DIVERGED"),
        "the runbook must say what the code does"
    );
}

#[test]
fn a_second_pin_says_whose_pin_it_replaced_and_records_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, ch, main_digest) = promoted(tmp.path());
    let first = ch.run_env(
        &["pin", &main_digest, "--reason", "INC-1: hold"],
        &[("USER", "alice")],
    );
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.json().get("replaced_pin").is_none(),
        "{}",
        first.stdout
    );

    let second = ch.run_env(
        &["pin", &q.main(), "--reason", "INC-2: keep"],
        &[("USER", "bob")],
    );
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    let replaced = &second.json()["replaced_pin"];
    assert_eq!(replaced["reason"], "INC-1: hold", "{}", second.stdout);
    assert!(
        replaced["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("alice@")),
        "{}",
        second.stdout
    );

    let t = text(&ch, &["pin", &main_digest, "--reason", "INC-3"]);
    assert_eq!(t.code, 0, "{}\n{}", t.stdout, t.stderr);
    assert!(t.stdout.contains("replaced  the pin of"), "{}", t.stdout);
    assert!(t.stdout.contains("(INC-2: keep)"), "{}", t.stdout);

    let h = ch.expect(&["history"], 0);
    let reasons: Vec<&str> = h["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("INC-2: keep (replaces the pin of")
                && r.contains("by alice@")
                && r.contains("INC-1: hold")),
        "{reasons:?}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_q, ch, _) = promoted(tmp.path());
    let cache = ch.cache.display().to_string();
    let reference = ch.reference();
    let empty = tempfile::tempdir().expect("tempdir");
    for format in ["json", "text"] {
        let mut child = Command::new(bin())
            .current_dir(&ch.cwd)
            .args(["history", "--channel", &reference, "--git", &ch.git])
            .args(["--path", "k8s", "--cache-dir", &cache, "-o", format])
            .env("HOME", empty.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mainline");
        // The reader goes away before mainline writes (as `| head` does once it has enough).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{format}: {stderr}");
        assert!(!stderr.contains("error"), "{format}: {stderr}");
    }
}

#[test]
fn tour_prints_one_json_object() {
    let home = tempfile::tempdir().expect("tempdir");
    let r = mainline_in(
        home.path(),
        &["tour", "-o", "json"],
        &[("HOME", "/nonexistent")],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.trim().lines().count(),
        1,
        "one line:\n{}",
        r.stdout
    );
    let v: Value = r.json();
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 6, "{v}");
    let status = &steps[2]["commands"][0];
    assert_eq!(status["command"], "mainline status", "{v}");
    assert_eq!(status["exit_code"], 3, "{v}");
    assert_eq!(status["report"]["verdict"], "DIVERGED", "{v}");
    let heal = &steps[3]["commands"][0]["report"];
    assert_eq!(heal["verdict"], "DIVERGED", "{v}");
    assert_eq!(heal["after"]["verdict"], "CONVERGED", "{v}");
    assert_eq!(v["final_status_exit_code"], 0);
    let _ = short;
}
