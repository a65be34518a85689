//! The pure heart of mainline: the vocabulary (digests, commits, tags, revisions) and the
//! decision function that turns observed facts into a verdict and a plan.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a task or draws a random
//! number: time arrives as a value, facts arrive as values, and plans leave as values. That is
//! what lets the same decision serve a CI step, a daemon and a simulator running millions of
//! histories, and what makes every decision replayable from its inputs.
//!
//! The flow: an executor asks [`commits_of_interest`] which commits (and [`ancestry_pairs`])
//! to read, gathers [`Facts`], calls [`decide`], carries out the [`Plan`], reads back, and
//! decides again. [`apply`] models the facts after a move.
//!
//! Must never: talk to a registry or git, read `std::time::SystemTime`, or accept a
//! string where a validated type exists (an unvalidated tag or digest never reaches a plan).

mod apply;
mod candidate;
mod clock;
mod decide;
mod explain;
mod facts;
pub mod ids;
mod known;
mod pinning;
mod plan;
mod request;
mod restore;
mod status;
mod target;
mod time;

pub use apply::{apply, packed_stand_in};
pub use clock::Clock;
pub use decide::decide;
pub use explain::group_id as display_group_id;
pub use facts::{Ancestry, ChannelHead, CommitFacts, Facts, Group, Pin, PinKind, Policy};
pub use ids::{CommitId, Digest, IdError, Revision, Tag};
pub use known::{Known, MissingFact};
pub use plan::{Action, Decision, Move, Plan, Refusal, RefuseReason, Verdict};
pub use request::{ancestry_pairs, commits_of_interest, Request};
pub use time::Timestamp;
