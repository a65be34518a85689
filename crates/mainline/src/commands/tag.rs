//! `mainline tag`: the re-tag primitive on the command line — identical manifest bytes under a
//! new tag, read back before success is reported.

use crate::artifact::retag;
use crate::cli::TagArgs;
use crate::commands::push::io_err;
use crate::error::CliError;
use crate::output::emit;
use crate::settings::Context;
use mainline_core::{Digest, Tag};
use mainline_store::Reference;
use std::io::Write;

#[derive(serde::Serialize)]
struct TagReport {
    source: String,
    repository: String,
    tag: Tag,
    digest: Digest,
}

pub fn run(ctx: &Context, args: &TagArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let source: Reference = args.source.parse()?;
    let new_tag: Tag = args.new_tag.parse()?;
    let store = ctx.open_store(&source.location)?;
    let manifest = retag(store.as_ref(), &source.target, &new_tag)?;
    let report = TagReport {
        source: source.to_string(),
        repository: source.location.to_string(),
        tag: new_tag,
        digest: manifest.digest,
    };
    emit(ctx, out, &report, |w| {
        writeln!(
            w,
            "tagged {}:{} -> {} (same bytes as {})",
            report.repository, report.tag, report.digest, report.source
        )
    })
    .map_err(io_err)
}
