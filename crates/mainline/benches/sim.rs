//! Simulator throughput: histories per second per strategy, on one thread and on all CPUs.
//!
//! `cargo bench -p mainline --bench sim` (MAINLINE_SIM_BENCH_HISTORIES sets the count per
//! strategy, default 2,000). Each history is a full 135-minute merge-queue day fragment with
//! faults, running the real executor for the mainline strategies.

use mainline::sim::runner::simulate;
use mainline::sim::scenario::SimConfig;
use mainline::sim::Strategy;
use std::time::Instant;

/// The binary's allocator (src/main.rs), so the bench measures what `mainline simulate` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: u64 = std::env::var("MAINLINE_SIM_BENCH_HISTORIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let cfg = SimConfig::default();
    println!(
        "{:<26} {:>10} {:>14} {:>14} {:>12}",
        "strategy",
        "histories",
        "1 thread h/s",
        format!("{cpus} threads h/s"),
        "runs/history"
    );
    let mut total = 0.0;
    for strategy in Strategy::ALL {
        let t = Instant::now();
        let one = simulate(1, n, &[strategy], &cfg, 1).expect("the simulation runs");
        let single = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let all = simulate(1, n, &[strategy], &cfg, cpus).expect("the simulation runs");
        let elapsed = t.elapsed().as_secs_f64();
        total += elapsed;
        assert_eq!(
            mainline::sim::report::json(&one),
            mainline::sim::report::json(&all),
            "thread count changed the figures"
        );
        println!(
            "{:<26} {:>10} {:>14.0} {:>14.0} {:>12.1}",
            strategy.name(),
            n,
            single,
            n as f64 / elapsed,
            all.strategies[0].executor_runs as f64 / n as f64
        );
    }
    println!(
        "all {} strategies, {n} histories each, {cpus} threads: {total:.1} s ({:.0} histories/s)",
        Strategy::ALL.len(),
        Strategy::ALL.len() as f64 * n as f64 / total
    );
}
