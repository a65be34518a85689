//! One `mainline.toml` for the CLI and the guard: a channel command can pick one of the
//! guard's `[[channels]]` entries with `--channel-name NAME` (`MAINLINE_CHANNEL_NAME`), and the
//! entry is read exactly as the guard reads it — its keys over the file's top-level keys, and
//! flags and `MAINLINE_*` over both.
//!
//! Must never: pick an entry by position or guess among several (a name that is not there is
//! an error listing the names that are), or let a command run on the top-level keys alone when
//! the file only defines channels under `[[channels]]` (that is "no channel given", with the
//! names to choose from).

use super::{ChannelArgs, ChannelEntry, ChannelKeys, FileConfig};
use crate::error::CliError;

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
        if args.channel.is_none() && file.keys.channel.is_none() && !entries.is_empty() {
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

impl ChannelKeys {
    /// An entry's keys over the top-level ones: the one merge the CLI (`--channel-name`) and
    /// the guard (`[[channels]]`) both use. The channel itself is never inherited (each entry
    /// names its own); `kubernetes` is replaced as a whole table.
    pub fn over(&self, top: &ChannelKeys) -> ChannelKeys {
        ChannelKeys {
            channel: self.channel.clone(),
            git: self.git.clone().or_else(|| top.git.clone()),
            path: self.path.clone().or_else(|| top.path.clone()),
            branch: self.branch.clone().or_else(|| top.branch.clone()),
            source: self.source.clone().or_else(|| top.source.clone()),
            require_signature: self.require_signature.or(top.require_signature),
            queue: self.queue.or(top.queue),
            lease_ttl: self.lease_ttl.clone().or_else(|| top.lease_ttl.clone()),
            lock: self.lock.or(top.lock),
            github_repository: self
                .github_repository
                .clone()
                .or_else(|| top.github_repository.clone()),
            kubernetes: self.kubernetes.clone().or_else(|| top.kubernetes.clone()),
        }
    }
}

/// The file as one `[[channels]]` entry sees it: its keys over the top-level ones, the
/// file-wide keys (evidence, `allow_empty`, `cache_dir`) as they are, no sections.
pub fn entry_over(e: &ChannelEntry, top: &FileConfig) -> FileConfig {
    FileConfig {
        keys: e.keys.over(&top.keys),
        signature_keys: top.signature_keys.clone(),
        require_attestation: top.require_attestation,
        attestation_builder: top.attestation_builder.clone(),
        attestation_source: top.attestation_source.clone(),
        allow_empty: top.allow_empty,
        cache_dir: top.cache_dir.clone(),
        channels: None,
        guard: None,
    }
}
