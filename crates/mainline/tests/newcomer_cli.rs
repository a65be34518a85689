//! Issue 14, the CLI as a newcomer meets it — push, the flags and the help: every missing push
//! input in one error and the reproducible epoch outside git (item 2), `--git` as any remote
//! (3), the revision of `--commit <sha>` (4), a registry that speaks plain HTTP (5), boolean
//! environment variables (6), examples in every `--help` (7), the simulator's explanation of its
//! figures (12), skopeo reading a layout (14), one count of files (16), the design document
//! (19), a FILE given as DIR (20), and no progress bar when stderr is not a terminal.
//!
//! Real git repositories, the real test registry (scripts/with-registry.sh), and skopeo as an
//! independent reader.

#[macro_use]
mod support;

use std::path::Path;
use std::process::Command;
use support::*;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// mainline with no help from the environment: no MAINLINE_SOURCE, no GitHub variables.
fn bare(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd)
        .args(args)
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("MAINLINE_SOURCE")
        .env_remove("MAINLINE_PLAIN_HTTP")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mainline").into()
}

fn layout_has_files(store: &Path) -> bool {
    store.join("index.json").exists()
}

#[test]
fn push_dir_names_every_missing_input_then_packs_reproducibly_outside_git() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("k8s");
    write_tree(&dir, &[("app.yaml", "kind: Deployment\n")]);
    let store = tmp.path().join("store");
    let to = format!("oci-layout:{}", store.display());

    let r = bare(tmp.path(), &["push", "k8s", "--to", &to], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--revision"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--source"),
        "both in one error: {}",
        r.stderr
    );
    assert!(!layout_has_files(&store), "nothing is written");

    let rev = format!("main@sha1:{SHA}");
    let args = [
        "push",
        "k8s",
        "--to",
        &to,
        "--revision",
        &rev,
        "--source",
        "https://example.com/app",
    ];
    let r = bare(tmp.path(), &args, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1970-01-01T00:00:00Z"), "{}", r.stdout);
    assert!(r.stdout.contains("--reproducible"), "said so: {}", r.stdout);
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let j = bare(tmp.path(), &json_args, &[]).json();
    assert_eq!(j["created"], "1970-01-01T00:00:00Z", "{j}");
    assert_eq!(j["created_from"], "reproducible_epoch", "{j}");
    assert_eq!(j["already_present"], true, "same bytes again: {j}");

    // skopeo, an independent reader, needs --raw for an artifact (README).
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("oci:{}:sha-{SHA}", store.display()),
        ])
        .output()
        .expect("skopeo is needed: apt-get install -y skopeo (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a manifest");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    assert!(readme.contains("skopeo inspect --raw oci:PATH:TAG"));
}

#[test]
fn push_of_a_file_says_it_is_a_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_tree(tmp.path(), &[("app.yaml", "kind: Deployment\n")]);
    let to = format!("oci-layout:{}", tmp.path().join("store").display());
    let rev = format!("main@sha1:{SHA}");
    let r = bare(
        tmp.path(),
        &["push", "app.yaml", "--to", &to, "--revision", &rev],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("is a file, not a directory"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("no such directory"), "{}", r.stderr);
}

