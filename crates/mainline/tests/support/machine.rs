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

/// The records of `config`'s journal, read through `repo`.
pub fn journal_records(
    repo: &GitRepo,
    config: &ChannelConfig,
) -> Vec<mainline::channel::journal::Record> {
    mainline::channel::journal::Journal::new(
        repo,
        &mainline::channel::ports::SystemClock,
        &config.key,
        "main",
    )
    .records()
    .expect("journal")
}

/// One reconcile as the CLI runs it — git lock (30 s lease, a minute's wait), journal on,
/// `parallel` reads or not — through `repo` (a wrapper around `inner`, which builds).
pub fn reconcile_locked(
    config: &ChannelConfig,
    repo: &dyn mainline::channel::ports::Repo,
    inner: &GitRepo,
    actor: &str,
    parallel: bool,
) -> Result<mainline::channel::exec::Report, mainline::channel::error::ExecError> {
    let reconcile = mainline_core::Request::Reconcile {
        force_restore: false,
    };
    run_locked(config, repo, inner, actor, parallel, reconcile)
}

/// [`reconcile_locked`] for any request.
pub fn run_locked(
    config: &ChannelConfig,
    repo: &dyn mainline::channel::ports::Repo,
    inner: &GitRepo,
    actor: &str,
    parallel: bool,
    request: mainline_core::Request,
) -> Result<mainline::channel::exec::Report, mainline::channel::error::ExecError> {
    use mainline::channel::exec::{Executor, LockMode};
    let store = mainline_store::open(&config.store, &Default::default()).expect("open");
    let builder = mainline::adapters::git::GitBuilder::new(inner, config);
    let cache = mainline::channel::cache::FactCache::load(None, config.store.to_string());
    Executor::new(
        config,
        store.as_ref(),
        repo,
        &builder,
        &mainline::channel::ports::SystemClock,
        &cache,
        actor.into(),
    )
    .with_lock(LockMode::Git {
        ttl_ms: 30_000,
        wait_ms: 60_000,
    })
    .with_journal(true)
    .with_parallel_reads(parallel)
    .run(request)
}

/// A channel in a layout store under a fresh temp dir, first deployed by the CLI (promote);
/// then main moved with a changed deploy tree, so the next reconcile moves the channel.
pub struct Behind {
    pub tmp: tempfile::TempDir,
    pub queue: Queue,
    /// `oci-layout:<dir>:latest`.
    pub channel: String,
    /// The digest the channel named after the first deploy.
    pub before: String,
}

pub fn behind() -> Behind {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut queue = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let ch = super::queue::Channel::new(channel.trim_end_matches(":latest"), &queue, "cli");
    let before = super::queue::first_deploy(&ch, &queue);
    queue.push_main(
        &[("k8s/app.yaml", &super::queue::app(7))],
        "main changes the deploy tree",
    );
    Behind {
        tmp,
        queue,
        channel,
        before,
    }
}

/// What `tag` names in `config`'s store now.
pub fn tag_digest(config: &ChannelConfig, tag: &str) -> Option<String> {
    mainline_store::open(&config.store, &Default::default())
        .expect("open the store")
        .resolve(&tag.parse().expect("a tag"))
        .expect("resolve")
        .map(|d| d.to_string())
}

/// After a run: the journal's chain verifies and no lock ref is left behind.
pub fn assert_chain_and_no_lock(
    q: &Queue,
    records: &[mainline::channel::journal::Record],
    case: &str,
) {
    assert!(
        mainline::channel::journal::verify(records).is_empty(),
        "{case}: the chain verifies"
    );
    assert_eq!(
        q.refs_under("refs/mainline/lock/"),
        Vec::<String>::new(),
        "{case}: no lock left behind"
    );
}
