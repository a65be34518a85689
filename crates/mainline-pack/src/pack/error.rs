//! Why packing failed. Every variant names the input (folder, path, repository, commit) and
//! says what to do; causes travel in `#[source]`, never also in the message.

use crate::symlink::LinkProblem;
use mainline_core::CommitId;
use std::path::PathBuf;

/// A boxed error from gix, whose error types are many and version-specific.
pub type GitSource = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("folder {dir} does not exist; pass the folder to deploy (e.g. k8s/)")]
    DirNotFound { dir: PathBuf },
    #[error("{dir} is not a folder; pass the folder to deploy (e.g. k8s/)")]
    NotADirectory { dir: PathBuf },
    #[error("cannot read {path}; check that it exists and is readable")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} changed while it was being packed; pack again once nothing writes to the folder"
    )]
    Changed { path: PathBuf },
    #[error("{path} is a {kind}; only files, folders and symlinks can be packed, so move it out of {root}")]
    UnsupportedFileType {
        path: PathBuf,
        kind: &'static str,
        root: String,
    },
    #[error("the name of {path} is not valid UTF-8 (shown lossily); rename it, artifacts hold UTF-8 paths only")]
    NonUtf8Name { path: String },
    #[error("{path} in {root} has an invalid name; a tree entry must be a single non-empty path component other than . and ..")]
    InvalidName { path: String, root: String },
    #[error("symlink {path} -> {target} {problem} ({root}); make it a relative link to something inside {root}, or replace it by the file")]
    Symlink {
        path: String,
        target: String,
        problem: LinkProblem,
        root: String,
    },
    #[error("{path} in {root} is a symlink (-> {target}); Flux's source-controller drops symlinks when it unpacks, so it would vanish from the cluster. Replace it by the file, or push with `mainline push --resolve-symlinks` to store what it points to (channel commands then reuse that artifact)")]
    SymlinkRefused {
        path: String,
        target: String,
        root: String,
    },
    #[error("{path} in {root} cannot be shipped: {reason}, and Flux's source-controller refuses every artifact with a backslash or `../` in a path; rename it")]
    FluxUnsafeName {
        path: String,
        root: String,
        reason: &'static str,
    },
    #[error("invalid subdirectory {subdir:?}: it must be a relative path inside the repository without `..` (use \"\" or \".\" for the whole tree)")]
    InvalidSubdir { subdir: String },
    #[error("cannot write the layer into scratch folder {scratch}; check that it exists, is writable and has free space")]
    Scratch {
        scratch: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open git repository {repo}; pass the path of a clone (its work tree or .git folder)")]
    OpenRepo {
        repo: PathBuf,
        #[source]
        source: GitSource,
    },
    #[error("cannot resolve {rev:?} to a commit in {repo}; fetch it, or check the name")]
    UnknownRevision {
        repo: PathBuf,
        rev: String,
        #[source]
        source: GitSource,
    },
    #[error("{rev:?} in {repo} names a {kind}, not a commit; pass a commit, branch or tag")]
    NotACommit {
        repo: PathBuf,
        rev: String,
        kind: String,
    },
    #[error("commit {commit} is not in {repo}; fetch it first (e.g. git fetch origin {commit})")]
    CommitNotFound { repo: PathBuf, commit: CommitId },
    #[error("{subdir} does not exist at commit {commit}; check the deploy path, or that the commit has it")]
    SubdirNotFound { commit: CommitId, subdir: String },
    #[error("{subdir} at commit {commit} is not a folder; pass the folder to deploy")]
    SubdirNotATree { commit: CommitId, subdir: String },
    #[error("{root} holds no file: an empty artifact would make Flux (with prune: true) delete everything it deployed before; add the manifests, check the path, or pass --allow-empty if an empty deploy is intended")]
    EmptyTree { root: String },
    #[error("{kind} {object} ({path}) of commit {commit} is not in the object database of {repo} (a partial clone?); fetch it (e.g. git fetch origin {commit}) and retry")]
    MissingObject {
        repo: PathBuf,
        commit: CommitId,
        path: String,
        object: String,
        kind: &'static str,
    },
    #[error("reading git objects of {repo} failed while reading {what}; check the repository with `git fsck`")]
    Git {
        repo: PathBuf,
        what: String,
        #[source]
        source: GitSource,
    },
    #[error("the commit time of {commit} cannot be written as RFC 3339 (year outside 0000-9999); pass --created explicitly")]
    CommitTime { commit: CommitId },
}
