//! One way to put a channel's executor together, used by the CLI's channel commands
//! (`Opened::executor`) and the guard's slots alike: the channel's ports (store, repo, builder,
//! clock, fact cache), its lock mode, the journal, and — with the `kubernetes` feature — its Flux
//! consumers and Lease lock. Also the two pieces of opening both do the same way: where a
//! store's fact cache lives, and the channel's Kubernetes side.
//!
//! Why here: `mainline-exec` offers `Executor::new` and `with_*`, and must not know who calls
//! it; the CLI builds on this crate, so an assembly here is shared without an arrow pointing
//! outward. How each caller opens its ports stays its own (the CLI bounds the git remote and
//! the lock wait by its deadline; the guard shares remotes, caches and GitHub queues between
//! channels).
//!
//! Must never: run a channel without the journal, attach a Lease lock or consumers other than
//! the channel's own, or open anything (it only wires what the caller opened).

use crate::channel::cache::FactCache;
use crate::channel::exec::{Executor, LockMode};
use crate::channel::ports::{Builder, Clock, Repo};
use crate::channel::refs::sanitize;
use crate::channel::ChannelConfig;
use mainline_store::{Location, Store};
use std::path::{Path, PathBuf};

/// The ports one channel's executor acts through, borrowed from whoever opened them.
pub struct ChannelPorts<'a> {
    pub config: &'a ChannelConfig,
    pub store: &'a dyn Store,
    pub repo: &'a dyn Repo,
    pub builder: &'a dyn Builder,
    pub clock: &'a dyn Clock,
    pub cache: &'a FactCache,
    /// The channel's Flux consumers and Lease lock, when it has a `kubernetes` table.
    #[cfg(feature = "kubernetes")]
    pub kube: Option<&'a crate::adapters::kube::Kube>,
}

impl<'a> ChannelPorts<'a> {
    /// The executor over these ports, acting as `actor`, serialised by `lock` (the channel's
    /// lock mode, or the CLI's with its wait cut to the deadline), recording in the journal,
    /// nudging the channel's consumers after a move and locking with its Lease when it has one.
    pub fn executor(self, actor: String, lock: LockMode) -> Executor<'a> {
        let exec = Executor::new(
            self.config,
            self.store,
            self.repo,
            self.builder,
            self.clock,
            self.cache,
            actor,
        )
        .with_lock(lock)
        .with_journal(true)
        .with_parallel_reads(true);
        #[cfg(feature = "kubernetes")]
        let exec = match self.kube {
            Some(k) => {
                let exec = match &k.consumers {
                    Some(c) => exec.with_consumers(c),
                    None => exec,
                };
                match &k.lock {
                    Some(l) => exec.with_lock_backend(l),
                    None => exec,
                }
            }
            None => exec,
        };
        exec
    }
}

/// Where the fact cache of `store` lives under the cache root (one file per store, shared by
/// every channel on it and by the CLI and the guard).
pub fn fact_cache_path(cache_root: &Path, store: &Location) -> PathBuf {
    cache_root
        .join("facts")
        .join(format!("{}.json", sanitize(&store.to_string())))
}

/// The fact cache of `store`, loaded from its file under the cache root.
pub fn fact_cache(cache_root: &Path, store: &Location) -> FactCache {
    FactCache::load(Some(fact_cache_path(cache_root, store)), store.to_string())
}

/// The channel's consumers and Lease lock, when its settings have a `kubernetes` table.
/// Blocking (reads kubeconfig or service-account files; makes no request).
#[cfg(feature = "kubernetes")]
pub fn open_kube(
    config: &ChannelConfig,
    actor: &str,
) -> Result<Option<crate::adapters::kube::Kube>, crate::error::CliError> {
    match &config.kubernetes {
        Some(raw) => Ok(Some(crate::adapters::kube::Kube::open(config, raw, actor)?)),
        None => Ok(None),
    }
}

/// Whether the channel asks for Kubernetes (a `kubernetes` table, or the Lease lock): a build
/// without the feature refuses such a channel rather than run it without its lock.
pub fn wants_kubernetes(config: &ChannelConfig) -> bool {
    config.kubernetes.is_some() || matches!(config.lock, LockMode::Kubernetes { .. })
}
