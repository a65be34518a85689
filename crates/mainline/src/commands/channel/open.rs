//! Opening a channel: settings resolved, adapters connected, the executor assembled.

use crate::adapters::git::{GitBuilder, GitRepo};
use crate::channel::cache::FactCache;
use crate::channel::exec::Executor;
use crate::channel::exec::LockMode;
use crate::channel::ports::SystemClock;
use crate::channel::verified::VerifiedStore;
use crate::channel::ChannelConfig;
use crate::config::{self, ChannelArgs};
use crate::deadline::Deadline;
use crate::error::CliError;
use crate::settings::Context;
use mainline_guard::assemble::{self, ChannelPorts};

/// Everything a channel command acts through.
pub struct Opened {
    pub config: ChannelConfig,
    /// The channel's store; artifact tags are verified against their manifests' revisions.
    pub store: VerifiedStore,
    pub repo: GitRepo,
    pub builder: GitBuilder,
    pub cache: FactCache,
    pub clock: SystemClock,
    pub actor: String,
    /// The command's deadline: the lock's wait for a busy holder is cut to what is left of it.
    pub deadline: Option<Deadline>,
    /// Flux consumers and the Lease lock, when `[kubernetes]` is configured.
    #[cfg(feature = "kubernetes")]
    pub kube: Option<crate::adapters::kube::Kube>,
}

impl Opened {
    /// Open for a command that may write (a new image layout is created on first use).
    pub fn open(ctx: &Context, args: &ChannelArgs) -> Result<Opened, CliError> {
        Opened::open_with(ctx, args, false)
    }

    /// Open for a command that only reads (`status`, `history`): a mistyped `oci-layout:`
    /// path is invalid input, and nothing is created there.
    pub fn open_read_only(ctx: &Context, args: &ChannelArgs) -> Result<Opened, CliError> {
        Opened::open_with(ctx, args, true)
    }

    fn open_with(ctx: &Context, args: &ChannelArgs, read_only: bool) -> Result<Opened, CliError> {
        let (mut config, cache_root) = config::resolve(args)?;
        config.lock = bound_lock_wait(config.lock, ctx.deadline);
        let store = VerifiedStore::new(if read_only {
            ctx.open_store_read_only(&config.store)?
        } else {
            ctx.open_store(&config.store)?
        });
        let repo = GitRepo::open_until(&config, &cache_root, ctx.deadline_at())?;
        let builder = GitBuilder::new(&repo, &config);
        let cache = assemble::fact_cache(&cache_root, &config.store);
        let actor = actor();
        #[cfg(feature = "kubernetes")]
        let kube = assemble::open_kube(&config, &actor)?;
        #[cfg(not(feature = "kubernetes"))]
        if assemble::wants_kubernetes(&config) {
            return Err(CliError::invalid(
                "this mainline was built without the `kubernetes` feature, but [kubernetes] or --lock kubernetes is set",
            )
            .with_hint("use a release build (the feature is on by default)"));
        }
        Ok(Opened {
            config,
            store,
            repo,
            builder,
            cache,
            clock: SystemClock,
            actor,
            deadline: ctx.deadline,
            #[cfg(feature = "kubernetes")]
            kube,
        })
    }

    /// The executor over the opened ports, assembled as the guard's slots assemble it
    /// (`mainline_guard::assemble`), with the lock's wait cut to the deadline.
    pub fn executor(&self) -> Executor<'_> {
        ChannelPorts {
            config: &self.config,
            store: &self.store,
            repo: &self.repo,
            builder: &self.builder,
            clock: &self.clock,
            cache: &self.cache,
            #[cfg(feature = "kubernetes")]
            kube: self.kube.as_ref(),
        }
        .executor(
            self.actor.clone(),
            bound_lock_wait(self.config.lock, self.deadline),
        )
    }
}

/// The lock mode with its wait for a busy holder cut to what is left of the deadline, less a
/// margin (a quarter, at most 2 s) for the last poll and the report: a busy lock is then
/// reported as busy, naming its holder, before the deadline passes. The lock's own git calls
/// are bounded by the deadline through the git adapter.
fn bound_lock_wait(lock: LockMode, deadline: Option<Deadline>) -> LockMode {
    let Some(d) = deadline else { return lock };
    let left = d.remaining();
    let budget = left.saturating_sub((left / 4).min(std::time::Duration::from_secs(2)));
    let clamp = |wait_ms: u64| wait_ms.min(budget.as_millis() as u64);
    match lock {
        LockMode::None => LockMode::None,
        LockMode::Git { ttl_ms, wait_ms } => LockMode::Git {
            ttl_ms,
            wait_ms: clamp(wait_ms),
        },
        LockMode::Kubernetes { ttl_ms, wait_ms } => LockMode::Kubernetes {
            ttl_ms,
            wait_ms: clamp(wait_ms),
        },
    }
}

/// Who is acting: the GitHub Actions run URL in CI, else user@host.
pub fn actor() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        return format!("{server}/{repo}/actions/runs/{run}");
    }
    let user = env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or("unknown".into(), |m| format!("uid{}", m.uid()))
    });
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}
