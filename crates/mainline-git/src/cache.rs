//! The local cache: one bare, blob-less (partial clone) repository per remote, shared by every
//! mainline process on the machine.
//!
//! Invariants: the repository appears atomically (it is initialised in a temporary directory
//! and renamed into place, so a racing process sees either nothing or a complete repository);
//! everything that writes refs or packs into it holds an exclusive `flock` on its sibling
//! `<name>.lock` file, so concurrent fetches never fight over ref locks. Readers (gix) take no
//! lock: git writes objects and packs by atomic rename. The lock is released by the kernel when
//! its holder dies, so a crashed process never wedges the cache.
//!
//! Holding the lock also means no other mainline process is writing refs or commit-graphs in
//! the cache, so any git `*.lock` file found then was left by a git that was killed (e.g. at
//! its deadline) and is removed — otherwise one timeout would wedge every later fetch.
//!
//! Must never: run `gc`/maintenance in the cache (a concurrent reader could lose a pack), make
//! the cache shallow (that would truncate ancestry), or store a credential in its config.

use crate::error::GitError;
use crate::exec::{Git, REMOTE_NAME};
use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Config written into a new cache. The URL is *not* here: it arrives per invocation.
const CACHE_CONFIG: &[(&str, &str)] = &[
    ("extensions.partialClone", REMOTE_NAME),
    ("remote.origin.promisor", "true"),
    ("remote.origin.partialCloneFilter", "blob:none"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    // Keeps ancestry queries fast: a split commit-graph is appended after every fetch.
    ("fetch.writeCommitGraph", "true"),
    ("core.commitGraph", "true"),
    ("fetch.recurseSubmodules", "false"),
];

/// Create `root/<key>.git` unless it exists, and return its path.
pub(crate) fn ensure_repo(git: &Git, root: &Path, key: &str) -> Result<PathBuf, GitError> {
    let dir = root.join(format!("{key}.git"));
    if dir.join("HEAD").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root).map_err(|source| GitError::CacheIo {
        path: root.to_owned(),
        action: "creating the cache root",
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{key}.init-"))
        .tempdir_in(root)
        .map_err(|source| GitError::CacheIo {
            path: root.to_owned(),
            action: "creating a staging directory",
            source,
        })?;
    let staging_path = staging.path().to_owned();
    let staging_str = staging_path.to_str().ok_or_else(|| GitError::CacheIo {
        path: staging_path.clone(),
        action: "using the cache path",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    git.run_ok(None, &["init", "--bare", "--quiet", staging_str], None)?;
    // Appended as text rather than by one `git config` per key: eight processes were most of
    // what creating a cache cost (about 150 ms of a fresh runner's first run). A section may
    // appear twice in a git config file; the repository is not in place yet, so nobody reads
    // the file half-written.
    let config = staging_path.join("config");
    let mut file = OpenOptions::new()
        .append(true)
        .open(&config)
        .map_err(|source| GitError::CacheIo {
            path: config.clone(),
            action: "opening the new cache's config",
            source,
        })?;
    file.write_all(config_text(CACHE_CONFIG).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| GitError::CacheIo {
            path: config.clone(),
            action: "writing the new cache's config",
            source,
        })?;
    match std::fs::rename(&staging_path, &dir) {
        Ok(()) => {
            // The directory now lives at `dir`; nothing is left for TempDir to delete.
            let _ = staging.keep();
            tracing::debug!(cache = %dir.display(), "created git cache");
            Ok(dir)
        }
        // Another process won the race: its repository is complete, ours is dropped.
        Err(_) if dir.join("HEAD").is_file() => Ok(dir),
        Err(source) => Err(GitError::CacheIo {
            path: dir,
            action: "moving the new cache into place",
            source,
        }),
    }
}

/// `key = value` pairs as git config file text: `a.b` under `[a]`, `a.sub.b` under
/// `[a "sub"]`. Keys and values here are constants without quotes or backslashes.
fn config_text(pairs: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (key, value) in pairs {
        let (section, name) = key.rsplit_once('.').expect("a config key has a section");
        match section.split_once('.') {
            Some((section, sub)) => text.push_str(&format!("[{section} \"{sub}\"]\n")),
            None => text.push_str(&format!("[{section}]\n")),
        }
        text.push_str(&format!("\t{name} = {value}\n"));
    }
    text
}

/// An exclusive lock on one cache, released on drop (or when the process dies).
pub(crate) struct CacheLock {
    _file: File,
}

/// Take the cache's lock, waiting at most `timeout`.
pub(crate) fn lock(repo: &Path, timeout: Duration) -> Result<CacheLock, GitError> {
    let path = repo.with_extension("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| GitError::CacheIo {
            path: path.clone(),
            action: "opening the cache lock file",
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                clear_stale_git_locks(repo);
                return Ok(CacheLock { _file: file });
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                if Instant::now() >= deadline {
                    return Err(GitError::LockTimeout {
                        path,
                        after: timeout,
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(GitError::CacheIo {
                    path,
                    action: "locking the cache",
                    source: e.into(),
                })
            }
        }
    }
}

/// Remove git lock files left by a killed git. Only called while holding the cache lock.
fn clear_stale_git_locks(repo: &Path) {
    let mut stale: Vec<PathBuf> = [
        "packed-refs.lock",
        "shallow.lock",
        "config.lock",
        "objects/info/commit-graphs/commit-graph-chain.lock",
        "objects/info/commit-graph.lock",
    ]
    .iter()
    .map(|p| repo.join(p))
    .filter(|p| p.exists())
    .collect();
    let mut dirs = vec![repo.join("refs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "lock") {
                stale.push(path);
            }
        }
    }
    for path in stale {
        tracing::warn!(lock = %path.display(), "removing a git lock file left by a killed git process");
        let _ = std::fs::remove_file(&path);
    }
}
