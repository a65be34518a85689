//! Command-line grammar: what a user can type, with help text that teaches. Parsing only —
//! no I/O happens here; `settings` turns these raw values into validated settings.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (status: CONVERGED, CANDIDATE or PINNED)
  1  internal error
  2  invalid input or usage
  3  status: BEHIND or DIVERGED (reconcile would move the channel)
  4  status: UNKNOWN (a fact could not be read)
  5  refused: the invariant forbids the requested move
  6  unavailable: a registry or git remote could not be reached (retry later)
  7  unauthorized: credentials were refused
  8  integrity: bytes did not match their digest, or a read-back differed
  9  conflict: an immutable tag already names other bytes
 10  --wait: the Flux consumers did not apply the digest in time

Deadline (--timeout, MAINLINE_TIMEOUT):
  Every command ends within one overall deadline: 60s by default for status, inspect, pull
  and history; 120s for push, tag, reconcile, deploy, promote, pin, unpin and rollback (plus
  --wait). Every registry request (the token endpoint's included), retry and lock wait, and
  every git process is bounded by what is left of it. git runs in its own process group,
  killed at the deadline and when mainline itself dies. A command that runs out of time exits
  6 and names what did not answer. guard, tour and simulate have no overall deadline.";

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
    #[arg(long, global = true, env = "MAINLINE_PLAIN_HTTP")]
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
    Inspect(InspectArgs),
    /// Extract an artifact's files into a directory, safely and within size limits.
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
    Promote(PromoteArgs),
    /// Pin the channel to a digest or commit during an incident; automation holds until unpin.
    #[command(after_help = PIN_HELP)]
    Pin(PinArgs),
    /// Remove the pin and hand control back to automation (reconciles at once).
    Unpin(UnpinArgs),
    /// Roll back to an earlier mainline commit's artifact: a pin, so automation does not undo it.
    Rollback(RollbackArgs),
    /// Replay the merge-queue incident on a throwaway store and repository, and watch mainline
    /// heal it. Runs offline in seconds.
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

const STATUS_HELP: &str = "\
Verdicts:
  CONVERGED  the channel runs mainline's deploy tree                     (exit 0)
  CANDIDATE  the channel runs a merge group that is still in flight     (exit 0)
  PINNED     an operator pin holds the channel                          (exit 0)
  BEHIND     mainline changed the deploy tree since; reconcile promotes (exit 3)
  DIVERGED   the channel runs code that is not on mainline; reconcile restores (exit 3)
  UNKNOWN    a fact could not be read; nothing is done                  (exit 4)

Examples:
  mainline status --channel oci://ghcr.io/acme/app:latest --git https://github.com/acme/app --path k8s
  mainline status -o json | jq .verdict";

const RECONCILE_HELP: &str = "\
Reconcile reads fresh facts (git remote, registry, merge queue), decides, and acts: it restores
mainline's artifact over code that was ejected from the queue (DIVERGED), promotes when mainline
moved on (BEHIND), and holds for a live candidate. A restore is a re-tag of an artifact that
already exists (or is packed from git objects first): it never waits on a cluster.
Run it from the merge-group job's failure and cancel paths, on pushes to main, on a schedule.";

const DEPLOY_HELP: &str = "\
In a GitHub Actions merge_group run, the group comes from GITHUB_EVENT_PATH / GITHUB_SHA /
GITHUB_REF; elsewhere pass --group and --commit. The channel moves only forward along the
queue, never for a group that is no longer in flight, and the write is checked again right
after it happens (a write that raced with the group's end is undone in the same run).";

const PIN_HELP: &str = "\
Examples:
  mainline pin sha256:4f1c... --reason \"INC-123: hold while we debug\" --expires 2h
  mainline pin 0123abcd... --reason \"known good\"
  mainline unpin";

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// Restore mainline's artifact even over a channel that was moved by hand to something
    /// mainline did not make (otherwise that is UNKNOWN and left alone).
    #[arg(long)]
    pub force_restore: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// Deploy a merge group's head before it merges (the pre-merge gate).
    #[arg(long)]
    pub candidate: bool,
    /// The merge group: its queue ref (gh-readonly-queue/main/pr-7-<sha>) or, with
    /// --queue lease, any id (one line, at most 200 characters). Read from GITHUB_REF in a
    /// merge_group run.
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// The commit to deploy (a group's head, or a mainline commit). Read from GITHUB_SHA in CI.
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// After the channel moved, wait up to DURATION until every Flux consumer ([kubernetes] in
    /// mainline.toml) applied exactly this digest — the pre-merge gate. Exit 10 if not.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// The commit that landed [default: $GITHUB_SHA, else mainline's tip].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Wait up to DURATION until every Flux consumer applied the channel's digest (exit 10 if not).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// What to pin: a digest (sha256:…) in the channel's repository, or a commit whose
    /// artifact exists.
    #[arg(value_name = "DIGEST|COMMIT")]
    pub target: String,
    /// Why (recorded with the pin and shown by status); one non-empty line.
    #[arg(long)]
    pub reason: String,
    /// Lift the pin automatically after this long (e.g. 2h, 30m). Default: until unpin.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub expires: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct UnpinArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// An earlier mainline commit whose artifact the channel should name.
    #[arg(value_name = "COMMIT")]
    pub commit: String,
    /// Why (recorded with the rollback pin); one non-empty line.
    #[arg(long)]
    pub reason: String,
    /// Lift the rollback automatically after this long. Default: until unpin.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub expires: Option<std::time::Duration>,
}

const HISTORY_HELP: &str = "\
Examples:
  mainline history                       # every move, pin, unpin and refusal, oldest first
  mainline history --at 16:08            # what did prod run at 16:08 UTC today, and why?
  mainline history --since 2h -o json    # the last two hours, for scripts
  mainline history --verify              # check the hash chain (exit 8 when broken)";

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub channel: crate::config::ChannelArgs,
    /// Only records at or after TIME (RFC 3339, "YYYY-MM-DD HH:MM" or "HH:MM" UTC, or a
    /// duration ago such as 2h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Also say what the channel named at TIME (`now`, RFC 3339, "YYYY-MM-DD HH:MM" or "HH:MM"
    /// UTC, or a duration ago such as 2h), and which record put it there.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Check that every record names its predecessor's hash; exit 8 on a break.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Args)]
pub struct TourArgs {
    /// Keep the tour's store and repository in this directory (default: a temp dir, removed).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

const PUSH_HELP: &str = "\
Examples:
  # from a checkout, as CI would
  mainline push ./k8s --to oci://ghcr.io/acme/app-manifests --revision main@sha1:$GITHUB_SHA
  # straight from git objects (no checkout); same digest as the line above
  mainline push --git . --commit main --path k8s --to oci-layout:./store

STORE is oci://HOST[:PORT]/REPO (a registry) or oci-layout:PATH (an OCI image-layout directory).
Symlinks are refused (Flux drops them when it unpacks) unless --resolve-symlinks stores their
targets; names with a backslash are refused (Flux rejects the whole artifact).
The artifact is reproducible: the same tree, revision, source and created time give the same
digest on any machine. `created` defaults to the commit time when packing from git.
An empty deploy tree is refused (exit 2) unless --allow-empty: Flux would prune everything.
\"already present\" is reported only after every blob was verified in the store (registry: a
HEAD each; layout: a digest check); a missing or corrupt blob is uploaded again.";

const TAG_HELP: &str = "\
Examples:
  mainline tag oci://ghcr.io/acme/app-manifests:sha-0123abcd... latest
  mainline tag oci-layout:./store@sha256:4f1c... latest

The manifest bytes are copied unchanged, so the digest (and every signature on it) is kept.
Cost on a registry: one GET of the source manifest, one PUT, one HEAD to read the tag back.
Artifact tags (sha-<commit>) are immutable: re-pointing one to other bytes is refused (exit 9;
the same bytes again is a no-op), and one is only ever written with a manifest whose revision
records that commit (exit 2 otherwise).";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The directory to pack (omit with --git).
    #[arg(
        value_name = "DIR",
        required_unless_present = "git",
        conflicts_with = "git"
    )]
    pub dir: Option<PathBuf>,

    /// Where to push: oci://HOST[:PORT]/REPO or oci-layout:PATH.
    #[arg(long, value_name = "STORE", env = "MAINLINE_STORE")]
    pub to: String,

    /// The source revision, as flux takes it: <ref>@sha1:<commit>, or a bare commit id.
    /// Required for DIR; with --git it defaults to <REV>@sha1:<commit>.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,

    /// The source URL recorded in org.opencontainers.image.source. Defaults to
    /// $GITHUB_SERVER_URL/$GITHUB_REPOSITORY in GitHub Actions, else the --git REPO.
    #[arg(long, value_name = "URL", env = "MAINLINE_SOURCE")]
    pub source: Option<String>,

    /// Creation time (RFC 3339). Defaults to the commit's committer time, read from --git or
    /// from the git repository that contains DIR; never the wall clock, so builds reproduce.
    #[arg(long, value_name = "TIME")]
    pub created: Option<String>,

    /// Pack from this git repository's objects instead of a directory (no checkout).
    #[arg(long, value_name = "REPO")]
    pub git: Option<PathBuf>,

    /// With --git: the commit to pack (an id, a branch or HEAD).
    #[arg(long, value_name = "REV", requires = "git", default_value = "HEAD")]
    pub commit: String,

    /// With --git: the deploy folder inside the repository ("" or . for the whole tree).
    #[arg(long, value_name = "SUBDIR", requires = "git", default_value = ".")]
    pub path: String,

    /// Push even when the deploy tree holds no file. Refused by default (exit 2): Flux with
    /// `prune: true` deletes everything an empty artifact does not name.
    #[arg(long)]
    pub allow_empty: bool,

    /// Store what each symlink points to (a file's content, a folder's tree) under the link's
    /// name, as `flux push artifact --resolve-symlinks` does. Without it a symlink is refused:
    /// Flux drops symlinks when it unpacks, so the file would vanish from the cluster.
    #[arg(long)]
    pub resolve_symlinks: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// STORE:TAG or STORE@DIGEST, e.g. oci://127.0.0.1:5000/app:latest
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// STORE:TAG or STORE@DIGEST
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Where to extract the files.
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Extract into a non-empty directory, replacing files of the same name.
    #[arg(long)]
    pub force: bool,
    /// Refuse (exit 2, nothing extracted) a layer holding more file content than this, as its
    /// tar headers declare it: a few MiB of gzip can inflate to gigabytes. Suffixes K, M, G
    /// (KiB, MiB, GiB) [default: 100M, Flux's own untar limit]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Refuse (exit 2, nothing extracted) a layer with more entries (files, folders, links)
    /// than this [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_files: Option<u64>,
}

