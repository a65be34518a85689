//! [`Snapshot`]: in-process, read-only questions about the cache's objects — ancestry, deploy
//! trees, commit times and messages — answered with gix.
//!
//! Ancestry is a bounded walk from the descendant: with a commit-graph (the cache writes one
//! after every fetch) a parent is pruned when its generation is not above the ancestor's, or
//! when it is in the graph while the ancestor is not (a commit-graph is closed under ancestry,
//! so nothing in it descends from a commit outside it). Only visited commits are allocated.
//!
//! Invariants: a missing object is [`GitError::CommitNotFound`], never `false`; a deploy path
//! that is absent is `None`, one that names a file is an error. Must never: write to the cache
//! or fetch (a snapshot answers from what is there; fetching is [`crate::GitRemote`]'s job).

use crate::error::GitError;
use gix::bstr::ByteSlice as _;
use gix::ObjectId;
use mainline_core::CommitId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A read view of the cache at the moment it was opened (plus anything gix finds later).
pub struct Snapshot {
    pub(crate) repo: gix::Repository,
    pub(crate) path: PathBuf,
    /// Where commits come from, for `CommitNotFound` messages (a redacted URL).
    remote: String,
    commit_graph: Option<gix::commitgraph::Graph>,
}

impl Snapshot {
    /// Open any git repository read-only (the cache, or a fixture in tests).
    pub fn open(path: &Path) -> Result<Snapshot, GitError> {
        Snapshot::open_labelled(path, &path.display().to_string())
    }

    pub(crate) fn open_labelled(path: &Path, remote: &str) -> Result<Snapshot, GitError> {
        let mut repo = gix::open(path).map_err(|source| GitError::Open {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        let commit_graph = match repo.commit_graph_if_enabled() {
            Ok(graph) => graph,
            Err(err) => {
                tracing::warn!(cache = %path.display(), error = %err, "ignoring an unreadable commit-graph");
                None
            }
        };
        Ok(Snapshot {
            repo,
            path: path.to_owned(),
            remote: remote.to_owned(),
            commit_graph,
        })
    }

    /// The repository directory this snapshot reads.
    pub fn repo_path(&self) -> &Path {
        &self.path
    }

    /// Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor).
    pub fn is_ancestor(
        &self,
        ancestor: &CommitId,
        descendant: &CommitId,
    ) -> Result<bool, GitError> {
        let a = self.commit_oid(ancestor)?;
        let d = self.commit_oid(descendant)?;
        if a == d {
            return Ok(true);
        }
        let cache = self.commit_graph.as_ref();
        let mut graph = self.repo.revision_graph::<()>(cache);
        let ancestor_generation =
            cache.and_then(|g| g.lookup(a).map(|pos| g.commit_at(pos).generation()));
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut stack = vec![d];
        seen.insert(d);
        while let Some(id) = stack.pop() {
            let parents = self.parents_of(&mut graph, id)?;
            for parent in parents {
                if parent == a {
                    return Ok(true);
                }
                if !seen.insert(parent) {
                    continue;
                }
                if let Some(pos) = cache.and_then(|g| g.lookup(parent)) {
                    let in_graph = cache.expect("looked up in it").commit_at(pos);
                    match ancestor_generation {
                        // Every ancestor of `parent` has a smaller generation than it.
                        Some(generation) if in_graph.generation() <= generation => continue,
                        // `parent` is in the graph, `a` is not: `a` cannot be below `parent`.
                        None => continue,
                        Some(_) => {}
                    }
                }
                stack.push(parent);
            }
        }
        Ok(false)
    }

    /// The tree id of `path` at `commit` (`""` or `"."` is the root tree); `None` when the
    /// path does not exist there; an error when it names a file.
    pub fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, GitError> {
        Ok(self.deploy_tree_id(commit, path)?.map(|id| id.to_string()))
    }

    pub(crate) fn deploy_tree_id(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<ObjectId>, GitError> {
        let components = split_path(path)?;
        let oid = self.commit_oid(commit)?;
        let commit_obj = self
            .repo
            .find_commit(oid)
            .map_err(|e| GitError::objects(format!("commit {commit}"), &self.path, e))?;
        let root = commit_obj
            .tree_id()
            .map_err(|e| GitError::objects(format!("the tree of commit {commit}"), &self.path, e))?
            .detach();
        if components.is_empty() {
            return Ok(Some(root));
        }
        let tree = self.repo.find_tree(root).map_err(|e| {
            GitError::objects(format!("the tree of commit {commit}"), &self.path, e)
        })?;
        let entry = tree
            .lookup_entry(components.iter().map(|c| c.as_bytes()))
            .map_err(|e| {
                GitError::objects(format!("{path:?} at commit {commit}"), &self.path, e)
            })?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let mode = entry.mode();
        if mode.is_tree() {
            Ok(Some(entry.object_id()))
        } else {
            Err(GitError::NotATree {
                commit: commit.clone(),
                path: path.to_owned(),
                found: if mode.is_commit() {
                    "submodule"
                } else {
                    "file"
                },
            })
        }
    }

    /// The committer time of `commit`, in seconds since the Unix epoch.
    pub fn commit_time(&self, commit: &CommitId) -> Result<i64, GitError> {
        let oid = self.commit_oid(commit)?;
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| GitError::objects(format!("commit {commit}"), &self.path, e))?;
        c.time()
            .map(|t| t.seconds)
            .map_err(|e| GitError::objects(format!("the committer of {commit}"), &self.path, e))
    }

    /// Resolve a revision (`<hex>`, `refs/...`, `<rev>~2`) to a commit in the cache. A full ref
    /// name is looked up in the cache's fetched copy (`refs/mainline-cache/<ref>`) first.
    pub fn resolve(&self, rev: &str) -> Result<CommitId, GitError> {
        let cached = rev
            .starts_with("refs/")
            .then(|| format!("{}{rev}", crate::remote::CACHE_NS));
        let cached_hit = cached
            .as_deref()
            .and_then(|c| self.repo.rev_parse_single(c).ok());
        let found = match cached_hit {
            Some(id) => Ok(id),
            None => self.repo.rev_parse_single(rev),
        };
        let id = found.map_err(|source| GitError::Unresolved {
            rev: rev.to_owned(),
            cache: self.path.clone(),
            source: Box::new(source),
        })?;
        let object = id.object().map_err(|source| GitError::Unresolved {
            rev: rev.to_owned(),
            cache: self.path.clone(),
            source: Box::new(source),
        })?;
        let kind = object.kind;
        let commit = object.peel_to_commit().map_err(|_| GitError::NotACommit {
            rev: rev.to_owned(),
            found: kind.to_string(),
        })?;
        Ok(to_commit_id(commit.id))
    }

    /// The full message of `commit`, exactly as stored.
    pub fn commit_message(&self, commit: &CommitId) -> Result<String, GitError> {
        let oid = self.commit_oid(commit)?;
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| GitError::objects(format!("commit {commit}"), &self.path, e))?;
        let raw = c
            .message_raw()
            .map_err(|e| GitError::objects(format!("the message of {commit}"), &self.path, e))?;
        Ok(raw.to_str_lossy().into_owned())
    }

    /// The parents of `commit`, in order.
    pub fn parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, GitError> {
        let oid = self.commit_oid(commit)?;
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| GitError::objects(format!("commit {commit}"), &self.path, e))?;
        Ok(c.parent_ids().map(|id| to_commit_id(id.detach())).collect())
    }

