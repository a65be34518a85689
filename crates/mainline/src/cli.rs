//! Command-line grammar: what a user can type, with help text that teaches. Parsing only —
//! no I/O happens here; `settings` turns these raw values into validated settings.

use crate::cli_help::*;
use clap::{Args, Parser, Subcommand, ValueEnum};

// Each command's arguments (their own file; the paths `cli::StatusArgs`, … stay).
pub use crate::cli_args::*;

/// Environment variables that hold a boolean, with the flag each stands for. Each accepts
/// 1/0, true/false, yes/no, on/off (any case); anything else is refused naming the variable.
pub const BOOL_ENV: &[(&str, &str)] = &[
    ("MAINLINE_PLAIN_HTTP", "--plain-http"),
    ("MAINLINE_REQUIRE_SIGNATURE", "--require-signature"),
    ("MAINLINE_ALLOW_EMPTY", "--allow-empty"),
    ("MAINLINE_REQUIRE_ATTESTATION", "--require-attestation"),
];

/// Value variables where an empty value means unset, as for the booleans: a CI file's
/// `MAINLINE_SIGNATURE_KEY: ${{ vars.KEY }}` with the variable undefined sets it empty.
pub const EMPTY_IS_UNSET_ENV: &[&str] = &[
    "MAINLINE_SIGNATURE_KEY",
    "MAINLINE_ATTESTATION_BUILDER",
    "MAINLINE_ATTESTATION_SOURCE",
];

/// Check every boolean environment variable before clap reads them (clap's own error would
/// name the flag, not the variable the user set). Returns the message and hint.
pub fn check_bool_env(get: impl Fn(&str) -> Option<String>) -> Result<(), (String, String)> {
    const WORDS: &[&str] = &[
        "1", "0", "true", "false", "yes", "no", "on", "off", "y", "n", "t", "f",
    ];
    for (var, flag) in BOOL_ENV {
        if let Some(v) = get(var) {
            let t = v.to_ascii_lowercase();
            if !t.is_empty() && !WORDS.contains(&t.as_str()) {
                return Err((
                    format!("{var}={v:?} is not a boolean (it stands for {flag})"),
                    format!(
                        "set {var} to 1 or 0 (true/false, yes/no and on/off work too), or unset it"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// mainline keeps a Flux OCI channel tag on what landed on main, or on a merge group that is
/// still in flight — never on code that was ejected from the merge queue.
#[derive(Debug, Parser)]
#[command(name = "mainline", version = env!("MAINLINE_VERSION_LINE"), after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// More log detail on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "MAINLINE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// Overall deadline of the command: registry, token endpoint and git calls all end by then
    /// (exit 6, naming what did not answer) [default: 60s for status, inspect, pull, history;
    /// 120s for writers, plus --wait]
    #[arg(
        long,
        global = true,
        env = "MAINLINE_TIMEOUT",
        value_parser = humantime::parse_duration,
        value_name = "DURATION"
    )]
    pub timeout: Option<std::time::Duration>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Registry access")]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry when it is on loopback (127.0.0.1, ::1, localhost).
    #[arg(long, global = true, env = "MAINLINE_PLAIN_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    pub plain_http: bool,

    /// Talk plain HTTP to this named registry host[:port] (repeatable). Use only on networks you trust.
    #[arg(long, global = true, value_name = "HOST")]
    pub plain_http_host: Vec<String>,

    /// Skip TLS certificate verification for this one named host[:port] (repeatable).
    #[arg(long, global = true, value_name = "HOST")]
    pub insecure_skip_tls_verify_host: Vec<String>,

    /// Registry user name; the password comes from MAINLINE_REGISTRY_PASSWORD or
    /// --registry-password-stdin. Without it, docker's config.json (and its credential helpers)
    /// is used, as docker, flux and oras do.
    #[arg(
        long,
        global = true,
        env = "MAINLINE_REGISTRY_USERNAME",
        value_name = "USER"
    )]
    pub registry_username: Option<String>,

    /// Read the registry password from stdin (never pass secrets as flags).
    #[arg(long, global = true)]
    pub registry_password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text (`table` is accepted too, as `simulate --output table` reads).
    #[value(alias = "table")]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pack a directory (or a git tree) as a Flux OCI artifact and push it under its immutable
    /// tag `sha-<commit>`. Never moves any other tag.
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Show an artifact: digest, media types, annotations and the files in its layer.
    #[command(after_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Extract an artifact's files into a directory, safely and within size limits.
    #[command(after_help = PULL_HELP)]
    Pull(PullArgs),
    /// Point a tag at the identical manifest bytes of another tag or digest, then read it back.
    #[command(after_help = TAG_HELP)]
    Tag(TagArgs),
    /// Show the channel's verdict, the facts behind it, and what reconcile would do.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Bring the channel back to the invariant: the heal. Safe to run anywhere, any time, in
    /// any number.
    #[command(after_help = RECONCILE_HELP)]
    Reconcile(ReconcileArgs),
    /// Deploy to the channel: with --candidate, a merge group's head before it merges (the
    /// pre-merge gate); without, a mainline commit (like promote).
    #[command(after_help = DEPLOY_HELP)]
    Deploy(DeployArgs),
    /// Promote after a commit landed on mainline (a push to main without a merge queue).
    #[command(after_help = PROMOTE_HELP)]
    Promote(PromoteArgs),
    /// Pin the channel to a digest or commit during an incident; automation holds until unpin.
    #[command(after_help = PIN_HELP)]
    Pin(PinArgs),
    /// Remove the pin and hand control back to automation (reconciles at once).
    #[command(after_help = UNPIN_HELP)]
    Unpin(UnpinArgs),
    /// Roll back to an earlier mainline commit's artifact: a pin, so automation does not undo it.
    #[command(after_help = ROLLBACK_HELP)]
    Rollback(RollbackArgs),
    /// Replay the merge-queue incident on a throwaway store and repository, and watch mainline
    /// heal it. Runs offline in seconds.
    #[command(after_help = TOUR_HELP)]
    Tour(TourArgs),
    /// Compare deployment strategies on simulated merge-queue histories, running the real
    /// executor against an in-memory registry and git remote that fail on purpose. The same
    /// seed prints the same figures; `--history I --trace` replays one history's event log.
    #[command(after_help = SIMULATE_HELP)]
    Simulate(SimulateArgs),
    /// What prod ran when, and why it moved: the channel's journal (hash-chained, on the git
    /// remote). `--verify` checks the chain.
    #[command(after_help = HISTORY_HELP)]
    History(HistoryArgs),
    /// Run the always-on reconciler for every configured channel: on an interval and at once
    /// on GitHub webhooks, with a status page, a JSON API and Prometheus metrics.
    #[command(after_help = crate::guard::settings::GUARD_HELP)]
    Guard(crate::guard::GuardArgs),
}

impl Command {
    /// The subcommand as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Push(_) => "push",
            Command::Inspect(_) => "inspect",
            Command::Pull(_) => "pull",
            Command::Tag(_) => "tag",
            Command::Status(_) => "status",
            Command::Reconcile(_) => "reconcile",
            Command::Deploy(_) => "deploy",
            Command::Promote(_) => "promote",
            Command::Pin(_) => "pin",
            Command::Unpin(_) => "unpin",
            Command::Rollback(_) => "rollback",
            Command::Tour(_) => "tour",
            Command::Simulate(_) => "simulate",
            Command::History(_) => "history",
            Command::Guard(_) => "guard",
        }
    }
}