/// `123`, `512K`, `100M`, `1G` (also `KiB`, `MiB`, `GiB`; binary units) as bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 100M or 1048576"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use K, M or G")),
    };
    n.checked_mul(1u64 << shift)
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("{s:?} must be a positive size below 16 EiB"))
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The source: STORE:TAG or STORE@DIGEST.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The tag to point at the source's manifest (in the same repository).
    #[arg(value_name = "NEW_TAG")]
    pub new_tag: String,
}

const SIMULATE_HELP: &str = "\
Strategies: deploy-no-heal, heal-on-failure, heal-on-failure-or-cancel, heal-plus-cron,
promote-after-merge (the workflows in docs/simulate-baselines/), mainline (with its git-ref
lock), mainline-unlocked. Each history runs a merge queue with batching, failures, cancels,
force-cancels, timeouts, invalidations, re-enqueues, direct pushes, dying runners, skewed runner
clocks, scheduled/webhook/daemon reconcilers, an operator pin, and a registry and git remote
that answer 5xx, time out, lose responses after writes and hold channel writes past their
writer's lease. Clauses checked: S1-S5, L1 and G (DESIGN.md).

Examples:
  mainline simulate --histories 10000 --plot strategies.svg
  mainline simulate -o json --seed 7 --strategy mainline --strategy heal-on-failure
  mainline simulate --seed 7 --history 42 --strategy mainline --trace";

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Histories per strategy.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub histories: u64,
    /// The run's seed; the same seed gives byte-identical output [default: 1].
    #[arg(long, env = "MAINLINE_SIM_SEED", value_name = "S")]
    pub seed: Option<u64>,
    /// Only these strategies (repeatable) [default: all seven].
    #[arg(long = "strategy", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new([
        "deploy-no-heal", "heal-on-failure", "heal-on-failure-or-cancel", "heal-plus-cron",
        "promote-after-merge", "mainline", "mainline-unlocked"]))]
    pub strategy: Vec<String>,
    /// Also write the distributions as an SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run only history INDEX of the seed (replay a failing one).
    #[arg(long, value_name = "INDEX")]
    pub history: Option<u64>,
    /// With --history: print the history's event log.
    #[arg(long, requires = "history")]
    pub trace: bool,
    /// Turn off injected registry/git faults and runner deaths.
    #[arg(long)]
    pub no_faults: bool,
    /// Worker threads [default: the number of CPUs]; results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print the wall-clock time and histories per second to stderr.
    #[arg(long)]
    pub timing: bool,
}
