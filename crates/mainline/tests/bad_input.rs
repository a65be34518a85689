//! Issue 10, items 5, 6, 7 and 12: input that used to be accepted quietly. An empty deploy
//! tree (Flux would prune everything), a deploy path that is not on mainline, a read-only
//! command pointed at a mistyped layout path, layout files that ignored the umask, and flags
//! that were empty, multi-line, huge, half-given or unbounded. Each case checks the exit code
//! and that nothing was written — on the real registry and an OCI layout where a store is
//! involved, against a real git remote.

#[macro_use]
mod support;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use support::queue::{field, first_deploy, Channel, Queue, DEPLOY_PATH};
use support::*;

const REV: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const CREATED: &str = "2024-05-01T12:00:00Z";

fn push(store: &str, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "push",
        dir.to_str().expect("utf-8"),
        "--to",
        store,
        "--revision",
        REV,
        "--created",
        CREATED,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    mainline(&args)
}

fn tag_exists(store: &str, tag: &str) -> bool {
    mainline(&["inspect", &format!("{store}:{tag}")]).code == 0
}

/// Make `k8s/` on main hold nothing but a submodule: a deploy tree with no file in it (git
/// cannot store an empty folder; a submodule-only folder packs to nothing).
fn push_main_with_empty_deploy_tree(q: &Queue) -> String {
    let w = q.work();
    let main = q.main();
    git(w, &["checkout", "-q", "--detach", &main]);
    git(w, &["rm", "-r", "-q", "k8s"]);
    let gitlink = format!("160000,{main},k8s/vendored");
    git(w, &["update-index", "--add", "--cacheinfo", &gitlink]);
    git_at(
        w,
        &["commit", "-q", "-m", "k8s: vendored only"],
        "2024-05-02T10:00:00Z",
    );
    let c = git(w, &["rev-parse", "HEAD"]);
    q.push_branch("main", &c);
    c
}

fn journal(ch: &Channel) -> Vec<Value> {
    let r = ch.run(&["history"]);
    assert_eq!(r.code, 0, "history: {}", r.stderr);
    r.json()["records"].as_array().expect("records").clone()
}

