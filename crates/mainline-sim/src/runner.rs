//! Running many histories per strategy, on a few worker threads, and folding the outcomes
//! into per-strategy figures.
//!
//! Determinism: history `i` depends only on (seed, i) and the strategy; workers take
//! interleaved indices and every result is put back at its index before anything is
//! aggregated, so the figures do not depend on the thread count or on scheduling. The
//! executor's own log lines are silenced inside the workers (faults are injected on purpose;
//! their warnings are not news).
//! Must never: let a panicking history vanish: it becomes an error naming its seed.

use super::monitor::Invariant;
use super::scenario::SimConfig;
use super::world::Ms;
use super::{history_seed, run_history, HistoryOutcome, Strategy};
use std::collections::BTreeMap;

/// Why a simulation run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "history {index} (seed {seed}) of strategy {strategy} panicked: {message}; replay it with \
         `mainline simulate --seed {run_seed} --history {index} --strategy {strategy} --trace`"
    )]
    Panicked {
        strategy: &'static str,
        run_seed: u64,
        index: u64,
        seed: u64,
        message: String,
    },
}

/// p50 / p99 / max of a per-history figure, in minutes (one decimal).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// Nearest-rank percentiles of `values` (ms), reported in minutes.
    pub fn of(values: &mut [Ms]) -> Spread {
        values.sort_unstable();
        let rank = |q: usize| -> Ms {
            if values.is_empty() {
                return 0;
            }
            let k = (values.len() * q).div_ceil(100).max(1);
            values[k - 1]
        };
        let minutes = |ms: Ms| (ms as f64 / 6_000.0).round() / 10.0;
        Spread {
            p50: minutes(rank(50)),
            p99: minutes(rank(99)),
            max: minutes(values.last().copied().unwrap_or(0)),
        }
    }
}

/// One strategy's figures over a run.
#[derive(Debug, Clone)]
pub struct StrategySummary {
    pub strategy: Strategy,
    pub histories: u64,
    pub violations: u64,
    pub by_invariant: BTreeMap<Invariant, u64>,
    pub histories_with_violations: u64,
    /// The first history (index) with a violation, to replay.
    pub first_violation: Option<u64>,
    pub unmerged: Spread,
    pub behind: Spread,
    pub merged_never_deployed: u64,
    pub keeps_premerge_gate: bool,
    pub executor_runs: u64,
    pub executor_errors: u64,
    pub faults: u64,
    /// Writes that raced a merge (S2 excused: the change landed after the writer decided).
    pub s2_races: u64,
    /// S3/L1 episodes over the bound that faults or the evidence gap excused; total minutes.
    pub fault_excused_episodes: u64,
    pub fault_excused_minutes: f64,
    /// Total minutes main's artifact failed the evidence policy.
    pub evidence_gap_minutes: f64,
    /// Channel writes just after a pin's expiry by runners whose clocks disagreed about it.
    pub pin_skew_writes: u64,
    /// Per-history longest episodes (ms), index order, for the plot.
    pub unmerged_ms: Vec<Ms>,
    pub behind_ms: Vec<Ms>,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub seed: u64,
    pub histories: u64,
    pub strategies: Vec<StrategySummary>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Run histories `indices` of `seed` under `strategy` on `threads` workers, in index order.
pub fn run_indices(
    seed: u64,
    indices: &[u64],
    strategy: Strategy,
    cfg: &SimConfig,
    threads: usize,
) -> Result<Vec<HistoryOutcome>, SimError> {
    let threads = threads.clamp(1, indices.len().max(1));
    let mut slots: Vec<Option<Result<HistoryOutcome, SimError>>> = Vec::new();
    slots.resize_with(indices.len(), || None);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let quiet = tracing::subscriber::NoSubscriber::default();
                    tracing::subscriber::with_default(quiet, || {
                        (t..indices.len())
                            .step_by(threads)
                            .map(|k| {
                                let index = indices[k];
                                let hseed = history_seed(seed, index);
                                let outcome =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        run_history(hseed, strategy, cfg)
                                    }))
                                    .map_err(|p| {
                                        SimError::Panicked {
                                            strategy: strategy.name(),
                                            run_seed: seed,
                                            index,
                                            seed: hseed,
                                            message: panic_message(p.as_ref()),
                                        }
                                    });
                                (k, outcome)
                            })
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        for w in workers {
            for (k, outcome) in w.join().expect("a worker catches its histories' panics") {
                slots[k] = Some(outcome);
            }
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every index was run by exactly one worker"))
        .collect()
}

/// Virtual ms as minutes, one decimal.
fn minutes(ms: Ms) -> f64 {
    (ms as f64 / 6_000.0).round() / 10.0
}

/// Fold one strategy's outcomes (in index order).
pub fn summarize(
    strategy: Strategy,
    indices: &[u64],
    outcomes: &[HistoryOutcome],
) -> StrategySummary {
    let mut by_invariant: BTreeMap<Invariant, u64> = Invariant::ALL.map(|i| (i, 0)).into();
    let mut violations = 0;
    let mut with = 0;
    let mut first = None;
    for (o, &i) in outcomes.iter().zip(indices) {
        for v in &o.violations {
            *by_invariant.entry(v.invariant).or_insert(0) += 1;
        }
        violations += o.violations.len() as u64;
        if !o.violations.is_empty() {
            with += 1;
            first.get_or_insert(i);
        }
    }
    let unmerged_ms: Vec<Ms> = outcomes.iter().map(|o| o.max_unmerged_ms).collect();
    let behind_ms: Vec<Ms> = outcomes.iter().map(|o| o.max_behind_ms).collect();
    StrategySummary {
        strategy,
        histories: outcomes.len() as u64,
        violations,
        by_invariant,
        histories_with_violations: with,
        first_violation: first,
        unmerged: Spread::of(&mut unmerged_ms.clone()),
        behind: Spread::of(&mut behind_ms.clone()),
        merged_never_deployed: outcomes
            .iter()
            .map(|o| u64::from(o.merged_never_deployed))
            .sum(),
        keeps_premerge_gate: outcomes.iter().all(|o| o.merged_without_deploy == 0),
        executor_runs: outcomes.iter().map(|o| o.executor_runs).sum(),
        executor_errors: outcomes.iter().map(|o| o.executor_errors).sum(),
        faults: outcomes.iter().map(|o| u64::from(o.faults)).sum(),
        s2_races: outcomes.iter().map(|o| u64::from(o.s2_races)).sum(),
        fault_excused_episodes: outcomes
            .iter()
            .map(|o| u64::from(o.fault_excused_episodes))
            .sum(),
        fault_excused_minutes: minutes(outcomes.iter().map(|o| o.fault_excused_ms).sum()),
        evidence_gap_minutes: minutes(outcomes.iter().map(|o| o.evidence_gap_ms).sum()),
        pin_skew_writes: outcomes.iter().map(|o| u64::from(o.pin_skew_writes)).sum(),
        unmerged_ms,
        behind_ms,
    }
}

/// Run `histories` histories of `seed` for each strategy.
pub fn simulate(
    seed: u64,
    histories: u64,
    strategies: &[Strategy],
    cfg: &SimConfig,
    threads: usize,
) -> Result<Summary, SimError> {
    let indices: Vec<u64> = (0..histories).collect();
    let mut out = Vec::new();
    for &strategy in strategies {
        let outcomes = run_indices(seed, &indices, strategy, cfg, threads)?;
        out.push(summarize(strategy, &indices, &outcomes));
    }
    Ok(Summary {
        seed,
        histories,
        strategies: out,
    })
}
