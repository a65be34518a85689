//! `mainline inspect` and `mainline pull`: read an artifact back — its manifest, annotations
//! and files — and, for pull, extract the files safely (nothing outside the target directory,
//! nothing half-written).

use crate::artifact::fetch_existing;
use crate::cli::{InspectArgs, PullArgs};
use crate::commands::push::io_err;
use crate::error::{chain_message, CliError, Kind};
use crate::output::{bytes_bar, emit};
use crate::settings::Context;
use mainline_core::Digest;
use mainline_pack::{EntryInfo, EntryKind, FluxManifest};
use mainline_store::{Reference, Store, StoredManifest};
use std::collections::BTreeMap;
use std::io::{Seek, Write};

#[derive(serde::Serialize)]
struct DescriptorReport {
    media_type: String,
    digest: Digest,
    size: u64,
}

#[derive(serde::Serialize)]
struct FileReport {
    path: String,
    kind: &'static str,
    size: u64,
    mode: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl From<EntryInfo> for FileReport {
    fn from(e: EntryInfo) -> FileReport {
        let kind = match e.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            #[allow(unreachable_patterns)]
            _ => "other",
        };
        FileReport {
            path: e.path,
            kind,
            size: e.size,
            mode: e.mode,
            target: e.target,
        }
    }
}

#[derive(serde::Serialize)]
struct InspectReport {
    reference: String,
    digest: Digest,
    media_type: String,
    config: DescriptorReport,
    layers: Vec<DescriptorReport>,
    annotations: BTreeMap<String, String>,
    revision: Option<String>,
    /// The commit the revision records, in any form Flux users write (`<ref>@sha1:<sha>`,
    /// `sha1:<sha>`, a bare sha, the legacy `<ref>/<sha>`); `None` when absent or unreadable.
    commit: Option<String>,
    /// `mainline` when the config blob is mainline's `{}`; `another tool` otherwise (e.g.
    /// `flux push artifact`, which writes an image config: same tree, another digest).
    made_by: &'static str,
    files: Vec<FileReport>,
}

/// The manifest a reference names, parsed as a Flux artifact.
fn load(
    store: &dyn Store,
    reference: &Reference,
) -> Result<(StoredManifest, FluxManifest), CliError> {
    let stored = fetch_existing(store, &reference.target)?;
    let flux = mainline_pack::parse_manifest(&stored.bytes).map_err(|e| {
        CliError::invalid(format!(
            "{reference}: not an OCI artifact manifest: {}",
            chain_message(&e)
        ))
    })?;
    if !flux.is_flux() {
        return Err(CliError::invalid(format!(
            "{reference} is not a Flux artifact (expected config {} and one {} layer)",
            mainline_pack::FLUX_CONFIG_MEDIA_TYPE,
            mainline_pack::FLUX_LAYER_MEDIA_TYPE
        )));
    }
    Ok((stored, flux))
}

/// Download the single layer to a temp file (streamed, digest-verified by the store).
fn download_layer(
    ctx: &Context,
    store: &dyn Store,
    flux: &FluxManifest,
) -> Result<std::fs::File, CliError> {
    let layer = &flux.layers[0];
    let mut file = tempfile::tempfile()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot create a temp file: {e}")))?;
    let bar = bytes_bar(ctx, Some(layer.size), "download");
    let mut w = bar.wrap_write(&mut file);
    store.fetch_blob(&layer.digest, &mut w)?;
    bar.finish_and_clear();
    file.rewind()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot rewind a temp file: {e}")))?;
    Ok(file)
}

