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
//!
//! # The invariant, in one place
//!
//! DESIGN.md states the clauses ([`Clause`]); this is where each is kept and checked. "Enforced
//! by" names the function that refuses or undoes what the clause forbids; "checked by" names
//! the property test over random histories (`tests/properties.rs`, its check functions in
//! brackets) and the simulator's monitor check (`mainline_sim::monitor` / `::clauses`, the
//! same [`Clause`] names) that hold the enforcement to it.
//!
//! | clause | enforced by | checked by |
//! |---|---|---|
//! | **S1** only real, verified digests | `target::commit_target` and `target::pin_evidence` (the evidence policy, before any move); `mainline_exec::channel::verified::VerifiedStore` (an artifact tag names its manifest's revision); the executor's read-back after every write (`channel::effects`) | `decisions_on_known_facts_keep_the_invariant` and `unknown_facts_never_produce_a_move` [`evidence`]; monitor `Invariant::S1` |
//! | **S2** never backwards past a landed merge | `candidate::forward_only` (a candidate write never leaves a landed commit's history); reconcile moves only to mainline's artifact or a live group that descends from it (`decide::reconcile`, `restore::diverged`); pins are the operator's explicit exception (`pinning::pin`) | `decisions_on_known_facts_keep_the_invariant` [`never_backwards`]; monitor `Invariant::S2` |
//! | **S3** bounded exposure to unmerged code | `decide::reconcile` classifies DIVERGED and restores (`restore::diverged`: the newest live group the channel's commit contained, else mainline's artifact); the executor re-decides after every write (`mainline_exec::channel::exec::Executor::run`) | `decisions_on_known_facts_keep_the_invariant` [`reconcile_targets`]; monitor `Invariant::S3` |
//! | **S4** no deploys of ended groups | `candidate::in_flight` (the group is matched by id and head among those in flight now) | `decisions_on_known_facts_keep_the_invariant` [`candidate_guard`]; monitor `Invariant::S4` |
//! | **L1** liveness | `decide::reconcile` (BEHIND and ABSENT promote mainline's artifact via `decide::to_mainline`) | `decisions_on_known_facts_keep_the_invariant` [`verdict_oracle`, `idempotent`]; monitor `Invariant::L1` |
//! | **L2** nothing merged is lost | follows from L1 and S2: every reconcile moves to mainline's tip, which contains every landed change, and nothing moves back past it | `decisions_on_known_facts_keep_the_invariant` [`never_backwards`, `verdict_oracle`]; the monitor's end-of-history count of merged changes the final channel lacks (`monitor::finish`, `merged_never_deployed`) |
//! | **S5** no lost update | `restore::contained_live` (a restore keeps every live group the channel contained); `candidate::forward_only` (not over a newer live group); the channel lock (`mainline_exec::channel::lock`) and its fence, so two writers never decide on the same stale facts | `decisions_on_known_facts_keep_the_invariant` [`candidate_guard`, `reconcile_targets`]; monitor `Invariant::S5` (`clauses::check_lost_update`) |
//! | **G** the gate is real | `candidate::deploy` keeps a group that the channel already contains (restores never drop it: `restore::contained_live`); `deploy --candidate --wait` reports success only once the consumers applied it (the CLI's `check_wait`) | monitor `Invariant::G` (`clauses::check_gates`, `clauses::finish_gates`) |
//!
//! Pins (`pinning::pin`) suspend S2, S3 and L1 for their channel, visibly, until unpinned or
//! expired; S1 is never suspended.

mod apply;
mod candidate;
mod clock;
mod decide;
mod explain;
mod facts;
pub mod ids;
mod invariant;
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
pub use invariant::Clause;
pub use known::{Known, MissingFact};
pub use plan::{Action, Decision, Move, Plan, Refusal, RefuseReason, Verdict};
pub use request::{ancestry_pairs, commits_of_interest, Request};
pub use time::Timestamp;
