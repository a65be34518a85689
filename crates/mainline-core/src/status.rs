//! Classification of the channel against mainline, ignoring pins: which row of the verdict
//! table (DESIGN.md "Verdicts") the facts put the channel in, with the values that justify it.
//!
//! Invariants: every fact the classification needs is looked up through a `Result`, so a
//! single unreadable fact yields [`State::Unreadable`] (verdict UNKNOWN) and never a guess;
//! a channel whose digest is not the artifact of the commit it claims is [`State::Foreign`]
//! (also UNKNOWN), since mainline only ever names its own artifacts — unless the facts say
//! another tool made it (`Facts::channel_made_elsewhere`: a `flux push artifact` latest), in
//! which case its revision is taken at its word, as Flux itself does.
//! Must never: consult the pin (the caller handles pins first) or decide what to do.

use crate::facts::{ChannelHead, Facts, Group};
use crate::ids::{CommitId, Digest};
use crate::known::{Known, MissingFact};
use crate::plan::Verdict;

/// Why a channel commit that is not on mainline holds no live candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale<'f> {
    /// No reported group is headed by it.
    NoGroup,
    /// A lease headed by it expired without the commit landing.
    LeaseExpired(&'f Group),
    /// An in-flight group is headed by it, but it no longer descends from mainline.
    NotFromMainline(&'f Group),
}

/// Where the channel stands, pins aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State<'f> {
    /// A fact the classification needs could not be read.
    Unreadable(MissingFact),
    /// The channel names `digest`, which is not the artifact (`artifact`) of the commit its
    /// annotation claims (`claimed`): moved by hand, or not made by mainline.
    Foreign {
        m: &'f CommitId,
        digest: &'f Digest,
        /// The commit the annotation claims; `None` when the manifest records none.
        claimed: Option<&'f CommitId>,
        artifact: Option<&'f Digest>,
    },
    /// The tag does not exist yet.
    Absent { m: &'f CommitId },
    /// X is on mainline with mainline's deploy tree.
    Converged { x: &'f CommitId, m: &'f CommitId },
    /// X heads an in-flight group that descends from mainline.
    Candidate {
        x: &'f CommitId,
        m: &'f CommitId,
        group: &'f Group,
    },
    /// X is on mainline, but mainline's deploy tree changed since.
    Behind { x: &'f CommitId, m: &'f CommitId },
    /// X is not on mainline and holds no live candidate.
    Diverged {
        x: &'f CommitId,
        m: &'f CommitId,
        why: Stale<'f>,
    },
}

impl State<'_> {
    /// The verdict this state reports when no pin is active. An absent channel is BEHIND
    /// (mainline's artifact has not been deployed yet).
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            State::Unreadable(_) | State::Foreign { .. } => Verdict::Unknown,
            State::Absent { .. } | State::Behind { .. } => Verdict::Behind,
            State::Converged { .. } => Verdict::Converged,
            State::Candidate { .. } => Verdict::Candidate,
            State::Diverged { .. } => Verdict::Diverged,
        }
    }
}

/// Classify the channel. Total: every outcome, including unreadable facts, is a [`State`].
pub(crate) fn classify(facts: &Facts) -> State<'_> {
    classify_inner(facts).unwrap_or_else(State::Unreadable)
}

fn classify_inner(facts: &Facts) -> Result<State<'_>, MissingFact> {
    let m = facts.mainline_tip()?;
    let in_flight = facts.in_flight_groups()?;
    let (digest, x) = match facts.channel_head()? {
        ChannelHead::Absent => return Ok(State::Absent { m }),
        ChannelHead::Foreign { digest, .. } => {
            return Ok(State::Foreign {
                m,
                digest,
                claimed: None,
                artifact: None,
            })
        }
        ChannelHead::Names { digest, commit } => match commit {
            Known::Known(x) => (digest, x),
            Known::Unknown { reason } => {
                return Err(MissingFact::ChannelCommit {
                    channel: facts.channel_name.clone(),
                    digest: digest.clone(),
                    reason: reason.clone(),
                })
            }
        },
    };
    let artifact = facts.artifact(x)?;
    if artifact != Some(digest) && !facts.channel_made_elsewhere {
        return Ok(State::Foreign {
            m,
            digest,
            claimed: Some(x),
            artifact,
        });
    }
    if x == m {
        // Same commit, same tree: no tree lookup needed.
        return Ok(State::Converged { x, m });
    }
    if facts.ancestor(x, m)? {
        return Ok(if facts.deploy_tree(x)? == facts.deploy_tree(m)? {
            State::Converged { x, m }
        } else {
            State::Behind { x, m }
        });
    }
    if let Some(group) = in_flight.iter().copied().find(|g| &g.head == x) {
        return Ok(if facts.ancestor(m, x)? {
            State::Candidate { x, m, group }
        } else {
            State::Diverged {
                x,
                m,
                why: Stale::NotFromMainline(group),
            }
        });
    }
    let why = match facts.groups_headed_by(x).first() {
        Some(lease) => Stale::LeaseExpired(lease),
        None => Stale::NoGroup,
    };
    Ok(State::Diverged { x, m, why })
}
