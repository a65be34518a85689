//! `/metrics` in the Prometheus text exposition format (version 0.0.4): per channel, the verdict
//! as a labelled 0/1 gauge, how long since it last matched mainline, how long prod has run
//! unmerged code, move/restore/refusal/reconcile/error counters, the lock, and the reconcile
//! duration histogram; guard-wide, webhook deliveries by outcome and whether this replica leads.
//!
//! Invariants: every series of a channel is present from its first scrape (zeros included), so
//! alerts never see a series appear out of nowhere; names follow Prometheus conventions
//! (`_total` counters, base units) so `promtool check metrics` accepts the output; label values
//! are escaped.
//! Must never: put anything but channel names, verdicts, actions, outcomes and configured
//! consumer names in labels (no commit ids or digests: unbounded cardinality).

use super::slot::Slot;
use super::state::action_name;
use mainline_core::{Action, Timestamp, Verdict};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

const VERDICTS: [Verdict; 6] = [
    Verdict::Converged,
    Verdict::Candidate,
    Verdict::Behind,
    Verdict::Diverged,
    Verdict::Pinned,
    Verdict::Unknown,
];
const ACTIONS: [Action; 4] = [
    Action::Promote,
    Action::Restore,
    Action::DeployCandidate,
    Action::ApplyPin,
];

/// Webhook deliveries by outcome.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    pub accepted: AtomicU64,
    pub ignored: AtomicU64,
    pub replayed: AtomicU64,
    pub unauthorized: AtomicU64,
    pub malformed: AtomicU64,
    pub too_large: AtomicU64,
    /// Bodies that ended before their declared length (the client went away) or did not
    /// arrive within `body_timeout`: not `too_large`.
    pub incomplete: AtomicU64,
    /// Verified deliveries a standby replica acknowledged without acting.
    pub standby: AtomicU64,
}

impl WebhookCounters {
    fn pairs(&self) -> [(&'static str, u64); 8] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("accepted", g(&self.accepted)),
            ("ignored", g(&self.ignored)),
            ("replayed", g(&self.replayed)),
            ("unauthorized", g(&self.unauthorized)),
            ("malformed", g(&self.malformed)),
            ("too_large", g(&self.too_large)),
            ("incomplete", g(&self.incomplete)),
            ("standby", g(&self.standby)),
        ]
    }
}

/// Escape a label value (`\`, `"`, newline).
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Format a float the way Prometheus reads it.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// One channel's figures, copied out of its state so a scrape holds each mutex only briefly.
struct Row {
    name: String,
    verdict: Verdict,
    since_mainline: f64,
    unmerged: f64,
    moves: Vec<u64>,
    restores: u64,
    refusals: u64,
    reconciles: u64,
    errors: u64,
    lock_held: bool,
    last: Option<Timestamp>,
    hist: super::state::Histogram,
}

/// A per-channel counter: name, help, and how to read it from a row.
type Counter = (&'static str, &'static str, fn(&Row) -> u64);

