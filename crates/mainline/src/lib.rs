//! mainline: keeps a Flux OCI channel tag on what landed on `main`, or on a merge group that is
//! still in flight — never on code that was ejected from the merge queue.
//!
//! This crate is the thin shell around the pure core (`mainline-core`) and the adapters
//! (`mainline-store`, `mainline-pack`, `mainline-git`): command-line grammar, settings,
//! the artifact operations every command shares, and rendering. The binary (`main.rs`) only
//! parses, dispatches and maps errors to exit codes.

pub mod cli;
pub mod cli_args;
pub mod cli_help;
pub mod commands;
pub mod deadline;
pub mod github_env;
pub mod output;
pub mod redact;
pub mod settings;

// The rooms this crate builds on, under the paths the commands and tests have always used.
pub use mainline_exec::{adapters, artifact, channel, error, tree_index, tree_push};
pub use mainline_guard::{config, config_entries, guard};
pub use mainline_sim as sim;

use cli::{Cli, Command};
use error::CliError;
use std::io::Write;

/// Run one parsed command line, writing results to `out`. Returns the exit code on success
/// (non-zero for verdicts that need attention), or the error to render.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<u8, CliError> {
    let deadline = deadline::Deadline::for_command(&cli.command, cli.global.timeout)?;
    run_within(cli, deadline, out)
}

/// [`run`] with the deadline already made (`main` arms its backstop from the same value).
/// A command that ends after its deadline without success exits 6 (unavailable), naming
/// what did not answer, even when the failure surfaced as another kind or as an UNKNOWN verdict.
pub fn run_within(
    cli: &Cli,
    deadline: Option<deadline::Deadline>,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let ctx = settings::Context::from_args(&cli.global, deadline)?;
    let result = dispatch(&ctx, cli, out);
    let culprit = |fallback: Option<String>| {
        deadline::first_stall()
            .or(fallback)
            .unwrap_or_else(|| "a fact could not be read in time (see the report above)".into())
    };
    match (deadline, result) {
        (Some(d), Err(e)) if d.passed() => {
            Err(d.exceeded(cli.command.name(), &culprit(Some(e.message))))
        }
        (Some(d), Ok(code)) if code != 0 && d.passed() => {
            Err(d.exceeded(cli.command.name(), &culprit(ctx.take_unanswered())))
        }
        (_, result) => result,
    }
}

fn dispatch(ctx: &settings::Context, cli: &Cli, out: &mut dyn Write) -> Result<u8, CliError> {
    match &cli.command {
        Command::Push(a) => commands::push::run(ctx, a, out)?,
        Command::Inspect(a) => commands::inspect::inspect(ctx, a, out)?,
        Command::Pull(a) => commands::inspect::pull(ctx, a, out)?,
        Command::Tag(a) => commands::tag::run(ctx, a, out)?,
        Command::Status(a) => return commands::channel::status(ctx, a, out),
        Command::Reconcile(a) => return commands::channel::reconcile(ctx, a, out),
        Command::Deploy(a) => return commands::channel::deploy(ctx, a, out),
        Command::Promote(a) => return commands::channel::promote(ctx, a, out),
        Command::Pin(a) => return commands::channel::pin(ctx, a, out),
        Command::Unpin(a) => return commands::channel::unpin(ctx, a, out),
        Command::Rollback(a) => return commands::channel::rollback(ctx, a, out),
        Command::Tour(a) => return commands::tour::run(ctx, a, out),
        Command::Simulate(a) => return commands::simulate::run(ctx, a, out),
        Command::History(a) => return commands::history::run(ctx, a, out),
        Command::Guard(a) => return commands::guard::run(ctx, a, out),
    }
    Ok(0)
}
