//! `mainline push`: pack a directory or a git tree reproducibly and push it under its
//! immutable `sha-<commit>` tag. Never moves any other tag.

use super::push_inputs::{self as inputs, CreatedFrom};
use crate::artifact::{push_packed, PushOutcome};
use crate::cli::PushArgs;
use crate::error::{CliError, Kind};
use crate::output::{bytes_bar, emit};
use crate::settings::Context;
use mainline_pack::{ArtifactMeta, Packed};
use mainline_store::Location;
use std::io::Write;
use std::path::Path;

#[derive(serde::Serialize)]
struct PushReport {
    #[serde(flatten)]
    outcome: PushOutcome,
    source: String,
    created: String,
    /// `flag`, `commit`, or `reproducible_epoch` (no git around DIR and no `--created`).
    created_from: CreatedFrom,
    /// Regular files packed: the same count `pull` and `inspect` give for this artifact.
    files: u64,
    content_bytes: u64,
    layer_bytes: u64,
}

pub fn run(ctx: &Context, args: &PushArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let location: Location = args.to.parse()?;
    let scratch = tempfile::tempdir()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot create a temp dir: {e}")))?;
    let (meta, packed, created_from) = match (&args.dir, &args.git) {
        (_, Some(repo)) => pack_from_git(ctx, args, repo, scratch.path())?,
        (Some(dir), None) => pack_from_dir(ctx, args, dir, scratch.path())?,
        (None, None) => return Err(CliError::invalid("push needs a DIR to pack, or --git REPO")),
    };
    if !args.allow_empty {
        let root = match (&args.dir, &args.git) {
            (_, Some(repo)) => format!("{}:{} of {repo}", args.commit, args.path),
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
        created_from,
        files: packed.files,
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
        writeln!(w, "  source    {}", report.source)?;
        let why = match report.created_from {
            CreatedFrom::Flag => "from --created",
            CreatedFrom::Commit => "the commit's time",
            CreatedFrom::ReproducibleEpoch => {
                "no git repository around DIR and no --created: the reproducible epoch, as `flux push artifact --reproducible` records"
            }
        };
        writeln!(w, "  created   {} ({why})", report.created)?;
        writeln!(
            w,
            "  files     {} ({} bytes, layer {} bytes)",
            report.files, report.content_bytes, report.layer_bytes
        )
    })
    .map_err(io_err)
}

type Made = (ArtifactMeta, Packed, CreatedFrom);

fn pack_from_git(
    ctx: &Context,
    args: &PushArgs,
    repo: &str,
    scratch: &Path,
) -> Result<Made, CliError> {
    let src = inputs::open_git(args, repo, ctx.deadline_at())?;
    let revision = inputs::git_revision(args, &src)?;
    let (created, from) = match &args.created {
        Some(c) => (c.clone(), CreatedFrom::Flag),
        None => (src.created.clone(), CreatedFrom::Commit),
    };
    let source = args
        .source
        .clone()
        .or_else(inputs::github_source)
        .unwrap_or_else(|| src.default_source.clone());
    let meta = ArtifactMeta::new(source, revision, &created).map_err(format_err)?;
    let bar = bytes_bar(ctx, None, "pack");
    let packed = mainline_pack::pack_git_with(
        &src.objects,
        &src.commit,
        &args.path,
        &meta,
        scratch,
        pack_options(args),
        &mut |n| bar.set_position(n),
    )
    .map_err(pack_err)?;
    bar.finish_and_clear();
    Ok((meta, packed, from))
}

fn pack_from_dir(
    ctx: &Context,
    args: &PushArgs,
    dir: &Path,
    scratch: &Path,
) -> Result<Made, CliError> {
    if dir.is_file() {
        return Err(CliError::invalid(format!(
            "{}: is a file, not a directory; push packs a directory",
            dir.display()
        ))
        .with_hint("pass the folder that holds it (e.g. its parent), or push from git with --git REPO --path SUBDIR"));
    }
    if !dir.is_dir() {
        return Err(CliError::invalid(format!(
            "{}: no such directory to pack",
            dir.display()
        )));
    }
    let i = inputs::dir_inputs(args, dir)?;
    let meta = ArtifactMeta::new(i.source, i.revision, &i.created).map_err(format_err)?;
    let bar = bytes_bar(ctx, None, "pack");
    let packed = mainline_pack::pack_dir_with(dir, &meta, scratch, pack_options(args), &mut |n| {
        bar.set_position(n)
    })
    .map_err(pack_err)?;
    bar.finish_and_clear();
    Ok((meta, packed, i.created_from))
}

fn pack_options(args: &PushArgs) -> mainline_pack::PackOptions {
    let symlinks = if args.resolve_symlinks {
        mainline_pack::Symlinks::Resolve
    } else {
        mainline_pack::Symlinks::Refuse
    };
    mainline_pack::PackOptions {
        symlinks,
        ..Default::default()
    }
}

pub(crate) use crate::error::{format_err, pack_err};

pub(crate) fn io_err(e: std::io::Error) -> CliError {
    crate::error::output_error(e)
}
