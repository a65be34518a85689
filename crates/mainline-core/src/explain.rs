//! One-line explanations: what the channel names, against which mainline commit, and what
//! happens next. Commits appear as 12-hex short ids, digests as `sha256:` + 12 hex.
//!
//! Invariant: every string built here is a single line; free text that came from outside
//! (pin reasons, actors, group ids, channel names) is flattened by [`one_line`] before it is
//! returned in a decision.
//! Must never: decide anything; these functions only render values the decision chose.

use crate::facts::{Facts, Group, Pin, PinKind};
use crate::ids::CommitId;
use crate::status::{Stale, State};

/// Replace line breaks and other control characters with spaces, so a pin reason or group id
/// cannot split a log line or forge a second one.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// [`one_line`] of an owned string, which is returned as it is when it has no control
/// character (the usual case: every decision passes its texts through here).
pub(crate) fn one_line_owned(s: String) -> String {
    if s.chars().any(char::is_control) {
        one_line(&s)
    } else {
        s
    }
}

/// `pr-7 (PRs #7, #8)`, or just the id when no PRs are listed.
pub(crate) fn group(g: &Group) -> String {
    let id = group_id(&g.id);
    if g.prs.is_empty() {
        return id;
    }
    let prs: Vec<String> = g.prs.iter().map(|n| format!("#{n}")).collect();
    let label = if g.prs.len() == 1 { "PR" } else { "PRs" };
    format!("{id} ({label} {})", prs.join(", "))
}

/// A group id for humans: GitHub's queue ref `gh-readonly-queue/<branch>/pr-7-<sha>` reads as
/// `pr-7`; any other id is shown as it is.
pub fn group_id(id: &str) -> String {
    let Some(rest) = id.strip_prefix("gh-readonly-queue/") else {
        return one_line(id);
    };
    let last = rest.rsplit('/').next().unwrap_or(rest);
    match last.rsplit_once('-') {
        Some((pr, sha))
            if pr.starts_with("pr-")
                && sha.len() >= 7
                && sha.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            pr.to_owned()
        }
        _ => one_line(last),
    }
}

/// `sha256:0123456789ab (1a2b3c4d5e6f) by alice until <time>: "reason"`.
pub(crate) fn pin(p: &Pin) -> String {
    let commit = p
        .commit
        .as_ref()
        .map(|c| format!(" ({})", c.short()))
        .unwrap_or_default();
    let until = p
        .expires_at
        .map(|t| format!(" until {t}"))
        .unwrap_or_default();
    let kind = match p.kind {
        PinKind::Pin => "pin",
        PinKind::Rollback => "rollback",
    };
    format!(
        "{kind} to {}{commit} by {}{until}: \"{}\"",
        p.digest.short(),
        p.actor,
        p.reason
    )
}

/// A trailing note about an expired pin that the decision ignored (empty when none).
pub(crate) fn expired_pin_note(facts: &Facts) -> String {
    match facts.expired_pin() {
        Some(p) => format!(
            " (the {} by {} expired at {} and is ignored)",
            match p.kind {
                PinKind::Pin => "pin",
                PinKind::Rollback => "rollback",
            },
            p.actor,
            p.expires_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "an unknown time".to_owned())
        ),
        None => String::new(),
    }
}

fn mainline(m: &CommitId) -> String {
    format!("mainline {}", m.short())
}

/// A note for a channel another tool pushed (`Facts::channel_made_elsewhere`), else empty.
pub(crate) fn made_elsewhere_note(facts: &Facts) -> &'static str {
    if facts.channel_made_elsewhere {
        " (an artifact another tool pushed, e.g. `flux push artifact`: judged by the commit its \
         revision records)"
    } else {
        ""
    }
}

/// What the channel names, relative to mainline, without the conclusion.
pub(crate) fn state(channel: &str, state: &State<'_>) -> String {
    match state {
        State::Unreadable(missing) => format!("channel {channel}: {missing}"),
        State::Foreign {
            digest,
            claimed,
            artifact,
            ..
        } => {
            let Some(claimed) = claimed else {
                return format!(
                    "channel {channel} names {}, which records no source revision, so it was \
                     moved by hand or not made by mainline",
                    digest.short()
                );
            };
            let own = match artifact {
                Some(a) => format!("whose artifact is {}", a.short()),
                None => "which has no artifact".to_owned(),
            };
            format!(
                "channel {channel} names {}, not the artifact of the commit it claims ({}, {own}), \
                 so it was moved by hand or not made by mainline",
                digest.short(),
                claimed.short()
            )
        }
        State::Absent { m } => format!(
            "channel {channel} does not exist yet; {} has never been deployed",
            mainline(m)
        ),
        State::Converged { x, m } if x == m => {
            format!("channel {channel} names {}", mainline(m))
        }
        State::Converged { x, m } => format!(
            "channel {channel} names {}, on {} with the same deploy tree",
            x.short(),
            mainline(m)
        ),
        State::Candidate { x, m, group: g } => format!(
            "channel {channel} names {}, head of in-flight group {} on top of {}",
            x.short(),
            group(g),
            mainline(m)
        ),
        State::Behind { x, m } => format!(
            "channel {channel} names {}, behind {} whose deploy tree changed",
            x.short(),
            mainline(m)
        ),
        State::Diverged { x, m, why } => match why {
            Stale::NoGroup => format!(
                "channel {channel} names {}, which is not on {} and heads no in-flight group",
                x.short(),
                mainline(m)
            ),
            Stale::LeaseExpired(g) => format!(
                "channel {channel} names {} (head of {}, lease expired{}), which is not on {}",
                x.short(),
                group(g),
                g.expires_at.map(|t| format!(" at {t}")).unwrap_or_default(),
                mainline(m)
            ),
            Stale::NotFromMainline(g) => format!(
                "channel {channel} names {} (head of in-flight group {}), which does not descend \
                 from {}",
                x.short(),
                group(g),
                mainline(m)
            ),
        },
    }
}

/// What a reconcile does about `state` when it holds.
pub(crate) fn hold_conclusion(state: &State<'_>) -> &'static str {
    match state {
        State::Unreadable(_) => {
            "holding: an unreadable fact is never guessed and never counted as converged"
        }
        State::Foreign { .. } => {
            "holding; run `mainline reconcile --force-restore` to restore mainline's artifact, \
             or `mainline pin` to keep it"
        }
        State::Candidate { .. } => "holding until the group lands or ends",
        _ => "nothing to do",
    }
}
