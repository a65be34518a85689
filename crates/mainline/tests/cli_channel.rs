//! The channel commands' CLI contract: help that names the key flags, the JSON keys of
//! `status`, exit code 2 with a clear message and nothing written for bad input, settings
//! precedence (flags > MAINLINE_* env > ./mainline.toml), and the GitHub Actions merge_group
//! environment for `deploy --candidate`.
//!
//! These run on the OCI layout store (no server needed) and a bare git remote driven like
//! GitHub's merge queue (support::queue); the scenario suites cover the registry.

mod support;

use std::path::Path;
use support::queue::{first_deploy, moves, verdict, Channel, Queue};
use support::*;

#[test]
fn help_of_each_channel_command_names_its_key_flags() {
    let common = ["--channel", "--git", "--path", "--branch", "--output"];
    let specific: [(&str, &[&str]); 7] = [
        ("status", &["CONVERGED", "DIVERGED", "UNKNOWN"]),
        ("reconcile", &["--force-restore"]),
        (
            "deploy",
            &["--candidate", "--group", "--commit", "GITHUB_EVENT_PATH"],
        ),
        ("promote", &["--commit"]),
        ("pin", &["--reason", "--expires", "DIGEST|COMMIT"]),
        ("unpin", &[]),
        ("rollback", &["--reason", "COMMIT"]),
    ];
    for (cmd, flags) in specific {
        let r = mainline(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{cmd} --help: {}", r.stderr);
        for flag in common.iter().chain(flags) {
            assert!(
                r.stdout.contains(flag),
                "`mainline {cmd} --help` does not mention {flag}:\n{}",
                r.stdout
            );
        }
    }
    let top = mainline(&["--help"]).ok();
    for word in [
        "Exit codes",
        "status",
        "reconcile",
        "deploy",
        "pin",
        "rollback",
    ] {
        assert!(top.stdout.contains(word), "mainline --help lacks {word}");
    }
}

#[test]
fn status_json_has_the_contract_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let ch = Channel::new(&layout_store(tmp.path(), "store"), &q, "cache");
    // status only reads: the layout must exist (the first push or promote creates it).
    empty_layout(&tmp.path().join("store"));
    let absent = ch.status(3);
    assert_eq!(verdict(&absent), "BEHIND", "an absent channel: {absent}");
    for key in ["channel_digest", "channel_commit"] {
        assert!(
            absent.get(key).is_some_and(|v| v.is_null()),
            "{key}: {absent}"
        );
    }
    let digest = first_deploy(&ch, &q);
    let s = ch.status(0);
    assert_eq!(s["verdict"], "CONVERGED");
    assert_eq!(s["channel_digest"], digest.as_str());
    assert_eq!(s["channel_commit"], q.main().as_str());
    assert_eq!(s["mainline_commit"], q.main().as_str());
    assert!(
        s["explanation"].as_str().is_some_and(|e| !e.is_empty()),
        "{s}"
    );
}

/// A remote with a promoted channel, for the bad-input cases that reach the store.
struct Fixture {
    _tmp: tempfile::TempDir,
    q: Queue,
    ch: Channel,
    digest: String,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let ch = Channel::new(&layout_store(tmp.path(), "store"), &q, "cache");
    let digest = first_deploy(&ch, &q);
    Fixture {
        _tmp: tmp,
        q,
        ch,
        digest,
    }
}

/// Exit 2, stderr containing every `needle`, and nothing written: no new store, no mainline
/// refs on the remote.
fn assert_invalid(r: &Run, needles: &[&str], root: &Path, q: &Queue) {
    assert_eq!(
        r.code, 2,
        "invalid input exits 2\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
    assert!(!root.join("new-store").exists(), "a store was created");
    let refs: Vec<String> = q
        .refs_under("refs/mainline/")
        .into_iter()
        .filter(|r| {
            !r.starts_with("refs/mainline/journal/") && !r.starts_with("refs/mainline/lock/")
        })
        .collect();
    assert!(refs.is_empty(), "mainline refs were written: {refs:?}");
}

#[test]
fn bad_settings_exit_2_with_a_clear_message_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let q = Queue::new(root);
    let new_store = format!("oci-layout:{}", root.join("new-store").display());
    let remote = q.url();
    let cache = root.join("cache").display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        all.extend(["--cache-dir", cache.as_str()]);
        mainline_in(root, &all, &[])
    };

    let r = run(&["--git", &remote, "--path", "k8s"]);
    assert_invalid(
        &r,
        &["no channel given", "--channel", "MAINLINE_CHANNEL"],
        root,
        &q,
    );

    let digest = "sha256:4f1c0000000000000000000000000000000000000000000000000000000000aa";
    let r = run(&[
        "--channel",
        &format!("{new_store}@{digest}"),
        "--git",
        &remote,
    ]);
    assert_invalid(&r, &["names a digest", "a channel is a tag"], root, &q);

    let r = run(&[
        "--channel",
        &format!("{new_store}:latest"),
        "--git",
        &remote,
        "--path",
        "../k8s",
    ]);
    assert_invalid(&r, &["--path", "no .."], root, &q);
    let r = run(&[
        "--channel",
        &format!("{new_store}:latest"),
        "--git",
        &remote,
        "--path",
        "k8s/../..",
    ]);
    assert_invalid(&r, &["--path"], root, &q);

    std::fs::write(
        root.join("mainline.toml"),
        format!("chanel = \"{new_store}:latest\"\ngit = \"{remote}\"\n"),
    )
    .expect("write mainline.toml");
    let r = run(&[]);
    assert_invalid(&r, &["mainline.toml", "chanel", "keys are"], root, &q);

    let secret = "s3cr3t-token-never-printed";
    std::fs::write(
        root.join("mainline.toml"),
        format!(
            "channel = \"{new_store}:latest\"\ngit = \"https://bob:{secret}@git.example.com/acme/app.git\"\n"
        ),
    )
    .expect("write mainline.toml");
    let r = run(&[]);
    assert_invalid(
        &r,
        &[
            "mainline.toml",
            "secrets never go in the config file",
            "MAINLINE_GIT_TOKEN",
        ],
        root,
        &q,
    );
    assert!(
        !r.stderr.contains(secret) && !r.stdout.contains(secret),
        "the secret was printed:\n{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn pin_of_a_missing_digest_and_rollback_without_artifact_exit_2_and_write_nothing() {
    let f = fixture();
    let root = f.ch.cwd.clone();
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000bad";
    let r = f.ch.run(&["pin", missing, "--reason", "typo"]);
    assert_invalid(&r, &["no such manifest", &missing[..20]], &root, &f.q);
    assert_eq!(f.ch.digest("latest").as_ref(), Some(&f.digest));

    // A commit on mainline whose artifact was never pushed.
    let mut q = f.q;
    let c = q.push_main(
        &[("k8s/app.yaml", "kind: Deployment\nreplicas: 5\n")],
        "scale",
    );
    let r = f.ch.run(&["rollback", &c, "--reason", "INC-1"]);
    assert_invalid(
        &r,
        &["has no artifact", &format!("sha-{c}"), "mainline push"],
        &root,
        &q,
    );
    let r = f.ch.run(&["rollback", "not-a-commit", "--reason", "INC-1"]);
    assert_invalid(&r, &["not a full commit id"], &root, &q);
    assert_eq!(f.ch.digest("latest").as_ref(), Some(&f.digest));
}

