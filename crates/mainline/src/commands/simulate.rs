//! `mainline simulate`: run the deterministic simulator over many histories and compare
//! deployment strategies — or replay one history with its event log.
//!
//! Output: the text table by default, or exactly the JSON contract of `sim::report::json` with
//! the global `-o json`; `--plot FILE.svg` also writes the picture. The same seed prints the
//! same bytes (wall-clock figures go to stderr only with `--timing`).
//! Must never: read the wall clock into anything on stdout or in the plot.

use crate::cli::SimulateArgs;
use crate::error::{CliError, Kind};
use crate::settings::Context;
use crate::sim::runner::{run_indices, simulate, summarize, Summary};
use crate::sim::scenario::SimConfig;
use crate::sim::{plot, report, Strategy};
use std::io::Write;

/// The seed when neither `--seed` nor `MAINLINE_SIM_SEED` gives one.
pub const DEFAULT_SEED: u64 = 1;

fn io(e: std::io::Error) -> CliError {
    crate::error::output_error(e)
}

/// Parse and check the strategy names (clap already restricts them to the known ones).
fn strategies(names: &[String]) -> Result<Vec<Strategy>, CliError> {
    if names.is_empty() {
        return Ok(Strategy::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        let s = Strategy::from_name(n).ok_or_else(|| {
            let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
            CliError::invalid(format!("unknown strategy {n:?}"))
                .with_hint(format!("pick from: {}", known.join(", ")))
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: &SimulateArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    let strategies = strategies(&args.strategy)?;
    if args.histories == 0 {
        return Err(CliError::invalid("--histories must be at least 1"));
    }
    let cfg = SimConfig {
        log: args.trace,
        faults: !args.no_faults,
        ..SimConfig::default()
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let started = std::time::Instant::now();
    let fail = |e: crate::sim::runner::SimError| CliError::new(Kind::Internal, e.to_string());
    let summary = match args.history {
        Some(index) => {
            let mut rows = Vec::new();
            for &s in &strategies {
                let outcomes = run_indices(seed, &[index], s, &cfg, 1).map_err(fail)?;
                if args.trace {
                    for o in &outcomes {
                        writeln!(out, "== {} history {index} (seed {}) ==", s.name(), o.seed)
                            .map_err(io)?;
                        for line in &o.log {
                            writeln!(out, "{line}").map_err(io)?;
                        }
                    }
                }
                rows.push(summarize(s, &[index], &outcomes));
            }
            Summary {
                seed,
                histories: 1,
                strategies: rows,
            }
        }
        None => simulate(seed, args.histories, &strategies, &cfg, threads).map_err(fail)?,
    };
    if args.timing {
        let secs = started.elapsed().as_secs_f64();
        let n = summary.histories * summary.strategies.len() as u64;
        eprintln!(
            "{n} histories in {secs:.2} s ({:.0} histories/s, {threads} threads)",
            n as f64 / secs.max(1e-9)
        );
    }
    if let Some(path) = &args.plot {
        let t = (cfg.schedule_minutes + 3) as f64;
        std::fs::write(path, plot::svg(&summary, t)).map_err(|e| {
            CliError::new(
                Kind::InvalidInput,
                format!("cannot write the plot to {}: {e}", path.display()),
            )
        })?;
    }
    if ctx.json {
        writeln!(out, "{}", report::json(&summary)).map_err(io)?;
    } else {
        report::table(&summary, out).map_err(io)?;
    }
    Ok(0)
}
