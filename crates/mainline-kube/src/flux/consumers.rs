//! A channel's consumers with their clients: trigger them all, read them all, or wait until
//! they all applied a digest — each consumer on its own thread, all under one deadline, so a
//! hanging cluster costs at most the deadline and never delays the others.
//!
//! Must never: return after the caller's deadline (plus scheduling noise), or count a consumer
//! whose status could not be read as applied.

use super::applied::{assess, AppliedState};
use super::trigger::{request_reconcile, ReconcileToken};
use super::{observe, Observed};
use crate::client::KubeClient;
use crate::clock::Clock;
use crate::config::{Cluster, Consumer};
use crate::connect::Environment;
use crate::error::{ConnectError, KubeError};
use mainline_core::Digest;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The consumers of one channel, connected.
#[derive(Debug, Default)]
pub struct Consumers {
    entries: Vec<(Consumer, Arc<KubeClient>)>,
}

/// The outcome of triggering one consumer.
#[derive(Debug)]
pub struct TriggerReport {
    pub consumer: Consumer,
    pub result: Result<ReconcileToken, KubeError>,
    pub elapsed: Duration,
}

/// One consumer's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerState {
    /// `namespace/name` of the OCIRepository.
    pub source: String,
    /// `None` when it could not be read (then `state` is `Unreachable`).
    pub observed: Option<Observed>,
    pub state: AppliedState,
}

/// How [`Consumers::wait_applied`] polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// Pause between two reads.
    pub poll_interval: Duration,
    /// Budget of one read (capped by the overall deadline).
    pub request_timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> WaitOptions {
        WaitOptions {
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Reported to the progress callback whenever a consumer's state changes.
#[derive(Debug)]
pub struct WaitProgress<'a> {
    pub elapsed: Duration,
    pub polls: u32,
    pub states: &'a [ConsumerState],
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    /// Every consumer applied the digest (false when there is no consumer).
    pub applied: bool,
    /// The last state of each consumer.
    pub states: Vec<ConsumerState>,
    pub elapsed: Duration,
    pub polls: u32,
}

impl WaitOutcome {
    /// The worst consumer state (what `deploy --wait` reports when it gives up).
    pub fn worst(&self) -> AppliedState {
        AppliedState::worst(self.states.iter().map(|s| &s.state))
    }
}

/// What counts as a change for progress reports: the state and its detail, except an
/// unreachable server's reason (it carries the shrinking time budget of each read).
fn progress_key(state: &AppliedState) -> String {
    match state {
        AppliedState::Unreachable { .. } => state.label().to_owned(),
        other => other.to_string(),
    }
}

impl Consumers {
    /// Connect every consumer, one client per distinct cluster.
    pub fn connect(consumers: &[Consumer], env: &Environment) -> Result<Consumers, ConnectError> {
        let mut clients: Vec<(Cluster, Arc<KubeClient>)> = Vec::new();
        let mut entries = Vec::with_capacity(consumers.len());
        for c in consumers {
            let client = match clients.iter().find(|(k, _)| *k == c.cluster) {
                Some((_, client)) => client.clone(),
                None => {
                    let client = Arc::new(KubeClient::connect(&c.cluster, env)?);
                    clients.push((c.cluster.clone(), client.clone()));
                    client
                }
            };
            entries.push((c.clone(), client));
        }
        Ok(Consumers { entries })
    }

    /// Consumers with clients built by the caller.
    pub fn from_clients(entries: Vec<(Consumer, Arc<KubeClient>)>) -> Consumers {
        Consumers { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.entries.iter().map(|(c, _)| c)
    }

    /// Run `f` for every consumer in parallel and collect the results in order.
    fn each<T: Send>(&self, f: impl Fn(&Consumer, &KubeClient) -> T + Sync) -> Vec<T> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .entries
                .iter()
                .map(|(c, client)| {
                    let f = &f;
                    scope.spawn(move || f(c, client))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(v) => v,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }

    /// Request a reconcile of every OCIRepository; best-effort, all done by `deadline`.
    pub fn request_reconcile(&self, clock: &dyn Clock, deadline: Instant) -> Vec<TriggerReport> {
        self.each(|consumer, client| {
            let start = Instant::now();
            let result = request_reconcile(client, &consumer.source, clock, deadline);
            if let Err(e) = &result {
                tracing::warn!(consumer = %consumer, error = %e,
                    "reconcile request failed; Flux's polling interval remains the fallback");
            }
            TriggerReport {
                consumer: consumer.clone(),
                result,
                elapsed: start.elapsed(),
            }
        })
    }

    /// Read every consumer and assess it against `expected`, by `deadline`.
    pub fn observe(&self, expected: &Digest, deadline: Instant) -> Vec<ConsumerState> {
        self.each(
            |consumer, client| match observe(client, consumer, deadline) {
                Ok(observed) => ConsumerState {
                    source: consumer.source.to_string(),
                    state: assess(&observed, expected),
                    observed: Some(observed),
                },
                Err(e) => ConsumerState {
                    source: consumer.source.to_string(),
                    observed: None,
                    state: AppliedState::Unreachable {
                        reason: e.to_string(),
                    },
                },
            },
        )
    }

    /// Poll until every consumer applied `expected`, or `deadline`. `progress` hears every
    /// change of state (and the first reading).
    pub fn wait_applied(
        &self,
        expected: &Digest,
        deadline: Instant,
        options: &WaitOptions,
        progress: &mut dyn FnMut(&WaitProgress<'_>),
    ) -> WaitOutcome {
        let start = Instant::now();
        let mut polls = 0u32;
        let mut last: Option<Vec<String>> = None;
        let mut final_read = false;
        loop {
            // The last read happens at the deadline itself (with a short budget of its own), so
            // an apply in the final poll interval is not missed.
            let read_by = if final_read {
                Instant::now()
                    + options
                        .request_timeout
                        .min(std::time::Duration::from_secs(1))
            } else {
                deadline.min(Instant::now() + options.request_timeout)
            };
            let states = self.observe(expected, read_by);
            polls += 1;
            let now_states: Vec<String> = states.iter().map(|s| progress_key(&s.state)).collect();
            if last.as_ref() != Some(&now_states) {
                progress(&WaitProgress {
                    elapsed: start.elapsed(),
                    polls,
                    states: &states,
                });
                last = Some(now_states);
            }
            let applied = !states.is_empty() && states.iter().all(|s| s.state.is_applied());
            let now = Instant::now();
            let outcome = |states| WaitOutcome {
                applied,
                states,
                elapsed: start.elapsed(),
                polls,
            };
            if applied || final_read || states.is_empty() {
                return outcome(states);
            }
            if now >= deadline {
                // A read cut short by the deadline says nothing about the consumer (it reports
                // UNREACHABLE); the final read, with its own short budget, has the last word.
                final_read = true;
                continue;
            }
            std::thread::sleep(options.poll_interval.min(deadline - now));
            if Instant::now() >= deadline {
                final_read = true;
            }
        }
    }
}
