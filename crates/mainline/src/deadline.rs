//! One overall deadline per command: the time a command may take from start to exit, whatever
//! the registry, its token endpoint or the git remote do.
//!
//! The deadline is a plain value (an `Instant` and the budget it came from), made once from
//! `--timeout` / `MAINLINE_TIMEOUT` or the command's default, and handed to every adapter: the
//! registry bounds each request (token requests included) and each retry pause by what is left;
//! git bounds each process by it and kills its process group when it passes; the channel lock
//! waits for a busy holder no longer than what is left. A command whose deadline passed exits
//! 6 (unavailable), naming what did not answer; `main` keeps a hard backstop a few seconds
//! later in case some call ignored its bound.
//!
//! Invariants: `remaining()` never grows; read-only commands default to [`READ_DEFAULT`],
//! writers to [`WRITE_DEFAULT`]. Must never: be applied to the daemon (`guard`), whose
//! reconciles run forever, or to offline commands (`tour`, `simulate`).

use crate::cli::Command;
use crate::error::{CliError, Kind};
use std::time::{Duration, Instant};

/// Default for commands that only read the world: status, inspect, pull, history.
pub const READ_DEFAULT: Duration = Duration::from_secs(60);
/// Default for commands that write: push, tag, reconcile, deploy, promote, pin, unpin,
/// rollback. Room for a lock wait, a pack and push from git objects, and the write's read-back.
pub const WRITE_DEFAULT: Duration = Duration::from_secs(120);
/// How long after the deadline the backstop in `main` ends the process.
pub const BACKSTOP_GRACE: Duration = Duration::from_secs(5);

/// What the deadline cut first in this process (a registry request or a git call), by its
/// adapter's message: the thing that did not answer. Later calls fail as "not started".
pub fn first_stall() -> Option<String> {
    let git = mainline_git::first_stall();
    let registry = mainline_store::registry::first_stall();
    match (git, registry) {
        (Some(g), Some(r)) => Some(if g.0 <= r.0 { g.1 } else { r.1 }),
        (Some((_, m)), None) | (None, Some((_, m))) => Some(m),
        (None, None) => None,
    }
}

/// When the command must have ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The deadline for `command`: `explicit` (from --timeout) or the command's default;
    /// `None` for commands without one. `--wait` extends it by its own duration.
    pub fn for_command(
        command: &Command,
        explicit: Option<Duration>,
    ) -> Result<Option<Deadline>, CliError> {
        if explicit.is_some_and(|d| d.is_zero()) {
            return Err(
                CliError::invalid("--timeout 0 leaves no time to do anything").with_hint(
                    "pass a duration such as 30s or 2m (MAINLINE_TIMEOUT takes the same)",
                ),
            );
        }
        let (default, extra) = match command {
            Command::Status(_) | Command::Inspect(_) | Command::Pull(_) | Command::History(_) => {
                (READ_DEFAULT, None)
            }
            Command::Deploy(a) => (WRITE_DEFAULT, a.wait),
            Command::Promote(a) => (WRITE_DEFAULT, a.wait),
            Command::Push(_)
            | Command::Tag(_)
            | Command::Reconcile(_)
            | Command::Pin(_)
            | Command::Unpin(_)
            | Command::Rollback(_) => (WRITE_DEFAULT, None),
            Command::Tour(_) | Command::Simulate(_) | Command::Guard(_) => return Ok(None),
        };
        let budget = explicit.unwrap_or(default) + extra.unwrap_or_default();
        Ok(Some(Deadline::after(budget)))
    }

    /// The instant itself, for adapters that take a plain `Instant`.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The whole budget this deadline was made from.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// What is left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The error of a command that ran out of time: exit 6, naming what did not answer
    /// (`what`, an adapter's message or an UNKNOWN verdict's explanation).
    pub fn exceeded(&self, command: &str, what: &str) -> CliError {
        CliError::new(
            Kind::Unavailable,
            format!(
                "mainline {command} did not finish within its deadline of {}: {what}",
                humantime::format_duration(self.budget)
            ),
        )
        .with_hint(
            "what is named above did not answer in time; retry later, or allow more time with \
             --timeout DURATION (or MAINLINE_TIMEOUT)",
        )
    }
}
