//! Each command's arguments (`cli.rs` holds the command line itself: global flags and the
//! command list). Flag names, value names and environment variables are a public contract.

use clap::Args;
use std::path::PathBuf;

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
    /// Check that every record names its predecessor's hash; exit 8 on a break. A chain this
    /// machine verified before is checked from its checkpoint on (under the cache dir) when
    /// --last is given, so a long journal is not re-read from record 1.
    #[arg(long)]
    pub verify: bool,
    /// Only the newest N records, read back from the head (cost: N records, not the chain).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TourArgs {
    /// Keep the tour's store and repository in this directory (default: a temp dir, removed).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

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
    /// Required for DIR; with --git it defaults to <branch>@sha1:<commit> (or sha1:<commit>).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,

    /// The source URL recorded in org.opencontainers.image.source. Required, unless it can be
    /// found: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY in GitHub Actions, else the origin of the
    /// git repository around DIR (or of --git REPO), else the --git REPO itself.
    #[arg(long, value_name = "URL", env = "MAINLINE_SOURCE")]
    pub source: Option<String>,

    /// Creation time (RFC 3339). Defaults to the commit's committer time, read from --git or
    /// from the git repository that contains DIR; never the wall clock, so builds reproduce.
    /// Outside git, 1970-01-01T00:00:00Z (as `flux push artifact --reproducible`), and said so.
    #[arg(long, value_name = "TIME")]
    pub created: Option<String>,

    /// Pack from this git repository's objects instead of a directory (no checkout): a local
    /// path, or any remote URL the channel commands take (file://, https://, ssh://), fetched
    /// blob-less into mainline's cache.
    #[arg(long, value_name = "REPO")]
    pub git: Option<String>,

    /// With --git: the commit to pack (an id, a branch or HEAD; from a remote URL a branch, a
    /// refs/... name or a full id). A commit id is recorded with the one local branch that
    /// contains it (<branch>@sha1:<id>), else as sha1:<id>.
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

    /// With --git: pack the tree even when the store's tree index (tag tree-<tree id>-p<N>)
    /// names it already, and write the entry again. Without it, a deploy tree that was pushed
    /// before costs one manifest write, not a pack and upload.
    #[arg(long, requires = "git")]
    pub repack: bool,
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