fn empty_trees_are_refused_by_push_unless_allowed(store: &str, tmp: &Path) {
    let empty = tmp.join("empty");
    std::fs::create_dir_all(empty.join("only/folders")).expect("mkdir");
    let tag = "sha-0123456789abcdef0123456789abcdef01234567";
    let r = push(store, &empty, &[]);
    assert_eq!(r.code, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("holds no file"), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-empty"), "{}", r.stderr);
    if let Some(path) = store.strip_prefix("oci-layout:") {
        assert!(!Path::new(path).exists(), "a layout was created");
    }
    assert!(!tag_exists(store, tag), "the empty artifact was pushed");
    push(store, &empty, &["--allow-empty"]).ok();
    assert!(tag_exists(store, tag));
}
on_both_stores!(empty_trees_are_refused_by_push_unless_allowed);

fn reconcile_refuses_an_empty_deploy_tree_and_journals_it_once(store: &str, tmp: &Path) {
    let q = Queue::new(tmp);
    let ch = Channel::new(store, &q, "cache");
    let prod = first_deploy(&ch, &q);
    let empty = push_main_with_empty_deploy_tree(&q);

    for _ in 0..2 {
        let r = ch.expect(&["reconcile"], 5);
        assert_eq!(r["refusal"]["reason"], "empty_tree", "{r}");
        assert!(moves_of(&r).is_empty(), "{r}");
    }
    let r = ch.expect(&["promote"], 5);
    assert_eq!(r["refusal"]["reason"], "empty_tree", "{r}");
    assert_eq!(ch.digest("latest"), Some(prod.clone()), "the channel moved");
    assert_eq!(
        ch.digest(&format!("sha-{empty}")),
        None,
        "an empty artifact was pushed"
    );
    let refusals: Vec<Value> = journal(&ch)
        .into_iter()
        .filter(|e| e["kind"] == "refused")
        .collect();
    assert_eq!(
        refusals.len(),
        2,
        "one per event (reconcile, promote): {refusals:?}"
    );
    assert!(refusals.iter().all(|e| {
        e["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("empty_tree"))
            && e["to_commit"] == empty.as_str()
    }));

    // Asked for explicitly, the empty deploy goes through.
    let r = ch.with(&["--allow-empty"]).expect(&["reconcile"], 0);
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
    assert_ne!(ch.digest("latest"), Some(prod));
}
on_both_stores!(reconcile_refuses_an_empty_deploy_tree_and_journals_it_once);

fn moves_of(r: &Value) -> &Vec<Value> {
    r["moves"].as_array().expect("moves")
}

fn mistyped_path_exits_2_with_the_folders_that_exist_and_writes_nothing(store: &str, tmp: &Path) {
    let mut q = Queue::new(tmp);
    q.push_main(&[("deploy/prod/app.yaml", "kind: Deployment\n")], "prod");
    let ch = Channel::new(store, &q, "cache");
    let prod = first_deploy(&ch, &q);
    let refs_before: Vec<(String, Option<String>)> = q
        .refs_under("refs/mainline/")
        .into_iter()
        .map(|r| (r.clone(), q.remote_ref(&r)))
        .collect();
    let cache = tmp.join("cache").display().to_string();
    let channel = ch.reference();
    let cases = [
        ("k8z", "folders in the repository root on main: deploy, k8s"),
        ("deploy/prd", "folders in deploy/ on main: prod"),
    ];
    for (path, hint) in cases {
        for cmd in ["status", "reconcile", "promote"] {
            let args = [
                cmd,
                "--channel",
                &channel,
                "--git",
                &q.url(),
                "--path",
                path,
                "--cache-dir",
                &cache,
                "-o",
                "json",
            ];
            let r = mainline_in(tmp, &args, &[]);
            assert_eq!(r.code, 2, "{cmd} --path {path}\n{}\n{}", r.stdout, r.stderr);
            assert!(
                r.stderr.contains(&format!("--path {path:?}")),
                "{}",
                r.stderr
            );
            assert!(r.stderr.contains(hint), "{cmd} --path {path}: {}", r.stderr);
            assert_eq!(r.json()["error"]["exit_code"], 2);
        }
    }
    let refs_after: Vec<(String, Option<String>)> = q
        .refs_under("refs/mainline/")
        .into_iter()
        .map(|r| (r.clone(), q.remote_ref(&r)))
        .collect();
    assert_eq!(
        refs_before, refs_after,
        "journal, lock or pin refs were written"
    );
    assert_eq!(ch.digest("latest"), Some(prod));
    assert_eq!(DEPLOY_PATH, "k8s");
}
on_both_stores!(mistyped_path_exits_2_with_the_folders_that_exist_and_writes_nothing);

#[test]
fn read_only_commands_never_create_a_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let typo = tmp.path().join("stroe");
    let store = format!("oci-layout:{}", typo.display());
    let git_url = q.url();
    let cache = tmp.path().join("cache").display().to_string();
    let channel = format!("{store}:latest");
    let out = tmp.path().join("out").display().to_string();
    let channel_args = [
        "--channel",
        &channel,
        "--git",
        &git_url,
        "--cache-dir",
        &cache,
    ];
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("status", [&["status"][..], &channel_args].concat()),
        ("history", [&["history"][..], &channel_args].concat()),
        ("inspect", vec!["inspect", &channel]),
        ("pull", vec!["pull", &channel, "--output-dir", &out]),
    ];
    for (name, args) in runs {
        let r = mainline_in(tmp.path(), &args, &[]);
        assert_eq!(
            r.code, 2,
            "{name}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.contains("no OCI image layout"),
            "{name}: {}",
            r.stderr
        );
        assert!(!typo.exists(), "{name} created {}", typo.display());
    }
    assert!(q.refs_under("refs/mainline/").is_empty());
}

#[test]
fn layout_files_follow_the_umask() {
    for (umask, file_mode) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        write_tree(&src, &[("app.yaml", "kind: Deployment\n")]);
        let store_dir = tmp.path().join("store");
        let script = format!("umask {umask} && exec \"$0\" \"$@\"");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .arg(bin())
            .args(["push", src.to_str().unwrap(), "--to"])
            .arg(format!("oci-layout:{}", store_dir.display()))
            .args([
                "--revision",
                REV,
                "--created",
                CREATED,
                "--source",
                "https://x.test/a",
            ])
            .output()
            .expect("run mainline");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files = vec![store_dir.join("index.json"), store_dir.join("oci-layout")];
        for blob in std::fs::read_dir(store_dir.join("blobs/sha256")).expect("blobs") {
            files.push(blob.expect("entry").path());
        }
        assert!(files.len() >= 5, "index, marker and three blobs: {files:?}");
        for f in files {
            let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
            assert_eq!(
                mode,
                file_mode,
                "umask {umask}: {} is {mode:o}",
                f.display()
            );
        }
    }
}

