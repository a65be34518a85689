//! The `mainline` binary: parse, set up logging, run one command, render its error once and
//! map it to an exit code. Everything else lives in the library.

use clap::Parser;
use mainline::cli::{Cli, LogFormat};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The guard is a daemon: its reconciles are worth seeing by default.
    let daemon = matches!(cli.command, mainline::cli::Command::Guard(_));
    init_logging(cli.global.verbose + u8::from(daemon), cli.global.log_format);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match mainline::run(&cli, &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = out.flush();
            if cli.global.output == mainline::cli::OutputFormat::Json {
                let body = serde_json::json!({"error": {
                    "kind": e.kind, "message": e.message, "hint": e.hint,
                    "exit_code": e.kind.exit_code()}});
                let _ = writeln!(out, "{body}");
            }
            eprintln!("error: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
