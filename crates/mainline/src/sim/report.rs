//! Rendering a run's figures: the JSON contract of `mainline simulate -o json` and the text
//! table.
//!
//! The JSON keys and their order are a public contract:
//! `{"seed", "histories", "strategies":[{"name", "histories", "violations",
//! "unmerged_minutes":{"p50","p99","max"}, "behind_minutes":{"p50","p99","max"},
//! "merged_never_deployed", "keeps_premerge_gate"}]}`.
//! Must never: print anything that varies between two runs of the same seed (no timings).

use super::runner::{Spread, Summary};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct JsonStrategy<'a> {
    name: &'a str,
    histories: u64,
    violations: u64,
    unmerged_minutes: Spread,
    behind_minutes: Spread,
    merged_never_deployed: u64,
    keeps_premerge_gate: bool,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    seed: u64,
    histories: u64,
    strategies: Vec<JsonStrategy<'a>>,
}

/// The summary as one line of JSON (the `--output json` contract).
pub fn json(summary: &Summary) -> String {
    let body = JsonSummary {
        seed: summary.seed,
        histories: summary.histories,
        strategies: summary
            .strategies
            .iter()
            .map(|s| JsonStrategy {
                name: s.strategy.name(),
                histories: s.histories,
                violations: s.violations,
                unmerged_minutes: s.unmerged,
                behind_minutes: s.behind,
                merged_never_deployed: s.merged_never_deployed,
                keeps_premerge_gate: s.keeps_premerge_gate,
            })
            .collect(),
    };
    serde_json::to_string(&body).expect("numbers, strings and bools always serialise")
}

fn spread(s: &Spread) -> String {
    format!("{:.1} / {:.1} / {:.1}", s.p50, s.p99, s.max)
}

/// The text table, with the violations broken down by invariant and a replay hint.
pub fn table(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "seed {}, {} histories per strategy; minutes are each history's longest episode \
         (p50 / p99 / max)",
        summary.seed, summary.histories
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<26} {:>10}  {:<22} {:>20} {:>20} {:>7} {:>5}",
        "strategy", "violations", "(by invariant)", "unmerged min", "behind min", "lost", "gate"
    )?;
    for s in &summary.strategies {
        let by: Vec<String> = s
            .by_invariant
            .iter()
            .map(|(k, v)| format!("{k:?}:{v}"))
            .collect();
        writeln!(
            out,
            "{:<26} {:>10}  {:<22} {:>20} {:>20} {:>7} {:>5}",
            s.strategy.name(),
            s.violations,
            if by.is_empty() {
                "-".to_owned()
            } else {
                by.join(" ")
            },
            spread(&s.unmerged),
            spread(&s.behind),
            s.merged_never_deployed,
            if s.keeps_premerge_gate {
                "kept"
            } else {
                "NONE"
            }
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "violations: S1 unsigned/missing digest, S2 went back past a landed merge, S3 unmerged \
         code past T, S4 deployed an ended group, L1 behind main past T (T = schedule interval \
         + 3 min, counted only over fault-free time); lost: merged changes prod never got"
    )?;
    for s in &summary.strategies {
        if let Some(i) = s.first_violation {
            writeln!(
                out,
                "  {}: {} of {} histories broke; replay one: mainline simulate --seed {} \
                 --history {i} --strategy {} --trace",
                s.strategy.name(),
                s.histories_with_violations,
                s.histories,
                summary.seed,
                s.strategy.name()
            )?;
        }
    }
    Ok(())
}
