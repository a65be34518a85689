//! The git side of mainline: a source remote seen through the git CLI (transport, credentials,
//! ssh config) and a local blob-less cache read in-process with gix.
//!
//! - [`GitRemote`] reads the remote's mainline branch, merge-queue refs and `refs/mainline/*`
//!   in one `ls-remote`, fetches commits and trees on demand, and blobs only for a deploy path
//!   that is about to be packed.
//! - [`Snapshot`] answers ancestry, deploy-tree, time and message questions from the cache.
//! - Record commits and compare-and-swap ref updates ([`GitRemote::push_ref_cas`]) carry the
//!   journal, the channel lock and merge-group leases on the same remote.
//!
//! Invariants: every fact is either read fresh from the remote or derived from immutable
//! objects; a commit that cannot be found is an error ([`GitError::CommitNotFound`]) that
//! callers map to UNKNOWN, never a guess; many processes may share one cache directory.
//! Must never: print or log a credential (URLs are redacted, tokens travel only in git's
//! environment), wait on a prompt, or run git without a deadline. Unix only (flock, process
//! groups).

mod cache;
mod error;
mod exec;
mod graph;
mod reaper;
mod refs;
mod refs_parse;
mod remote;
mod tree;
mod url;

pub use error::{GitError, GitErrorKind};
pub use exec::first_stall;
pub use graph::Snapshot;
pub use refs::{CasOutcome, RefCas, FULL_DEPTH, RECORD_EMAIL, RECORD_NAME};
pub use refs_parse::{QueueRef, RemoteRefs, MAINLINE_PREFIX, QUEUE_PREFIX};
pub use remote::{GitRemote, RemoteOptions};
pub use url::{RemoteUrl, Token};
