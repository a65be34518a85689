//! The end of every channel command: the report made, the lock holder and the Flux consumers'
//! view added, printed, and the exit code chosen; `report.rs` holds the report itself.

use super::open::Opened;
use crate::channel::exec::{LockMode, Report};
use crate::channel::ports::Clock;
use crate::channel::report::{verdict_exit, ChannelReport};
#[cfg(feature = "kubernetes")]
use crate::channel::report::{AppliedReport, WaitReport};
use crate::commands::push::io_err;
use crate::error::CliError;
use crate::output::emit;
use crate::settings::Context;
use mainline_core::Timestamp;
use std::io::Write;

pub(super) fn finish(
    ctx: &Context,
    o: &Opened,
    report: &Report,
    out: &mut dyn Write,
    status_only: bool,
    wait: Option<std::time::Duration>,
) -> Result<u8, CliError> {
    if let Some(e) = super::checks::input_failure(o, report) {
        return Err(e);
    }
    let mut r = ChannelReport::new(&o.config, report);
    if report.final_decision.verdict == mainline_core::Verdict::Unknown {
        ctx.note_unanswered(report.final_decision.explanation.clone());
    }
    if status_only && o.config.lock != LockMode::None {
        // status shows who holds the lock, from the backend that is configured: the git ref
        // (as the run's listing showed it; its record is read only when there is one), or the
        // channel's Lease (one more read; only status pays it).
        let now = o.clock.now();
        let current = match o.config.lock {
            LockMode::Kubernetes { .. } => lease_holder(o),
            _ => {
                let exec = o.executor();
                let lock = exec.git_lock();
                match &report.lock_listed {
                    Some(listed) => lock.current_listed(listed.as_ref()),
                    None => lock.current(),
                }
            }
            .map(|h| h.map(|h| (h.record.holder.clone(), h.record.expires_at, Some(h.record))))
            .map_err(|e| e.to_string()),
        };
        match current {
            Ok(None) => r.lock.push_str(" (free)"),
            // The record's expiry is by the holder's clock: shown, never trusted. A writer
            // takes over only after watching the record unchanged for its TTL.
            Ok(Some((holder, expires_at, record))) if expires_at <= now => {
                let ttl = record
                    .as_ref()
                    .map_or(crate::channel::lock::DEFAULT_TTL_MS, |r| {
                        r.effective_ttl_ms()
                    });
                r.lock.push_str(&format!(
                    " (stale: {holder}'s record claims expiry at {expires_at}; the next writer takes it over after watching it unchanged for {} s)",
                    ttl / 1000
                ));
                r.lock_holder = record;
            }
            Ok(Some((holder, expires_at, record))) => {
                r.lock
                    .push_str(&format!(" (held by {holder} until {expires_at})"));
                r.lock_holder = record;
            }
            Err(e) => r.lock.push_str(&format!(" (holder unreadable: {e})")),
        }
    }
    let waited = consumers_view(o, &mut r, status_only, wait);
    emit(ctx, out, &r, |w| r.render(w, status_only)).map_err(io_err)?;
    Ok(if status_only {
        verdict_exit(r.verdict)
    } else if waited == Some(false) && r.refusal.is_none() {
        WAIT_TIMED_OUT
    } else {
        r.exit_code()
    })
}

/// Who holds the channel's Lease (`--lock kubernetes`): holder and expiry.
type HolderView = Option<(String, Timestamp, Option<crate::channel::lock::LockRecord>)>;

#[cfg(feature = "kubernetes")]
fn lease_holder(o: &Opened) -> Result<HolderView, String> {
    use crate::channel::ports::ChannelLock;
    let lock = o
        .kube
        .as_ref()
        .and_then(|k| k.lock.as_ref())
        .ok_or("--lock kubernetes needs [kubernetes] in mainline.toml")?;
    lock.holder()
        .map(|h| h.map(|h| (h.holder, h.expires_at, None)))
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "kubernetes"))]
fn lease_holder(_: &Opened) -> Result<HolderView, String> {
    Err("this mainline was built without the `kubernetes` feature".into())
}

/// Exit code when `--wait` ran out before every consumer applied the digest.
pub const WAIT_TIMED_OUT: u8 = 10;

/// Fill in what the Flux consumers applied (for `status`), or wait for them (`--wait`).
/// Returns whether the wait succeeded, when there was one.
#[cfg(feature = "kubernetes")]
fn consumers_view(
    o: &Opened,
    r: &mut ChannelReport,
    status_only: bool,
    wait: Option<std::time::Duration>,
) -> Option<bool> {
    use crate::adapters::kube;
    use mainline_kube::AppliedState;
    let consumers = o.kube.as_ref().and_then(|k| k.consumers.as_ref())?;
    let digest = r.after.channel_digest.clone()?;
    let to_report = |states: Vec<mainline_kube::ConsumerState>| -> Vec<AppliedReport> {
        states
            .into_iter()
            .map(|s| AppliedReport {
                api_versions: s
                    .observed
                    .iter()
                    .flat_map(|o| {
                        std::iter::once(&o.source.api_version)
                            .chain(o.kustomizations.iter().map(|k| &k.api_version))
                    })
                    .flatten()
                    .fold(Vec::new(), |mut all: Vec<String>, v| {
                        if !all.contains(v) {
                            all.push(v.clone());
                        }
                        all
                    }),
                consumer: s.source,
                state: s.state.label().to_owned(),
                // The detail without the state's label (it is in `state` already).
                detail: match s.state {
                    AppliedState::Applied => String::new(),
                    AppliedState::Pending { detail } => detail,
                    AppliedState::Stuck {
                        object,
                        reason,
                        message,
                    } => format!("{object}: {message} ({reason})"),
                    AppliedState::Unreachable { reason } => reason,
                },
            })
            .collect()
    };
    match wait {
        Some(budget) if r.refusal.is_none() => {
            let outcome = kube::wait(consumers, &digest, budget);
            r.wait = Some(WaitReport {
                applied: outcome.applied,
                elapsed_ms: outcome.elapsed.as_millis(),
                polls: outcome.polls,
            });
            r.applied = to_report(outcome.states);
            Some(outcome.applied)
        }
        _ if status_only => {
            r.applied = to_report(kube::observe(consumers, &digest));
            None
        }
        _ => None,
    }
}

#[cfg(not(feature = "kubernetes"))]
fn consumers_view(
    _: &Opened,
    _: &mut ChannelReport,
    _: bool,
    _: Option<std::time::Duration>,
) -> Option<bool> {
    None
}

/// `--wait` needs consumers to wait for; say so before anything is written.
pub(super) fn check_wait(o: &Opened, wait: Option<std::time::Duration>) -> Result<(), CliError> {
    #[cfg(feature = "kubernetes")]
    let has = o.kube.as_ref().is_some_and(|k| k.consumers.is_some());
    #[cfg(not(feature = "kubernetes"))]
    let has = {
        let _ = o;
        false
    };
    if wait.is_some() && !has {
        return Err(CliError::invalid("--wait needs Flux consumers to wait for")
            .with_hint("add [kubernetes] consumers = [{ namespace = \"flux-system\", oci_repository = \"app\" }] to mainline.toml"));
    }
    Ok(())
}
