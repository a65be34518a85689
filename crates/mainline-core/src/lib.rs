//! The pure heart of mainline: the vocabulary (digests, commits, tags, revisions) and the
//! decision function that turns observed facts into a verdict and a plan.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a task or draws a random
//! number: time arrives as a value, facts arrive as values, and plans leave as values. That is
//! what lets the same decision serve a CI step, a daemon and a simulator running millions of
//! histories, and what makes every decision replayable from its inputs.
//!
//! Must never: talk to a registry or git, read `std::time::SystemTime`, or accept a
//! string where a validated type exists (an unvalidated tag or digest never reaches a plan).

pub mod ids;

pub use ids::{CommitId, Digest, IdError, Revision, Tag};
