//! The schema checker in `tests/github-schemas/` (GitHub's published schemas, installed by
//! `npm ci` there), for the tests that hand it what went over the wire.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/github-schemas/` at the workspace root.
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/github-schemas")
}

/// `tests/github-schemas/node_modules/<rel>`; panics, saying how to install it, when missing.
/// Never skips: without GitHub's schemas these tests have no judge.
pub fn installed(rel: &str) -> PathBuf {
    let path = package_dir().join("node_modules").join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `npm ci` in tests/github-schemas (scripts/test.sh does) to install \
         GitHub's published schemas at the versions pinned in its package-lock.json",
        path.display()
    );
    path
}

/// Run `node check-corpus.mjs <corpus>`; panics with the checker's report on any problem.
pub fn check_corpus(corpus: &Path) -> String {
    installed("@octokit/graphql-schema/schema.json");
    let out = Command::new("node")
        .arg("check-corpus.mjs")
        .arg(corpus)
        .current_dir(package_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("running `node` failed ({e}): install Node.js (>= 20), then `npm ci` in tests/github-schemas")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "GitHub's schemas refuse what mainline or the fake sent ({}):\n{stderr}{stdout}",
        out.status
    );
    stdout
}
