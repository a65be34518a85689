//! The one error type the CLI renders, and the edge where typed errors become it. The executor
//! and its ports fail with typed errors (`ExecError`, `ArtifactError`, `RepoError`,
//! `BuildError`, `LockBackendError`, the store's `StoreError`); the front ends (the CLI, the
//! guard's HTTP surface, the simulator's CI glue) turn them into a [`CliError`] through the
//! `From` impls here — the only place a failure gets its [`Kind`] (the exit code) and its hint
//! (what to do). Rendering happens exactly once, in `main.rs`.
//!
//! Must never: carry a credential in a message (adapters redact before we get here), or map a
//! transient failure to "invalid input" (CI scripts retry on the unavailable code only).

use std::fmt;

/// Failure classes, each with its own exit code (a public contract: CI scripts match on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A bug or an unexpected local failure. Exit 1.
    Internal,
    /// The user gave something malformed or missing. Exit 2 (as clap does for usage errors).
    InvalidInput,
    /// A fact mainline depends on exists but cannot be read (e.g. a lock ref that holds no
    /// lock record): nothing was done, and it is not known to be safe to act. Exit 4.
    Unknown,
    /// A decision refused the requested move (the invariant forbids it). Exit 5.
    Refused,
    /// A store or git remote could not be reached; retrying later may work. Exit 6.
    Unavailable,
    /// Credentials were refused. Exit 7.
    Unauthorized,
    /// Bytes did not match their digest, or a read-back differed from what was written. Exit 8.
    Integrity,
    /// Someone else's state is in the way (an immutable tag names other bytes). Exit 9.
    Conflict,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::InvalidInput => 2,
            Kind::Unknown => 4,
            Kind::Refused => 5,
            Kind::Unavailable => 6,
            Kind::Unauthorized => 7,
            Kind::Integrity => 8,
            Kind::Conflict => 9,
        }
    }
}

/// Exit codes of `mainline status` (and of commands that report a verdict).
pub mod exit {
    pub const OK: u8 = 0;
    /// BEHIND or DIVERGED: reconcile would move the channel.
    pub const NEEDS_ACTION: u8 = 3;
    /// UNKNOWN: a fact could not be read; never counted as converged.
    pub const UNKNOWN: u8 = 4;
}

/// A failure ready to show: what happened (naming the input) and, optionally, what to do.
#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(kind: Kind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            hint: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> CliError {
        CliError::new(Kind::InvalidInput, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
}

/// The message of a write to stdout that found its reader gone (`mainline history | head`).
/// `main` exits quietly on it, as Unix tools do, instead of printing an error.
pub const BROKEN_PIPE: &str = "cannot write output: the reader closed the pipe";

/// A failed write of the command's output: quiet when the reader is gone, internal otherwise.
pub fn output_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return CliError::new(Kind::Internal, BROKEN_PIPE);
    }
    CliError::new(Kind::Internal, format!("cannot write output: {e}"))
}

impl CliError {
    /// Whether this is the reader of stdout going away (see [`BROKEN_PIPE`]).
    pub fn is_broken_pipe(&self) -> bool {
        self.message == BROKEN_PIPE
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// Render an error chain as one line per cause, skipping causes already quoted in the message.
pub fn chain_message(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// A failure to pack an artifact: a local read that failed is internal, a missing git object
/// is unavailable (a shallow or partial clone), anything else is the input's fault.
pub fn pack_err(e: mainline_pack::PackError) -> CliError {
    CliError::from(crate::artifact::ArtifactError::Pack(e))
}

/// Artifact metadata that cannot be written (a bad source URL or revision): invalid input.
pub fn format_err(e: mainline_pack::FormatError) -> CliError {
    CliError::invalid(chain_message(&e))
}

/// Whether an error (or one of its causes) is a full disk or an exhausted quota.
pub fn is_no_space(err: &(dyn std::error::Error + 'static)) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
                || io.kind() == std::io::ErrorKind::StorageFull
            {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

impl From<mainline_store::StoreError> for CliError {
    fn from(e: mainline_store::StoreError) -> CliError {
        CliError::from(crate::artifact::ArtifactError::Store(e))
    }
}

impl From<mainline_store::LocationError> for CliError {
    fn from(e: mainline_store::LocationError) -> CliError {
        CliError::invalid(chain_message(&e))
    }
}

impl From<mainline_core::IdError> for CliError {
    fn from(e: mainline_core::IdError) -> CliError {
        CliError::invalid(e.to_string())
    }
}

mod edge;
