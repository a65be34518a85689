//! Operator pins, rollbacks and unpins: the one sanctioned way to suspend S2/S3/L1 for a
//! channel, visibly and with a recorded reason.
//!
//! Invariants: a pin names a digest that exists as far as the facts can tell (the artifact of
//! its commit when it names one; otherwise the artifact of some gathered commit or the
//! channel's current digest), meets the evidence policy (S1 is never suspended), and has not
//! already expired; a rollback names a commit on mainline.
//! Must never: move the channel on an unknown fact. The pin record itself is stored by the
//! executor when the plan is `Move(ApplyPin)`; unpin yields `ClearPin`, after which the
//! executor runs a fresh reconcile.

use crate::decide::{current, finish, move_to, refuse};
use crate::explain;
use crate::facts::{ChannelHead, Facts, Pin, PinKind};
use crate::known::MissingFact;
use crate::plan::{Action, Decision, Plan, RefuseReason};
use crate::target::{pin_artifact_commit, pin_evidence};

/// Decide an operator pin or rollback. Accepted pins always yield `Move(ApplyPin)` (writing a
/// digest the channel already names is a no-op re-tag), so the executor records the pin
/// exactly when the plan is a move.
pub(crate) fn pin(facts: &Facts, pin: &Pin) -> Decision {
    let (verdict, _) = current(facts);
    let what = format!("{} on channel {}", explain::pin(pin), facts.channel_name);
    match check(facts, pin) {
        Ok(()) => move_to(
            verdict,
            pin.commit.clone(),
            Some(pin.digest.clone()),
            Action::ApplyPin,
            format!("apply the {what}"),
        ),
        Err((reason, why)) => refuse(verdict, reason, format!("not applying the {what}: {why}")),
    }
}

fn unknown(missing: MissingFact) -> (RefuseReason, String) {
    (RefuseReason::FactsUnknown, missing.to_string())
}

fn check(facts: &Facts, pin: &Pin) -> Result<(), (RefuseReason, String)> {
    if !pin.is_active(facts.now) {
        return Err((
            RefuseReason::PinExpired,
            format!("it expires before now ({}); pick a later expiry", facts.now),
        ));
    }
    if pin.kind == PinKind::Rollback {
        let commit = pin.commit.as_ref().ok_or_else(|| {
            (
                RefuseReason::NotOnMainline,
                "a rollback must name the mainline commit it returns to".to_owned(),
            )
        })?;
        let m = facts.mainline_tip().map_err(unknown)?;
        if !facts.ancestor(commit, m).map_err(unknown)? {
            return Err((
                RefuseReason::NotOnMainline,
                format!(
                    "{} is not on mainline {}: roll back only to a landed commit, or use a pin",
                    commit.short(),
                    m.short()
                ),
            ));
        }
    }
    artifact_exists(facts, pin)?;
    pin_evidence(facts, pin).map_err(|e| (e.reason(), e.to_string()))
}

/// The pinned digest must be a digest the facts know to exist.
fn artifact_exists(facts: &Facts, pin: &Pin) -> Result<(), (RefuseReason, String)> {
    if let Some(c) = &pin.commit {
        return match facts.artifact(c).map_err(unknown)? {
            Some(d) if d == &pin.digest => Ok(()),
            Some(d) => Err((
                RefuseReason::ArtifactMissing,
                format!(
                    "the artifact of {} is {}, not {}",
                    c.short(),
                    d.short(),
                    pin.digest.short()
                ),
            )),
            None => Err((
                RefuseReason::ArtifactMissing,
                format!("{} was never pushed", c.artifact_tag()),
            )),
        };
    }
    if pin_artifact_commit(facts, pin).map_err(unknown)?.is_some() {
        return Ok(());
    }
    match facts.channel_head().map_err(unknown)? {
        ChannelHead::Names { digest, .. } | ChannelHead::Foreign { digest, .. }
            if digest == &pin.digest =>
        {
            Ok(())
        }
        _ => Err((
            RefuseReason::ArtifactMissing,
            format!(
                "{} is neither the artifact of a known commit nor what the channel names; \
                 name the commit it was built from",
                pin.digest.short()
            ),
        )),
    }
}

/// Unpin: `ClearPin` when a pin is recorded (active or expired), `Hold` when there is none.
pub(crate) fn unpin(facts: &Facts) -> Decision {
    let (verdict, _) = current(facts);
    let channel = &facts.channel_name;
    match &facts.pin {
        None => finish(
            verdict,
            Plan::Hold,
            format!("channel {channel} has no pin: nothing to unpin"),
        ),
        Some(p) => finish(
            verdict,
            Plan::ClearPin,
            format!(
                "unpin channel {channel} ({}); a reconcile follows",
                explain::pin(p)
            ),
        ),
    }
}
