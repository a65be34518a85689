//! `mainline push`: pack a directory or a git tree reproducibly and push it under its
//! immutable `sha-<commit>` tag. Never moves any other tag.

use crate::artifact::{push_packed, PushOutcome};
use crate::cli::PushArgs;
use crate::error::{CliError, Kind};
use crate::output::{bytes_bar, emit};
use crate::settings::Context;
use mainline_core::{CommitId, Revision};
use mainline_pack::{ArtifactMeta, Packed};
use mainline_store::Location;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(serde::Serialize)]
struct PushReport {
    #[serde(flatten)]
    outcome: PushOutcome,
    source: String,
    created: String,
    files: u64,
    content_bytes: u64,
    layer_bytes: u64,
}

pub fn run(ctx: &Context, args: &PushArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let location: Location = args.to.parse()?;
    let scratch = tempfile::tempdir()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot create a temp dir: {e}")))?;
    let (meta, packed) = match (&args.dir, &args.git) {
        (_, Some(repo)) => pack_from_git(ctx, args, repo, scratch.path())?,
        (Some(dir), None) => pack_from_dir(ctx, args, dir, scratch.path())?,
        (None, None) => return Err(CliError::invalid("push needs a DIR to pack, or --git REPO")),
    };
    if !args.allow_empty {
        let root = match (&args.dir, &args.git) {
            (_, Some(repo)) => format!("{}:{} of {}", args.commit, args.path, repo.display()),
            (Some(dir), None) => dir.display().to_string(),
            (None, None) => String::new(),
        };
        packed.refuse_empty(&root).map_err(pack_err)?;
    }

    // Validate the destination before uploading anything.
    let store = ctx.open_store(&location)?;
    let bar = bytes_bar(ctx, Some(packed.layer.size + packed.config.size), "upload");
    let outcome = push_packed(store.as_ref(), &packed, &meta.revision, &mut |n| {
        bar.set_position(n)
    })?;
    bar.finish_and_clear();

    let report = PushReport {
        outcome,
        source: meta.source.clone(),
        created: meta.created.clone(),
        files: packed.entries,
        content_bytes: packed.content_bytes,
        layer_bytes: packed.layer.size,
    };
    emit(ctx, out, &report, |w| {
        let o = &report.outcome;
        let what = if o.already_present {
            "already present".to_owned()
        } else {
            format!(
                "uploaded {} bytes in {} blob(s)",
                o.bytes_uploaded, o.blobs_uploaded
            )
        };
        writeln!(w, "pushed {}:{} ({what})", o.repository, o.tag)?;
        writeln!(w, "  digest    {}", o.digest)?;
        writeln!(w, "  revision  {}", o.revision)?;
        writeln!(
            w,
            "  files     {} ({} bytes, layer {} bytes)",
            report.files, report.content_bytes, report.layer_bytes
        )
    })
    .map_err(io_err)
}

fn pack_from_git(
    ctx: &Context,
    args: &PushArgs,
    repo: &Path,
    scratch: &Path,
) -> Result<(ArtifactMeta, Packed), CliError> {
    let info = mainline_pack::git_commit_info(repo, &args.commit).map_err(pack_err)?;
    let revision = match &args.revision {
        Some(r) => {
            let r: Revision = r.parse()?;
            if r.commit != info.id {
                return Err(CliError::invalid(format!(
                    "--revision {r} names commit {}, but --commit {} is {}",
                    r.commit, args.commit, info.id
                )));
            }
            r
        }
        None => default_revision(&args.commit, info.id.clone()),
    };
    let created = args.created.clone().unwrap_or(info.time);
    let source = source_for(args, Some(repo))?;
    let meta = ArtifactMeta::new(source, revision, &created).map_err(format_err)?;
    let bar = bytes_bar(ctx, None, "pack");
    let packed = mainline_pack::pack_git_with(
        repo,
        &info.id,
        &args.path,
        &meta,
        scratch,
        pack_options(args),
        &mut |n| bar.set_position(n),
    )
    .map_err(pack_err)?;
    bar.finish_and_clear();
    Ok((meta, packed))
}

