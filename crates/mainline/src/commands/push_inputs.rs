//! What `push` records in the artifact — revision, source, created — and where its tree comes
//! from (a directory, a local repository, or any git remote URL), resolved before anything is
//! packed or sent.
//!
//! Why one place: a newcomer who forgets several inputs is told about all of them in one error
//! (not one per attempt), and `--git` means the same as in the channel commands: any remote
//! (a path, `file://`, `https://`, `ssh://`), fetched blob-less into mainline's cache.
//!
//! Must never: read the wall clock for `created` (the artifact would not reproduce), record a
//! revision whose commit differs from the commit packed, or print a remote URL with its
//! credentials.

use crate::cli::PushArgs;
use crate::error::CliError;
use mainline_core::{CommitId, Revision};
use mainline_git::GitRemote;
use std::path::{Path, PathBuf};

/// `created` outside git with no `--created`: what `flux push artifact --reproducible` records.
pub const REPRODUCIBLE_EPOCH: &str = "1970-01-01T00:00:00Z";

/// Where `created` came from (shown by `push`, key `created_from` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatedFrom {
    /// `--created`.
    Flag,
    /// The commit's committer time.
    Commit,
    /// No git repository around DIR and no `--created`: the Unix epoch, as flux does.
    ReproducibleEpoch,
}

/// The repository `--git` names, ready to pack from.
pub struct GitSource {
    /// A repository with the commit's objects: the local one, or mainline's cache of a remote.
    pub objects: PathBuf,
    pub commit: CommitId,
    pub created: String,
    /// The branch or tag the user named (or the one branch that contains a given id).
    pub reference: Option<String>,
    /// The default `--source`: the origin of a local repository, else the REPO itself.
    pub default_source: String,
    /// For a remote: the cache, whose blobs of the deploy folder are fetched only when the
    /// tree must be packed (the tree index may spare it). `None` for a local repository.
    pub remote: Option<GitRemote>,
}

impl GitSource {
    /// Make the deploy folder's blobs available for packing (a remote's are fetched now).
    pub fn fetch_blobs(&self, path: &str) -> Result<(), CliError> {
        match &self.remote {
            Some(remote) => remote
                .fetch_blobs(&self.commit, path)
                .map_err(CliError::from),
            None => Ok(()),
        }
    }
}

/// Whether `--git REPO` names a remote URL rather than a local directory. A path that exists
/// is local; `scheme://…` and scp-like `user@host:path` are remotes.
pub fn is_remote(repo: &str) -> bool {
    if Path::new(repo).exists() {
        return false;
    }
    repo.contains("://") || (repo.contains('@') && repo.contains(':'))
}

/// Open `--git REPO` at `--commit REV`: read a local repository directly, or fetch the commit
/// (and its deploy folder's blobs) from a remote into mainline's cache.
/// Every git call for a remote is bounded by `deadline` (the command's).
pub fn open_git(
    args: &PushArgs,
    repo: &str,
    deadline: Option<std::time::Instant>,
) -> Result<GitSource, CliError> {
    if is_remote(repo) {
        return open_remote(args, repo, deadline);
    }
    let path = Path::new(repo);
    if !path.is_dir() {
        return Err(CliError::invalid(format!(
            "--git {repo}: no such repository (neither a directory nor a remote URL)"
        ))
        .with_hint("pass a local repository path, or a remote such as https://github.com/acme/app.git or file:///srv/git/app.git"));
    }
    let info = mainline_pack::git_commit_info(path, &args.commit)
        .map_err(crate::commands::push::pack_err)?;
    let reference = reference_for(path, &args.commit, &info.id);
    let default_source = origin_of(path).unwrap_or_else(|| file_url(path));
    Ok(GitSource {
        objects: path.to_owned(),
        commit: info.id,
        created: info.time,
        reference,
        default_source,
        remote: None,
    })
}

fn open_remote(
    args: &PushArgs,
    url: &str,
    deadline: Option<std::time::Instant>,
) -> Result<GitSource, CliError> {
    let git = CliError::from;
    // The channel commands' cache (MAINLINE_CACHE_DIR, else the XDG cache): shared objects.
    let root = crate::config::cache_root(std::env::var_os("MAINLINE_CACHE_DIR").map(PathBuf::from));
    let remote = GitRemote::open(url, &root.join("git"))
        .map_err(git)?
        .with_deadline(deadline);
    let rev = args.commit.as_str();
    let (target, reference) = if rev.parse::<CommitId>().is_ok() {
        (rev.to_owned(), None)
    } else if rev == "HEAD" {
        return Err(CliError::invalid(format!(
            "--git {}: a remote has no HEAD of yours to pack",
            remote.url()
        ))
        .with_hint("name the branch or full commit id to pack, e.g. --commit main"));
    } else if rev.starts_with("refs/") {
        let short = rev
            .strip_prefix("refs/heads/")
            .or_else(|| rev.strip_prefix("refs/tags/"));
        (rev.to_owned(), Some(short.unwrap_or(rev).to_owned()))
    } else {
        (format!("refs/heads/{rev}"), Some(rev.to_owned()))
    };
    remote.fetch(std::slice::from_ref(&target)).map_err(git)?;
    let commit = remote
        .snapshot()
        .and_then(|s| s.resolve(&target))
        .map_err(git)?;
    let info = mainline_pack::git_commit_info(remote.cache_path(), commit.as_str())
        .map_err(crate::commands::push::pack_err)?;
    Ok(GitSource {
        objects: remote.cache_path().to_owned(),
        commit,
        created: info.time,
        reference,
        default_source: remote.url().redacted().to_owned(),
        remote: Some(remote),
    })
}

