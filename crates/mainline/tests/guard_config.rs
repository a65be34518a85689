//! `mainline guard --check`: the multi-channel config (`[[channels]]` over top-level defaults,
//! `[guard]`), flag and environment overrides, and every refusal — a secret in the file, a bad
//! or duplicate name, an API queue without a repository or token, a missing secret file, an
//! ambiguous `--channel` — with exit 2 and a message that says what to do. Single-channel
//! commands keep working on a file that also configures the guard.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{mainline_in, Run};

fn check(dir: &Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    std::fs::write(dir.join("mainline.toml"), config).expect("write config");
    let mut args = vec![
        "guard",
        "--config",
        "mainline.toml",
        "--check",
        "-o",
        "json",
    ];
    args.extend(extra);
    let mut env = env.to_vec();
    env.push(("MAINLINE_CACHE_DIR", "cache"));
    mainline_in(dir, &args, &env)
}

const TWO: &str = r#"git = "https://github.com/acme/app.git"
path = "k8s"

[guard]
interval = "45s"
parallelism = 3

[[channels]]
name = "prod"
channel = "oci://ghcr.io/acme/app-manifests:latest"
queue = "github-api"

[[channels]]
name = "staging"
channel = "oci://ghcr.io/acme/app-manifests:staging"
git = "https://git.example.com/acme/app.git"
branch = "develop"
lock = "none"
"#;

#[test]
fn channels_inherit_top_level_keys_and_flags_override_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = check(
        dir.path(),
        TWO,
        &[],
        &[("GITHUB_TOKEN", "ghp_not_printed_0000")],
    )
    .ok();
    let v: Value = run.json();
    assert_eq!(
        v["listening"], "http://127.0.0.1:8787",
        "loopback by default"
    );
    assert_eq!(v["interval_ms"], 45_000);
    assert_eq!(v["parallelism"], 3);
    assert_eq!(v["webhooks"], false);
    assert_eq!(v["actions"], false);
    let prod = &v["channels"][0];
    assert_eq!(prod["name"], "prod");
    assert_eq!(prod["queue"], "github-api");
    assert_eq!(
        prod["github_repository"], "acme/app",
        "derived from the github.com remote"
    );
    assert_eq!(prod["path"], "k8s");
    assert_eq!(prod["branch"], "main");
    assert!(
        prod["lock"].as_str().unwrap_or("").starts_with("git"),
        "{prod}"
    );
    let staging = &v["channels"][1];
    assert_eq!(staging["git"], "https://git.example.com/acme/app.git");
    assert_eq!(staging["branch"], "develop");
    assert_eq!(staging["queue"], "github-refs");
    assert_eq!(staging["github_repository"], Value::Null);
    assert!(
        staging["lock"].as_str().unwrap_or("").starts_with("none"),
        "{staging}"
    );
    assert!(!run.stdout.contains("ghp_not_printed"), "{}", run.stdout);

    // Flags and MAINLINE_* variables win over the file, for every channel.
    let run = check(
        dir.path(),
        TWO,
        &[
            "--listen",
            "127.0.0.1:9911",
            "--lock",
            "none",
            "--branch",
            "trunk",
        ],
        &[
            ("GITHUB_TOKEN", "ghp_not_printed_0000"),
            ("MAINLINE_GUARD_INTERVAL", "5s"),
            ("MAINLINE_WEBHOOK_SECRET", "s3cret-value"),
            ("MAINLINE_GUARD_TOKEN", "t0ken-value"),
        ],
    )
    .ok();
    let v = run.json();
    assert_eq!(v["listening"], "http://127.0.0.1:9911");
    assert_eq!(v["interval_ms"], 5_000);
    assert_eq!(v["webhooks"], true);
    assert_eq!(v["actions"], true);
    for c in v["channels"].as_array().expect("channels") {
        assert_eq!(c["branch"], "trunk");
        assert!(c["lock"].as_str().unwrap_or("").starts_with("none"), "{c}");
    }
    for secret in ["s3cret-value", "t0ken-value", "ghp_not_printed"] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
}

fn refused(config: &str, extra: &[&str], env: &[(&str, &str)], expect: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("empty-secret"), "\n").expect("write");
    let run = check(dir.path(), config, extra, env);
    assert_eq!(
        run.code, 2,
        "expected a refusal (exit 2)\nstdout:{}\nstderr:{}",
        run.stdout, run.stderr
    );
    for e in expect {
        assert!(
            run.stderr.contains(e),
            "the message should mention {e:?}:\n{}",
            run.stderr
        );
    }
}

const ONE: &str = r#"[[channels]]
name = "prod"
channel = "oci://ghcr.io/acme/app-manifests:latest"
git = "https://github.com/acme/app.git"
"#;

