//! The guard's Kubernetes side per channel: the `kubernetes` table checked before anything is
//! opened, the channel's Flux consumers and Lease lock opened once per slot (the same
//! `adapters::kube::Kube` the CLI's `Opened` uses), and what the consumers have applied, read
//! after each run for the page and `/api/channels`.
//!
//! Invariants: everything here that talks to a cluster blocks and runs on the slot's blocking
//! thread, after the executor finished (a consumer never delays or undoes a channel write);
//! without the `kubernetes` feature a channel that asks for Kubernetes is refused at startup,
//! never silently run without its lock.
//! Must never: read a cluster from an async worker thread, or report a consumer as APPLIED when
//! its status could not be read (that is UNREACHABLE).

use super::error::GuardError;
#[cfg(feature = "kubernetes")]
use super::state::AppliedView;
#[cfg(feature = "kubernetes")]
use crate::channel::exec::LockMode;
#[cfg(feature = "kubernetes")]
use crate::channel::exec::Report;
use crate::channel::ChannelConfig;
#[cfg(feature = "kubernetes")]
use mainline_core::{ChannelHead, Digest, Known};

fn channel_err(name: &str, message: impl Into<String>) -> GuardError {
    GuardError::Channel {
        name: name.to_owned(),
        message: message.into(),
    }
}

/// Check a channel's `kubernetes` table and its lock before anything is opened.
#[cfg(feature = "kubernetes")]
pub fn check_kubernetes(name: &str, config: &ChannelConfig) -> Result<(), GuardError> {
    let consumers = match &config.kubernetes {
        Some(raw) => {
            let k: mainline_kube::KubernetesConfig = raw
                .clone()
                .try_into()
                .map_err(|e| channel_err(name, format!("its kubernetes table is invalid: {e}")))?;
            k.validate()
                .map_err(|e| channel_err(name, format!("its kubernetes table is invalid: {e}")))?
                .len()
        }
        None => 0,
    };
    if matches!(config.lock, LockMode::Kubernetes { .. }) && consumers == 0 {
        return Err(channel_err(
            name,
            "lock = \"kubernetes\" needs a kubernetes table with at least one consumer (it names \
             the cluster that holds the Lease): add [[channels.kubernetes.consumers]] to the \
             entry, or [[kubernetes.consumers]] at the top level",
        ));
    }
    Ok(())
}

/// Without the `kubernetes` feature, a channel that asks for Kubernetes is refused.
#[cfg(not(feature = "kubernetes"))]
pub fn check_kubernetes(name: &str, config: &ChannelConfig) -> Result<(), GuardError> {
    if crate::assemble::wants_kubernetes(config) {
        return Err(channel_err(
            name,
            "this mainline was built without the `kubernetes` feature, but the channel has a \
             kubernetes table or lock = \"kubernetes\": use a release build (the feature is on \
             by default), or drop them",
        ));
    }
    Ok(())
}

/// The channel's consumers and Lease lock, when its settings name a cluster. Blocking (reads
/// kubeconfig or service-account files; makes no request).
#[cfg(feature = "kubernetes")]
pub fn open(
    name: &str,
    config: &ChannelConfig,
    actor: &str,
) -> Result<Option<crate::adapters::kube::Kube>, GuardError> {
    crate::assemble::open_kube(config, actor).map_err(|e| channel_err(name, e.to_string()))
}

/// The digest the channel names after a run, when the run could read it.
#[cfg(feature = "kubernetes")]
fn named_digest(report: &Report) -> Option<Digest> {
    match report.facts.as_ref().map(|f| &f.channel) {
        Some(Known::Known(ChannelHead::Names { digest, .. })) => Some(digest.clone()),
        _ => None,
    }
}

/// What the consumers have applied against the digest the run left the channel on. `None`
/// without consumers, or when the run could not tell the digest (the last view stays, with the
/// digest it was read against).
#[cfg(feature = "kubernetes")]
pub fn applied(
    kube: Option<&crate::adapters::kube::Kube>,
    result: &Result<Report, crate::error::CliError>,
    now: mainline_core::Timestamp,
) -> Option<AppliedView> {
    let consumers = kube.and_then(|k| k.consumers.as_ref())?;
    let digest = named_digest(result.as_ref().ok()?)?;
    let states = crate::adapters::kube::observe(consumers, &digest);
    let worst = mainline_kube::AppliedState::worst(states.iter().map(|s| &s.state));
    Some(AppliedView {
        state: worst.label().to_owned(),
        digest,
        at: now,
        consumers: states
            .into_iter()
            .map(|s| super::state::ConsumerView {
                consumer: s.source,
                state: s.state.label().to_owned(),
                detail: match &s.state {
                    mainline_kube::AppliedState::Applied => String::new(),
                    other => other.to_string(),
                },
            })
            .collect(),
    })
}
