//! The narrow traits the channel executor acts through, in mainline's own types. Real adapters
//! (git CLI + gix, an OCI store) implement them in `crate::adapters`; the simulator implements
//! them in memory. The registry side is `mainline_store::Store` itself.
//!
//! Must never: leak an adapter's types (gix, reqwest, oci-client) into these signatures, or
//! turn "could not read" into a value: every unreadable fact is an `Err`, which the gatherer
//! records as Unknown.

use mainline_core::{CommitId, Digest, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a source-repository operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The remote does not have this commit (never guessed: the fact becomes Unknown).
    #[error("commit {commit} is not on the git remote")]
    CommitNotFound { commit: CommitId },
    /// The remote could not be reached or answered with an error; retrying may work.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (corrupt cache, unexpected object).
    #[error("{0}")]
    Other(String),
    /// A `refs/mainline/*` ref points at an object that is not a record commit (a tree, a blob):
    /// something other than mainline wrote it. The remote has it, so it is not "not found".
    #[error(
        "{refname} on {remote} points at {object}, a {found}, not a mainline record commit: \
         something other than mainline wrote it; if it is garbage, delete it with `git push {remote} :{refname}`"
    )]
    NotARecord {
        refname: String,
        remote: String,
        object: CommitId,
        found: String,
    },
}

/// One read of the remote's refs: the protected branch, merge-queue refs, mainline's own refs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteView {
    /// The protected branch's tip; `None` if the branch does not exist.
    pub mainline: Option<CommitId>,
    /// `refs/heads/gh-readonly-queue/<branch>/pr-<N>-<sha>` refs: the in-flight groups.
    pub queue: Vec<QueueRef>,
    /// Every ref under `refs/mainline/` (pins, leases, locks, journals) and its target.
    pub mainline_refs: BTreeMap<String, CommitId>,
}

/// A merge-queue ref as GitHub creates it while a group is in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    /// The ref without `refs/heads/`, e.g. `gh-readonly-queue/main/pr-7-<sha>`: the group id.
    pub name: String,
    pub pr: u64,
    pub head: CommitId,
}

/// One ref of an atomic multi-ref compare-and-swap ([`Repo::cas_refs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub refname: String,
    /// The value the ref must hold (`None`: absent).
    pub expected: Option<CommitId>,
    /// The value to give it (`None`: delete).
    pub new: Option<CommitId>,
}

/// Outcome of a compare-and-swap ref update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cas {
    Updated,
    /// Someone else's value was there; nothing was written.
    Conflict {
        actual: Option<CommitId>,
    },
}

/// The source repository (a git remote) as the executor needs it.
pub trait Repo: Send + Sync {
    /// Read the remote's refs once (`git ls-remote`).
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError>;
    /// Make these commits (with their history of commits and trees) available locally.
    /// Commits the remote does not have are returned, not an error.
    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError>;
    /// Whether the commit is available locally.
    fn has_commit(&self, commit: &CommitId) -> bool;
    /// Is `a` equal to or an ancestor of `d`? Both must be local.
    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError>;
    /// The git tree id of `path` at `commit`; `None` when the path is absent there.
    fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, RepoError>;
    /// Whether the deploy tree of `path` at `commit` holds no file (absent, or only folders
    /// and submodules): what an empty artifact would be packed from.
    fn deploy_tree_empty(&self, commit: &CommitId, path: &str) -> Result<bool, RepoError>;
    /// The committer time of `commit`, unix seconds.
    fn commit_time(&self, commit: &CommitId) -> Result<i64, RepoError>;
    /// Create a record commit (empty tree, fixed identity) locally; push it with `cas_ref`.
    fn write_record(
        &self,
        message: &str,
        parents: &[CommitId],
        time: Timestamp,
    ) -> Result<CommitId, RepoError>;
    /// The message of a record commit (fetching it if needed).
    fn read_record(&self, refname: &str, commit: &CommitId) -> Result<String, RepoError>;
    /// The parents of a record commit (already fetched by `read_record`).
    fn record_parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, RepoError>;
    /// Compare-and-swap `refname` on the remote from `expected` to `new` (`None` = absent).
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError>;
    /// Compare-and-swap several refs at once: every ref moves from its expected value, or none
    /// moves (`Conflict` then names what the first moved ref holds). What lets a writer take
    /// the lock and record its intent in one round trip.
    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError>;
    /// Warm a fresh runner's cache while the refs are listed: `branch` with its merge-queue
    /// refs by name and `commits` by id, in one fetch. Best effort and never a fact (the
    /// listing is): it only lets the fetch of what the listing names find it local. Adapters
    /// without a cache to warm do nothing.
    fn prefetch(&self, _branch: &str, _commits: &[CommitId]) -> Result<(), RepoError> {
        Ok(())
    }
    /// Warm the record cache with the newest records of `refname`, asked for by name (nothing
    /// listed yet). Best effort, like [`Repo::prefetch`].
    fn prefetch_records(&self, _refname: &str) -> Result<(), RepoError> {
        Ok(())
    }
}

