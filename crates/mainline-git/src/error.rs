//! The one error type of this crate, and the small *kind* that callers branch on.
//!
//! Invariants: every variant names the input it failed on (a redacted remote, a commit, a ref,
//! a path) and its message says what to do next. A cause lives either in `#[source]` or in the
//! message, never both. Must never: carry a credential — remotes appear only in their redacted
//! form, and git's own output is scrubbed before it is stored here.

use mainline_core::CommitId;
use std::path::PathBuf;
use std::time::Duration;

/// What kind of failure this is: drives exit codes, retries and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitErrorKind {
    /// The caller passed something malformed (URL, ref name, path, message).
    InvalidInput,
    /// A commit or ref the caller asked for does not exist where it was looked for.
    NotFound,
    /// The remote or the local cache could not be reached in time; retrying may help.
    Unavailable,
    /// The remote refused an operation for a reason other than a compare-and-swap mismatch.
    Rejected,
    /// Something that should not happen: corrupt objects, unexpected git output.
    Internal,
}

/// Why an operation on the git remote or its local cache failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid git remote URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },

    #[error("invalid ref name {refname:?}: {reason}")]
    InvalidRefName {
        refname: String,
        reason: &'static str,
    },

    #[error(
        "cannot fetch {target:?}: expected a commit id (40 or 64 lowercase hex digits) or a full ref name starting with refs/"
    )]
    InvalidFetchTarget { target: String },

    #[error("invalid deploy path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    #[error("invalid record commit message: {reason}")]
    InvalidMessage { reason: &'static str },

    #[error(
        "commit {commit} is not on the git remote {remote}: it was never pushed there, or a force-push removed it; \
         check the commit id and that mainline points at the right repository"
    )]
    CommitNotFound { commit: CommitId, remote: String },

    #[error(
        "commit {commit} is not in the git cache {cache}: fetch it, or create it with create_record_commit, before using it"
    )]
    NotInCache { commit: CommitId, cache: PathBuf },

    #[error("{path:?} does not exist at commit {commit}: check the deploy path and the commit")]
    PathNotFound { commit: CommitId, path: String },

    #[error(
        "the git remote {remote} did not send {missing} of the requested objects under {path:?} at {commit}; \
         the remote must allow fetching objects by id (uploadpack.allowAnySHA1InWant, as GitHub does)"
    )]
    BlobsMissing {
        commit: CommitId,
        path: String,
        missing: usize,
        remote: String,
    },

    #[error("ref {refname} does not exist on the git remote {remote}")]
    RefNotFound { refname: String, remote: String },

    #[error(
        "{path:?} at commit {commit} is a {found}, not a directory: the deploy path must name a folder of the repository"
    )]
    NotATree {
        commit: CommitId,
        path: String,
        found: &'static str,
    },

    #[error("cannot resolve revision {rev:?} in the git cache {cache}: fetch it first, or check the spelling")]
    Unresolved {
        rev: String,
        cache: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("revision {rev:?} names a {found}, not a commit")]
    NotACommit { rev: String, found: String },

    #[error("could not run git ({program}): is git installed and on PATH?")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "`git {command}` for {remote} timed out after {}s: the remote may be unreachable or waiting for credentials; \
         check connectivity and credentials, then retry",
        .after.as_secs()
    )]
    Timeout {
        command: String,
        remote: String,
        after: Duration,
    },

    #[error(
        "the git remote {remote} did not answer `git {command}` before the command's deadline; \
         it may accept connections and never reply, or wait for credentials: check it and retry later, \
         or allow more time with --timeout (MAINLINE_TIMEOUT)"
    )]
    Deadline { command: String, remote: String },

    #[error(
        "`git {command}` for {remote} was not started: the command's deadline had already passed \
         (something before it did not answer in time)"
    )]
    DeadlinePassed { command: String, remote: String },

    #[error(
        "`git {command}` for {remote} failed ({status}): {stderr}; check the URL, the network and the credentials \
         (MAINLINE_GIT_TOKEN, a git credential helper, or ssh keys), then retry"
    )]
    Command {
        command: String,
        remote: String,
        status: String,
        stderr: String,
    },

    #[error(
        "the git remote {remote} rejected the update of {refname} ({reason}) although it still holds the expected value; \
         check the remote's permissions and hooks for that ref"
    )]
    PushRejected {
        refname: String,
        remote: String,
        reason: String,
    },

    /// An atomic multi-ref compare-and-swap in which git skipped one ref's expected-value
    /// check (the remote already held its new value) and updated the others: the contract
    /// "all move from their expected values, or none" could not be kept. Read the refs.
    #[error("git push --atomic to {remote}: {refname} already held its new value, so git did not check its expected value, and updated the other refs of the push; read the refs to learn the outcome")]
    AtomicPartlyApplied { remote: String, refname: String },

    #[error("unexpected output from `git {command}` for {remote}: {detail}")]
    UnexpectedOutput {
        command: String,
        remote: String,
        detail: String,
    },

    #[error("git cache {path}: {action} failed; check that the directory is writable and the disk is not full")]
    CacheIo {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "timed out after {}s waiting for the lock on git cache {path}: another mainline process is fetching; retry later",
        .after.as_secs()
    )]
    LockTimeout { path: PathBuf, after: Duration },

    #[error(
        "cannot open the git cache {path}: delete the directory to rebuild it from the remote"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: Box<gix::open::Error>,
    },

    #[error("reading {what} in the git cache {cache} failed; delete the cache directory to rebuild it if this persists")]
    Objects {
        what: String,
        cache: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl GitError {
    /// The kind of this failure, for exit codes, retries and metric labels.
    pub fn kind(&self) -> GitErrorKind {
        use GitError::*;
        match self {
            InvalidUrl { .. }
            | InvalidRefName { .. }
            | InvalidFetchTarget { .. }
            | InvalidPath { .. }
            | InvalidMessage { .. }
            | NotATree { .. }
            | NotACommit { .. } => GitErrorKind::InvalidInput,
            CommitNotFound { .. }
            | RefNotFound { .. }
            | Unresolved { .. }
            | NotInCache { .. }
            | PathNotFound { .. } => GitErrorKind::NotFound,
            Timeout { .. }
            | Deadline { .. }
            | DeadlinePassed { .. }
            | Command { .. }
            | LockTimeout { .. }
            | CacheIo { .. } => GitErrorKind::Unavailable,
            PushRejected { .. } => GitErrorKind::Rejected,
            Spawn { .. }
            | UnexpectedOutput { .. }
            | AtomicPartlyApplied { .. }
            | Open { .. }
            | Objects { .. }
            | BlobsMissing { .. } => GitErrorKind::Internal,
        }
    }

    pub(crate) fn objects(
        what: impl Into<String>,
        cache: &std::path::Path,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> GitError {
        GitError::Objects {
            what: what.into(),
            cache: cache.to_owned(),
            source: Box::new(source),
        }
    }
}
