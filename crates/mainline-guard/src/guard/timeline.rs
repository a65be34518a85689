//! The timeline drawn in each row of the status page: the channel's last journal records as an
//! inline SVG step chart. The line is what prod ran — on the lower lane while the channel named
//! a mainline artifact (after a promote or restore), on the upper lane while it named a
//! candidate or a pinned artifact — and each record is a marker on it, coloured by what
//! happened, with the details (time, commits, reason, actor) in its tooltip.
//!
//! Layout: markers sit at their time on an axis from the first record to now; markers closer
//! than a few pixels are pushed apart (newest stays put) so a burst of moves in one second
//! stays readable, and when even that does not fit they are spaced evenly in order.
//! Invariants: pure (records and `now` in, markup out); all text is escaped.

use super::page::esc;
use crate::channel::journal::{EntryKind, Record};
use mainline_core::{Action, Timestamp};
use std::fmt::Write;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 80.0;
/// Left margin: room for the lane names.
const LEFT: f64 = 58.0;
const RIGHT: f64 = 470.0;
const LOW: f64 = 50.0;
const HIGH: f64 = 24.0;
const GAP: f64 = 16.0;
const MAIN_COLOUR: &str = "#1a7f37";
const CANDIDATE_COLOUR: &str = "#0969da";
const PIN_COLOUR: &str = "#8250df";

/// A record's marker: CSS class, colour, and the lane the channel is on after it (`None`:
/// the record did not move the channel).
type Marker = (&'static str, &'static str, Option<f64>);

fn marker(r: &Record) -> Option<Marker> {
    let e = &r.entry;
    Some(match (e.kind, e.action) {
        (EntryKind::Moved, Some(Action::Promote)) => ("promote", MAIN_COLOUR, Some(LOW)),
        (EntryKind::Moved, Some(Action::Restore)) => ("restore", "#d1242f", Some(LOW)),
        (EntryKind::Moved, Some(Action::DeployCandidate)) => {
            ("candidate", CANDIDATE_COLOUR, Some(HIGH))
        }
        (EntryKind::Moved, _) => ("pin", PIN_COLOUR, Some(HIGH)),
        (EntryKind::Pin, _) => ("pin", PIN_COLOUR, None),
        (EntryKind::Unpin, _) => ("unpin", "#6e7781", None),
        (EntryKind::Refused, _) => ("refused", "#9a6700", None),
        (EntryKind::Observed, _) => ("observed", "#57606a", None),
        (EntryKind::Abandoned, _) => ("abandoned", "#afb8c1", None),
        (EntryKind::Intent, _) => return None,
    })
}

/// `HH:MM:SS` (UTC).
pub fn clock(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(11..19).unwrap_or(&s).to_owned()
}

fn short(c: Option<&mainline_core::CommitId>) -> String {
    c.map_or("-".into(), |c| c.to_string().chars().take(12).collect())
}

/// x positions for markers at `times` on an axis from `start` to `now`.
fn positions(times: &[Timestamp], start: Timestamp, now: Timestamp) -> Vec<f64> {
    let span = (now.millis() - start.millis()).max(1) as f64;
    let mut xs: Vec<f64> = times
        .iter()
        .map(|t| LEFT + (t.millis() - start.millis()) as f64 / span * (RIGHT - LEFT))
        .collect();
    for i in (0..xs.len().saturating_sub(1)).rev() {
        xs[i] = xs[i].min(xs[i + 1] - GAP);
    }
    if xs.first().is_some_and(|x| *x < LEFT) {
        let n = xs.len();
        let step = if n > 1 {
            (RIGHT - LEFT) / (n - 1) as f64
        } else {
            0.0
        };
        xs = (0..n).map(|i| LEFT + step * i as f64).collect();
    }
    xs
}