fn pack_from_dir(
    ctx: &Context,
    args: &PushArgs,
    dir: &Path,
    scratch: &Path,
) -> Result<(ArtifactMeta, Packed), CliError> {
    let revision: Revision = args
        .revision
        .as_deref()
        .ok_or_else(|| {
            CliError::invalid(format!("push {} needs --revision", dir.display())).with_hint(
                "pass the commit it was built from, e.g. --revision main@sha1:$GITHUB_SHA",
            )
        })?
        .parse()?;
    if !dir.is_dir() {
        return Err(CliError::invalid(format!(
            "{}: no such directory to pack",
            dir.display()
        )));
    }
    let created = match &args.created {
        Some(c) => c.clone(),
        None => commit_time_near(dir, &revision.commit).ok_or_else(|| {
            CliError::invalid(format!(
                "cannot tell when commit {} was made: {} is not inside a git repository that has it",
                revision.commit,
                dir.display()
            ))
            .with_hint("pass --created with the commit time (RFC 3339), e.g. --created 2024-05-01T12:00:00Z")
        })?,
    };
    let source = source_for(args, None)?;
    let meta = ArtifactMeta::new(source, revision, &created).map_err(format_err)?;
    let bar = bytes_bar(ctx, None, "pack");
    let packed = mainline_pack::pack_dir_with(dir, &meta, scratch, pack_options(args), &mut |n| {
        bar.set_position(n)
    })
    .map_err(pack_err)?;
    bar.finish_and_clear();
    Ok((meta, packed))
}

fn pack_options(args: &PushArgs) -> mainline_pack::PackOptions {
    let symlinks = if args.resolve_symlinks {
        mainline_pack::Symlinks::Resolve
    } else {
        mainline_pack::Symlinks::Refuse
    };
    mainline_pack::PackOptions { symlinks }
}

/// The revision recorded when packing from git without --revision: `<ref>@sha1:<id>` for a
/// named ref, `sha1:<id>` for HEAD or a commit id.
fn default_revision(rev: &str, id: CommitId) -> Revision {
    let named = rev != "HEAD" && rev.parse::<CommitId>().is_err();
    Revision::new(named.then(|| rev.to_owned()), id)
}

/// `--source`, else `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY` in GitHub Actions, else (with
/// `--git`) the repository's `origin` URL without credentials.
fn source_for(args: &PushArgs, repo: Option<&Path>) -> Result<String, CliError> {
    if let Some(s) = &args.source {
        return Ok(s.clone());
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(name)) = (env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY")) {
        return Ok(format!("{}/{name}", server.trim_end_matches('/')));
    }
    let origin = repo.and_then(|r| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(r)
            .args(["config", "--get", "remote.origin.url"])
            .output()
            .ok()?;
        let url = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !url.is_empty()).then(|| crate::config::redact_url(&url))
    });
    origin.ok_or_else(|| {
        CliError::invalid("push needs --source URL: the repository the artifact comes from")
            .with_hint("e.g. --source https://github.com/acme/app (flux shows it); in GitHub Actions it defaults to the run's repository")
    })
}

/// The committer time of `commit` in the git repository enclosing `dir`, if there is one.
fn commit_time_near(dir: &Path, commit: &CommitId) -> Option<String> {
    let mut cur: Option<PathBuf> = dir.canonicalize().ok();
    while let Some(d) = cur {
        if d.join(".git").exists() {
            return mainline_pack::git_commit_info(&d, commit.as_str())
                .ok()
                .map(|i| i.time);
        }
        cur = d.parent().map(Path::to_path_buf);
    }
    None
}

pub(crate) fn pack_err(e: mainline_pack::PackError) -> CliError {
    use mainline_pack::PackError as P;
    let kind = match &e {
        P::Read { .. } | P::Scratch { .. } | P::Changed { .. } => Kind::Internal,
        P::MissingObject { .. } => Kind::Unavailable,
        _ => Kind::InvalidInput,
    };
    CliError::new(kind, crate::error::chain_message(&e))
}

pub(crate) fn format_err(e: mainline_pack::FormatError) -> CliError {
    CliError::invalid(crate::error::chain_message(&e))
}

pub(crate) fn io_err(e: std::io::Error) -> CliError {
    CliError::new(Kind::Internal, format!("cannot write output: {e}"))
}
