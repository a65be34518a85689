//! Packs a folder of a commit straight from git objects, in-process with gix: no checkout,
//! no `git` CLI, no index.
//!
//! Invariants: git modes map as a checkout would materialise them (100644 → file 0644,
//! 100755 → file 0755, 120000 → symlink (refused, or resolved inside the tree as
//! [`super::dir`] resolves it), 040000 → folder; 160000 submodules are skipped, as a checkout
//! leaves an empty folder and empty folders are not packed), in the same order as
//! [`super::dir`] walks a checkout, so both give the same digest. A blob or tree absent from
//! the object database is reported as [`PackError::MissingObject`], distinct from corruption,
//! so callers can fetch and retry.
//!
//! Memory: one tree listing per level, plus one blob at a time (gix inflates a blob whole),
//! plus the blobs read ahead by [`super::prefetch`] (at most 8 MiB, or one larger blob).
//!
//! Must never: read the work tree or index, run `git`, or read user/global git config (the
//! repository is opened isolated).

use super::archive::ArchiveWriter;
use super::error::{GitSource, PackError};
use super::prefetch::Prefetch;
use super::{entry_order, flux_unsafe_name, join, CommitInfo, Symlinks};
use crate::flux::format_utc;
use crate::symlink::{resolve_link, LinkProblem};
use gix::objs::tree::EntryKind;
use gix::ObjectId;
use mainline_core::CommitId;
use std::path::Path;
use time::OffsetDateTime;

/// One tree entry with a validated UTF-8 name.
pub(super) struct GitEntry {
    pub name: String,
    pub kind: EntryKind,
    pub id: ObjectId,
}

/// Opens `repo` without reading user or global configuration or the environment.
pub(crate) fn open(repo: &Path) -> Result<gix::Repository, PackError> {
    gix::open_opts(repo, gix::open::Options::isolated()).map_err(|e| PackError::OpenRepo {
        repo: repo.to_owned(),
        source: Box::new(e),
    })
}

/// Resolves `rev` (hex id, `main`, `refs/heads/x`, `HEAD`, a tag) to a commit and its
/// committer time.
pub(crate) fn commit_info(repo_path: &Path, rev: &str) -> Result<CommitInfo, PackError> {
    let repo = open(repo_path)?;
    let unknown = |source: GitSource| PackError::UnknownRevision {
        repo: repo_path.to_owned(),
        rev: rev.to_owned(),
        source,
    };
    let id = repo
        .rev_parse_single(rev)
        .map_err(|e| unknown(Box::new(e)))?;
    let object = id.object().map_err(|e| unknown(Box::new(e)))?;
    let commit = object.peel_to_commit().map_err(|e| match e {
        gix::object::peel::to_kind::Error::NotFound { actual, .. } => PackError::NotACommit {
            repo: repo_path.to_owned(),
            rev: rev.to_owned(),
            kind: actual.to_string(),
        },
        other => unknown(Box::new(other)),
    })?;
    let id: CommitId = commit
        .id
        .to_hex()
        .to_string()
        .parse()
        .expect("gix renders object ids as lowercase hex of a valid length");
    let seconds = commit
        .time()
        .map_err(|e| PackError::Git {
            repo: repo_path.to_owned(),
            what: format!("the committer of {id}"),
            source: Box::new(e),
        })?
        .seconds;
    let time = OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(format_utc)
        .ok_or_else(|| PackError::CommitTime { commit: id.clone() })?;
    Ok(CommitInfo { id, time })
}

pub(crate) struct GitWalker<'a, 'p> {
    pub repo: &'a gix::Repository,
    pub repo_path: &'a Path,
    pub commit: &'a CommitId,
    /// How errors name the packed tree: `<commit>:<subdir>`.
    pub root_name: String,
    /// The tree at SUBDIR, the root of the archive.
    pub root: ObjectId,
    pub symlinks: Symlinks,
    /// The source folders being walked, outermost first: a link into one of them is a cycle.
    pub walking: Vec<String>,
    /// Blobs read ahead on another thread, in walk order (none with one thread).
    pub prefetch: Option<Prefetch>,
    pub out: ArchiveWriter<'p>,
}

