//! `Repo` and `Builder` over `mainline-git`: a bare cache of the source remote, fetched
//! blob-less (commits and trees answer ancestry and deploy-tree questions), with blobs fetched
//! only when an artifact must be packed from git objects. Record commits (journal, lock,
//! leases) are read and written through a second cache beside it (`GitRemote::records_cache`),
//! fetched shallow: reading the tail of a journal of 100,000 records on a fresh runner costs the
//! tail, not the chain (it cost 14.5 s and 39 MB before), and the commit cache keeps its
//! commit-graph (git drops commit-graphs in a shallow repository).
//!
//! Must never: print the remote URL unredacted, or treat a commit the remote lacks as anything
//! but `CommitNotFound`.

mod build;

pub use build::GitBuilder;

use crate::channel::ports::{Cas, QueueRef, RefUpdate, RemoteView, Repo, RepoError};
use crate::channel::refs::JOURNAL_REFS;
use crate::channel::ChannelConfig;
use crate::error::chain_message;
use mainline_core::{CommitId, Timestamp};
use mainline_git::{CasOutcome, GitError, GitErrorKind, GitRemote, Snapshot, FULL_DEPTH};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The source remote and its local cache.
#[derive(Clone)]
pub struct GitRepo {
    remote: Arc<GitRemote>,
    snapshot: Arc<Mutex<Option<Snapshot>>>,
    records: Arc<Records>,
}

/// The record cache, opened on first use (a run that reads no record never creates it).
#[derive(Default)]
struct Records {
    remote: Mutex<Option<Arc<GitRemote>>>,
    snapshot: Mutex<Option<Snapshot>>,
    /// Per ref, how many records deep the cache was last fetched: each miss doubles it, so
    /// walking a whole chain of n records costs about log2(n / FIRST_DEPTH) fetches.
    depth: Mutex<HashMap<String, u32>>,
}

/// Records fetched on a ref's first miss: the settle window (256) and any `history --last`
/// up to it in one round trip.
const FIRST_DEPTH: u32 = 256;

/// The exit-code kind of a git failure: a missing path or malformed input is the caller's
/// (2), a remote that cannot be reached is unavailable (6), anything else internal (1).
fn to_repo_err(e: GitError) -> RepoError {
    match (&e, e.kind()) {
        (GitError::CommitNotFound { commit, .. }, _) => RepoError::CommitNotFound {
            commit: commit.clone(),
        },
        (_, GitErrorKind::Unavailable) => RepoError::Unavailable(chain_message(&e)),
        _ => RepoError::Other(chain_message(&e)),
    }
}

impl GitRepo {
    /// Open the remote's cache, with no overall deadline (each git call has its own timeout).
    pub fn open(config: &ChannelConfig, cache_root: &Path) -> Result<GitRepo, GitError> {
        GitRepo::open_until(config, cache_root, None)
    }

    /// Open the remote's cache; every git call is bounded by `deadline` (the command's).
    pub fn open_until(
        config: &ChannelConfig,
        cache_root: &Path,
        deadline: Option<Instant>,
    ) -> Result<GitRepo, GitError> {
        let remote = GitRemote::open(&config.git, &cache_root.join("git"))?.with_deadline(deadline);
        Ok(GitRepo {
            remote: Arc::new(remote),
            snapshot: Arc::new(Mutex::new(None)),
            records: Arc::new(Records::default()),
        })
    }

    pub fn remote(&self) -> &GitRemote {
        &self.remote
    }