/// A `Repo` that wraps another and changes only some calls (an observer, a fault injector, a
/// second source of ancestry): implement `inner()` and the calls you change; every other call
/// forwards, through the blanket `impl Repo`.
pub trait RepoWrapper: Send + Sync {
    fn inner(&self) -> &dyn Repo;
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        self.inner().view(branch)
    }
    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError> {
        self.inner().fetch(commits)
    }
    fn has_commit(&self, commit: &CommitId) -> bool {
        self.inner().has_commit(commit)
    }
    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError> {
        self.inner().is_ancestor(a, d)
    }
    fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, RepoError> {
        self.inner().deploy_tree(commit, path)
    }
    fn deploy_tree_empty(&self, commit: &CommitId, path: &str) -> Result<bool, RepoError> {
        self.inner().deploy_tree_empty(commit, path)
    }
    fn commit_time(&self, commit: &CommitId) -> Result<i64, RepoError> {
        self.inner().commit_time(commit)
    }
    fn write_record(
        &self,
        message: &str,
        parents: &[CommitId],
        time: Timestamp,
    ) -> Result<CommitId, RepoError> {
        self.inner().write_record(message, parents, time)
    }
    fn read_record(&self, refname: &str, commit: &CommitId) -> Result<String, RepoError> {
        self.inner().read_record(refname, commit)
    }
    fn record_parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, RepoError> {
        self.inner().record_parents(commit)
    }
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        self.inner().cas_ref(refname, expected, new)
    }
    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        self.inner().cas_refs(updates)
    }
    fn prefetch(&self, branch: &str, commits: &[CommitId]) -> Result<(), RepoError> {
        self.inner().prefetch(branch, commits)
    }
    fn prefetch_records(&self, refname: &str) -> Result<(), RepoError> {
        self.inner().prefetch_records(refname)
    }
}

impl<T: RepoWrapper> Repo for T {
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        RepoWrapper::view(self, branch)
    }
    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError> {
        RepoWrapper::fetch(self, commits)
    }
    fn has_commit(&self, commit: &CommitId) -> bool {
        RepoWrapper::has_commit(self, commit)
    }
    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError> {
        RepoWrapper::is_ancestor(self, a, d)
    }
    fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, RepoError> {
        RepoWrapper::deploy_tree(self, commit, path)
    }
    fn deploy_tree_empty(&self, commit: &CommitId, path: &str) -> Result<bool, RepoError> {
        RepoWrapper::deploy_tree_empty(self, commit, path)
    }
    fn commit_time(&self, commit: &CommitId) -> Result<i64, RepoError> {
        RepoWrapper::commit_time(self, commit)
    }
    fn write_record(
        &self,
        message: &str,
        parents: &[CommitId],
        time: Timestamp,
    ) -> Result<CommitId, RepoError> {
        RepoWrapper::write_record(self, message, parents, time)
    }
    fn read_record(&self, refname: &str, commit: &CommitId) -> Result<String, RepoError> {
        RepoWrapper::read_record(self, refname, commit)
    }
    fn record_parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, RepoError> {
        RepoWrapper::record_parents(self, commit)
    }
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        RepoWrapper::cas_ref(self, refname, expected, new)
    }
    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        RepoWrapper::cas_refs(self, updates)
    }
    fn prefetch(&self, branch: &str, commits: &[CommitId]) -> Result<(), RepoError> {
        RepoWrapper::prefetch(self, branch, commits)
    }
    fn prefetch_records(&self, refname: &str) -> Result<(), RepoError> {
        RepoWrapper::prefetch_records(self, refname)
    }
}