impl GitWalker<'_, '_> {
    /// Finds the tree at `subdir` (already normalised, "" for the whole tree) of the commit.
    pub fn subdir_tree(
        repo: &gix::Repository,
        repo_path: &Path,
        commit: &CommitId,
        subdir: &str,
    ) -> Result<ObjectId, PackError> {
        let id = ObjectId::from_hex(commit.as_str().as_bytes()).map_err(|e| PackError::Git {
            repo: repo_path.to_owned(),
            what: format!("commit id {commit}"),
            source: Box::new(e),
        })?;
        let root_name = root_name(commit, subdir);
        let reader = Reader {
            repo,
            repo_path,
            commit,
            root_name: &root_name,
        };
        let object = repo
            .try_find_object(id)
            .map_err(|e| reader.git_error(format!("commit {commit}"), Box::new(e)))?
            .ok_or_else(|| PackError::CommitNotFound {
                repo: repo_path.to_owned(),
                commit: commit.clone(),
            })?;
        let tree = object
            .try_into_commit()
            .map_err(|e| reader.git_error(format!("commit {commit}"), Box::new(e)))?
            .tree_id()
            .map_err(|e| reader.git_error(format!("commit {commit}"), Box::new(e)))?
            .detach();
        if subdir.is_empty() {
            return Ok(tree);
        }
        match reader.lookup(tree, subdir)? {
            Some(entry) if entry.kind == EntryKind::Tree => Ok(entry.id),
            Some(_) => Err(PackError::SubdirNotATree {
                commit: commit.clone(),
                subdir: subdir.to_owned(),
            }),
            None => Err(PackError::SubdirNotFound {
                commit: commit.clone(),
                subdir: subdir.to_owned(),
            }),
        }
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            repo: self.repo,
            repo_path: self.repo_path,
            commit: self.commit,
            root_name: &self.root_name,
        }
    }

    /// Writes everything below the tree `tree`, found at `src` ("" for the root), as the folder
    /// `rel` of the archive (they differ below a resolved symlink to a folder).
    pub fn walk(&mut self, tree: ObjectId, src: &str, rel: &str) -> Result<(), PackError> {
        self.walking.push(src.to_owned());
        for entry in self.reader().tree(tree, src)? {
            let path = join(rel, &entry.name);
            let from = join(src, &entry.name);
            if let Some(reason) = flux_unsafe_name(&entry.name, false) {
                return Err(self.unsafe_name(path, reason));
            }
            self.entry(entry.kind, entry.id, &from, &path)?;
        }
        self.walking.pop();
        Ok(())
    }

    fn unsafe_name(&self, path: String, reason: &'static str) -> PackError {
        PackError::FluxUnsafeName {
            path,
            root: self.root_name.clone(),
            reason,
        }
    }

    /// Packs the object `id` of kind `kind`, found at `src`, as `path`.
    fn entry(
        &mut self,
        kind: EntryKind,
        id: ObjectId,
        src: &str,
        path: &str,
    ) -> Result<(), PackError> {
        match kind {
            EntryKind::Tree => {
                let name = path.rsplit('/').next().unwrap_or(path);
                if let Some(reason) = flux_unsafe_name(name, true) {
                    return Err(self.unsafe_name(path.to_owned(), reason));
                }
                self.out.enter_dir(path);
                self.walk(id, src, path)?;
                self.out.leave_dir();
            }
            EntryKind::Blob | EntryKind::BlobExecutable => {
                let ahead = self.prefetch.as_mut().and_then(|p| p.take(id));
                let data = match ahead {
                    Some(data) => data,
                    None => self.reader().blob(id, src)?,
                };
                let executable = kind == EntryKind::BlobExecutable;
                let origin = Path::new(src);
                self.out.file(
                    path,
                    executable,
                    data.len() as u64,
                    &mut data.as_slice(),
                    origin,
                )?;
            }
            EntryKind::Link => self.symlink(id, src, path)?,
            // A submodule: a checkout leaves an empty folder, which is not packed.
            EntryKind::Commit => {}
        }
        Ok(())
    }

    /// The symlink blob `blob` at `src`, to be packed as `path`: refused, or what it leads to
    /// is packed.
    fn symlink(&mut self, blob: ObjectId, src: &str, path: &str) -> Result<(), PackError> {
        let reader = self.reader();
        let target = reader.link_target(blob, src)?;
        if self.symlinks == Symlinks::Refuse {
            return Err(PackError::SymlinkRefused {
                path: path.to_owned(),
                target,
                root: self.root_name.clone(),
            });
        }
        let root = self.root;
        let mut lookup = |rel: &str| -> Result<Option<String>, PackError> {
            match reader.lookup(root, rel)? {
                Some(entry) if entry.kind == EntryKind::Link => {
                    reader.link_target(entry.id, rel).map(Some)
                }
                _ => Ok(None),
            }
        };
        let problem = |problem| PackError::Symlink {
            path: path.to_owned(),
            target: target.clone(),
            problem,
            root: self.root_name.clone(),
        };
        let resolved = resolve_link(src, &target, &mut lookup)?.map_err(problem)?;
        let found = if resolved.is_empty() {
            Some((EntryKind::Tree, root))
        } else {
            reader.lookup(root, &resolved)?.map(|e| (e.kind, e.id))
        };
        match found {
            Some((EntryKind::Tree, id)) => {
                // The root is always on the stack, so a link to it is a cycle too.
                let holds_link =
                    |w: &String| *w == resolved || w.starts_with(&format!("{resolved}/"));
                if self.walking.iter().any(holds_link) {
                    return Err(problem(LinkProblem::Cycle));
                }
                self.entry(EntryKind::Tree, id, &resolved, path)
            }
            Some((kind, id)) => self.entry(kind, id, &resolved, path),
            None => Err(problem(LinkProblem::Dangling)),
        }
    }
}

