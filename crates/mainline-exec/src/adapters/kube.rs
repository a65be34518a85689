//! Kubernetes behind the executor's ports: Flux consumers nudged after every move and read for
//! `status` / `--wait`, and a `Lease` per channel as a lock backend. Built on `mainline-kube`
//! (a small blocking client for the handful of calls we make).
//!
//! Must never: let a consumer call delay or undo a channel write (nudges run after the write,
//! bounded by `NUDGE_BUDGET`), or print a cluster credential.

use crate::channel::ports::{
    ChannelLock, Consumers as ConsumersPort, LockBackendError, LockHolderInfo, LockToken,
};
use crate::channel::ChannelConfig;
use crate::error::chain_message;
use mainline_core::{Digest, Timestamp};
use mainline_kube::{
    channel_lease_name, ConsumerState, Consumers, Environment, KubeClient, KubernetesConfig,
    LeaseLock, LeaseLockConfig, LockHandle, SystemClock, WaitOptions, WaitOutcome,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long nudging the consumers may take after a move.
pub const NUDGE_BUDGET: Duration = Duration::from_secs(2);
/// How long `status` waits for the consumers' state.
pub const OBSERVE_BUDGET: Duration = Duration::from_secs(3);

/// The channel's Kubernetes side, from the `[kubernetes]` table of its settings.
pub struct Kube {
    pub consumers: Option<Consumers>,
    pub lock: Option<LeaseChannelLock>,
}

/// The channel's `[kubernetes]` settings cannot be used (parsed, validated or connected):
/// always the configuration's fault, never retried.
#[derive(Debug, thiserror::Error)]
#[error("[kubernetes] {what}: {reason}")]
pub struct KubeSetupError {
    pub what: &'static str,
    pub reason: String,
}

fn config_err(what: &'static str, e: impl std::fmt::Display) -> KubeSetupError {
    KubeSetupError {
        what,
        reason: e.to_string(),
    }
}

impl Kube {
    /// Parse and connect (connecting reads kubeconfig / service-account files; no request is
    /// made yet).
    pub fn open(
        config: &ChannelConfig,
        raw: &toml::Value,
        holder: &str,
    ) -> Result<Kube, KubeSetupError> {
        let k: KubernetesConfig = raw
            .clone()
            .try_into()
            .map_err(|e| config_err("is invalid", e))?;
        let list = k.validate().map_err(|e| config_err("is invalid", e))?;
        let env = Environment::from_process();
        let consumers = if list.is_empty() {
            None
        } else {
            Some(Consumers::connect(&list, &env).map_err(|e| config_err("cannot connect", e))?)
        };
        let lock = match config.lock {
            crate::channel::exec::LockMode::Kubernetes { ttl_ms, wait_ms } => {
                let cluster = list.first().map(|c| c.cluster.clone()).ok_or_else(|| {
                    config_err(
                        "lock = \"kubernetes\"",
                        "needs at least one consumer to name the cluster",
                    )
                })?;
                let client = KubeClient::connect(&cluster, &env)
                    .map_err(|e| config_err("cannot connect", e))?;
                // As documented on `lease_namespace`: default to the connection's namespace
                // (the pod's service account, or the kubeconfig context's), then flux-system.
                let namespace = k
                    .lease_namespace
                    .clone()
                    .or_else(|| client.namespace().map(str::to_owned))
                    .unwrap_or_else(|| "flux-system".into());
                let mut lc = LeaseLockConfig::new(
                    &namespace,
                    &channel_lease_name(config.key.as_str()),
                    holder,
                );
                lc.ttl = Duration::from_millis(ttl_ms.max(1000) as u64);
                lc.wait = Duration::from_millis(wait_ms);
                let lock = LeaseLock::new(Arc::new(client), Arc::new(SystemClock), lc)
                    .map_err(|e| config_err("lease", e))?;
                Some(LeaseChannelLock { lock })
            }
            _ => None,
        };
        Ok(Kube { consumers, lock })
    }
}

/// Nudge: a fresh `reconcile.fluxcd.io/requestedAt` on each OCIRepository.
impl ConsumersPort for Consumers {
    fn nudge(&self, _digest: &Digest) -> Vec<String> {
        let start = Instant::now();
        self.request_reconcile(&SystemClock, start + NUDGE_BUDGET)
            .into_iter()
            // Named `namespace/name`, as `status` names consumers (the cluster is in the config).
            .map(|r| match r.result {
                Ok(token) => format!(
                    "{}: reconcile requested ({token}) in {} ms",
                    r.consumer.source,
                    r.elapsed.as_millis()
                ),
                Err(e) => format!(
                    "{}: reconcile request failed after {} ms ({e}); Flux's polling interval is the fallback",
                    r.consumer.source,
                    r.elapsed.as_millis()
                ),
            })
            .collect()
    }
}

/// What each consumer has applied, against `digest` (for `status`).
pub fn observe(consumers: &Consumers, digest: &Digest) -> Vec<ConsumerState> {
    consumers.observe(digest, Instant::now() + OBSERVE_BUDGET)
}

/// Wait until every consumer applied `digest` (deploy/promote `--wait`), reporting progress on
/// stderr.
pub fn wait(consumers: &Consumers, digest: &Digest, budget: Duration) -> WaitOutcome {
    consumers.wait_applied(
        digest,
        Instant::now() + budget,
        &WaitOptions::default(),
        &mut |p| {
            let states: Vec<String> = p
                .states
                .iter()
                .map(|s| format!("{} {}", s.source, s.state.label()))
                .collect();
            eprintln!("waiting {:>4}s: {}", p.elapsed.as_secs(), states.join(", "));
        },
    )
}

/// A `Lease` per channel as the executor's lock backend.
pub struct LeaseChannelLock {
    lock: LeaseLock,
}

fn lease_err(e: mainline_kube::LockError) -> LockBackendError {
    match &e {
        mainline_kube::LockError::Lost { .. } => LockBackendError::Lost(chain_message(&e)),
        _ => LockBackendError::Unavailable(chain_message(&e)),
    }
}

fn handle(token: &mut LockToken) -> Result<&mut LockHandle, LockBackendError> {
    token
        .0
        .downcast_mut::<LockHandle>()
        .ok_or(LockBackendError::ForeignToken { backend: "Lease" })
}

impl ChannelLock for LeaseChannelLock {
    fn acquire(&self) -> Result<LockToken, LockBackendError> {
        let h = mainline_kube::ChannelLock::acquire(&self.lock).map_err(lease_err)?;
        Ok(LockToken(Box::new(h)))
    }
    fn renew(&self, token: &mut LockToken) -> Result<(), LockBackendError> {
        let h = handle(token)?;
        mainline_kube::ChannelLock::renew(&self.lock, h).map_err(lease_err)
    }
    fn renew_for(&self, token: &mut LockToken, ttl: Duration) -> Result<(), LockBackendError> {
        let h = handle(token)?;
        mainline_kube::ChannelLock::renew_for(&self.lock, h, ttl).map_err(lease_err)
    }
    fn release(&self, mut token: LockToken) -> Result<(), LockBackendError> {
        let h = handle(&mut token)?.clone();
        mainline_kube::ChannelLock::release(&self.lock, h).map_err(lease_err)
    }
    fn holder(&self) -> Result<Option<LockHolderInfo>, LockBackendError> {
        Ok(mainline_kube::ChannelLock::current(&self.lock)
            .map_err(lease_err)?
            .map(|h| LockHolderInfo {
                holder: h.holder,
                expires_at: Timestamp(h.expires_at.millis()),
            }))
    }
}
