//! The decision function: one pure function from facts and a request to a [`Decision`].
//! Every entry point (CI step, failure path, push to mainline, webhook, schedule, daemon,
//! operator) calls it, so they all converge.
//!
//! Invariants (DESIGN.md "The invariant"):
//! - an active pin wins: the channel holds on it or is moved back to it; deploys and
//!   promotions are refused while it lasts;
//! - a reconcile's only targets are mainline's artifact, the active pin's digest, or — when
//!   the channel is DIVERGED on an ended group's candidate that contained older groups still
//!   in flight — the newest of those live groups (`restore.rs`), so it never moves the channel
//!   behind a landed merge, never overwrites a live candidate, and never drops a live group's
//!   candidate that the channel contained (G, the gate is real);
//! - an unreadable fact yields UNKNOWN/Hold or a `facts_unknown` refusal, never a move;
//! - a hand-moved channel is held (UNKNOWN with a hint) unless the operator asks for
//!   `force_restore`;
//! - a deploy path absent at mainline's tip decides nothing (`deploy_path_missing`).
//!
//! Must never: perform I/O, read a clock, or return a move computed from a guessed fact.

use crate::explain::{self, one_line_owned};
use crate::facts::{ChannelHead, Facts, Pin};
use crate::ids::CommitId;
use crate::known::{Known, MissingFact};
use crate::plan::{Action, Decision, Move, Plan, Refusal, RefuseReason, Verdict};
use crate::request::Request;
use crate::status::{classify, State};
use crate::target::{commit_target, pin_evidence};

/// Decide what to do about the channel. Pure: the same facts and request always give the same
/// decision.
///
/// `Request::Status` returns the plan a `Reconcile` would carry out (advisory: the executor
/// does not act on it). `Request::Unpin` returns [`Plan::ClearPin`] when a pin is recorded;
/// the executor removes it and then runs a `Reconcile` on fresh facts.
pub fn decide(facts: &Facts, request: &Request) -> Decision {
    if let Some(refusal) = deploy_path_missing(facts) {
        return refusal;
    }
    match request {
        Request::Status => reconcile(facts, false),
        Request::Reconcile { force_restore } => reconcile(facts, *force_restore),
        Request::DeployCandidate { group_id, head } => {
            crate::candidate::deploy(facts, group_id, head)
        }
        Request::Promote { commit } => promote(facts, commit),
        Request::Pin { pin } => crate::pinning::pin(facts, pin),
        Request::Unpin => crate::pinning::unpin(facts),
    }
}

/// A deploy path that does not exist at mainline's tip is a mistyped `--path` (or a deploy
/// folder removed from mainline): every verdict on it would compare two absent trees, so no
/// request is decided — UNKNOWN, refused `deploy_path_missing`, nothing written.
fn deploy_path_missing(facts: &Facts) -> Option<Decision> {
    let m = facts.mainline.known()?;
    match facts.commits.get(m)?.deploy_tree {
        Known::Known(None) => Some(refuse(
            Verdict::Unknown,
            RefuseReason::DeployPathMissing,
            format!(
                "the deploy path does not exist at mainline {}; check --path",
                m.short()
            ),
        )),
        _ => None,
    }
}

/// Build a decision, flattening every human string to one line.
pub(crate) fn finish(verdict: Verdict, plan: Plan, explanation: String) -> Decision {
    let plan = match plan {
        Plan::Move(mv) => Plan::Move(Move {
            reason: one_line_owned(mv.reason),
            ..mv
        }),
        Plan::Refuse(r) => Plan::Refuse(Refusal {
            message: one_line_owned(r.message),
            ..r
        }),
        other => other,
    };
    Decision {
        verdict,
        plan,
        explanation: one_line_owned(explanation),
    }
}

/// A refusal whose message is also the decision's explanation.
pub(crate) fn refuse(verdict: Verdict, reason: RefuseReason, message: String) -> Decision {
    finish(
        verdict,
        Plan::Refuse(Refusal {
            reason,
            message: message.clone(),
        }),
        message,
    )
}

/// A move, whose reason is also the decision's explanation.
pub(crate) fn move_to(
    verdict: Verdict,
    to_commit: Option<CommitId>,
    to_digest: Option<crate::ids::Digest>,
    action: Action,
    reason: String,
) -> Decision {
    finish(
        verdict,
        Plan::Move(Move {
            to_commit,
            to_digest,
            action,
            reason: reason.clone(),
        }),
        reason,
    )
}

/// The channel's verdict and a one-line description of it, on the facts as given.
pub(crate) fn current(facts: &Facts) -> (Verdict, String) {
    match facts.active_pin() {
        Some(pin) => pinned_view(facts, pin),
        None => {
            let state = classify(facts);
            let line = format!(
                "{}{}",
                explain::state(&facts.channel_name, &state),
                explain::made_elsewhere_note(facts)
            );
            (state.verdict(), line)
        }
    }
}

/// What the channel names, for a pinned channel's description.
fn names(head: &ChannelHead) -> String {
    match head {
        ChannelHead::Absent => "does not exist".to_owned(),
        ChannelHead::Foreign { digest, .. } => format!("names {} (no revision)", digest.short()),
        ChannelHead::Names { digest, commit } => match commit {
            Known::Known(c) => format!("names {} ({})", digest.short(), c.short()),
            Known::Unknown { .. } => format!("names {}", digest.short()),
        },
    }
}

