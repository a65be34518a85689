//! Candidate deploys: moving the channel to the head of an in-flight merge group before it
//! lands.
//!
//! Invariants: a candidate move happens only for a group that is in flight *now* (by id and
//! head, lease not expired, S4), whose head descends from mainline's tip, and only forward
//! along the queue: never over a newer in-flight group that descends from it, never behind a
//! commit that landed (S2), never over a channel mainline did not make.
//! Must never: move on an unknown fact, or while an operator pin is active.

use crate::decide::{current, finish, move_to, refuse};
use crate::explain;
use crate::facts::{ChannelHead, Facts, Group};
use crate::ids::{CommitId, Digest};
use crate::known::{Known, MissingFact};
use crate::plan::{Action, Decision, Plan, RefuseReason};
use crate::target::commit_target;

/// Why a candidate deploy stops before moving.
enum Stop {
    Refused(RefuseReason, String),
    AlreadyThere(String),
}

impl From<MissingFact> for Stop {
    fn from(missing: MissingFact) -> Stop {
        Stop::Refused(RefuseReason::FactsUnknown, missing.to_string())
    }
}

/// Decide a candidate deploy of group `group_id` with head `head`. The verdict reported is the
/// channel's current one.
pub(crate) fn deploy(facts: &Facts, group_id: &str, head: &CommitId) -> Decision {
    let (verdict, line) = current(facts);
    let what = format!(
        "candidate {} of group {} to channel {}",
        head.short(),
        crate::explain::group_id(group_id),
        facts.channel_name
    );
    if facts.active_pin().is_some() {
        return refuse(
            verdict,
            RefuseReason::PinActive,
            format!("{line}: not deploying {what}; run `mainline unpin` first"),
        );
    }
    match check(facts, group_id, head) {
        Ok((group, m, to_digest)) => move_to(
            verdict,
            Some(head.clone()),
            to_digest,
            Action::DeployCandidate,
            format!(
                "deploy {what}: in-flight group {} on top of mainline {}",
                explain::group(group),
                m.short()
            ),
        ),
        Err(Stop::AlreadyThere(why)) => finish(
            verdict,
            Plan::Hold,
            format!("channel {} {why}: nothing to do", facts.channel_name),
        ),
        Err(Stop::Refused(reason, why)) => {
            refuse(verdict, reason, format!("not deploying {what}: {why}"))
        }
    }
}

/// All checks, in order; the group, mainline's tip and the digest to write when they pass.
fn check<'f>(
    facts: &'f Facts,
    group_id: &str,
    head: &CommitId,
) -> Result<(&'f Group, &'f CommitId, Option<Digest>), Stop> {
    let group = in_flight(facts, group_id, head)?;
    let m = facts.mainline_tip()?;
    // A deploy path absent at mainline's tip refuses every request (`decide`); with the tip's
    // tree unreadable that refusal cannot be ruled out, so no candidate moves either.
    facts.deploy_tree(m)?;
    if !facts.ancestor(m, head)? {
        return Err(Stop::Refused(
            RefuseReason::GroupBehindMainline,
            format!(
                "{} does not descend from mainline {} (the queue rebuilt the group, or mainline \
                 moved); the queue will retry on a new head",
                head.short(),
                m.short()
            ),
        ));
    }
    if let ChannelHead::Foreign { digest, .. } = facts.channel_head()? {
        return Err(Stop::Refused(
            RefuseReason::ChannelForeign,
            format!(
                "the channel names {}, which records no source revision (moved by hand or not \
                 made by mainline); run `mainline reconcile --force-restore` or `mainline pin` \
                 first",
                digest.short()
            ),
        ));
    }
    if let ChannelHead::Names { digest, commit } = facts.channel_head()? {
        let x = match commit {
            Known::Known(x) => x,
            Known::Unknown { reason } => {
                return Err(MissingFact::ChannelCommit {
                    channel: facts.channel_name.clone(),
                    digest: digest.clone(),
                    reason: reason.clone(),
                }
                .into())
            }
        };
        if facts.artifact(x)? != Some(digest) && !facts.channel_made_elsewhere {
            return Err(Stop::Refused(
                RefuseReason::ChannelForeign,
                format!(
                    "the channel names {}, which is not the artifact of {} (moved by hand or not \
                     made by mainline); run `mainline reconcile --force-restore` or `mainline pin` \
                     first",
                    digest.short(),
                    x.short()
                ),
            ));
        }
        if x == head {
            return Err(Stop::AlreadyThere(format!(
                "already names candidate {} of group {}",
                head.short(),
                explain::group(group)
            )));
        }
        forward_only(facts, group, head, x, m)?;
    }
    match commit_target(facts, head) {
        Ok(to_digest) => Ok((group, m, to_digest)),
        Err(e) => Err(Stop::Refused(e.reason(), e.to_string())),
    }
}

