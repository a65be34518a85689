//! Reads a git tree's blobs ahead of the packing walk, on a thread of its own, so inflating
//! git objects is not on the same thread as building the tar stream. Without it, the walker
//! thread of `pack_git` spent about a third of a pack's CPU (half of it inflating blobs) while
//! each compression thread spent less: it was the longest lane of the pipeline.
//!
//! The prefetcher walks the same tree in the same order as [`super::git::GitWalker`] (entries
//! in archive order, `.git` skipped, folders recursed, symlinks and submodules skipped) and
//! hands over `(blob id, bytes)` pairs in that order. The walker takes the next pair only when
//! its id is the blob it needs, and otherwise reads the blob itself — a resolved symlink, or
//! a prefetcher that stopped early. Since git objects are named by their content, a blob taken
//! from here is exactly the blob the walker would have read: the layer does not depend on
//! whether, how far or how fast this thread ran.
//!
//! Must never: change the layer's bytes (only blobs of the wanted id are handed over); report
//! an error (it just stops: the walker reads that blob itself and reports it, naming the path);
//! hold more than [`BUDGET`] bytes of read-ahead, plus one blob larger than that.

use super::git::{open, Reader};
use gix::objs::tree::EntryKind;
use gix::ObjectId;
use mainline_core::CommitId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Bytes of blobs read but not yet taken by the walker.
const BUDGET: usize = 8 * 1024 * 1024;

/// Bytes read ahead, shared by the reading thread (waits while over [`BUDGET`]) and the walker
/// (frees what it takes), and whether the walker is gone.
#[derive(Default)]
struct Shared {
    ahead: Mutex<usize>,
    freed: Condvar,
    stop: AtomicBool,
}

pub(crate) struct Prefetch {
    blobs: Receiver<(ObjectId, Vec<u8>)>,
    /// A blob received whose id the walker did not ask for yet.
    held: Option<(ObjectId, Vec<u8>)>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts reading the blobs below tree `root` of the repository at `repo`.
    pub fn start(repo: PathBuf, commit: CommitId, root: ObjectId) -> Prefetch {
        let (send, blobs) = channel();
        let shared = Arc::new(Shared::default());
        let ahead = Reading {
            send,
            shared: shared.clone(),
        };
        let thread = std::thread::spawn(move || ahead.run(&repo, &commit, root));
        Prefetch {
            blobs,
            held: None,
            shared,
            thread: Some(thread),
        }
    }

    /// The bytes of blob `id` when it is the next one read ahead; `None` means "read it
    /// yourself".
    pub fn take(&mut self, id: ObjectId) -> Option<Vec<u8>> {
        if self.held.is_none() {
            // Blocks only while the reader is still going: it never waits for the walker
            // while this channel is empty (its budget counts only what is in the channel).
            let (got, data) = self.blobs.recv().ok()?;
            let mut ahead = self.shared.ahead.lock().expect("never poisoned");
            *ahead -= data.len();
            self.shared.freed.notify_one();
            self.held = Some((got, data));
        }
        match self.held.take() {
            Some((got, data)) if got == id => Some(data),
            other => {
                self.held = other;
                None
            }
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            let _ahead = self.shared.ahead.lock().expect("never poisoned");
            self.shared.freed.notify_one();
        }
        // Drain so the reader is never stuck on a full budget, then wait for it.
        while self.blobs.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reading thread's side.
struct Reading {
    send: Sender<(ObjectId, Vec<u8>)>,
    shared: Arc<Shared>,
}

impl Reading {
    fn run(self, repo_path: &std::path::Path, commit: &CommitId, root: ObjectId) {
        let Ok(repo) = open(repo_path) else { return };
        let reader = Reader {
            repo: &repo,
            repo_path,
            commit,
            root_name: "",
        };
        let _ = self.walk(&reader, root, "");
    }

    /// `None` to stop: an error (the walker will meet and report it), or the walker is gone.
    fn walk(&self, reader: &Reader<'_>, tree: ObjectId, rel: &str) -> Option<()> {
        for entry in reader.tree(tree, rel).ok()? {
            let path = super::join(rel, &entry.name);
            match entry.kind {
                EntryKind::Tree => self.walk(reader, entry.id, &path)?,
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    let data = reader.blob(entry.id, &path).ok()?;
                    self.wait_for_room()?;
                    *self.shared.ahead.lock().expect("never poisoned") += data.len();
                    self.send.send((entry.id, data)).ok()?;
                }
                EntryKind::Link | EntryKind::Commit => {}
            }
        }
        Some(())
    }

    /// Waits while the read-ahead is over budget; `None` when the walker is gone.
    fn wait_for_room(&self) -> Option<()> {
        let mut ahead = self.shared.ahead.lock().expect("never poisoned");
        while *ahead >= BUDGET && !self.shared.stop.load(Ordering::Relaxed) {
            ahead = self.shared.freed.wait(ahead).expect("never poisoned");
        }
        (!self.shared.stop.load(Ordering::Relaxed)).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    /// The blobs come in walk order (`b/x` before `c`; `a` is a symlink, skipped); a wrong id
    /// is answered "read it yourself" without losing the next blob.
    #[test]
    fn blobs_arrive_in_walk_order_and_a_wrong_id_keeps_the_next_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        git(dir, &["init", "-q", "-b", "main"]);
        std::fs::create_dir(dir.join("b")).expect("mkdir");
        std::fs::write(dir.join("b/x"), "x\n").expect("write");
        std::fs::write(dir.join("c"), "c\n").expect("write");
        std::os::unix::fs::symlink("c", dir.join("a")).expect("symlink");
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "t"]);
        let id =
            |rev: &str| ObjectId::from_hex(git(dir, &["rev-parse", rev]).as_bytes()).expect("id");
        let commit: CommitId = git(dir, &["rev-parse", "HEAD"]).parse().expect("commit");
        let mut ahead = Prefetch::start(dir.to_owned(), commit, id("HEAD^{tree}"));
        assert_eq!(
            ahead.take(id("HEAD:a")),
            None,
            "the symlink is not read ahead"
        );
        assert_eq!(ahead.take(id("HEAD:b/x")).as_deref(), Some(&b"x\n"[..]));
        assert_eq!(ahead.take(id("HEAD:c")).as_deref(), Some(&b"c\n"[..]));
        assert_eq!(ahead.take(id("HEAD:c")), None, "nothing left");
    }
}