/// PINNED when the channel can be read (whether or not it names the pin yet), else UNKNOWN.
fn pinned_view(facts: &Facts, pin: &Pin) -> (Verdict, String) {
    let channel = &facts.channel_name;
    let under = format!("channel {channel} is under a {}", explain::pin(pin));
    match facts.channel_head() {
        Err(missing) => (Verdict::Unknown, format!("{under}, but {missing}")),
        Ok(head) => (Verdict::Pinned, format!("{under}, and {}", names(head))),
    }
}

fn names_pin(facts: &Facts, pin: &Pin) -> Result<bool, MissingFact> {
    Ok(match facts.channel_head()? {
        ChannelHead::Absent => false,
        ChannelHead::Names { digest, .. } | ChannelHead::Foreign { digest, .. } => {
            digest == &pin.digest
        }
    })
}

/// Reconcile: hold, or move to mainline's artifact, the active pin, or (DIVERGED) the newest
/// live group the channel's commit contained. Nothing else.
fn reconcile(facts: &Facts, force_restore: bool) -> Decision {
    if let Some(pin) = facts.active_pin() {
        return reconcile_pinned(facts, pin);
    }
    let state = classify(facts);
    let verdict = state.verdict();
    let line = format!(
        "{}{}{}",
        explain::state(&facts.channel_name, &state),
        explain::made_elsewhere_note(facts),
        explain::expired_pin_note(facts)
    );
    match &state {
        State::Foreign { m, .. } if force_restore => to_mainline(
            facts,
            verdict,
            m,
            Action::Restore,
            &line,
            "restore mainline's artifact, as asked (--force-restore)",
        ),
        State::Absent { m } => to_mainline(
            facts,
            verdict,
            m,
            Action::Promote,
            &line,
            "promote mainline's artifact (first deploy)",
        ),
        State::Behind { m, .. } => to_mainline(
            facts,
            verdict,
            m,
            Action::Promote,
            &line,
            "promote mainline's artifact",
        ),
        State::Diverged { m, x, .. } => {
            crate::restore::diverged(facts, verdict, m, x, &line, |what| {
                to_mainline(facts, verdict, m, Action::Restore, &line, what)
            })
        }
        State::Unreadable(_)
        | State::Foreign { .. }
        | State::Converged { .. }
        | State::Candidate { .. } => finish(
            verdict,
            Plan::Hold,
            format!("{line}: {}", explain::hold_conclusion(&state)),
        ),
    }
}

/// Move to `m`'s artifact if the target checks pass; otherwise refuse with the verdict kept.
fn to_mainline(
    facts: &Facts,
    verdict: Verdict,
    m: &CommitId,
    action: Action,
    line: &str,
    what: &str,
) -> Decision {
    match commit_target(facts, m) {
        Ok(to_digest) => move_to(
            verdict,
            Some(m.clone()),
            to_digest,
            action,
            format!("{line}: {what}"),
        ),
        Err(e) => refuse(verdict, e.reason(), format!("{line}; cannot {what}: {e}")),
    }
}

/// An active pin: hold if the channel names it, else move back to it (pins survive
/// reconciles).
fn reconcile_pinned(facts: &Facts, pin: &Pin) -> Decision {
    let (verdict, line) = pinned_view(facts, pin);
    match names_pin(facts, pin) {
        Err(_) => finish(
            verdict,
            Plan::Hold,
            format!("{line}: holding until the channel can be read"),
        ),
        Ok(true) => finish(
            verdict,
            Plan::Hold,
            format!("{line}: holding (run `mainline unpin` to resume following mainline)"),
        ),
        Ok(false) => match pin_evidence(facts, pin) {
            Ok(()) => move_to(
                verdict,
                pin.commit.clone(),
                Some(pin.digest.clone()),
                Action::ApplyPin,
                format!("{line}: re-applying the pin"),
            ),
            Err(e) => refuse(
                verdict,
                e.reason(),
                format!("{line}; cannot re-apply the pin: {e}"),
            ),
        },
    }
}

/// Promote after `commit` landed: refused unless it is on mainline, then exactly a
/// reconcile (which targets mainline's tip, containing `commit`).
fn promote(facts: &Facts, commit: &CommitId) -> Decision {
    let (verdict, line) = current(facts);
    let channel = &facts.channel_name;
    if facts.active_pin().is_some() {
        return refuse(
            verdict,
            RefuseReason::PinActive,
            format!(
                "{line}: not promoting {}; run `mainline unpin` first",
                commit.short()
            ),
        );
    }
    let on_mainline = facts
        .mainline_tip()
        .and_then(|m| Ok((m, facts.ancestor(commit, m)?)));
    match on_mainline {
        Err(missing) => refuse(
            verdict,
            RefuseReason::FactsUnknown,
            format!(
                "not promoting {} to channel {channel}: {missing}",
                commit.short()
            ),
        ),
        Ok((m, false)) => refuse(
            verdict,
            RefuseReason::NotOnMainline,
            format!(
                "not promoting {} to channel {channel}: it is not on mainline {} (not landed yet, \
                 or removed by a force-push)",
                commit.short(),
                m.short()
            ),
        ),
        Ok((_, true)) => reconcile(facts, false),
    }
}
