//! `mainline simulate --plot FILE.svg`: one picture a person can read at a glance. Three panels,
//! one row per strategy: the distribution over histories of the longest unmerged episode, the
//! same for "behind main" (box p25–p75, whiskers to p99, median tick, max mark, a strip of
//! individual histories; log-scaled minutes with the bound T drawn), and the invariant
//! violations per 1,000 histories as bars, with merged-but-never-deployed changes and whether
//! the pre-merge gate is kept written beside them.
//!
//! Hand-written SVG 1.1 (no dependency); deterministic: the same summary gives the same bytes.
//! Must never: embed anything that varies between runs of the same seed.

use super::monitor::Invariant;
use super::rng::mix;
use super::runner::{StrategySummary, Summary};
use super::world::Ms;
use super::Strategy;
use std::fmt::Write;

const ROW: f64 = 56.0;
const TOP: f64 = 92.0;
const LABEL_W: f64 = 200.0;
const PANEL_W: f64 = 330.0;
const BAR_W: f64 = 420.0;
const GAP: f64 = 40.0;
const TICKS: [f64; 7] = [0.0, 1.0, 5.0, 10.0, 30.0, 60.0, 180.0];

fn color(s: Strategy) -> &'static str {
    match s {
        Strategy::Mainline => "#1b7f4b",
        Strategy::MainlineUnlocked => "#4fa37a",
        Strategy::DeployNoHeal => "#c0392b",
        Strategy::HealOnFailure => "#d35400",
        Strategy::HealOnFailureOrCancel => "#e67e22",
        Strategy::PromoteAfterMerge => "#7f8c8d",
        Strategy::HealPlusCron => "#a04000",
    }
}

/// Minutes on a log scale, `[0, max_minutes]` onto `[0, PANEL_W]`.
fn x_of(minutes: f64, max_minutes: f64) -> f64 {
    let f = |m: f64| (1.0 + m.max(0.0)).ln();
    (f(minutes) / f(max_minutes)) * PANEL_W
}

fn pct(sorted: &[Ms], q: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = (sorted.len() * q).div_ceil(100).max(1);
    sorted[k - 1] as f64 / 60_000.0
}

fn distribution(svg: &mut String, x0: f64, y: f64, values: &[Ms], max_m: f64, col: &str) {
    let mut v = values.to_vec();
    v.sort_unstable();
    let x = |m: f64| x0 + x_of(m, max_m);
    let (p25, p50, p75, p99) = (pct(&v, 25), pct(&v, 50), pct(&v, 75), pct(&v, 99));
    let max = v.last().map_or(0.0, |&m| m as f64 / 60_000.0);
    // The strip: up to 300 histories, evenly sampled, jittered vertically by their index.
    let step = (v.len() / 300).max(1);
    for (i, &m) in values.iter().enumerate().step_by(step) {
        let jitter = (mix(i as u64) % 1000) as f64 / 1000.0 * 22.0 - 11.0;
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{col}" fill-opacity="0.35"/>"#,
            x(m as f64 / 60_000.0),
            y + jitter
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333" stroke-width="1"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="14" fill="{col}" fill-opacity="0.35" stroke="{col}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#111" stroke-width="2.5"/><path d="M{:.1},{:.1} l4,6 l-4,6 l-4,-6 z" fill="#111"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#333">p50 {p50:.1} · p99 {p99:.1} · max {max:.1}</text>"##,
        x(p25.min(p99)),
        x(p99),
        x(p25),
        y - 7.0,
        (x(p75) - x(p25)).max(1.0),
        x(p50),
        y - 9.0,
        x(p50),
        y + 9.0,
        x(max),
        y - 6.0,
        x0,
        y + 22.0,
    );
}

fn axis(svg: &mut String, x0: f64, max_m: f64, t_bound: f64, rows: usize, title: &str) {
    let bottom = TOP + rows as f64 * ROW - 14.0;
    let _ = write!(
        svg,
        r##"<text x="{x0}" y="{:.0}" font-size="13" font-weight="bold">{title}</text>"##,
        TOP - 44.0
    );
    for &t in TICKS.iter().filter(|&&t| t <= max_m) {
        let x = x0 + x_of(t, max_m);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.0}" x2="{x:.1}" y2="{bottom:.0}" stroke="#ddd"/><text x="{x:.1}" y="{:.0}" font-size="10" text-anchor="middle" fill="#555">{t}</text>"##,
            TOP - 26.0,
            TOP - 28.0
        );
    }
    let x = x0 + x_of(t_bound, max_m);
    let _ = write!(
        svg,
        r##"<line x1="{x:.1}" y1="{:.0}" x2="{x:.1}" y2="{bottom:.0}" stroke="#1b7f4b" stroke-dasharray="4,3"/><text x="{:.1}" y="{:.0}" font-size="10" fill="#1b7f4b">T</text>"##,
        TOP - 20.0,
        x + 3.0,
        TOP - 14.0
    );
}