#[test]
fn push_git_takes_any_remote_and_records_the_branch_of_a_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (repo, commits) = fixture_repo(tmp.path());
    let last = commits.last().expect("commits");
    let bare_remote = tmp.path().join("remote.git");
    // A bare repository with no origin (as a git host's own copy is).
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    git(
        &repo,
        &["push", "-q", bare_remote.to_str().expect("utf-8"), "main"],
    );
    let store = |n: &str| format!("oci-layout:{}", tmp.path().join(n).display());

    // From the local checkout, by commit id: the one branch that contains it.
    let r = bare(
        &repo,
        &[
            "push",
            "--git",
            ".",
            "--commit",
            last,
            "--path",
            "k8s",
            "--to",
            &store("a"),
            "-o",
            "json",
        ],
        &[("MAINLINE_SOURCE", "https://example.com/app")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let local = r.json();
    assert_eq!(local["revision"], format!("main@sha1:{last}"), "{local}");

    // An abbreviated id resolves the same way.
    let r = bare(
        &repo,
        &[
            "push",
            "--git",
            ".",
            "--commit",
            &last[..10],
            "--path",
            "k8s",
            "--to",
            &store("b"),
            "-o",
            "json",
        ],
        &[("MAINLINE_SOURCE", "https://example.com/app")],
    );
    assert_eq!(
        r.json()["revision"],
        format!("main@sha1:{last}"),
        "{}",
        r.stdout
    );

    // Two branches contain it: no guess.
    git(&repo, &["branch", "release", last]);
    let r = bare(
        &repo,
        &[
            "push",
            "--git",
            ".",
            "--commit",
            &commits[0],
            "--path",
            "k8s",
            "--to",
            &store("c"),
            "-o",
            "json",
        ],
        &[("MAINLINE_SOURCE", "https://example.com/app")],
    );
    assert_eq!(
        r.json()["revision"],
        format!("sha1:{}", commits[0]),
        "{}",
        r.stdout
    );

    // A file:// remote of a bare repository, with no --source: the remote is the source.
    let url = format!("file://{}", bare_remote.display());
    let cache = tmp.path().join("xdg");
    let r = bare(
        tmp.path(),
        &[
            "push",
            "--git",
            &url,
            "--commit",
            "main",
            "--path",
            "k8s",
            "--to",
            &store("d"),
            "-o",
            "json",
        ],
        &[("XDG_CACHE_HOME", cache.to_str().expect("utf-8"))],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let remote = r.json();
    assert_eq!(remote["revision"], format!("main@sha1:{last}"), "{remote}");
    assert_eq!(remote["source"], url.as_str(), "{remote}");
    assert_eq!(remote["files"], local["files"], "{remote}");

    // A local bare repository by path: its own file:// URL, not a demand for --source.
    let r = bare(
        tmp.path(),
        &[
            "push",
            "--git",
            "remote.git",
            "--commit",
            "main",
            "--path",
            "k8s",
            "--to",
            &store("e"),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.json()["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("file:///")),
        "{}",
        r.stdout
    );

    // Same tree, revision, source and time: same digest from a checkout and from the remote.
    let r = bare(
        &repo,
        &[
            "push",
            "--git",
            ".",
            "--commit",
            "main",
            "--path",
            "k8s",
            "--to",
            &store("f"),
            "--source",
            &url,
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(r.json()["digest"], remote["digest"], "{}", r.stdout);
}

#[test]
fn push_and_pull_count_files_the_same_way_with_no_bar_off_a_terminal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("k8s");
    write_tree(
        &dir,
        &[
            ("a.yaml", "a\n"),
            ("base/b.yaml", "b\n"),
            ("base/deep/c.yaml", "c\n"),
        ],
    );
    let to = format!("oci-layout:{}", tmp.path().join("store").display());
    let rev = format!("main@sha1:{SHA}");
    let r = bare(
        tmp.path(),
        &[
            "push",
            "k8s",
            "--to",
            &to,
            "--revision",
            &rev,
            "--source",
            "https://e.x/a",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("files     3 "), "{}", r.stdout);
    // stderr is a pipe here: no progress bar, no escape codes, nothing at all.
    assert_eq!(r.stderr, "", "stderr must stay quiet off a terminal");

    let r = bare(
        tmp.path(),
        &["pull", &format!("{to}:sha-{SHA}"), "--output-dir", "out"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(": 3 files,"), "{}", r.stdout);
    assert_eq!(r.stderr, "");
    let inspect = bare(tmp.path(), &["inspect", &format!("{to}:sha-{SHA}")], &[]);
    assert!(
        inspect.stdout.contains("files (3; 2 folders, 0 links):"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn boolean_environment_variables_take_one_and_zero_and_name_themselves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("k8s");
    write_tree(&dir, &[("a.yaml", "a\n")]);
    let to = format!("oci-layout:{}", tmp.path().join("store").display());
    let rev = format!("main@sha1:{SHA}");
    let push = [
        "push",
        "k8s",
        "--to",
        &to,
        "--revision",
        &rev,
        "--source",
        "https://e.x/a",
    ];
    for yes in ["1", "yes", "true", "ON"] {
        let r = bare(tmp.path(), &push, &[("MAINLINE_PLAIN_HTTP", yes)]);
        assert_eq!(r.code, 0, "MAINLINE_PLAIN_HTTP={yes}: {}", r.stderr);
    }
    for no in ["0", "no", ""] {
        let r = bare(tmp.path(), &push, &[("MAINLINE_PLAIN_HTTP", no)]);
        assert_eq!(r.code, 0, "MAINLINE_PLAIN_HTTP={no:?}: {}", r.stderr);
    }
    for (var, bad) in [
        ("MAINLINE_PLAIN_HTTP", "maybe"),
        ("MAINLINE_ALLOW_EMPTY", "2"),
        ("MAINLINE_REQUIRE_SIGNATURE", "1 "),
    ] {
        let r = bare(tmp.path(), &push, &[(var, bad)]);
        assert_eq!(r.code, 2, "{var}={bad}: {}", r.stderr);
        assert!(r.stderr.contains(var), "names {var}: {}", r.stderr);
        assert!(r.stderr.contains("1 or 0"), "{}", r.stderr);
    }
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let subcommands = [
        "push",
        "inspect",
        "pull",
        "tag",
        "status",
        "reconcile",
        "deploy",
        "promote",
        "pin",
        "unpin",
        "rollback",
        "tour",
        "simulate",
        "history",
        "guard",
    ];
    for sub in subcommands {
        let r = bare(tmp.path(), &[sub, "--help"], &[]);
        assert_eq!(r.code, 0, "{sub}: {}", r.stderr);
        let examples = r
            .stdout
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub} --help has no Examples:\n{}", r.stdout));
        assert!(
            examples.contains(&format!("mainline {sub}")),
            "{sub}: the examples run {sub}:\n{examples}"
        );
    }
    let r = bare(tmp.path(), &["--help"], &[]);
    assert!(r.stdout.contains("docs/design.md"), "{}", r.stdout);
}

#[test]
fn the_design_document_is_the_projects_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(
        !readme.contains("shared/DESIGN.md"),
        "no link users cannot follow"
    );
    assert!(readme.contains("docs/design.md"));
    let design = std::fs::read_to_string(root.join("docs/design.md")).expect("docs/design.md");
    for must in [
        "S1",
        "S2",
        "S3",
        "S4",
        "S5",
        "L1",
        "L2",
        "**G**",
        "CONVERGED",
        "DIVERGED",
        "UNKNOWN",
        "## Concurrency",
        "Fencing",
        "## History",
        "## Stores",
        "## The scenario catalog",
    ] {
        assert!(design.contains(must), "docs/design.md lacks {must}");
    }
    let scenarios = design
        .split("## The scenario catalog")
        .nth(1)
        .expect("catalog");
    assert!(scenarios.contains("\n15. "), "all fifteen scenarios");
}

#[test]
fn simulate_says_where_mainlines_worst_minutes_come_from() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = bare(
        tmp.path(),
        &[
            "simulate",
            "--histories",
            "20",
            "--strategy",
            "mainline",
            "--threads",
            "1",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("injected outages"), "{}", r.stdout);
    assert!(r.stdout.contains("--no-faults"), "{}", r.stdout);
}

/// Item 5: a registry that answers plain HTTP to a client speaking TLS.
#[test]
fn a_plain_http_registry_is_named_at_once_without_retries_or_colour() {
    let store = registry_store("plainhttp");
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let r = bare(
        tmp.path(),
        &["inspect", &format!("{store}:latest")],
        &[("RUST_LOG", "")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("speaks plain HTTP"), "{}", r.stderr);
    assert!(r.stderr.contains("--plain-http"), "{}", r.stderr);
    assert!(!r.stderr.contains("retrying"), "no retries: {}", r.stderr);
    assert!(!r.stderr.contains("InvalidContentType"), "{}", r.stderr);
    assert!(
        !r.stderr.contains('\x1b'),
        "no colour off a terminal: {:?}",
        r.stderr
    );
    assert!(
        started.elapsed().as_secs() < 10,
        "at once: {:?}",
        started.elapsed()
    );
    // A warning that does print (-v) carries no colour either.
    let r = bare(
        tmp.path(),
        &["-vv", "inspect", &format!("{store}:latest")],
        &[],
    );
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
}

/// The progress bar: drawn on a terminal (run under `script`, which gives the command a pty),
/// absent in logs (the other tests run with stderr on a pipe and expect it empty).
#[test]
fn a_push_draws_its_progress_bar_on_a_terminal_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, String)> = (0..400)
        .map(|i| {
            (
                format!("k8s/d{}/f{i}.yaml", i % 20),
                format!("{i}\n").repeat(4000),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(tmp.path(), &refs);
    let typescript = tmp.path().join("typescript");
    let command = format!(
        "{} push k8s --to oci-layout:{}/store --revision main@sha1:{SHA} --source https://e.x/a >/dev/null",
        bin().display(),
        tmp.path().display()
    );
    let out = Command::new("script")
        .current_dir(tmp.path())
        .args(["-qec", &command])
        .arg(&typescript)
        .env("HOME", tmp.path())
        .output()
        .expect(
            "`script` (util-linux, Debian package bsdutils) is needed to give the push a terminal",
        );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drawn = std::fs::read(&typescript).expect("typescript");
    let drawn = String::from_utf8_lossy(&drawn);
    assert!(drawn.contains("upload ["), "no bar on a terminal:\n{drawn}");

    // Log colour: on a terminal yes, with NO_COLOR never (a note is logged as a warning).
    let note = |no_color: bool| -> String {
        let command = format!(
            "{}{} status --queue github-api --channel oci-layout:{dir}/store:latest --git {dir}/none.git --path k8s --cache-dir {dir}/cache",
            if no_color { "NO_COLOR=1 " } else { "" },
            bin().display(),
            dir = tmp.path().display()
        );
        Command::new("script")
            .current_dir(tmp.path())
            .args(["-qec", &command])
            .arg(&typescript)
            .env("HOME", tmp.path())
            .env_remove("NO_COLOR")
            .output()
            .expect("run script");
        let text =
            String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("note: queue = github-api"));
        line.unwrap_or_else(|| panic!("no note:\n{text}"))
            .to_owned()
    };
    let coloured = note(false);
    assert!(
        coloured.contains("\x1b[33m"),
        "coloured on a terminal: {coloured:?}"
    );
    assert!(!note(true).contains('\x1b'), "NO_COLOR is honoured");
}
