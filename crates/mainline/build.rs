//! Stamps `mainline --version` with the commit it was built from and that commit's date.
//!
//! Why: a binary downloaded onto a CI runner (issue 20) must say which source it is. The date is
//! the commit's committer date, never the clock, so two builds of one commit are byte-identical
//! (reproducible builds); `SOURCE_DATE_EPOCH` and `MAINLINE_BUILD_COMMIT` override both for
//! packagers. Outside a git checkout (a source tarball) both say "unknown".
//!
//! Must never: fail the build because git is missing or the tree is not a repository, or read
//! the current time.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), so no date crate is needed.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The repository this crate is part of: not one that merely contains an unpacked tarball.
fn own_repo(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top).join("crates/mainline/build.rs").is_file())
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let in_repo = own_repo(dir);
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=MAINLINE_BUILD_COMMIT");
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs. Only files
    // that exist: cargo would rerun this script on every build for a missing one.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watch.extend(git(dir, &["symbolic-ref", "-q", "HEAD"]));
    for path in watch.iter().filter(|_| in_repo) {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", path]) {
            let p = dir.join(p);
            if p.is_file() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }

    let commit = std::env::var("MAINLINE_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .inspect(|c| {
            // It lands in a cargo directive line and in --version: plain words only.
            assert!(
                c.len() <= 64
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch)),
                "MAINLINE_BUILD_COMMIT must be a commit id (letters, digits, . _ -, at most 64); unset it to read git"
            );
        })
        .or_else(|| in_repo.then(|| git(dir, &["rev-parse", "HEAD"])).flatten())
        .unwrap_or_else(|| "unknown".into());
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => Some(s.trim().parse::<i64>().unwrap_or_else(|_| {
            panic!("SOURCE_DATE_EPOCH must be whole seconds since 1970 (e.g. 1700000000); unset it to use the commit's date")
        })),
        Err(_) => in_repo
            .then(|| git(dir, &["log", "-1", "--format=%ct", "HEAD"]))
            .flatten()
            .and_then(|s| s.parse::<i64>().ok()),
    };
    let date = match epoch {
        Some(secs) => {
            let (y, m, d) = civil(secs.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "unknown".into(),
    };
    let version = env!("CARGO_PKG_VERSION");
    println!("cargo:rustc-env=MAINLINE_VERSION_LINE={version} (commit {commit}, built {date})");
}
