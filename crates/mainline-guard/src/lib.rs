//! mainline's guard daemon (`mainline guard`): GitHub webhooks and polling drive the executor
//! for every channel; its HTTP surface (API, page, metrics) and settings; and the channel
//! configuration (flags, environment, `mainline.toml`) that the CLI and the guard share.
//!
//! Arrows point inward: this crate builds on `mainline-exec` and the core; the CLI builds on
//! it. Must never: depend on the CLI's grammar beyond the channel flags it owns here.

pub mod assemble;
pub mod config;
pub mod guard;

/// `config::entries` under the path it has always had.
pub use config::entries as config_entries;

// The executor's modules under the paths this code has always used (`crate::channel::…`).
pub(crate) use mainline_exec::{adapters, artifact, channel, error};

/// How the guard opens a channel's store: the CLI's settings (registry credentials, plain HTTP
/// for loopback) implement it, so the guard never sees the command line.
pub trait OpenStore: Sync {
    fn open_store(
        &self,
        location: &mainline_store::Location,
    ) -> Result<Box<dyn mainline_store::Store>, error::CliError>;
}