#[test]
fn pin_with_an_empty_reason_is_invalid_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let ch = Channel::new(&layout_store(tmp.path(), "store"), &q, "cache");
    let digest = first_deploy(&ch, &q);
    for reason in ["", "   ", "two\nlines"] {
        let r = ch.run(&["pin", &digest, "--reason", reason]);
        assert_eq!(r.code, 2, "--reason {reason:?}: {}", r.stderr);
        assert!(r.stderr.contains("--reason"), "{}", r.stderr);
        let r = ch.run(&["rollback", &q.main(), "--reason", reason]);
        assert_eq!(r.code, 2, "rollback --reason {reason:?}: {}", r.stderr);
    }
    assert!(
        q.refs_under("refs/mainline/pin/").is_empty(),
        "a pin was written"
    );
}

#[test]
fn lease_group_ids_that_are_empty_multiline_or_huge_are_invalid_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let ch =
        Channel::new(&layout_store(tmp.path(), "store"), &q, "cache").with(&["--queue", "lease"]);
    first_deploy(&ch, &q);
    let head = q.commit_on(
        Some(&q.main()),
        &[("k8s/app.yaml", "replicas: 9\n")],
        "cand",
    );
    q.push_branch("candidate", &head);
    let huge = "g".repeat(5000);
    for group in ["", " ", "pr-1\nrm -rf", huge.as_str()] {
        let r = ch.run(&["deploy", "--candidate", "--group", group, "--commit", &head]);
        assert_eq!(r.code, 2, "--group of {} chars: {}", group.len(), r.stderr);
        assert!(r.stderr.contains("--group"), "{}", r.stderr);
    }
    assert!(
        q.refs_under("refs/mainline/lease/").is_empty(),
        "a lease was written"
    );
    let ok = ch.run(&[
        "deploy",
        "--candidate",
        "--group",
        "pr-1",
        "--commit",
        &head,
    ]);
    assert_eq!(ok.code, 0, "a sane group id: {}", ok.stderr);
}

#[test]
fn registry_password_without_a_username_is_invalid_input() {
    let store = registry_store("pwonly");
    let reference = format!("{store}:latest");
    let env = [("MAINLINE_REGISTRY_PASSWORD", "s3cret-not-real")];
    let r = mainline_in(Path::new("."), &["inspect", &reference], &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no user name"), "{}", r.stderr);
    assert!(!r.stderr.contains("s3cret"), "the password was printed");
    let r = mainline(&["--registry-password-stdin", "inspect", &reference]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--registry-password-stdin"),
        "{}",
        r.stderr
    );
}

fn pull_refuses_a_layer_over_its_size_or_file_limits(store: &str, tmp: &Path) {
    let src = tmp.join("src");
    let files: Vec<(String, String)> = (0..40)
        .map(|i| (format!("f{i:02}.yaml"), "x".repeat(4096)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write_tree(&src, &refs);
    // A bomb: 120 MiB of zeros (sparse on disk) that gzip packs into a few hundred KiB.
    let bomb = std::fs::File::create(src.join("zeros.bin")).expect("create");
    bomb.set_len(120 * 1024 * 1024).expect("sparse file");
    push(store, &src, &[]).ok();
    let reference = format!("{store}:sha-0123456789abcdef0123456789abcdef01234567");
    let cases: [(&str, &[&str], &str); 3] = [
        ("default", &[], "more than 104857600 bytes"),
        (
            "max-files",
            &["--max-size", "1G", "--max-files", "10"],
            "more than 10 entries",
        ),
        ("max-size", &["--max-size", "64K"], "more than 65536 bytes"),
    ];
    for (name, flags, needle) in cases {
        let out = tmp.join(format!("out-{name}"));
        let mut args = vec!["pull", &reference, "--output-dir", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let r = mainline(&args);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{name}: {}", r.stderr);
        assert!(!out.exists(), "{name}: something was extracted");
    }
    let out = tmp.join("out-ok");
    let args = [
        "pull",
        &reference,
        "--output-dir",
        out.to_str().unwrap(),
        "--max-size",
        "1G",
    ];
    mainline(&args).ok();
    assert_eq!(
        std::fs::metadata(out.join("zeros.bin")).unwrap().len(),
        120 << 20
    );
}
on_both_stores!(pull_refuses_a_layer_over_its_size_or_file_limits);