pub fn inspect(ctx: &Context, args: &InspectArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let reference: Reference = args.reference.parse()?;
    let store = ctx.open_store_read_only(&reference.location)?;
    let (stored, flux) = load(store.as_ref(), &reference)?;
    let layer = download_layer(ctx, store.as_ref(), &flux)?;
    let files = mainline_pack::list(layer).map_err(|e| {
        CliError::new(
            Kind::Integrity,
            format!("{reference}: unreadable layer: {}", chain_message(&e)),
        )
    })?;
    let d = |x: &mainline_pack::Descriptor| DescriptorReport {
        media_type: x.media_type.clone(),
        digest: x.digest.clone(),
        size: x.size,
    };
    let report = InspectReport {
        reference: reference.to_string(),
        digest: stored.digest.clone(),
        media_type: stored.media_type.clone(),
        config: d(&flux.config),
        layers: flux.layers.iter().map(d).collect(),
        revision: flux
            .annotations
            .get(mainline_pack::ANNOTATION_REVISION)
            .cloned(),
        commit: flux
            .revision()
            .and_then(Result::ok)
            .map(|r| r.commit.to_string()),
        made_by: if flux.config.digest == Digest::of(mainline_pack::FLUX_CONFIG_BYTES) {
            "mainline"
        } else {
            "another tool"
        },
        annotations: flux.annotations.clone(),
        files: files.into_iter().map(FileReport::from).collect(),
    };
    emit(ctx, out, &report, |w| {
        writeln!(w, "{}", report.reference)?;
        writeln!(w, "  digest      {}", report.digest)?;
        writeln!(w, "  media type  {}", report.media_type)?;
        writeln!(
            w,
            "  config      {} {}",
            report.config.media_type, report.config.digest
        )?;
        for l in &report.layers {
            writeln!(
                w,
                "  layer       {} {} ({} bytes)",
                l.media_type, l.digest, l.size
            )?;
        }
        for (k, v) in &report.annotations {
            writeln!(w, "  {k} = {v}")?;
        }
        if let Some(c) = &report.commit {
            writeln!(w, "  commit      {c}")?;
        }
        writeln!(w, "  made by     {}", report.made_by)?;
        // Files are regular files, as `push` and `pull` count them; folders and links apart.
        let count = |k: &str| report.files.iter().filter(|f| f.kind == k).count();
        writeln!(
            w,
            "  files ({}; {} folders, {} links):",
            count("file"),
            count("dir"),
            count("symlink")
        )?;
        for f in &report.files {
            writeln!(w, "    {:o} {:>10} {}", f.mode, f.size, f.path)?;
        }
        Ok(())
    })
    .map_err(io_err)
}

#[derive(serde::Serialize)]
struct PullReport {
    reference: String,
    digest: Digest,
    output_dir: String,
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
}

pub fn pull(ctx: &Context, args: &PullArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let reference: Reference = args.reference.parse()?;
    let store = ctx.open_store_read_only(&reference.location)?;
    let (stored, flux) = load(store.as_ref(), &reference)?;
    let layer = download_layer(ctx, store.as_ref(), &flux)?;
    let limits = mainline_pack::Limits {
        max_bytes: args
            .max_size
            .unwrap_or(mainline_pack::Limits::DEFAULT_MAX_BYTES),
        max_entries: args
            .max_files
            .unwrap_or(mainline_pack::Limits::DEFAULT_MAX_ENTRIES),
    };
    let extracted = mainline_pack::extract_within(layer, &args.output_dir, args.force, limits);
    let summary = extracted.map_err(|e| {
        if crate::error::is_no_space(&e) {
            // Not the input's fault, and gone once there is room: unavailable, like a full disk.
            return CliError::new(
                Kind::Unavailable,
                format!(
                    "{reference}: no space left to extract into {} ({})",
                    args.output_dir.display(),
                    chain_message(&e)
                ),
            )
            .with_hint("free space on that disk (or pass another --output-dir), then pull again");
        }
        CliError::invalid(format!(
            "{reference}: refusing to extract into {}: {}",
            args.output_dir.display(),
            chain_message(&e)
        ))
    })?;
    let report = PullReport {
        reference: reference.to_string(),
        digest: stored.digest,
        output_dir: args.output_dir.display().to_string(),
        files: summary.files,
        dirs: summary.dirs,
        symlinks: summary.symlinks,
        bytes: summary.bytes,
    };
    emit(ctx, out, &report, |w| {
        writeln!(
            w,
            "pulled {} ({}) into {}: {} files, {} bytes",
            report.reference, report.digest, report.output_dir, report.files, report.bytes
        )
    })
    .map_err(io_err)
}