#[test]
fn settings_precedence_is_flags_then_env_then_mainline_toml() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let q = Queue::new(root);
    let store = |name: &str| format!("oci-layout:{}:latest", root.join(name).display());
    let cache = root.join("cache").display().to_string();
    for name in ["file-store", "env-store", "flag-store"] {
        empty_layout(&root.join(name));
    }
    std::fs::write(
        root.join("mainline.toml"),
        format!(
            "channel = \"{}\"\ngit = \"{}\"\npath = \"k8s\"\nbranch = \"main\"\n",
            store("file-store"),
            q.url()
        ),
    )
    .expect("write mainline.toml");
    let status = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["status", "-o", "json", "--cache-dir", cache.as_str()];
        all.extend_from_slice(args);
        mainline_in(root, &all, env)
    };
    let channel_of = |r: &Run| r.json()["channel"].as_str().expect("channel").to_owned();

    let r = status(&[], &[]);
    assert_eq!(r.code, 3, "file only: {}", r.stderr);
    assert!(channel_of(&r).contains("file-store"), "{}", r.stdout);

    let env_store = store("env-store");
    let env = [
        ("MAINLINE_CHANNEL", env_store.as_str()),
        ("MAINLINE_BRANCH", "no-such-branch"),
    ];
    let r = status(&[], &env);
    assert!(
        channel_of(&r).contains("env-store"),
        "env beats the file: {}",
        r.stdout
    );
    assert_eq!(
        r.code, 4,
        "MAINLINE_BRANCH beats the file's branch: {}",
        r.stdout
    );
    assert!(r.stdout.contains("no-such-branch"), "{}", r.stdout);

    let flag_store = store("flag-store");
    let r = status(&["--channel", &flag_store, "--branch", "main"], &env);
    assert_eq!(r.code, 3, "flags beat the environment: {}", r.stdout);
    assert!(channel_of(&r).contains("flag-store"), "{}", r.stdout);
}

#[test]
fn deploy_candidate_reads_the_group_from_a_github_merge_group_run() {
    let f = fixture();
    let mut q = f.q;
    let g = q.enqueue(12, &[("k8s/app.yaml", "kind: Deployment\nreplicas: 12\n")]);
    let payload = f.ch.cwd.join("event.json");
    std::fs::write(
        &payload,
        serde_json::json!({
            "action": "checks_requested",
            "merge_group": {
                "head_sha": g.head,
                "head_ref": format!("refs/heads/{}", g.id),
                "base_sha": g.base,
                "base_ref": "refs/heads/main",
            }
        })
        .to_string(),
    )
    .expect("write payload");
    let head_ref = format!("refs/heads/{}", g.id);
    let env = [
        ("GITHUB_EVENT_NAME", "merge_group"),
        ("GITHUB_EVENT_PATH", payload.to_str().expect("utf-8")),
        ("GITHUB_SHA", g.head.as_str()),
        ("GITHUB_REF", head_ref.as_str()),
    ];
    let r = f.ch.run_env(&["deploy", "--candidate"], &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(moves(&j)[0]["to_commit"], g.head.as_str(), "{j}");
    assert_eq!(j["final_verdict"], "CANDIDATE");
    let s = f.ch.status(0);
    assert_eq!(s["channel_commit"], g.head.as_str());
    assert_eq!(s["groups"][0]["id"], g.id.as_str(), "{s}");

    // A merge_group run whose payload is not one: a clear error, nothing moves.
    std::fs::write(&payload, "{\"pull_request\":{}}").expect("write payload");
    let r = f.ch.run_env(&["deploy", "--candidate"], &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no merge_group object"), "{}", r.stderr);
    assert_eq!(f.ch.status(0)["channel_commit"], g.head.as_str());
}
