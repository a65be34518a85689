//! Questions about a deploy tree's shape, answered from trees alone (a blob-less cache has
//! every tree): does it hold any file, and which folders exist where a mistyped path
//! pointed — the hint `mainline` gives for a `--path` that is not on mainline.
//!
//! Invariants: "holds a file" mirrors what `mainline-pack` writes into an artifact — a blob
//! or symlink anywhere below, except under `.git`; submodules and folders alone pack to
//! nothing. Must never: read blobs, fetch, or write to the cache.

use crate::error::GitError;
use crate::graph::{split_path, Snapshot};
use gix::ObjectId;
use mainline_core::CommitId;

impl Snapshot {
    /// Whether the deploy tree at `path` of `commit` holds at least one file or symlink.
    /// `false` when the path is absent. Stops at the first file, so a non-empty tree costs a
    /// tree read or two.
    pub fn deploy_tree_has_files(&self, commit: &CommitId, path: &str) -> Result<bool, GitError> {
        let Some(root) = self.deploy_tree_id(commit, path)? else {
            return Ok(false);
        };
        let mut trees = vec![root];
        while let Some(id) = trees.pop() {
            let tree = self
                .repo
                .find_tree(id)
                .map_err(|e| GitError::objects(format!("tree {id}"), &self.path, e))?;
            for entry in tree.iter() {
                let entry =
                    entry.map_err(|e| GitError::objects(format!("tree {id}"), &self.path, e))?;
                if entry.filename() == ".git" {
                    continue;
                }
                let mode = entry.mode();
                if mode.is_blob_or_symlink() {
                    return Ok(true);
                }
                if mode.is_tree() {
                    trees.push(entry.object_id());
                }
            }
        }
        Ok(false)
    }

    /// For a `path` that does not exist at `commit`: the deepest folder of it that does
    /// (`""` for the repository root) and the folders inside that one, sorted.
    pub fn nearest_folders(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<(String, Vec<String>), GitError> {
        let components = split_path(path)?;
        let mut current: ObjectId = self
            .deploy_tree_id(commit, "")?
            .expect("the root of a commit always exists");
        let mut walked: Vec<&str> = Vec::new();
        for component in components {
            match self.child_folder(current, component)? {
                Some(id) => {
                    current = id;
                    walked.push(component);
                }
                None => break,
            }
        }
        Ok((walked.join("/"), self.folders_in(current)?))
    }

    fn child_folder(&self, tree: ObjectId, name: &str) -> Result<Option<ObjectId>, GitError> {
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(|e| GitError::objects(format!("tree {tree}"), &self.path, e))?;
        for entry in tree.iter() {
            let entry = entry.map_err(|e| GitError::objects("a tree", &self.path, e))?;
            if entry.filename() == name && entry.mode().is_tree() {
                return Ok(Some(entry.object_id()));
            }
        }
        Ok(None)
    }

    fn folders_in(&self, tree: ObjectId) -> Result<Vec<String>, GitError> {
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(|e| GitError::objects(format!("tree {tree}"), &self.path, e))?;
        let mut names = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(|e| GitError::objects("a tree", &self.path, e))?;
            if entry.mode().is_tree() && entry.filename() != ".git" {
                names.push(String::from_utf8_lossy(entry.filename()).into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}