/// Why a [`Builder`] could not build and push an artifact. The adapter's own account is the
/// text; the class is the variant (what the edge turns into an exit code).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The commit's objects could not be fetched; retrying may work.
    #[error("{0}")]
    Unavailable(String),
    /// The commit, its deploy path or an object it needs does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A local failure (a temp folder, an unusable commit time).
    #[error("{0}")]
    Internal(String),
    /// The source URL or revision cannot be written into the artifact.
    #[error(transparent)]
    Format(#[from] mainline_pack::FormatError),
    /// Packing or pushing failed.
    #[error(transparent)]
    Artifact(Box<crate::artifact::ArtifactError>),
}

impl From<crate::artifact::ArtifactError> for BuildError {
    fn from(e: crate::artifact::ArtifactError) -> BuildError {
        BuildError::Artifact(Box::new(e))
    }
}

/// Builds a missing artifact from git objects and pushes it (the heal path when CI never
/// pushed mainline's artifact). Returns the digest now under `sha-<commit>`.
pub trait Builder: Send + Sync {
    fn build(
        &self,
        store: &dyn mainline_store::Store,
        commit: &CommitId,
        revision_ref: &str,
    ) -> Result<Digest, BuildError>;
}

/// Where "now" comes from, and how to wait: the one interface, defined in the core. The real
/// one ([`SystemClock`]) reads the system clock and sleeps; the simulator's is virtual
/// (sleeping advances it).
pub use mainline_core::Clock;

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
    fn monotonic_ms(&self) -> i64 {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        ORIGIN
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as i64
    }
    fn sleep(&self, millis: u64) {
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
}

/// Proof of holding a channel lock, opaque to the executor (a record commit for the git lock,
/// a Lease object for the Kubernetes lock).
pub struct LockToken(pub Box<dyn std::any::Any + Send>);

/// Who holds a channel lock, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolderInfo {
    pub holder: String,
    pub expires_at: Timestamp,
}

/// A lock backend other than the built-in git ref (e.g. a Kubernetes `Lease`). Same contract as
/// `lock::GitLock`: acquire waits (bounded) for a live holder and takes over only after expiry;
/// a failed `renew` means the lock was lost and nothing may be written.
pub trait ChannelLock: Send + Sync {
    fn acquire(&self) -> Result<LockToken, LockBackendError>;
    fn renew(&self, token: &mut LockToken) -> Result<(), LockBackendError>;
    /// Renew declaring `ttl` instead of the configured TTL: the write hold a holder declares
    /// before a registry write (`lock::write_hold_ms`), so a late landing of that write falls
    /// inside its hold as takers judge it.
    fn renew_for(&self, token: &mut LockToken, ttl: Duration) -> Result<(), LockBackendError>;
    fn release(&self, token: LockToken) -> Result<(), LockBackendError>;
    fn holder(&self) -> Result<Option<LockHolderInfo>, LockBackendError>;
}

/// Why a [`ChannelLock`] backend failed.
#[derive(Debug, thiserror::Error)]
pub enum LockBackendError {
    /// The backend could not be reached or would not answer in time; nothing was taken.
    #[error("{0}")]
    Unavailable(String),
    /// Another holder took the lock over: nothing may be written any more.
    #[error("{0}")]
    Lost(String),
    /// A token of another backend was handed to this one (a bug).
    #[error("a lock token of another backend reached the {backend} lock")]
    ForeignToken { backend: &'static str },
}

/// The consumers of a channel (Flux `OCIRepository` objects): nudged after every move, best
/// effort and after the registry write — a slow or failing consumer never delays or undoes a
/// move. Returns one line per consumer, for the report.
pub trait Consumers: Send + Sync {
    fn nudge(&self, digest: &Digest) -> Vec<String>;
}
