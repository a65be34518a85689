//! What Flux applied, as metrics: `mainline_consumer_applied{channel,consumer,state}` (1 for
//! each consumer's current state, 0 for the others: a labelled 0/1 gauge like the verdict) and
//! `mainline_channel_apply_duration_seconds{channel}`, a histogram of the time from the channel
//! naming a new digest to every consumer reporting it APPLIED.
//!
//! The clock of the histogram starts at the first read of the consumers against the new digest
//! — right after the guard's own move, or at the next reconcile after someone else (CI) moved
//! the channel — and stops at the first read that finds them all APPLIED; both are reads after
//! a reconcile, so the resolution is the reconcile interval. A digest first seen already
//! APPLIED (moved while the guard was not looking, unless this run moved it) is not counted: its
//! move time is unknown.
//!
//! Must never: label with digests or commits (unbounded); count one digest twice.

use super::state::AppliedView;
use crate::guard::metrics::escape;
use mainline_core::{Digest, Timestamp};
use std::fmt::Write;

/// Bucket bounds (seconds): Flux's intervals are tens of seconds to minutes.
pub const APPLY_BUCKETS: [f64; 10] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
/// Every state a consumer can be in (`AppliedState::label`).
pub const STATES: [&str; 4] = ["APPLIED", "PENDING", "STUCK", "UNREACHABLE"];

/// The apply-time histogram of one channel and the digest it is waiting for.
#[derive(Debug, Clone, Default)]
pub struct ApplyTiming {
    /// The digest not yet APPLIED everywhere, and when it was first read.
    waiting: Option<(Digest, Timestamp)>,
    /// The last digest counted (never counted twice).
    counted: Option<Digest>,
    /// Per-bucket counts (not cumulative).
    pub buckets: [u64; APPLY_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl ApplyTiming {
    /// Feed one read of the consumers; `moved` says this run moved the channel (so a digest
    /// already APPLIED at the first read counts, with the time since the move: about zero).
    pub fn observe(&mut self, view: &AppliedView, moved: bool) {
        if self.counted.as_ref() == Some(&view.digest) {
            return;
        }
        let waiting_for_this = matches!(&self.waiting, Some((d, _)) if *d == view.digest);
        if !waiting_for_this {
            if view.state == "APPLIED" && !moved {
                // Applied before we first looked: the move time is unknown.
                self.counted = Some(view.digest.clone());
                self.waiting = None;
                return;
            }
            self.waiting = Some((view.digest.clone(), view.at));
        }
        if view.state != "APPLIED" {
            return;
        }
        if let Some((digest, since)) = self.waiting.take() {
            let seconds = (view.at.millis() - since.millis()).max(0) as f64 / 1000.0;
            if let Some(i) = APPLY_BUCKETS.iter().position(|b| seconds <= *b) {
                self.buckets[i] += 1;
            }
            self.count += 1;
            self.sum += seconds;
            self.counted = Some(digest);
        }
    }
}

/// Render both families for `rows` (channel name unescaped, its last view, its timing).
pub fn render(out: &mut String, rows: &[(String, Option<AppliedView>, ApplyTiming)]) {
    let _ = writeln!(out, "# HELP mainline_consumer_applied What each Flux consumer (OCIRepository namespace/name) applied of the channel's digest: 1 for its current state, 0 for the others.");
    let _ = writeln!(out, "# TYPE mainline_consumer_applied gauge");
    for (channel, view, _) in rows {
        for c in view.iter().flat_map(|v| &v.consumers) {
            for state in STATES {
                let _ = writeln!(
                    out,
                    "mainline_consumer_applied{{channel=\"{}\",consumer=\"{}\",state=\"{state}\"}} {}",
                    escape(channel),
                    escape(&c.consumer),
                    u8::from(c.state == state)
                );
            }
        }
    }
    let _ = writeln!(out, "# HELP mainline_channel_apply_duration_seconds Time from the channel naming a new digest to every Flux consumer reporting it APPLIED (resolution: the reconcile interval).");
    let _ = writeln!(
        out,
        "# TYPE mainline_channel_apply_duration_seconds histogram"
    );
    for (channel, _, t) in rows {
        let channel = escape(channel);
        let mut total = 0;
        for (b, n) in APPLY_BUCKETS.iter().zip(t.buckets.iter()) {
            total += n;
            let _ = writeln!(
                out,
                "mainline_channel_apply_duration_seconds_bucket{{channel=\"{channel}\",le=\"{b}\"}} {total}"
            );
        }
        let _ = writeln!(
            out,
            "mainline_channel_apply_duration_seconds_bucket{{channel=\"{channel}\",le=\"+Inf\"}} {}",
            t.count
        );
        let _ = writeln!(
            out,
            "mainline_channel_apply_duration_seconds_sum{{channel=\"{channel}\"}} {}",
            t.sum
        );
        let _ = writeln!(
            out,
            "mainline_channel_apply_duration_seconds_count{{channel=\"{channel}\"}} {}",
            t.count
        );
    }
}