    /// Whether `commit` is present as a commit object.
    pub fn has_commit(&self, commit: &CommitId) -> bool {
        self.commit_oid(commit).is_ok()
    }

    /// Blob ids under `tree` (recursively) that are not present in the cache.
    pub(crate) fn missing_blobs(&self, tree: ObjectId) -> Result<Vec<ObjectId>, GitError> {
        let mut missing = Vec::new();
        let mut trees = vec![tree];
        let mut seen = HashSet::new();
        while let Some(id) = trees.pop() {
            let tree = self
                .repo
                .find_tree(id)
                .map_err(|e| GitError::objects(format!("tree {id}"), &self.path, e))?;
            for entry in tree.iter() {
                let entry =
                    entry.map_err(|e| GitError::objects(format!("tree {id}"), &self.path, e))?;
                let mode = entry.mode();
                let oid = entry.object_id();
                if mode.is_tree() {
                    if seen.insert(oid) {
                        trees.push(oid);
                    }
                } else if mode.is_blob_or_symlink()
                    && !self.repo.has_object(oid)
                    && seen.insert(oid)
                {
                    missing.push(oid);
                }
            }
        }
        Ok(missing)
    }

    /// How many of `ids` are still absent.
    pub(crate) fn count_missing(&self, ids: &[ObjectId]) -> usize {
        ids.iter().filter(|id| !self.repo.has_object(id)).count()
    }

    /// The repository, for in-process readers (e.g. a packer reading blobs).
    pub fn repository(&self) -> &gix::Repository {
        &self.repo
    }

    fn parents_of(
        &self,
        graph: &mut gix::revwalk::Graph<'_, '_, ()>,
        id: ObjectId,
    ) -> Result<Vec<ObjectId>, GitError> {
        let commit = graph
            .try_lookup(&id)
            .map_err(|e| GitError::objects(format!("commit {id}"), &self.path, e))?
            .ok_or_else(|| GitError::CommitNotFound {
                commit: to_commit_id(id),
                remote: self.remote.clone(),
            })?;
        commit
            .iter_parents()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GitError::objects(format!("the parents of {id}"), &self.path, e))
    }

    /// The object id of `commit`, checked to be a commit present in the cache.
    fn commit_oid(&self, commit: &CommitId) -> Result<ObjectId, GitError> {
        let not_found = || GitError::CommitNotFound {
            commit: commit.clone(),
            remote: self.remote.clone(),
        };
        let oid = ObjectId::from_hex(commit.as_str().as_bytes()).map_err(|_| not_found())?;
        match self.repo.try_find_header(oid) {
            Ok(Some(header)) if header.kind() == gix::object::Kind::Commit => Ok(oid),
            Ok(Some(header)) => Err(GitError::NotACommit {
                rev: commit.to_string(),
                found: header.kind().to_string(),
            }),
            Ok(None) => Err(not_found()),
            Err(e) => Err(GitError::objects(format!("commit {commit}"), &self.path, e)),
        }
    }
}

/// A gix object id as a validated commit id (gix only produces lowercase hex of 40/64 digits).
pub(crate) fn to_commit_id(id: ObjectId) -> CommitId {
    id.to_string()
        .parse()
        .expect("gix object ids are 40 or 64 lowercase hex digits")
}

/// `k8s/`, `./k8s`, `k8s//base` → `["k8s", "base"]`; `""`/`"."` → root. Rejects `..`.
pub(crate) fn split_path(path: &str) -> Result<Vec<&str>, GitError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
            reason: "'..' is not allowed; give the path relative to the repository root",
        });
    }
    if path.starts_with('/') {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
            reason: "give the path relative to the repository root, without a leading '/'",
        });
    }
    Ok(parts)
}
