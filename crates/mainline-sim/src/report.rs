//! Rendering a run's figures: the JSON contract of `mainline simulate -o json` and the text
//! table.
//!
//! The JSON keys and their order are a public contract:
//! `{"seed", "histories", "strategies":[{"name", "histories", "violations",
//! "unmerged_minutes":{"p50","p99","max"}, "behind_minutes":{"p50","p99","max"},
//! "merged_never_deployed", "keeps_premerge_gate", then (added, never renamed) "by_clause",
//! "histories_with_violations", "s2_races", "fault_excused_episodes", "fault_excused_minutes",
//! "evidence_gap_minutes", "pin_skew_writes", "first_violation"}]}`.
//! Must never: print anything that varies between two runs of the same seed (no timings).

use super::monitor::Invariant;
use super::runner::{Spread, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
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
    // Added by issue 12 (after the original keys, which keep their names and order).
    /// Violations per clause, every clause present (0 when none).
    by_clause: BTreeMap<&'static str, u64>,
    histories_with_violations: u64,
    /// Writes that dropped a change which landed after the writer decided (S2 excused).
    s2_races: u64,
    /// S3/L1 episodes over T excused because faults (or the evidence gap) left no fault-free
    /// stretch longer than T in them, and their total minutes.
    fault_excused_episodes: u64,
    fault_excused_minutes: f64,
    /// Total minutes main's artifact failed the evidence policy.
    evidence_gap_minutes: f64,
    /// Channel writes just after a pin's expiry, by runners whose skewed clocks disagreed
    /// about it (not judged as S2-S5).
    pin_skew_writes: u64,
    /// The first history (index) that broke a clause, `null` when none: what to replay with
    /// `--history I --trace` (a long JSON run would otherwise have to be run again in text).
    first_violation: Option<u64>,
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
                by_clause: Invariant::ALL
                    .iter()
                    .map(|&i| (i.name(), s.by_invariant.get(&i).copied().unwrap_or(0)))
                    .collect(),
                histories_with_violations: s.histories_with_violations,
                s2_races: s.s2_races,
                fault_excused_episodes: s.fault_excused_episodes,
                fault_excused_minutes: s.fault_excused_minutes,
                evidence_gap_minutes: s.evidence_gap_minutes,
                pin_skew_writes: s.pin_skew_writes,
                first_violation: s.first_violation,
            })
            .collect(),
    };
    serde_json::to_string(&body).expect("numbers, strings and bools always serialise")
}

fn spread(s: &Spread) -> String {
    format!("{:.1} / {:.1} / {:.1}", s.p50, s.p99, s.max)
}

/// The text tables: violations per clause, then the exposure figures and what was excused,
/// each column aligned; then a replay hint per strategy that broke something.
pub fn table(summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "seed {}, {} histories per strategy",
        summary.seed, summary.histories
    )?;
    writeln!(out)?;
    write!(out, "{:<26} {:>10}", "violations", "total")?;
    for i in Invariant::ALL {
        write!(out, " {:>7}", i.name())?;
    }
    writeln!(out, " {:>8}", "gate")?;
    for s in &summary.strategies {
        write!(out, "{:<26} {:>10}", s.strategy.name(), s.violations)?;
        for i in Invariant::ALL {
            write!(out, " {:>7}", s.by_invariant.get(&i).copied().unwrap_or(0))?;
        }
        writeln!(
            out,
            " {:>8}",
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
        "{:<26} {:>20} {:>20} {:>6} {:>8} {:>16} {:>12} {:>8}",
        "minutes (p50 / p99 / max)",
        "unmerged",
        "behind",
        "lost",
        "S2 races",
        "fault-excused",
        "evidence gap",
        "pin skew"
    )?;
    for s in &summary.strategies {
        writeln!(
            out,
            "{:<26} {:>20} {:>20} {:>6} {:>8} {:>16} {:>12} {:>8}",
            s.strategy.name(),
            spread(&s.unmerged),
            spread(&s.behind),
            s.merged_never_deployed,
            s.s2_races,
            format!(
                "{} / {:.0} min",
                s.fault_excused_episodes, s.fault_excused_minutes
            ),
            format!("{:.0} min", s.evidence_gap_minutes),
            s.pin_skew_writes
        )?;
    }
    writeln!(out)?;
    for i in Invariant::ALL {
        writeln!(out, "  {:<3} {}", i.name(), i.meaning())?;
    }
    writeln!(
        out,
        "  T = schedule interval + 3 min; S3/L1 count only fault-free stretches longer than T \
         (the rest is \"fault-excused\": episodes / total minutes). unmerged / behind: each \
         history's longest episode. lost: merged changes prod never got. gate: every merged \
         group was deployed and kept until its checks concluded. S2 races: a change landed \
         after the writer decided (not counted as S2). pin skew: channel \
         writes within twice the runners' clock skew after a pin expired (runners disagree \
         whether it did; not judged as S2-S5)."
    )?;
    writeln!(
        out,
        "  mainline's longest unmerged and behind episodes (max) come from injected outages: \
         while the registry or the git remote is down, or a runner dies, no writer can move the \
         channel (stretches without a fault longer than T would count as S3/L1). Run with \
         --no-faults to see the figures without outages."
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
