//! The `mainline` binary: parse, set up logging, run one command within its deadline, render
//! its error once and map it to an exit code. Everything else lives in the library.
//!
//! Everything printed (stdout, logs, the error) goes through `redact::Redacting`, so no
//! registered credential reaches the terminal. A backstop thread ends the process with exit 6
//! a few seconds after the command's deadline, in case some call ignored its bound.

use clap::Parser;
use mainline::cli::{Cli, LogFormat};
use mainline::deadline::{Deadline, BACKSTOP_GRACE};
use mainline::error::CliError;
use mainline::redact::{redact, Redacting};
use std::io::Write;
use std::process::ExitCode;

/// mimalloc instead of the C library's malloc: `simulate` spends much of its time allocating
/// small strings and maps, and musl's malloc (the static release) is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Err((message, hint)) = mainline::cli::check_bool_env(|k| std::env::var(k).ok()) {
        eprintln!("error: {}\n  hint: {hint}", redact(&message));
        return ExitCode::from(mainline::error::Kind::InvalidInput.exit_code());
    }
    // An empty boolean variable means unset (`MAINLINE_PLAIN_HTTP=` in a CI file), which clap
    // would refuse as "not a boolean". No other thread runs yet.
    let bools = mainline::cli::BOOL_ENV.iter().map(|(var, _)| *var);
    for var in bools.chain(mainline::cli::EMPTY_IS_UNSET_ENV.iter().copied()) {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let cli = Cli::parse();
    mainline::redact::register_env();
    // The guard is a daemon: its reconciles are worth seeing by default.
    let daemon = matches!(cli.command, mainline::cli::Command::Guard(_));
    init_logging(cli.global.verbose + u8::from(daemon), cli.global.log_format);
    let stdout = std::io::stdout();
    let mut out = Redacting::new(stdout.lock());
    let result = Deadline::for_command(&cli.command, cli.global.timeout).and_then(|deadline| {
        if let Some(d) = deadline {
            arm_backstop(d, cli.command.name());
        }
        mainline::run_within(&cli, deadline, &mut out)
    });
    match result {
        Ok(code) => {
            let _ = out.flush();
            ExitCode::from(code)
        }
        // `mainline history | head`: the reader has all it wanted; end quietly, as Unix tools
        // do (exit 0, no message; SIGPIPE stays ignored so a git child's pipe cannot kill us).
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            render(&cli, &e, &mut out);
            ExitCode::from(e.kind.exit_code())
        }
    }
}

fn render(cli: &Cli, e: &CliError, out: &mut dyn Write) {
    if cli.global.output == mainline::cli::OutputFormat::Json {
        let body = serde_json::json!({"error": {
            "kind": e.kind, "message": redact(&e.message),
            "hint": e.hint.as_deref().map(redact),
            "exit_code": e.kind.exit_code()}});
        let _ = writeln!(out, "{body}");
        let _ = out.flush();
    }
    eprintln!("error: {}", redact(&e.to_string()));
}

/// End the process (exit 6) if the command is still running `BACKSTOP_GRACE` after its
/// deadline. Every call is bounded by the deadline itself; this only catches one that is not.
/// Children die with us: git through PR_SET_PDEATHSIG and the orphan watcher.
fn arm_backstop(deadline: Deadline, command: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline.remaining() + BACKSTOP_GRACE);
        eprintln!(
            "error: mainline {command} was still running {} after its deadline of {}; stopped\n  hint: something did not answer in time and ignored its bound (run with -vv to see the last call); retry later, or allow more time with --timeout (MAINLINE_TIMEOUT)",
            humantime::format_duration(BACKSTOP_GRACE),
            humantime::format_duration(deadline.budget()),
        );
        std::process::exit(6);
    });
}

fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::prelude::*;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // oci-client logs a token endpoint's error body verbatim at debug level (it may echo our
    // Authorization header): its debug and trace lines never print, whatever RUST_LOG says.
    let no_auth_bodies = filter_fn(|meta| {
        !(meta.target().starts_with("oci_client") && *meta.level() > tracing::Level::INFO)
    });
    let writer = || Redacting::new(std::io::stderr());
    // Colour only for a person at a terminal: never in a file or CI log, never with NO_COLOR.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(writer)
                    .with_filter(filter)
                    .with_filter(no_auth_bodies),
            )
            .init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(colour)
                    .with_writer(writer)
                    .with_filter(filter)
                    .with_filter(no_auth_bodies),
            )
            .init(),
    }
}
