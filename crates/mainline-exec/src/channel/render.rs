//! The text rendering of a channel report. A writer's run reads top to bottom as
//! before → action → after, each with the channel's state at that moment, so a verdict is
//! never printed next to facts from another moment. `status` has no action: it shows the
//! facts, the verdict on them, and what reconcile would do.
//!
//! Must never: print a reason sentence twice (a move's reason is shown only when it says
//! something the verdict's explanation did not), or show a digest without saying when.

use super::report::ChannelReport;
use mainline_core::{CommitId, Digest, Plan};
use std::io::{Result, Write};

fn short(c: &Option<CommitId>) -> String {
    c.as_ref().map_or("-".to_owned(), |c| c.short().to_owned())
}

/// `abc123def456 (commit 0123abcd4567)`, or why there is no digest.
fn named(digest: &Option<Digest>, commit: &Option<CommitId>, note: &Option<String>) -> String {
    let prod = match (digest, note) {
        (Some(d), _) => d.short().to_owned(),
        (None, Some(_)) => "(unreadable)".to_owned(),
        (None, None) => "(tag absent)".to_owned(),
    };
    let note = note.as_ref().map(|n| format!(": {n}")).unwrap_or_default();
    format!("{prod} (commit {}){note}", short(commit))
}

impl ChannelReport {
    /// `  applied  STATE ns/name: detail`, one line per Flux consumer.
    fn render_applied(&self, w: &mut dyn Write) -> Result<()> {
        for a in &self.applied {
            // Flux's current API (v1) goes unsaid; an older one is named, since it tells which
            // Flux the cluster runs (v1beta2: before 2.6).
            let older: Vec<&str> = a
                .api_versions
                .iter()
                .filter(|v| !v.ends_with("/v1"))
                .map(String::as_str)
                .collect();
            let via = if older.is_empty() {
                String::new()
            } else {
                format!(" (read as {})", older.join(", "))
            };
            if a.detail.is_empty() {
                writeln!(w, "  applied  {} {}{via}", a.state, a.consumer)?;
            } else {
                writeln!(
                    w,
                    "  applied  {} {}{via}: {}",
                    a.state, a.consumer, a.detail
                )?;
            }
        }
        Ok(())
    }

    /// The facts the verdict was decided on: prod, mainline, the queue, a pin, the lock.
    fn render_facts(&self, w: &mut dyn Write, status_only: bool) -> Result<()> {
        writeln!(
            w,
            "  prod     {}",
            named(
                &self.channel_digest,
                &self.channel_commit,
                &self.channel_note
            )
        )?;
        if status_only {
            // Right under `prod`: what the Flux consumers have applied of it.
            self.render_applied(w)?;
        }
        writeln!(w, "  mainline {}", short(&self.mainline_commit))?;
        for g in &self.groups {
            writeln!(
                w,
                "  queue    {} at {}",
                mainline_core::display_group_id(&g.id),
                g.head.short()
            )?;
        }
        if let Some(p) = &self.pin {
            let until = p
                .expires_at
                .map_or("until unpinned".to_owned(), |t| format!("until {t}"));
            writeln!(
                w,
                "  PINNED   {} by {} ({}) {until}",
                p.digest.short(),
                p.actor,
                p.reason
            )?;
        }
        writeln!(w, "  lock     {}", self.lock)
    }

    pub fn render(&self, w: &mut dyn Write, status_only: bool) -> Result<()> {
        writeln!(w, "channel   {}", self.channel)?;
        if status_only {
            writeln!(w, "verdict   {}  {}", self.verdict, self.explanation)?;
            self.render_facts(w, true)?;
            return match &self.plan {
                Plan::Move(m) => writeln!(
                    w,
                    "reconcile would {:?} to {}{}",
                    m.action,
                    m.to_commit.as_ref().map_or("-", |c| c.short()),
                    self.unless_said(&m.reason)
                ),
                Plan::Hold => writeln!(w, "reconcile would hold"),
                Plan::Refuse(r) => writeln!(w, "refused ({}): {}", r.reason, r.message),
                Plan::ClearPin => writeln!(w, "unpin would clear the pin"),
            };
        }
        writeln!(w, "before    {}  {}", self.verdict, self.explanation)?;
        self.render_facts(w, false)?;
        for m in &self.moves {
            writeln!(
                w,
                "action    {:?}: {} -> {} (commit {}){}{}",
                m.action,
                m.from_digest.as_ref().map_or("(absent)", |d| d.short()),
                m.to_digest.short(),
                short(&m.to_commit),
                if m.packed { ", packed from git" } else { "" },
                self.unless_said(&m.reason)
            )?;
        }
        if let Some(old) = &self.replaced_pin {
            writeln!(
                w,
                "replaced  the {} of {} by {} ({})",
                crate::channel::exec::pin_word(old),
                old.digest.short(),
                old.actor,
                old.reason
            )?;
        }
        if let Some(r) = &self.refusal {
            writeln!(w, "action    REFUSED {}: {}", r.reason, r.message)?;
        } else if self.moves.is_empty() {
            writeln!(w, "action    held: nothing to do")?;
        }
        for t in &self.triggers {
            writeln!(w, "  nudged   {t}")?;
        }
        let a = &self.after;
        if self.moves.is_empty() && a.verdict == self.verdict {
            writeln!(w, "after     {}  unchanged", a.verdict)?;
        } else {
            writeln!(
                w,
                "after     {}  {}",
                a.verdict,
                if self.final_explanation == self.explanation {
                    "(as above)"
                } else {
                    &self.final_explanation
                }
            )?;
            writeln!(
                w,
                "  prod     {}",
                named(&a.channel_digest, &a.channel_commit, &None)
            )?;
        }
        self.render_applied(w)?;
        if let Some(wr) = &self.wait {
            writeln!(
                w,
                "  waited   {} ms, {} polls: {}",
                wr.elapsed_ms,
                wr.polls,
                if wr.applied {
                    "every consumer applied the digest"
                } else {
                    "NOT applied in time"
                }
            )?;
        }
        for warning in &self.journal_warnings {
            writeln!(w, "warning   journal: {warning}")?;
        }
        Ok(())
    }

    /// `: reason`, unless the verdict's explanation already said it.
    fn unless_said(&self, reason: &str) -> String {
        if reason.is_empty() || self.explanation.contains(reason.trim_end_matches('.')) {
            String::new()
        } else {
            format!(": {reason}")
        }
    }
}
