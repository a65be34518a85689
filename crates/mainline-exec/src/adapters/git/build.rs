//! The artifact builder over the source remote: packs a commit's deploy tree from git objects
//! and pushes it, so a heal never needs the CI job that failed.
//!
//! Why apart from `GitRepo`: the repo answers questions about refs and commits; the builder
//! writes to the store, and asks the store's tree index first so a known deploy tree costs no
//! blob fetch and no pack. It reads the repo's cache through the parent module's internals.
//! Must never: push bytes other than what `mainline push --git` makes for the same commit, or
//! overwrite an artifact already under `sha-<commit>` (on a conflict it uses the stored one).

use super::GitRepo;
use crate::artifact::ArtifactError;
use crate::channel::ports::{BuildError, Builder, Repo};
use crate::channel::ChannelConfig;
use crate::error::chain_message;
use crate::tree_index::TreeKey;
use crate::tree_push::{push_tree, TreeSource};
use mainline_core::{CommitId, Digest, Revision};
use mainline_git::{GitError, GitErrorKind};
use mainline_store::Store;

/// Packs a commit's deploy tree from git objects and pushes it under `sha-<commit>`: the same
/// bytes CI makes with `mainline push --git`, so a heal never needs the CI job that failed.
pub struct GitBuilder {
    repo: GitRepo,
    path: String,
    source: String,
    /// `--allow-empty`: pack a deploy tree that holds no file (refused otherwise).
    allow_empty: bool,
}

impl GitBuilder {
    pub fn new(repo: &GitRepo, config: &ChannelConfig) -> GitBuilder {
        GitBuilder {
            repo: repo.clone(),
            path: config.path.clone(),
            source: config.source.clone(),
            allow_empty: config.policy.allow_empty,
        }
    }
}

impl Builder for GitBuilder {
    fn build(
        &self,
        store: &dyn Store,
        commit: &CommitId,
        revision_ref: &str,
    ) -> Result<Digest, BuildError> {
        let git = |e: GitError| match e.kind() {
            GitErrorKind::Unavailable => BuildError::Unavailable(chain_message(&e)),
            GitErrorKind::InvalidInput | GitErrorKind::NotFound => {
                BuildError::NotFound(chain_message(&e))
            }
            GitErrorKind::Rejected | GitErrorKind::Internal => {
                BuildError::Internal(chain_message(&e))
            }
        };
        // The deploy tree's id from commits and trees alone (the blob-less cache has them):
        // when the store's tree index knows it, no blob is fetched and nothing is packed. A
        // commit the cache lacks is fetched with its blobs first, as before the index.
        let cache = self.repo.remote.cache_path();
        let symlinks = mainline_pack::Symlinks::Refuse;
        let tree_key = || {
            mainline_pack::git_tree_id(cache, commit, &self.path)
                .ok()
                .and_then(|tree| TreeKey::new(&tree, symlinks))
        };
        let fetch_blobs = || {
            self.repo
                .remote
                .fetch_blobs(commit, &self.path)
                .map_err(git)?;
            self.repo.invalidate();
            Ok::<(), BuildError>(())
        };
        let mut key = tree_key();
        let fetched = key.is_none();
        if fetched {
            fetch_blobs()?;
            key = tree_key();
        }
        let secs = self
            .repo
            .commit_time(commit)
            .map_err(|e| BuildError::Unavailable(e.to_string()))?;
        let created = time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or_else(|| {
                BuildError::Internal(format!("commit {commit} has an unusable time {secs}"))
            })?;
        let revision = Revision::new(Some(revision_ref.to_owned()), commit.clone());
        let meta =
            mainline_pack::ArtifactMeta::new(self.source.clone(), revision.clone(), &created)?;
        let scratch = tempfile::tempdir()
            .map_err(|e| BuildError::Internal(format!("cannot create a temp dir: {e}")))?;
        let mut pack = || {
            if !fetched {
                fetch_blobs()?;
            }
            mainline_pack::pack_git(
                cache,
                commit,
                &self.path,
                &meta,
                scratch.path(),
                &mut |_| {},
            )
            .map_err(|e| BuildError::from(ArtifactError::from(e)))
        };
        let src = TreeSource {
            key,
            meta: &meta,
            allow_empty: self.allow_empty,
            root: format!("{}:{}", commit.short(), self.path),
            lookup: true,
        };
        match push_tree(store, &src, &mut pack, &mut |_| {}) {
            Ok(pushed) => Ok(pushed.outcome.digest),
            // Someone (CI) pushed this commit's artifact meanwhile: use theirs, it is immutable.
            Err(e) if is_packed_other(&e) => store
                .resolve(&commit.artifact_tag())
                .map_err(|s| BuildError::from(ArtifactError::from(s)))?
                .ok_or(e),
            Err(e) => Err(e),
        }
    }
}

/// Whether the push found `sha-<commit>` naming other bytes (CI pushed it meanwhile).
fn is_packed_other(e: &BuildError) -> bool {
    matches!(e, BuildError::Artifact(a) if matches!(**a, ArtifactError::PackedOther { .. }))
}