#[test]
fn bad_guard_configs_are_refused_with_what_to_do() {
    let token = [("GITHUB_TOKEN", "ghp_x")];
    refused(
        &format!("[guard]\nwebhook_secret = \"hunter2-do-not-echo\"\n{ONE}"),
        &[],
        &token,
        &["webhook_secret_file", "MAINLINE_WEBHOOK_SECRET"],
    );
    refused(
        &format!("[guard]\ntoken = \"x\"\n{ONE}"),
        &[],
        &token,
        &["MAINLINE_GUARD_TOKEN"],
    );
    refused(&format!("{ONE}{ONE}"), &[], &token, &["\"prod\"", "unique"]);
    refused(
        &ONE.replace("\"prod\"", "\"prod/eu\""),
        &[],
        &token,
        &["prod/eu", "letters"],
    );
    refused(
        &ONE.replace("github.com/acme", "git.example.com/acme")
            .replace("name = \"prod\"", "name = \"prod\"\nqueue = \"github-api\""),
        &[],
        &token,
        &["prod", "github_repository"],
    );
    refused(
        &ONE.replace("name = \"prod\"", "name = \"prod\"\nqueue = \"github-api\""),
        &[],
        &[],
        &["GITHUB_TOKEN"],
    );
    refused(
        &format!("[guard]\nwebhook_secret_file = \"missing-file\"\n{ONE}"),
        &[],
        &token,
        &["missing-file"],
    );
    refused(
        &format!("[guard]\nwebhook_secret_file = \"empty-secret\"\n{ONE}"),
        &[],
        &token,
        &["empty-secret", "empty"],
    );
    refused(
        ONE,
        &["--channel", "oci://ghcr.io/acme/x:latest"],
        &token,
        &["[[channels]]"],
    );
    refused(
        &ONE.replace("https://github.com", "https://user:pa55word@github.com"),
        &[],
        &token,
        &["prod", "MAINLINE_GIT_TOKEN"],
    );
    refused(
        &format!("{ONE}colour = \"blue\"\n"),
        &[],
        &token,
        &["colour"],
    );
    refused(
        &format!("[guard]\ninterval = \"soon\"\n{ONE}"),
        &[],
        &token,
        &["interval", "soon"],
    );
    refused(
        &format!("[guard]\nlisten = \"everywhere\"\n{ONE}"),
        &[],
        &token,
        &["listen", "IP:PORT"],
    );
    refused("channels = []\n", &[], &token, &["[[channels]]"]);
}

#[test]
fn secrets_given_in_the_file_are_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = check(
        dir.path(),
        &format!("[guard]\nwebhook_secret = \"hunter2-do-not-echo\"\n{ONE}"),
        &[],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        !run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"),
        "{}",
        run.stderr
    );
    let run = check(
        dir.path(),
        &ONE.replace("https://github.com", "https://user:pa55word@github.com"),
        &[],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("pa55word"), "{}", run.stderr);
}

/// The CLI reads `[[channels]]` entries too (`--channel-name`): a password in an entry's git
/// remote is refused there as at the top level and by the guard (it was once read by the CLI).
#[test]
fn a_password_in_an_entry_is_refused_by_channel_commands_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_password = ONE.replace("https://github.com", "https://user:pa55word@github.com");
    std::fs::write(dir.path().join("mainline.toml"), with_password).expect("write config");
    for args in [
        &[
            "status",
            "--config",
            "mainline.toml",
            "--channel-name",
            "prod",
        ][..],
        &[
            "status",
            "--config",
            "mainline.toml",
            "--channel",
            "oci://ghcr.io/acme/x:latest",
        ][..],
    ] {
        let run = mainline_in(dir.path(), args, &[("MAINLINE_CACHE_DIR", "cache")]);
        assert_eq!(
            run.code, 2,
            "{args:?}\nstdout:{}\nstderr:{}",
            run.stdout, run.stderr
        );
        for wanted in [
            "\"prod\"",
            "secrets never go in the config file",
            "MAINLINE_GIT_TOKEN",
        ] {
            assert!(
                run.stderr.contains(wanted),
                "{args:?}: no {wanted:?} in\n{}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("pa55word"), "{}", run.stderr);
    }
}

#[test]
fn single_channel_commands_still_read_a_file_that_configures_the_guard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repo, _) = support::fixture_repo(dir.path());
    let store = format!("oci-layout:{}", dir.path().join("store").display());
    // status only reads: the layout must exist.
    support::empty_layout(&dir.path().join("store"));
    let config = format!(
        "git = \"{}\"\npath = \"k8s\"\n\n[guard]\ninterval = \"1m\"\n\n[[channels]]\nname = \"x\"\nchannel = \"{store}:latest\"\n",
        repo.display()
    );
    std::fs::write(dir.path().join("mainline.toml"), config).expect("write");
    let run = mainline_in(
        dir.path(),
        &[
            "status",
            "--channel",
            &format!("{store}:latest"),
            "-o",
            "json",
        ],
        &[("MAINLINE_CACHE_DIR", "cache")],
    );
    assert_ne!(
        run.code, 2,
        "status must accept the file:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.json()["verdict"].is_string(), "{}", run.stdout);
    // The guard in single-channel mode from the same flags: one channel named "default".
    let run = mainline_in(
        dir.path(),
        &[
            "guard",
            "--check",
            "-o",
            "json",
            "--channel",
            &format!("{store}:latest"),
            "--config",
            "/dev/null",
        ],
        &[
            ("MAINLINE_CACHE_DIR", "cache"),
            ("MAINLINE_GIT", repo.to_str().expect("utf8")),
        ],
    )
    .ok();
    assert_eq!(run.json()["channels"][0]["name"], "default");
}
