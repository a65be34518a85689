//! One "machine" of a test that drives the executor in-process: the channel config the CLI
//! would build for a channel on a [`Queue`]'s remote, with its own cache of the remote.

use super::queue::Queue;
use mainline::adapters::git::GitRepo;
use mainline::channel::ChannelConfig;
use mainline::config::{self, ChannelArgs};
use std::path::{Path, PathBuf};

/// The channel config the CLI would build for `channel` on `q`'s remote, and its cache root.
pub fn config_for(q: &Queue, channel: &str, cache: &Path) -> (ChannelConfig, PathBuf) {
    config::resolve(&ChannelArgs {
        channel: Some(channel.to_owned()),
        git: Some(q.url()),
        path: Some("k8s".into()),
        cache_dir: Some(cache.to_path_buf()),
        ..ChannelArgs::default()
    })
    .expect("a valid channel config")
}

/// A machine named `name`: its config and its own cache of the remote.
pub fn machine(q: &Queue, channel: &str, name: &str) -> (ChannelConfig, GitRepo) {
    let (config, root) = config_for(q, channel, &q.root.join(name));
    let repo = GitRepo::open(&config, &root).expect("open the git remote");
    (config, repo)
}

/// A channel in an OCI image layout under `root`.
pub fn layout_channel(root: &Path) -> String {
    format!("oci-layout:{}:latest", root.join("store").display())
}
