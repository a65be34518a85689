//! Leader election for the guard on one Lease, with client-go's rules, so several replicas run
//! and exactly one reconciles:
//!
//! - a follower counts a foreign holder as gone only after a full `leaseDurationSeconds` (the
//!   holder's promise, from the record) has passed *on its own clock* since it first saw the
//!   holder's latest write, measured on its monotonic clock (capped at
//!   [`rules::MAX_DURATION_MS`]) — so clock offsets between replicas do not matter;
//! - the leader considers itself leader only until `renew_deadline` after the moment it
//!   started its last successful renew, and `renew_deadline < lease_duration`; so the old
//!   leader has stopped acting before any follower can take over;
//! - every write is a compare-and-swap on `resourceVersion` (a lost race makes us a follower).
//!
//! A standby therefore takes over between one lease duration and one lease duration plus one
//! retry period after the leader's last renew. Call [`LeaderElector::try_acquire_or_renew`]
//! every `retry_period`, act only while [`LeaderElector::is_leader`], and
//! [`LeaderElector::step_down`] on shutdown (the Lease is released, so a standby takes over at
//! its next try instead of after the duration).
//!
//! Must never: report leadership after `renew_deadline` without a successful renew, or take
//! over a Lease whose holder renewed less than a lease duration ago (as observed locally).

use super::lock::{millis, whole_seconds};
use super::rules;
use super::{LeaseApi, LeaseObject, Write};
use crate::client::KubeClient;
use crate::clock::Clock;
use crate::config::{check_label, check_subdomain, ConfigError, LeaderElectionConfig};
use crate::error::{ErrorKind, KubeError};
use mainline_core::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The leader Lease's default name.
pub const DEFAULT_LEADER_LEASE: &str = "mainline-guard-leader";

/// Timing and identity of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The guard's namespace.
    pub namespace: String,
    /// The Lease, e.g. `mainline-guard-leader`.
    pub name: String,
    /// This replica (the pod name); unique among replicas.
    pub identity: String,
    /// How long followers wait after the leader's last renew (whole seconds).
    pub lease_duration: Duration,
    /// How long the leader trusts its last successful renew.
    pub renew_deadline: Duration,
    /// How often to call `try_acquire_or_renew`.
    pub retry_period: Duration,
    /// Budget of one API request.
    pub request_timeout: Duration,
}

impl ElectionConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry; 5 s per request.
    pub fn new(namespace: &str, name: &str, identity: &str) -> ElectionConfig {
        ElectionConfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// From `[guard.leader_election]`, this replica's `identity` (the pod name) and the pod's
    /// namespace (the default for the Lease's), validated.
    pub fn from_config(
        config: &LeaderElectionConfig,
        identity: &str,
        pod_namespace: Option<&str>,
    ) -> Result<ElectionConfig, ElectionError> {
        let namespace = config
            .namespace
            .as_deref()
            .or(pod_namespace)
            .ok_or_else(|| ElectionError::Timing {
                reason: "no namespace for the leader Lease: set [guard.leader_election] \
                         namespace, or run in a pod (POD_NAMESPACE)"
                    .to_owned(),
            })?;
        let mut out = ElectionConfig::new(
            namespace,
            config.lease.as_deref().unwrap_or(DEFAULT_LEADER_LEASE),
            identity,
        );
        if let Some(s) = config.lease_duration_seconds {
            out.lease_duration = Duration::from_secs(s);
        }
        if let Some(s) = config.renew_deadline_seconds {
            out.renew_deadline = Duration::from_secs(s);
        }
        if let Some(s) = config.retry_period_seconds {
            out.retry_period = Duration::from_secs(s);
        }
        out.validate()?;
        Ok(out)
    }

    pub fn validate(&self) -> Result<(), ElectionError> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("name", &self.name)?;
        let bad = |reason: &str| {
            Err(ElectionError::Timing {
                reason: reason.to_owned(),
            })
        };
        if self.identity.is_empty() {
            return bad("identity is empty: use the pod name (POD_NAME from the downward API)");
        }
        if self.lease_duration.subsec_nanos() != 0 || self.lease_duration.as_secs() == 0 {
            return bad("lease_duration must be a whole number of seconds, at least 1");
        }
        if self.renew_deadline >= self.lease_duration {
            return bad("renew_deadline must be shorter than lease_duration");
        }
        if self.retry_period >= self.renew_deadline || self.retry_period.is_zero() {
            return bad("retry_period must be positive and shorter than renew_deadline");
        }
        Ok(())
    }
}

/// The result of one election round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// We hold the Lease; act until `until` (unless renewed again).
    Leader { until: Timestamp },
    /// Someone else does (or we lost a race and do not know who yet).
    Follower { holder: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("invalid leader election timing: {reason}")]
    Timing { reason: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("leader election Lease {lease}: could not {action}")]
    Kube {
        lease: String,
        action: &'static str,
        #[source]
        source: Box<KubeError>,
    },
}