/// Object reads with errors that name the repository, commit and path.
pub(super) struct Reader<'a> {
    pub repo: &'a gix::Repository,
    pub repo_path: &'a Path,
    pub commit: &'a CommitId,
    /// How errors name the packed tree: `<commit>:<subdir>`.
    pub root_name: &'a str,
}

impl Reader<'_> {
    fn git_error(&self, what: String, source: GitSource) -> PackError {
        PackError::Git {
            repo: self.repo_path.to_owned(),
            what,
            source,
        }
    }

    fn find(
        &self,
        id: ObjectId,
        kind: &'static str,
        path: &str,
    ) -> Result<gix::Object<'_>, PackError> {
        self.repo
            .try_find_object(id)
            .map_err(|e| self.git_error(format!("{kind} {id} ({path})"), Box::new(e)))?
            .ok_or_else(|| PackError::MissingObject {
                repo: self.repo_path.to_owned(),
                commit: self.commit.clone(),
                path: display_path(path),
                object: id.to_string(),
                kind,
            })
    }

    pub fn blob(&self, id: ObjectId, path: &str) -> Result<Vec<u8>, PackError> {
        let mut blob = self
            .find(id, "blob", path)?
            .try_into_blob()
            .map_err(|e| self.git_error(format!("blob {id} ({path})"), Box::new(e)))?;
        Ok(blob.take_data())
    }

    fn link_target(&self, id: ObjectId, path: &str) -> Result<String, PackError> {
        String::from_utf8(self.blob(id, path)?).map_err(|_| PackError::NonUtf8Name {
            path: format!("{} (symlink target)", display_path(path)),
        })
    }

    /// The entries of tree `id` found at `rel`, validated and in archive order.
    pub fn tree(&self, id: ObjectId, rel: &str) -> Result<Vec<GitEntry>, PackError> {
        let tree = self.find(id, "tree", rel)?.try_into_tree().map_err(|e| {
            self.git_error(format!("tree {id} ({})", display_path(rel)), Box::new(e))
        })?;
        let mut entries = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(|e| {
                self.git_error(format!("tree {id} ({})", display_path(rel)), Box::new(e))
            })?;
            let raw = entry.filename();
            let name = std::str::from_utf8(raw).map_err(|_| PackError::NonUtf8Name {
                path: join(rel, &String::from_utf8_lossy(raw)),
            })?;
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(PackError::InvalidName {
                    path: join(rel, name),
                    root: self.root_name.to_owned(),
                });
            }
            if name == ".git" {
                continue;
            }
            entries.push(GitEntry {
                name: name.to_owned(),
                kind: entry.mode().kind(),
                id: entry.oid().to_owned(),
            });
        }
        entries.sort_by(|a, b| {
            entry_order(
                &a.name,
                a.kind == EntryKind::Tree,
                &b.name,
                b.kind == EntryKind::Tree,
            )
        });
        Ok(entries)
    }

    /// The entry at `rel` below tree `root`, if every component exists and all but the
    /// last are trees.
    fn lookup(&self, root: ObjectId, rel: &str) -> Result<Option<GitEntry>, PackError> {
        let mut tree = root;
        let mut walked = String::new();
        let mut components = rel.split('/').filter(|c| !c.is_empty()).peekable();
        while let Some(component) = components.next() {
            let Some(entry) = self
                .tree(tree, &walked)?
                .into_iter()
                .find(|e| e.name == component)
            else {
                return Ok(None);
            };
            if components.peek().is_none() {
                return Ok(Some(entry));
            }
            if entry.kind != EntryKind::Tree {
                return Ok(None);
            }
            tree = entry.id;
            walked = join(&walked, component);
        }
        Ok(None)
    }
}

/// How errors name the packed tree of a commit: `<short commit>:<subdir>`.
pub(crate) fn root_name(commit: &CommitId, subdir: &str) -> String {
    format!("{}:{}", commit.short(), display_path(subdir))
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}