/// The fill of one clause's segment in the violation bars.
fn clause_color(i: Invariant) -> &'static str {
    match i {
        Invariant::S1 => "#8e44ad",
        Invariant::S2 => "#c0392b",
        Invariant::S3 => "#e67e22",
        Invariant::S4 => "#f1c40f",
        Invariant::S5 => "#2c3e50",
        Invariant::L1 => "#2980b9",
        Invariant::G => "#16a085",
    }
}

/// Violations per 1,000 histories, one bar per strategy stacked by clause, with every clause's
/// count (zeros included) written under it and a legend of the clauses.
fn bars(svg: &mut String, x0: f64, rows: &[StrategySummary]) {
    let per_k = |n: u64, s: &StrategySummary| n as f64 * 1000.0 / s.histories.max(1) as f64;
    let top = rows
        .iter()
        .map(|s| per_k(s.violations, s))
        .fold(1.0, f64::max);
    let _ = write!(
        svg,
        r##"<text x="{x0}" y="{:.0}" font-size="13" font-weight="bold">violations per 1,000 histories, by clause</text>"##,
        TOP - 44.0
    );
    for (k, i) in Invariant::ALL.iter().enumerate() {
        let lx = x0 + k as f64 * 62.0;
        let _ = write!(
            svg,
            r##"<rect x="{lx:.1}" y="{:.1}" width="9" height="9" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"##,
            TOP - 36.0,
            clause_color(*i),
            lx + 12.0,
            TOP - 28.0,
            i.name()
        );
    }
    for (r, s) in rows.iter().enumerate() {
        let y = TOP + r as f64 * ROW;
        let mut x = x0;
        for i in Invariant::ALL {
            let n = s.by_invariant.get(&i).copied().unwrap_or(0);
            let w = per_k(n, s) / top * (BAR_W - 80.0);
            if w > 0.0 {
                let _ = write!(
                    svg,
                    r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="14" fill="{}"><title>{} {}: {n}</title></rect>"##,
                    y - 7.0,
                    clause_color(i),
                    s.strategy.name(),
                    i.name()
                );
            }
            x += w;
        }
        let detail: Vec<String> = Invariant::ALL
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    i.name(),
                    s.by_invariant.get(i).copied().unwrap_or(0)
                )
            })
            .collect();
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" font-weight="bold" fill="{}">{:.1}</text><text x="{x0}" y="{:.1}" font-size="10" fill="#333">{} · lost {} · gate {}</text>"##,
            x + 4.0,
            y + 4.0,
            color(s.strategy),
            per_k(s.violations, s),
            y + 22.0,
            detail.join(" · "),
            s.merged_never_deployed,
            if s.keeps_premerge_gate {
                "kept"
            } else {
                "none"
            }
        );
    }
}

/// The SVG document for `summary`; `t_bound_minutes` is the bound T the checkers used.
pub fn svg(summary: &Summary, t_bound_minutes: f64) -> String {
    let rows = &summary.strategies;
    let max_ms = rows
        .iter()
        .flat_map(|s| s.unmerged_ms.iter().chain(&s.behind_ms))
        .copied()
        .max()
        .unwrap_or(0);
    let max_m = (max_ms as f64 / 60_000.0)
        .max(t_bound_minutes * 2.0)
        .max(10.0);
    let width = LABEL_W + 2.0 * (PANEL_W + GAP) + BAR_W + 20.0;
    let height = TOP + rows.len() as f64 * ROW + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif"><rect width="100%" height="100%" fill="white"/><text x="16" y="24" font-size="16" font-weight="bold">mainline simulate — seed {}, {} histories per strategy</text>"##,
        summary.seed, summary.histories
    );
    let p1 = LABEL_W;
    let p2 = LABEL_W + PANEL_W + GAP;
    axis(
        &mut svg,
        p1,
        max_m,
        t_bound_minutes,
        rows.len(),
        "prod on unmerged code (min, log)",
    );
    axis(
        &mut svg,
        p2,
        max_m,
        t_bound_minutes,
        rows.len(),
        "prod behind main (min, log)",
    );
    for (i, s) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let _ = write!(
            svg,
            r##"<text x="16" y="{:.1}" font-size="13" font-weight="bold" fill="{}">{}</text>"##,
            y + 4.0,
            color(s.strategy),
            s.strategy.name()
        );
        distribution(&mut svg, p1, y, &s.unmerged_ms, max_m, color(s.strategy));
        distribution(&mut svg, p2, y, &s.behind_ms, max_m, color(s.strategy));
    }
    bars(&mut svg, p2 + PANEL_W + GAP, rows);
    let _ = write!(
        svg,
        r##"<text x="16" y="{:.0}" font-size="10" fill="#555">each dot: one history's longest episode · box p25–p75 · whisker to p99 · ◆ max · dashed: T = {t_bound_minutes} min</text></svg>"##,
        height - 10.0
    );
    svg.push('\n');
    svg
}