impl ElectionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ElectionError::Kube { source, .. } => source.kind(),
            _ => ErrorKind::InvalidInput,
        }
    }
}

struct Observation {
    object: LeaseObject,
    /// Our monotonic clock when this record was first seen (or written by us).
    since_ms: i64,
}

/// One replica's elector.
pub struct LeaderElector {
    api: LeaseApi,
    clock: Arc<dyn Clock>,
    config: ElectionConfig,
    observed: Mutex<Option<Observation>>,
    /// Monotonic ms until which we are leader; `i64::MIN` when not.
    leader_until: AtomicI64,
}

impl LeaderElector {
    pub fn new(
        client: Arc<KubeClient>,
        clock: Arc<dyn Clock>,
        config: ElectionConfig,
    ) -> Result<LeaderElector, ElectionError> {
        config.validate()?;
        Ok(LeaderElector {
            api: LeaseApi::new(client, &config.namespace, &config.name),
            clock,
            config,
            observed: Mutex::new(None),
            leader_until: AtomicI64::new(i64::MIN),
        })
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Whether this replica may act now.
    pub fn is_leader(&self) -> bool {
        self.clock.monotonic_ms() < self.leader_until.load(Ordering::SeqCst)
    }

    fn kube(&self, action: &'static str) -> impl FnOnce(KubeError) -> ElectionError + '_ {
        move |source| ElectionError::Kube {
            lease: self.api.display(),
            action,
            source: Box::new(source),
        }
    }

    /// Lead until `renew_deadline` after `since_ms` (monotonic); `until` reports the same
    /// moment on the wall clock, for people.
    fn lead(&self, since_ms: i64, wall: Timestamp) -> Leadership {
        let deadline = millis(self.config.renew_deadline);
        self.leader_until
            .store(since_ms.saturating_add(deadline), Ordering::SeqCst);
        Leadership::Leader {
            until: wall.plus_millis(deadline),
        }
    }

    fn follow(&self, holder: Option<String>) -> Leadership {
        self.leader_until.store(i64::MIN, Ordering::SeqCst);
        Leadership::Follower { holder }
    }

    /// One round: create the Lease, renew our hold, or take over an expired holder's.
    /// On an error, leadership is kept only until its `renew_deadline` runs out.
    pub fn try_acquire_or_renew(&self) -> Result<Leadership, ElectionError> {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let started = self.clock.now();
        let started_ms = self.clock.monotonic_ms();
        let deadline = Instant::now() + self.config.request_timeout.min(self.config.renew_deadline);
        let me = self.config.identity.as_str();
        let duration = whole_seconds(self.config.lease_duration);
        let current = self.api.get(deadline).map_err(self.kube("read it"))?;
        let Some(obj) = current else {
            let record = rules::claim(None, me, duration, started);
            return match self
                .api
                .create(&record, deadline)
                .map_err(self.kube("create it"))?
            {
                Write::Done(obj) => {
                    *observed = Some(Observation {
                        object: obj,
                        since_ms: started_ms,
                    });
                    Ok(self.lead(started_ms, started))
                }
                Write::LostRace => Ok(self.follow(None)),
            };
        };
        let key = obj.record.key(&obj.resource_version);
        let seen_before = observed
            .as_ref()
            .is_some_and(|o| o.object.record.key(&o.object.resource_version) == key);
        if !seen_before {
            *observed = Some(Observation {
                object: obj.clone(),
                since_ms: started_ms,
            });
        }
        let since_ms = observed.as_ref().map_or(started_ms, |o| o.since_ms);
        if let Some(holder) = obj.record.holder().filter(|h| *h != me) {
            let promised = obj
                .record
                .takeover_after_ms(millis(self.config.lease_duration));
            if since_ms.saturating_add(promised) > started_ms {
                return Ok(self.follow(Some(holder.to_owned())));
            }
            tracing::info!(lease = %self.api.display(), %holder, identity = me,
                "leader stopped renewing for a lease duration: taking over");
        }
        let record = rules::claim(Some(&obj.record), me, duration, started);
        match self
            .api
            .update(&obj, &record, deadline)
            .map_err(self.kube("claim it"))?
        {
            Write::Done(obj) => {
                *observed = Some(Observation {
                    object: obj,
                    since_ms: started_ms,
                });
                Ok(self.lead(started_ms, started))
            }
            Write::LostRace => Ok(self.follow(None)),
        }
    }

    /// Stop leading: forget leadership at once, then release the Lease if it is still ours.
    pub fn step_down(&self) -> Result<(), ElectionError> {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let was_leader = self.leader_until.swap(i64::MIN, Ordering::SeqCst) != i64::MIN;
        let Some(obs) = observed.as_ref().filter(|_| was_leader) else {
            return Ok(());
        };
        if obs.object.record.holder() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let record = rules::release(&obs.object.record, self.clock.now());
        match self
            .api
            .update(&obs.object, &record, deadline)
            .map_err(self.kube("release it"))?
        {
            Write::Done(_) => Ok(()),
            Write::LostRace => Ok(()),
        }
    }
}