/// The group, matched by id and head among the groups in flight now.
fn in_flight<'f>(facts: &'f Facts, group_id: &str, head: &CommitId) -> Result<&'f Group, Stop> {
    let live = facts.in_flight_groups()?;
    if let Some(g) = live.iter().find(|g| g.id == group_id && &g.head == head) {
        return Ok(g);
    }
    let reported: Vec<&Group> = facts
        .groups
        .known()
        .map(|gs| gs.iter().filter(|g| g.id == group_id).collect())
        .unwrap_or_default();
    let why = match reported.iter().find(|g| &g.head == head) {
        Some(g) => format!(
            "its lease expired{}; the group ended",
            g.expires_at.map(|t| format!(" at {t}")).unwrap_or_default()
        ),
        None => match reported.first() {
            Some(g) => format!(
                "the queue reports {} with head {}, not {}: this head is stale",
                crate::explain::group_id(group_id),
                g.head.short(),
                head.short()
            ),
            // The queue only reports groups in flight: one that ended and one that never
            // existed (a typo in --group) look alike, so neither is claimed.
            None => format!(
                "group {} not found: the queue reports no in-flight group by that id (it ended, \
                 or never existed; check --group)",
                crate::explain::group_id(group_id)
            ),
        },
    };
    Err(Stop::Refused(RefuseReason::GroupNotInFlight, why))
}

/// The channel only moves forward along the queue: not over a newer in-flight group that
/// descends from `head`, and never behind `x` when `x` landed on mainline.
fn forward_only(
    facts: &Facts,
    group: &Group,
    head: &CommitId,
    x: &CommitId,
    m: &CommitId,
) -> Result<(), Stop> {
    let live = facts.in_flight_groups()?;
    let newer = live
        .iter()
        .find(|g| &g.head == x && !(g.id == group.id && &g.head == head));
    if let Some(newer) = newer {
        if facts.ancestor(head, x)? {
            return Err(Stop::Refused(
                RefuseReason::NewerGroupHolds,
                format!(
                    "the channel holds {} of newer in-flight group {}, which descends from {}; \
                     the channel only moves forward along the queue",
                    x.short(),
                    explain::group(newer),
                    head.short()
                ),
            ));
        }
    }
    // The channel names X, which is no live group's head (an ended group's candidate, say) but
    // contains a newer live group: moving to `head` would drop that group's candidate during
    // its checks (G). A reconcile restores the newest such group, which contains `head` too.
    // (The groups X holds are the ones a reconcile would restore: `restore::contained_live`.)
    if !live.iter().any(|g| &g.head == x) {
        let held = crate::restore::contained_live(facts, m, x)?.unwrap_or_default();
        for g in held.into_iter().filter(|g| &g.head != head) {
            if facts.ancestor(head, &g.head)? {
                return Err(Stop::Refused(
                    RefuseReason::NewerGroupHolds,
                    format!(
                        "the channel names {}, which contains newer in-flight group {} (itself \
                         containing {}); the channel only moves forward along the queue (a \
                         reconcile restores that group's candidate)",
                        x.short(),
                        explain::group(g),
                        head.short()
                    ),
                ));
            }
        }
    }
    if facts.ancestor(x, m)? && !facts.ancestor(x, head)? {
        return Err(Stop::Refused(
            RefuseReason::WouldMoveBackwards,
            format!(
                "the channel names {}, which landed on mainline {}, but {} does not contain it",
                x.short(),
                m.short(),
                head.short()
            ),
        ));
    }
    Ok(())
}
