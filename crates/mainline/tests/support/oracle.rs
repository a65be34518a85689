//! Flux's own code as the test oracle: `tests/flux-oracle` (Go, importing fluxcd/pkg/oci,
//! fluxcd/pkg/tar and go-containerregistry) pulls, pushes and inspects artifacts exactly as
//! source-controller and `flux push artifact` do. And a tree snapshot to compare what each
//! reader got.
//!
//! The oracle binary comes from `MAINLINE_FLUX_ORACLE` (scripts/test.sh builds it), or is
//! built here with `go build` once per test process. Without Go the tests fail, never skip.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The oracle binary, built on first use when `MAINLINE_FLUX_ORACLE` is not set.
pub fn oracle() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("MAINLINE_FLUX_ORACLE") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "MAINLINE_FLUX_ORACLE={} does not exist; run scripts/test.sh, which builds it",
                p.display()
            );
            return p;
        }
        build_oracle()
    })
}

fn go() -> PathBuf {
    let on_path = Command::new("go").arg("version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return PathBuf::from("go");
    }
    let local = PathBuf::from("/usr/local/go/bin/go");
    assert!(
        local.is_file(),
        "Go is needed to build tests/flux-oracle (Flux's own code judges mainline's artifacts), \
         and no `go` is on PATH or at /usr/local/go/bin/go. Install Go 1.26 or newer \
         (https://go.dev/dl/: tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz) and run \
         scripts/test.sh; the Go module proxy (proxy.golang.org) must be reachable"
    );
    local
}

fn build_oracle() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = manifest.join("../../tests/flux-oracle");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flux-oracle");
    let status = Command::new(go())
        .current_dir(&src)
        .args(["build", "-mod=readonly", "-o"])
        .arg(&out)
        .arg(".")
        .env("GOFLAGS", "-p=2")
        .status()
        .expect("run go build");
    assert!(
        status.success(),
        "go build of {} failed (see above); the module proxy must be reachable for the first build",
        src.display()
    );
    out
}

/// Runs the oracle; panics with its stderr unless it exits 0. Returns its JSON report.
pub fn run_oracle(args: &[&str]) -> Value {
    let out = Command::new(oracle())
        .args(args)
        .output()
        .expect("run flux-oracle");
    assert!(
        out.status.success(),
        "flux-oracle {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("flux-oracle prints JSON")
}

/// How the oracle names `tag` of a mainline STORE (`oci://HOST/REPO` or `oci-layout:PATH`).
pub fn oracle_ref(store: &str, tag: &str) -> String {
    match store.strip_prefix("oci://") {
        Some(rest) => format!("{rest}:{tag}"),
        None => format!("{store}:{tag}"),
    }
}

/// What Flux's source-controller does with `tag`: untar exactly as it does (`raw`), or also
/// drop what its ignore rules drop (what kustomize-controller applies). Returns the report.
pub fn flux_pull(store: &str, tag: &str, dir: &Path, raw: bool) -> Value {
    let reference = oracle_ref(store, tag);
    let dir_s = dir.to_str().expect("utf-8 path");
    let mut args = vec!["pull", reference.as_str(), dir_s];
    if raw {
        args.push("--raw");
    }
    run_oracle(&args)
}

/// One entry of a tree: a file's content and whether it is executable, or a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File { exec: bool, content: Vec<u8> },
    Symlink,
}

/// Every file (and symlink) below `root` by `/`-separated relative path; folders are implied
/// by their files (empty folders are not part of what anything deploys). `.git` is skipped.
/// With `follow`, symlinks are followed as the kernel does (the expectation for
/// --resolve-symlinks).
pub fn snapshot(root: &Path, follow: bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, "", follow, &mut out, 0);
    out
}

fn walk(root: &Path, rel: &str, follow: bool, out: &mut BTreeMap<String, Node>, depth: u32) {
    assert!(
        depth < 64,
        "tree deeper than 64 levels below {rel}: a cycle?"
    );
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().into_string().expect("utf-8 name");
        if name == ".git" {
            continue;
        }
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let abs = root.join(&path);
        let meta = if follow {
            std::fs::metadata(&abs).expect("stat (following links)")
        } else {
            std::fs::symlink_metadata(&abs).expect("lstat")
        };
        if meta.is_dir() {
            walk(root, &path, follow, out, depth + 1);
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o100 != 0;
            let content = std::fs::read(&abs).expect("read file");
            out.insert(path, Node::File { exec, content });
        } else {
            out.insert(path, Node::Symlink);
        }
    }
}

/// Asserts two snapshots are equal, naming the first differing paths (not megabytes of
/// content).
pub fn assert_same_tree(got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>, what: &str) {
    let only_got: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let only_want: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let differ: Vec<&String> = got
        .iter()
        .filter(|(k, v)| want.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        only_got.is_empty() && only_want.is_empty() && differ.is_empty(),
        "{what}: trees differ\n  only in the first: {:?}\n  only in the second: {:?}\n  \
         content or exec bit differs: {:?}",
        &only_got[..only_got.len().min(10)],
        &only_want[..only_want.len().min(10)],
        &differ[..differ.len().min(10)],
    );
}