    /// Run `f` on a snapshot of the cache (opened lazily, reopened after fetches).
    fn with_snapshot<T>(
        &self,
        f: impl FnOnce(&Snapshot) -> Result<T, GitError>,
    ) -> Result<T, RepoError> {
        let mut guard = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.remote.snapshot().map_err(to_repo_err)?);
        }
        let snap = guard.as_ref().expect("snapshot was just opened");
        f(snap).map_err(to_repo_err)
    }

    /// For a deploy path absent at `commit`: its deepest existing folder and the folders in
    /// it (the hint for a mistyped `--path`).
    pub fn nearest_folders(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<(String, Vec<String>), RepoError> {
        self.with_snapshot(|s| s.nearest_folders(commit, path))
    }

    fn invalidate(&self) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The record cache's remote, created on first use.
    fn records_remote(&self) -> Result<Arc<GitRemote>, RepoError> {
        let mut guard = self
            .records
            .remote
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(r) = guard.as_ref() {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(self.remote.records_cache().map_err(to_repo_err)?);
        *guard = Some(Arc::clone(&r));
        Ok(r)
    }

    /// Run `f` on a snapshot of the record cache (reopened after fetches and writes).
    fn with_records<T>(
        &self,
        f: impl FnOnce(&Snapshot) -> Result<T, GitError>,
    ) -> Result<T, RepoError> {
        let remote = self.records_remote()?;
        let mut guard = self
            .records
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(remote.snapshot().map_err(to_repo_err)?);
        }
        let snap = guard.as_ref().expect("snapshot was just opened");
        f(snap).map_err(to_repo_err)
    }

    fn invalidate_records(&self) {
        *self
            .records
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The depth to fetch `refname` to after a miss: `FIRST_DEPTH`, then twice the last.
    fn next_depth(&self, refname: &str) -> u32 {
        let mut depths = self.records.depth.lock().unwrap_or_else(|p| p.into_inner());
        let d = depths
            .get(refname)
            .map(|d| d.saturating_mul(2).min(FULL_DEPTH))
            .unwrap_or(FIRST_DEPTH);
        depths.insert(refname.to_owned(), d);
        d
    }
}

impl Repo for GitRepo {
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        let refs = self.remote.remote_refs(branch).map_err(to_repo_err)?;
        Ok(RemoteView {
            mainline: refs.mainline,
            queue: refs
                .queue
                .into_iter()
                .map(|q| QueueRef {
                    name: q
                        .refname
                        .strip_prefix("refs/heads/")
                        .unwrap_or(&q.refname)
                        .to_owned(),
                    pr: q.pr,
                    head: q.head,
                })
                .collect(),
            mainline_refs: refs
                .other
                .into_iter()
                .filter(|(name, _)| name.starts_with("refs/mainline/"))
                .collect(),
        })
    }

    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError> {
        let mut missing = Vec::new();
        let all: Vec<String> = commits.iter().map(|c| c.to_string()).collect();
        if self.remote.fetch(&all).is_err() {
            // One of them may be gone from the remote: fetch one by one to tell which.
            for c in commits {
                match self.remote.fetch(&[c.to_string()]) {
                    Ok(()) => {}
                    Err(GitError::CommitNotFound { .. }) => missing.push(c.clone()),
                    Err(e) => {
                        self.invalidate();
                        return Err(to_repo_err(e));
                    }
                }
            }
        }
        self.invalidate();
        Ok(missing)
    }

    fn has_commit(&self, commit: &CommitId) -> bool {
        self.with_snapshot(|s| s.commit_time(commit)).is_ok()
    }

    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError> {
        self.with_snapshot(|s| s.is_ancestor(a, d))
    }

    fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, RepoError> {
        self.with_snapshot(|s| s.deploy_tree(commit, path))
    }

    fn deploy_tree_empty(&self, commit: &CommitId, path: &str) -> Result<bool, RepoError> {
        self.with_snapshot(|s| s.deploy_tree_has_files(commit, path))
            .map(|has| !has)
    }

    fn commit_time(&self, commit: &CommitId) -> Result<i64, RepoError> {
        self.with_snapshot(|s| s.commit_time(commit))
    }

    fn write_record(
        &self,
        message: &str,
        parents: &[CommitId],
        time: Timestamp,
    ) -> Result<CommitId, RepoError> {
        let c = self
            .records_remote()?
            .create_record_commit(message, parents, time.millis().div_euclid(1000))
            .map_err(to_repo_err)?;
        self.invalidate_records();
        Ok(c)
    }

    fn read_record(&self, refname: &str, commit: &CommitId) -> Result<String, RepoError> {
        // The kept snapshot, not a fresh one per record: opening the object store is most of
        // the cost of a record, and walking the journal's tail reads one after another.
        if let Ok(m) = self.with_records(|s| s.commit_message(commit)) {
            return Ok(m);
        }
        // Not here: fetch the ref's newest records, deeper on each miss in this process (a
        // walk past what was fetched lands here again); if that still lacks it (an earlier
        // process fetched as deep already, or the commit is older), the whole chain.
        let records = self.records_remote()?;
        let not_a_record = |found| RepoError::NotARecord {
            refname: refname.to_owned(),
            remote: self.remote.url().redacted().to_owned(),
            object: commit.clone(),
            found,
        };
        let mut depth = self.next_depth(refname);
        // A journal's first miss asks for the listed commit by id (one request fewer than by
        // name; if the remote no longer serves it, by name as below). A journal only grows, so
        // the listed commit is what a read by name would have found at the listing. A lock's
        // record is replaced on every renewal and gone on release: by name, the read notices
        // that the holder moved on (the caller re-lists) instead of reporting a stale holder.
        let by_id = depth == FIRST_DEPTH && refname.starts_with(JOURNAL_REFS);
        if by_id && records.fetch_commit_tail(refname, commit, depth).is_ok() {
            self.invalidate_records();
            match records.commit_message(commit) {
                Ok(m) => return Ok(m),
                Err(GitError::NotACommit { found, .. }) => return Err(not_a_record(found)),
                Err(_) => {}
            }
        }
        loop {
            records
                .fetch_ref_tail(refname, depth)
                .map_err(to_repo_err)?;
            self.invalidate_records();
            match records.commit_message(commit) {
                Ok(m) => return Ok(m),
                // The object is here but is no commit: the ref itself is wrong, and saying "not
                // on the remote" would be false.
                Err(GitError::NotACommit { found, .. }) => return Err(not_a_record(found)),
                Err(_) if depth < FULL_DEPTH => {
                    depth = FULL_DEPTH;
                    self.records
                        .depth
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(refname.to_owned(), FULL_DEPTH);
                }
                // The ref moved on since it was listed (released, renewed, replaced): the
                // listed commit is gone from the remote. Callers re-list.
                Err(_) => {
                    return Err(RepoError::CommitNotFound {
                        commit: commit.clone(),
                    })
                }
            }
        }
    }

    fn record_parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, RepoError> {
        self.with_records(|s| s.parents(commit))
    }

    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        // Record commits are pushed from the record cache; a ref naming a source commit (a
        // merge group's lease names its head) from the commit cache, which holds it.
        let from_records = match new {
            Some(c) => self.with_records(|s| Ok(s.has_commit(c)))?,
            None => false,
        };
        let remote = if from_records {
            self.records_remote()?
        } else {
            Arc::clone(&self.remote)
        };
        match remote
            .push_ref_cas(refname, expected, new)
            .map_err(to_repo_err)?
        {
            CasOutcome::Updated => Ok(Cas::Updated),
            CasOutcome::Conflict { actual } => Ok(Cas::Conflict { actual }),
        }
    }

    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        // One push from one cache: the records cache when it holds every new value (the lock
        // and journal records this is for), the commit cache otherwise.
        let mut from_records = true;
        for u in updates {
            if let Some(c) = &u.new {
                from_records &= self.with_records(|s| Ok(s.has_commit(c)))?;
            }
        }
        let remote = if from_records && updates.iter().any(|u| u.new.is_some()) {
            self.records_remote()?
        } else {
            Arc::clone(&self.remote)
        };
        let cas: Vec<mainline_git::RefCas<'_>> = updates
            .iter()
            .map(|u| mainline_git::RefCas {
                refname: &u.refname,
                expected: u.expected.as_ref(),
                new: u.new.as_ref(),
            })
            .collect();
        match remote.push_refs_cas(&cas).map_err(to_repo_err)? {
            CasOutcome::Updated => Ok(Cas::Updated),
            CasOutcome::Conflict { actual } => Ok(Cas::Conflict { actual }),
        }
    }

    fn prefetch(&self, branch: &str, commits: &[CommitId]) -> Result<(), RepoError> {
        let fetched = self.remote.prefetch_branch(branch, commits);
        self.invalidate();
        fetched.map_err(to_repo_err)
    }

    fn prefetch_records(&self, refname: &str) -> Result<(), RepoError> {
        let records = self.records_remote()?;
        // As deep as a first miss would fetch, and remembered as such when it worked (a walk
        // past it deepens); a failed one leaves the first miss to ask by id, as without it.
        let depth = self.next_depth(refname);
        let fetched = records.fetch_ref_tail(refname, depth);
        self.invalidate_records();
        if fetched.is_err() {
            let mut depths = self.records.depth.lock().unwrap_or_else(|p| p.into_inner());
            depths.remove(refname);
        }
        fetched.map(|_| ()).map_err(to_repo_err)
    }
}
