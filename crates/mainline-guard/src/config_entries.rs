//! One `mainline.toml` for the CLI and the guard: a channel command can pick one of the
//! guard's `[[channels]]` entries with `--channel-name NAME` (`MAINLINE_CHANNEL_NAME`), and the
//! entry is read exactly as the guard reads it — its keys over the file's top-level keys, and
//! flags and `MAINLINE_*` over both.
//!
//! Must never: pick an entry by position or guess among several (a name that is not there is
//! an error listing the names that are), or let a command run on the top-level keys alone when
//! the file only defines channels under `[[channels]]` (that is "no channel given", with the
//! names to choose from).

use crate::config::{ChannelArgs, FileConfig};
use crate::error::CliError;
use crate::guard::settings::ChannelEntry;

/// The file as the command should read it: with `--channel-name`, the named entry merged over
/// the top-level keys; without, the file unchanged.
pub fn pick(
    args: &ChannelArgs,
    mut file: FileConfig,
    file_name: &str,
) -> Result<FileConfig, CliError> {
    let entries = file.channels.take().unwrap_or_default();
    let names = || {
        entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(name) = &args.channel_name else {
        if args.channel.is_none() && file.channel.is_none() && !entries.is_empty() {
            return Err(CliError::invalid(format!(
                "no channel given: {file_name} defines its channels under [[channels]] ({})",
                names()
            ))
            .with_hint("pick one with --channel-name NAME (or MAINLINE_CHANNEL_NAME), or pass --channel STORE:TAG"));
        }
        return Ok(file);
    };
    if args.channel.is_some() {
        return Err(CliError::invalid(format!(
            "--channel-name {name} and --channel (or MAINLINE_CHANNEL) both name the channel"
        ))
        .with_hint("pass one of them"));
    }
    if entries.is_empty() {
        return Err(CliError::invalid(format!(
            "--channel-name {name}: {file_name} has no [[channels]] entries"
        ))
        .with_hint("add a [[channels]] entry with name = \"…\" (see docs/guard.md), or pass --channel STORE:TAG"));
    }
    let Some(entry) = entries.iter().find(|e| &e.name == name) else {
        return Err(CliError::invalid(format!(
            "--channel-name {name}: no [[channels]] entry of that name in {file_name} (it has: {})",
            names()
        ))
        .with_hint("pass one of those names"));
    };
    Ok(entry_over(entry, &file))
}

/// An entry's keys over the top-level ones: the one merge the CLI (`--channel-name`) and the
/// guard (`[[channels]]`) both use. Evidence, `allow_empty` and `cache_dir` are file-wide.
pub fn entry_over(e: &ChannelEntry, top: &FileConfig) -> FileConfig {
    FileConfig {
        channel: e.channel.clone(),
        git: e.git.clone().or_else(|| top.git.clone()),
        path: e.path.clone().or_else(|| top.path.clone()),
        branch: e.branch.clone().or_else(|| top.branch.clone()),
        source: e.source.clone().or_else(|| top.source.clone()),
        require_signature: e.require_signature.or(top.require_signature),
        signature_keys: top.signature_keys.clone(),
        require_attestation: top.require_attestation,
        attestation_builder: top.attestation_builder.clone(),
        attestation_source: top.attestation_source.clone(),
        allow_empty: top.allow_empty,
        queue: e.queue.or(top.queue),
        lease_ttl: e.lease_ttl.clone().or_else(|| top.lease_ttl.clone()),
        lock: e.lock.or(top.lock),
        cache_dir: top.cache_dir.clone(),
        github_repository: e
            .github_repository
            .clone()
            .or_else(|| top.github_repository.clone()),
        kubernetes: e.kubernetes.clone().or_else(|| top.kubernetes.clone()),
        channels: None,
        guard: None,
    }
}
