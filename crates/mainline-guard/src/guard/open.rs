//! Opening the guard: every channel's adapters (its store, git remote, GitHub queue and, with
//! the feature, Kubernetes consumers and Lease lock) opened once, blocking and outside any
//! async runtime, into [`Slot`]s the scheduler runs.
//!
//! Must never: run inside the tokio runtime (a registry store owns a runtime of its own), or
//! open a channel's ports in a way the CLI's `reconcile` would not.

#[cfg(feature = "kubernetes")]
use super::kube;
use super::settings::GuardSettings;
use super::slot::{Observed, Ports, Slot};
use super::{actor, GuardError};
use crate::adapters::git::{GitBuilder, GitRepo};
use crate::adapters::github::{GithubQueue, GithubRepo};
use crate::channel::cache::FactCache;
use crate::channel::ports::Repo;
use mainline_github::{GithubClient, GithubConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Open every channel's adapters. Blocking: call it outside any async runtime.
pub fn open(
    ctx: &dyn crate::OpenStore,
    settings: &GuardSettings,
) -> Result<Vec<Arc<Slot>>, GuardError> {
    let client = match &settings.github {
        Some(g) => {
            let mut config = GithubConfig::new(g.token.clone());
            config.api_url = g.api_url.clone();
            config.graphql_url = g.graphql_url.clone();
            Some(Arc::new(
                GithubClient::new(config).map_err(GuardError::Github)?,
            ))
        }
        None => None,
    };
    let actor = actor();
    // Channels on the same remote share its cache handle; on the same store, the fact cache.
    let mut repos: HashMap<String, GitRepo> = HashMap::new();
    let mut caches: HashMap<String, Arc<FactCache>> = HashMap::new();
    let mut queues: HashMap<String, Arc<GithubQueue>> = HashMap::new();
    let mut slots = Vec::with_capacity(settings.channels.len());
    let mut stores = open_stores(ctx, settings).into_iter();
    for spec in &settings.channels {
        let c = &spec.config;
        let fail = |e: crate::error::CliError| GuardError::Channel {
            name: spec.name.clone(),
            message: e.to_string(),
        };
        let store = stores
            .next()
            .expect("one store result per channel")
            .map_err(fail)?;
        let git = match repos.get(&c.git) {
            Some(r) => r.clone(),
            None => {
                let r = GitRepo::open(c, &settings.cache_root).map_err(|e| fail(e.into()))?;
                repos.insert(c.git.clone(), r.clone());
                r
            }
        };
        let cache = caches
            .entry(c.store.to_string())
            .or_insert_with(|| {
                Arc::new(crate::assemble::fact_cache(&settings.cache_root, &c.store))
            })
            .clone();
        let (repo, queue): (Box<dyn Repo>, _) = match (&client, &spec.github, spec.queue_api) {
            (Some(client), Some(name), true) => {
                let q = queues
                    .entry(name.full_name())
                    .or_insert_with(|| Arc::new(GithubQueue::new(client.clone(), name.clone())))
                    .clone();
                (Box::new(GithubRepo::new(git.clone(), q.clone())), Some(q))
            }
            _ => (Box::new(git.clone()), None),
        };
        #[cfg(feature = "kubernetes")]
        let kube = kube::open(&spec.name, c, &actor)?;
        let ports = Ports {
            store,
            repo: Observed::new(repo),
            builder: GitBuilder::new(&git, c),
            git,
            cache,
            queue,
            #[cfg(feature = "kubernetes")]
            kube,
        };
        slots.push(Arc::new(Slot::new(
            spec.clone(),
            ports,
            actor.clone(),
            settings.history,
        )));
    }
    Ok(slots)
}

type Opened = Result<Box<dyn mainline_store::Store>, crate::error::CliError>;

/// Every channel's store, in order. Building a registry client costs milliseconds (TLS
/// setup), so a thousand channels are opened on a few threads at once.
fn open_stores(ctx: &dyn crate::OpenStore, settings: &GuardSettings) -> Vec<Opened> {
    let specs = &settings.channels;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Opened>>> = specs.iter().map(|_| Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
        .min(specs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = specs.get(i) else { break };
                // Artifact tags are verified against their manifests' revisions (S1).
                let opened = ctx.open_store(&spec.config.store).map(|s| {
                    Box::new(crate::channel::verified::VerifiedStore::new(s))
                        as Box<dyn mainline_store::Store>
                });
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(opened);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every store was opened by a worker")
        })
        .collect()
}
