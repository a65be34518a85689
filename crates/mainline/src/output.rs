//! How results reach the user: one JSON object on stdout with `--output json`, or short text.
//! Progress bars go to stderr and only when stderr is a terminal (silence otherwise).

use crate::settings::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{self, Write};

/// Print `report` as JSON (one line) or through `text`.
pub fn emit<T: Serialize>(
    ctx: &Context,
    out: &mut dyn Write,
    report: &T,
    text: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    if ctx.json {
        serde_json::to_writer(&mut *out, report)?;
        writeln!(out)
    } else {
        text(out)
    }
}

/// A byte-count progress bar on stderr, hidden unless stderr is a terminal.
pub fn bytes_bar(ctx: &Context, len: Option<u64>, message: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    if !ctx.progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = if len.is_some() {
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    } else {
        ProgressStyle::with_template("{spinner} {msg:>10} {bytes} {bytes_per_sec}")
    }
    .expect("static progress template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}