/// The SVG of one channel's timeline, ending at `now`.
pub fn render(name: &str, records: &[Record], now: Timestamp) -> String {
    let drawn: Vec<(&Record, Marker)> = records
        .iter()
        .filter_map(|r| marker(r).map(|m| (r, m)))
        .collect();
    let first = drawn.first().map_or(now, |(r, _)| r.entry.time);
    // From just before the first marker to now (at least a second wide).
    let span = (now.millis() - first.millis()).max(1_000);
    let start = Timestamp(now.millis() - span - span / 20);
    let times: Vec<Timestamp> = drawn.iter().map(|(r, _)| r.entry.time).collect();
    let xs = positions(&times, start, now);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="timeline" data-channel="{name}" data-moves="{n}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="what {name} ran, and its last moves"><line x1="{LEFT}" y1="{HIGH}" x2="{RIGHT}" y2="{HIGH}" stroke="#eaeef2" stroke-dasharray="3 3"/><line x1="{LEFT}" y1="{LOW}" x2="{RIGHT}" y2="{LOW}" stroke="#eaeef2" stroke-dasharray="3 3"/><text x="2" y="{hy}" font-size="10" fill="#57606a">group/pin</text><text x="2" y="{ly}" font-size="10" fill="#57606a">mainline</text><text x="{RIGHT}" y="{ty}" font-size="10" fill="#57606a" text-anchor="end">now {t1}</text>"##,
        name = esc(name),
        n = drawn.len(),
        hy = HIGH + 3.0,
        ly = LOW + 3.0,
        ty = HEIGHT - 4.0,
        t1 = clock(now),
    );
    if drawn.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="11" fill="#57606a" text-anchor="middle">no moves recorded yet</text></svg>"##,
            (LEFT + RIGHT) / 2.0,
            (HIGH + LOW) / 2.0 + 4.0
        );
        return svg;
    }
    // The first marker's time, where it does not collide with "now".
    if xs[0] < RIGHT - 120.0 {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" font-size="10" fill="#57606a">{}</text>"##,
            xs[0],
            HEIGHT - 4.0,
            clock(times[0])
        );
    }
    // The step line: what prod ran, lane by lane, from the first move to now.
    let mut lane: Option<(f64, f64, &str)> = None;
    for ((_, (_, colour, to)), x) in drawn.iter().zip(&xs) {
        let Some(y) = to else { continue };
        if let Some((px, py, pc)) = lane {
            let _ = write!(
                svg,
                r##"<path d="M{px:.1} {py} H{x:.1} V{y}" fill="none" stroke="{pc}" stroke-width="3"/>"##
            );
        }
        let line = if *y == LOW {
            MAIN_COLOUR
        } else if *colour == PIN_COLOUR {
            PIN_COLOUR
        } else {
            CANDIDATE_COLOUR
        };
        lane = Some((*x, *y, line));
    }
    if let Some((px, py, pc)) = lane {
        let _ = write!(
            svg,
            r##"<path d="M{px:.1} {py} H{RIGHT}" fill="none" stroke="{pc}" stroke-width="3"/>"##
        );
    }
    let mut y_now = LOW;
    let last = drawn.len() - 1;
    for (i, ((r, (class, colour, to)), x)) in drawn.iter().zip(&xs).enumerate() {
        let e = &r.entry;
        if let Some(y) = to {
            y_now = *y;
        }
        let title = format!(
            "#{} {} {}: {} → {}\n{}\nby {}",
            e.seq,
            clock(e.time),
            class,
            short(e.from_commit.as_ref()),
            short(e.to_commit.as_ref()),
            e.reason,
            e.actor,
        );
        let radius = if to.is_some() { 6.0 } else { 4.0 };
        let _ = write!(
            svg,
            r##"<g class="move move-{class}"><title>{title}</title><circle cx="{x:.1}" cy="{y_now}" r="{radius}" fill="{colour}" stroke="#ffffff" stroke-width="1.5"/>"##,
            title = esc(&title),
        );
        if i == last {
            let label = e.to_commit.as_ref().map_or_else(
                || (*class).to_owned(),
                |c| format!("{class} {}", &c.to_string()[..7]),
            );
            let anchor = if *x > RIGHT - 60.0 { "end" } else { "middle" };
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{}" font-size="10" fill="{colour}" text-anchor="{anchor}">{}</text>"##,
                y_now - 10.0,
                esc(&label)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}
