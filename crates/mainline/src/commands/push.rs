//! `mainline push`: pack a directory or a git tree reproducibly and push it under its
//! immutable `sha-<commit>` tag. Never moves any other tag.

use super::push_inputs::{self as inputs, CreatedFrom, GitSource};
use crate::artifact::PushOutcome;
use crate::cli::PushArgs;
use crate::error::{CliError, Kind};
use crate::output::{bytes_bar, emit};
use crate::settings::Context;
use crate::tree_index::TreeKey;
use crate::tree_push::{push_tree, IndexUse, TreeSource};
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
    /// With --git: the deploy tree's git tree id (the store's tree index is keyed by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    tree: Option<String>,
    /// What the store's tree index did: `reused` (nothing packed or uploaded), `recorded`,
    /// `kept`, `not_recorded`, or `unused` (a directory push).
    tree_index: IndexUse,
    /// Why the index was not used or not written, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_index_note: Option<String>,
}

/// What is pushed: the commit's metadata, its deploy tree's id (git only), and how to pack it.
struct Prepared<'a> {
    meta: ArtifactMeta,
    created_from: CreatedFrom,
    key: Option<TreeKey>,
    root: String,
    pack: Box<dyn FnMut() -> Result<Packed, CliError> + 'a>,
}

pub fn run(ctx: &Context, args: &PushArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let location: Location = args.to.parse()?;
    let scratch = tempfile::tempdir()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot create a temp dir: {e}")))?;
    let mut prepared = match (&args.dir, &args.git) {
        (_, Some(repo)) => prepare_git(ctx, args, repo, scratch.path())?,
        (Some(dir), None) => prepare_dir(ctx, args, dir, scratch.path())?,
        (None, None) => return Err(CliError::invalid("push needs a DIR to pack, or --git REPO")),
    };
    // A directory has no tree id to look up, and a layout that does not exist yet has no
    // index: pack first, so an input refused (an empty tree) leaves nothing behind. Otherwise
    // the store is opened first, and the index may spare the pack.
    let new_layout = matches!(&location, Location::Layout { path } if !path.exists());
    let mut packed_first = None;
    if prepared.key.is_none() || new_layout {
        let packed = (prepared.pack)()?;
        if !args.allow_empty {
            packed.refuse_empty(&prepared.root).map_err(pack_err)?;
        }
        packed_first = Some(packed);
    }

    // Validate the destination before uploading anything.
    let store = ctx.open_store(&location)?;
    let src = TreeSource {
        key: prepared.key.clone(),
        meta: &prepared.meta,
        allow_empty: args.allow_empty,
        root: prepared.root.clone(),
        lookup: !args.repack && packed_first.is_none(),
    };
    // The upload's size is known once packed (a reuse uploads nothing).
    let bar = bytes_bar(ctx, Some(0), "upload");
    let mut pack = || {
        let packed = match packed_first.take() {
            Some(p) => p,
            None => (prepared.pack)()?,
        };
        bar.set_length(packed.layer.size + packed.config.size);
        Ok::<_, CliError>(packed)
    };
    let pushed = push_tree(store.as_ref(), &src, &mut pack, &mut |n| {
        bar.set_position(n)
    })?;
    bar.finish_and_clear();

    let report = PushReport {
        outcome: pushed.outcome,
        source: prepared.meta.source.clone(),
        created: prepared.meta.created.clone(),
        created_from: prepared.created_from,
        files: pushed.files,
        content_bytes: pushed.content_bytes,
        layer_bytes: pushed.layer_bytes,
        tree: prepared.key.as_ref().map(|k| k.tree().to_owned()),
        tree_index: pushed.index,
        tree_index_note: pushed.note,
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
        )?;
        if let Some(tree) = &report.tree {
            let index = match report.tree_index {
                IndexUse::Reused => "reused from the store's tree index: nothing packed",
                IndexUse::Recorded => "packed, and recorded in the store's tree index",
                IndexUse::Kept => "packed; the store's tree index already had it",
                IndexUse::NotRecorded => "packed; not recorded in the store's tree index",
                IndexUse::Unused => "packed",
            };
            writeln!(w, "  tree      {tree} ({index})")?;
        }
        match &report.tree_index_note {
            Some(note) => writeln!(w, "  note      {note}"),
            None => Ok(()),
        }
    })
    .map_err(io_err)
}

fn prepare_git<'a>(
    ctx: &Context,
    args: &'a PushArgs,
    repo: &str,
    scratch: &'a Path,
) -> Result<Prepared<'a>, CliError> {
    let src: GitSource = inputs::open_git(args, repo, ctx.deadline_at())?;
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
    // Commits and trees are enough for the tree id; a path that is not there is reported by
    // the pack, with its own message.
    let options = pack_options(args);
    let key = mainline_pack::git_tree_id(&src.objects, &src.commit, &args.path)
        .ok()
        .and_then(|tree| TreeKey::new(&tree, options.symlinks));
    let root = format!("{}:{} of {repo}", args.commit, args.path);
    let pack_meta = meta.clone();
    let show_progress = bytes_bar(ctx, None, "pack");
    let pack = move || {
        src.fetch_blobs(&args.path)?;
        let packed = mainline_pack::pack_git_with(
            &src.objects,
            &src.commit,
            &args.path,
            &pack_meta,
            scratch,
            options,
            &mut |n| show_progress.set_position(n),
        )
        .map_err(pack_err)?;
        show_progress.finish_and_clear();
        Ok(packed)
    };
    Ok(Prepared {
        meta,
        created_from: from,
        key,
        root,
        pack: Box::new(pack),
    })
}

fn prepare_dir<'a>(
    ctx: &Context,
    args: &'a PushArgs,
    dir: &'a Path,
    scratch: &'a Path,
) -> Result<Prepared<'a>, CliError> {
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
    let pack_meta = meta.clone();
    let show_progress = bytes_bar(ctx, None, "pack");
    let pack = move || {
        let packed =
            mainline_pack::pack_dir_with(dir, &pack_meta, scratch, pack_options(args), &mut |n| {
                show_progress.set_position(n)
            })
            .map_err(pack_err)?;
        show_progress.finish_and_clear();
        Ok(packed)
    };
    Ok(Prepared {
        meta,
        created_from: i.created_from,
        key: None,
        root: dir.display().to_string(),
        pack: Box::new(pack),
    })
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