/// The ref recorded for `--commit REV`: the name itself for a branch or tag; for a commit id
/// (full or abbreviated), the one local branch whose tip it is, else the one that contains it;
/// `None` (recorded as `sha1:<id>`) for HEAD, expressions like `main~2`, or when ambiguous.
fn reference_for(repo: &Path, rev: &str, id: &CommitId) -> Option<String> {
    if rev == "HEAD" || rev.contains(['~', '^', ':', '@', '{']) {
        return None;
    }
    let hex = rev.len() >= 4 && rev.chars().all(|c| c.is_ascii_hexdigit());
    if !hex {
        return Some(rev.to_owned());
    }
    let branches = |filter: &str| -> Vec<String> {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args([
                "for-each-ref",
                "--format=%(refname:short)",
                filter,
                id.as_str(),
            ])
            .arg("refs/heads")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    for filter in ["--points-at", "--contains"] {
        let found = branches(filter);
        if found.len() == 1 {
            return found.into_iter().next();
        }
        if found.len() > 1 {
            return None;
        }
    }
    None
}

/// The revision to record: `--revision` (checked against the packed commit), else
/// `<ref>@sha1:<id>` or `sha1:<id>`.
pub fn git_revision(args: &PushArgs, src: &GitSource) -> Result<Revision, CliError> {
    match &args.revision {
        Some(r) => {
            let r: Revision = r.parse()?;
            if r.commit != src.commit {
                return Err(CliError::invalid(format!(
                    "--revision {r} names commit {}, but --commit {} is {}",
                    r.commit, args.commit, src.commit
                )));
            }
            Ok(r)
        }
        None => Ok(Revision::new(src.reference.clone(), src.commit.clone())),
    }
}

/// Everything `push DIR` records, or one error naming every missing input.
pub struct DirInputs {
    pub revision: Revision,
    pub source: String,
    pub created: String,
    pub created_from: CreatedFrom,
}

pub fn dir_inputs(args: &PushArgs, dir: &Path) -> Result<DirInputs, CliError> {
    let repo = enclosing_repo(dir);
    let source = args
        .source
        .clone()
        .or_else(github_source)
        .or_else(|| repo.as_deref().and_then(origin_of));
    let mut missing = Vec::new();
    if args.revision.is_none() {
        missing.push(
            "--revision REV   the commit DIR was built from, e.g. --revision main@sha1:$GITHUB_SHA",
        );
    }
    if source.is_none() {
        missing.push("--source URL     the repository it comes from, e.g. --source https://github.com/acme/app (flux shows it)");
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing
            .iter()
            .map(|m| m.split_whitespace().next().unwrap_or(m))
            .collect();
        return Err(CliError::invalid(format!(
            "push {} needs {}:\n  {}",
            dir.display(),
            names.join(" and "),
            missing.join("\n  ")
        ))
        .with_hint("in GitHub Actions --source defaults to the run's repository, and inside a checkout to its origin; --created defaults to the commit time"));
    }
    let revision: Revision = args.revision.as_deref().unwrap_or_default().parse()?;
    let (created, created_from) = match (&args.created, &repo) {
        (Some(c), _) => (c.clone(), CreatedFrom::Flag),
        (None, Some(repo)) => {
            let info = mainline_pack::git_commit_info(repo, revision.commit.as_str()).map_err(|_| {
                CliError::invalid(format!(
                    "cannot tell when commit {} was made: the git repository at {} does not have it",
                    revision.commit,
                    repo.display()
                ))
                .with_hint("check --revision (a typo?), fetch the commit, or pass --created with its time (RFC 3339), e.g. --created 2024-05-01T12:00:00Z")
            })?;
            (info.time, CreatedFrom::Commit)
        }
        (None, None) => (
            REPRODUCIBLE_EPOCH.to_owned(),
            CreatedFrom::ReproducibleEpoch,
        ),
    };
    Ok(DirInputs {
        revision,
        source: source.expect("checked above"),
        created,
        created_from,
    })
}

/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY` in GitHub Actions.
pub fn github_source() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (server, name) = (env("GITHUB_SERVER_URL")?, env("GITHUB_REPOSITORY")?);
    Some(format!("{}/{name}", server.trim_end_matches('/')))
}

/// The repository's `origin` URL without credentials.
fn origin_of(repo: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["config", "--get", "remote.origin.url"])
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !url.is_empty()).then(|| crate::config::redact_url(&url))
}

fn file_url(path: &Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    format!("file://{}", abs.display())
}

/// The git repository (work tree) enclosing `dir`, if any.
fn enclosing_repo(dir: &Path) -> Option<PathBuf> {
    let mut cur: Option<PathBuf> = dir.canonicalize().ok();
    while let Some(d) = cur {
        if d.join(".git").exists() {
            return Some(d);
        }
        cur = d.parent().map(Path::to_path_buf);
    }
    None
}