/// Render every metric at `now`; `leading`: whether this replica may reconcile.
pub fn render(
    slots: &[std::sync::Arc<Slot>],
    webhooks: &WebhookCounters,
    leading: bool,
    now: Timestamp,
) -> String {
    let mut out = String::with_capacity(256 + slots.len() * 2048);
    let rows: Vec<Row> = slots
        .iter()
        .map(|slot| {
            let s = slot.state();
            Row {
                name: escape(slot.name()),
                verdict: s.verdict(),
                since_mainline: s.seconds_since_mainline(now),
                unmerged: s.unmerged_seconds(now),
                moves: ACTIONS
                    .iter()
                    .map(|a| s.moves.get(action_name(*a)).copied().unwrap_or(0))
                    .collect(),
                restores: s.restores(),
                refusals: s.refusals,
                reconciles: s.reconciles,
                errors: s.errors,
                lock_held: s.lock.held,
                last: s.last_finished,
                hist: s.durations.clone(),
            }
        })
        .collect();

    header(&mut out, "mainline_channel_verdict", "gauge",
        "The channel's verdict: 1 for the current one, 0 for the others (UNKNOWN when the last reconcile failed).");
    for r in &rows {
        for v in VERDICTS {
            let on = u8::from(r.verdict == v);
            let _ = writeln!(
                out,
                "mainline_channel_verdict{{channel=\"{}\",verdict=\"{v}\"}} {on}",
                r.name
            );
        }
    }
    header(&mut out, "mainline_channel_seconds_since_mainline", "gauge",
        "Seconds since a reconcile last found the channel CONVERGED (0 while it is; counted from the guard's start if it never was).");
    for r in &rows {
        let _ = writeln!(
            out,
            "mainline_channel_seconds_since_mainline{{channel=\"{}\"}} {}",
            r.name,
            num(r.since_mainline)
        );
    }
    header(&mut out, "mainline_channel_unmerged_seconds", "gauge",
        "Seconds the channel has named code that is not on mainline (a live candidate or ejected code); 0 when it names mainline.");
    for r in &rows {
        let _ = writeln!(
            out,
            "mainline_channel_unmerged_seconds{{channel=\"{}\"}} {}",
            r.name,
            num(r.unmerged)
        );
    }
    header(
        &mut out,
        "mainline_channel_moves_total",
        "counter",
        "Channel writes made by the guard, by action.",
    );
    for r in &rows {
        for (a, n) in ACTIONS.iter().zip(&r.moves) {
            let _ = writeln!(
                out,
                "mainline_channel_moves_total{{channel=\"{}\",action=\"{}\"}} {n}",
                r.name,
                action_name(*a)
            );
        }
    }
    let counters: [Counter; 4] = [
        (
            "mainline_channel_restores_total",
            "Restores of mainline's artifact over code that was not on mainline.",
            |r| r.restores,
        ),
        (
            "mainline_channel_refusals_total",
            "Reconciles the invariant refused.",
            |r| r.refusals,
        ),
        (
            "mainline_channel_reconciles_total",
            "Reconciles run, whatever their outcome.",
            |r| r.reconciles,
        ),
        (
            "mainline_channel_reconcile_errors_total",
            "Reconciles that failed (registry, git or lock unavailable, …) or ended UNKNOWN because a fact could not be read.",
            |r| r.errors,
        ),
    ];
    for (name, help, get) in counters {
        header(&mut out, name, "counter", help);
        for r in &rows {
            let _ = writeln!(out, "{name}{{channel=\"{}\"}} {}", r.name, get(r));
        }
    }
    header(
        &mut out,
        "mainline_channel_lock_held",
        "gauge",
        "1 when the channel's lock ref existed at the last reconcile (some writer held it).",
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "mainline_channel_lock_held{{channel=\"{}\"}} {}",
            r.name,
            u8::from(r.lock_held)
        );
    }
    header(
        &mut out,
        "mainline_channel_last_reconcile_timestamp_seconds",
        "gauge",
        "Unix time the last reconcile of the channel finished (0: none yet).",
    );
    for r in &rows {
        let t = r.last.map_or(0.0, |t| t.millis() as f64 / 1000.0);
        let _ = writeln!(
            out,
            "mainline_channel_last_reconcile_timestamp_seconds{{channel=\"{}\"}} {}",
            r.name,
            num(t)
        );
    }
    header(
        &mut out,
        "mainline_reconcile_duration_seconds",
        "histogram",
        "How long one reconcile of the channel took, lock and journal included.",
    );
    for r in &rows {
        for (le, n) in r.hist.cumulative() {
            let _ = writeln!(
                out,
                "mainline_reconcile_duration_seconds_bucket{{channel=\"{}\",le=\"{le}\"}} {n}",
                r.name
            );
        }
        let _ = writeln!(
            out,
            "mainline_reconcile_duration_seconds_sum{{channel=\"{}\"}} {}",
            r.name,
            num(r.hist.sum)
        );
        let _ = writeln!(
            out,
            "mainline_reconcile_duration_seconds_count{{channel=\"{}\"}} {}",
            r.name, r.hist.count
        );
    }
    let applied: Vec<_> = slots
        .iter()
        .map(|slot| {
            let s = slot.state();
            (
                slot.name().to_owned(),
                s.applied.clone(),
                s.apply_timing.clone(),
            )
        })
        .collect();
    super::applied_metrics::render(&mut out, &applied);
    header(
        &mut out,
        "mainline_webhook_deliveries_total",
        "counter",
        "GitHub webhook deliveries, by outcome.",
    );
    for (outcome, n) in webhooks.pairs() {
        let _ = writeln!(
            out,
            "mainline_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    header(
        &mut out,
        "mainline_guard_channels",
        "gauge",
        "Channels the guard watches.",
    );
    let _ = writeln!(out, "mainline_guard_channels {}", rows.len());
    header(
        &mut out,
        "mainline_guard_leader",
        "gauge",
        "1 while this replica may reconcile (the leader, or the only guard without leader election); 0 on a standby.",
    );
    let _ = writeln!(out, "mainline_guard_leader {}", u8::from(leading));
    out
}

/// The listener's connection figures (guard-wide).
pub fn render_connections(out: &mut String, c: &super::server::ConnCounters) {
    header(
        out,
        "mainline_guard_http_connections",
        "gauge",
        "HTTP connections open now (the health reserve included).",
    );
    let _ = writeln!(
        out,
        "mainline_guard_http_connections {}",
        c.open.load(Ordering::Relaxed)
    );
    let counters = [
        (
            "mainline_guard_http_reserve_connections_total",
            "Connections over max_connections served by the /healthz-/readyz reserve.",
            &c.reserve,
        ),
        (
            "mainline_guard_http_refused_connections_total",
            "Reserve connections closed to make room for a newer one (max_connections and the health reserve were full).",
            &c.refused,
        ),
        (
            "mainline_guard_http_accept_errors_total",
            "Failed accepts (e.g. out of file descriptors).",
            &c.accept_errors,
        ),
    ];
    for (name, help, v) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
}
