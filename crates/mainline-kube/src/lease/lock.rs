//! The channel lock on a Lease — the `lock = "kubernetes"` backend, for teams whose writers all
//! reach the cluster. Same contract as the git-ref lock (`channel::lock::GitLock`): a holder
//! with an expiry; acquire creates the Lease or takes it over once this process has watched the
//! holder's record stay unchanged for its `leaseDurationSeconds` on our monotonic clock (as
//! client-go's leader election and the git lock do: see [`rules`]), waiting while a live holder
//! has it; renew extends our hold; release gives it back; every step is a compare-and-swap on
//! `resourceVersion`. Clocks are never compared: a taker whose clock runs ten minutes fast
//! waits exactly as long as one whose clock is right.
//!
//! A 409 on renew is a lost race. It is only retried when a fresh read shows *our own*
//! identity still holding the Lease (our previous write landed but its answer was lost), as a
//! new compare-and-swap from that read; otherwise the lock is [`LockError::Lost`] and the caller
//! must stop before writing anything.
//! Must never: take over before watching the record unchanged for its (capped) duration, trust
//! a remote clock, write from a stale read, or call an unreadable Lease free.

use super::rules::{self, Judgement, Observation};
use super::{LeaseApi, LeaseObject, Write};
use crate::client::KubeClient;
use crate::clock::Clock;
use crate::config::{check_label, check_subdomain, ConfigError};
use crate::error::{ErrorKind, KubeError};
use mainline_core::Timestamp;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The channel-lock contract, as both lock backends offer it (`Held` is the backend's proof
/// of holding: a record commit for the git ref, a Lease `resourceVersion` here).
pub trait ChannelLock: Send + Sync {
    type Held: Send;
    /// The current holder, expired ones included (compare `expires_at` with now).
    fn current(&self) -> Result<Option<LockHolder>, LockError>;
    /// Take the lock, waiting (bounded) while a live holder has it.
    fn acquire(&self) -> Result<Self::Held, LockError>;
    /// Extend our hold; `Err(Lost)` means stop before writing.
    fn renew(&self, held: &mut Self::Held) -> Result<(), LockError>;
    /// Extend our hold, declaring `ttl` instead of the configured TTL (a write hold).
    fn renew_for(&self, held: &mut Self::Held, ttl: Duration) -> Result<(), LockError>;
    /// Give the lock back (a no-op when it already was not ours).
    fn release(&self, held: Self::Held) -> Result<(), LockError>;
}

/// Who holds a lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolder {
    pub holder: String,
    pub acquired_at: Option<Timestamp>,
    pub renewed_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    /// `leaseTransitions`: how many times the lock changed hands.
    pub transitions: i64,
}

/// Proof of holding a Lease lock: the object as we last wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHandle {
    /// `namespace/name` of the Lease.
    pub lease: String,
    pub holder: LockHolder,
    object: LeaseObject,
}

/// Why the lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "channel lock Lease {lease} is held by {holder} (renewed until {expires_at} by its own \
         clock); gave up waiting after {waited_ms} ms: retry later (a dead holder's lock is \
         taken over once its record stays unchanged for its lease duration)"
    )]
    Busy {
        lease: String,
        holder: String,
        expires_at: Timestamp,
        waited_ms: u64,
    },
    #[error(
        "channel lock Lease {lease} was lost{by}: our update got 409 Conflict (someone wrote \
         after our read); stop before writing anything and start over",
        by = holder.as_ref().map(|h| format!(" to {h}")).unwrap_or_default()
    )]
    Lost {
        lease: String,
        holder: Option<String>,
    },
    #[error("channel lock Lease {lease}: could not {action}")]
    Kube {
        lease: String,
        action: &'static str,
        #[source]
        source: Box<KubeError>,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl LockError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LockError::Busy { .. } => ErrorKind::Unavailable,
            LockError::Lost { .. } => ErrorKind::Conflict,
            LockError::Kube { source, .. } => source.kind(),
            LockError::Config(_) => ErrorKind::InvalidInput,
        }
    }
}

/// Where the lock lives and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLockConfig {
    pub namespace: String,
    /// See [`super::channel_lease_name`].
    pub name: String,
    /// Who is asking (e.g. `ci@run-123`, the guard's pod name); a nonce is appended.
    pub holder: String,
    /// `leaseDurationSeconds` (rounded up to whole seconds, at least one).
    pub ttl: Duration,
    /// How long `acquire` waits for a live holder.
    pub wait: Duration,
    /// Budget of one API request.
    pub request_timeout: Duration,
}

impl LeaseLockConfig {
    /// The git lock's defaults: 60 s TTL, 120 s wait; 10 s per request.
    pub fn new(namespace: &str, name: &str, holder: &str) -> LeaseLockConfig {
        LeaseLockConfig {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl: Duration::from_secs(60),
            wait: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A channel lock on one Lease.
pub struct LeaseLock {
    api: LeaseApi,
    clock: Arc<dyn Clock>,
    config: LeaseLockConfig,
    identity: String,
    /// The record this process last saw and since when (monotonic ms): the only clock a
    /// takeover is judged by.
    observed: std::sync::Mutex<Option<Observation>>,
}

pub(crate) fn whole_seconds(d: Duration) -> i64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `holder/<pid>-<ms>-<n>`: unique per lock instance, so two runs of one holder differ.
pub(crate) fn unique_identity(holder: &str, now: Timestamp) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{holder}/{}-{}-{}",
        std::process::id(),
        now.millis(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn holder_of(obj: &LeaseObject) -> Option<LockHolder> {
    let r = &obj.record;
    Some(LockHolder {
        holder: r.holder()?.to_owned(),
        acquired_at: r.acquire_time,
        renewed_at: r.renew_time,
        expires_at: r.expires_at()?,
        transitions: r.transitions,
    })
}

impl LeaseLock {
    pub fn new(
        client: Arc<KubeClient>,
        clock: Arc<dyn Clock>,
        config: LeaseLockConfig,
    ) -> Result<LeaseLock, LockError> {
        check_label("namespace", &config.namespace)?;
        check_subdomain("name", &config.name)?;
        let identity = unique_identity(&config.holder, clock.now());
        Ok(LeaseLock {
            api: LeaseApi::new(client, &config.namespace, &config.name),
            clock,
            config,
            identity,
            observed: std::sync::Mutex::new(None),
        })
    }

    /// The `holderIdentity` this lock writes.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.config.request_timeout
    }

    fn kube(&self, action: &'static str) -> impl FnOnce(KubeError) -> LockError + '_ {
        move |source| LockError::Kube {
            lease: self.api.display(),
            action,
            source: Box::new(source),
        }
    }

    fn handle(&self, object: LeaseObject) -> Result<LockHandle, LockError> {
        let holder = holder_of(&object).ok_or_else(|| LockError::Lost {
            lease: self.api.display(),
            holder: None,
        })?;
        Ok(LockHandle {
            lease: self.api.display(),
            holder,
            object,
        })
    }

    /// The current holder, expired ones included.
    pub fn current(&self) -> Result<Option<LockHolder>, LockError> {
        let obj = self
            .api
            .get(self.deadline())
            .map_err(self.kube("read it"))?;
        Ok(obj.as_ref().and_then(holder_of))
    }

    /// How long this process has watched `obj`'s record unchanged (0 the first time).
    fn unchanged_for(&self, obj: &LeaseObject, now_ms: i64) -> i64 {
        let mut slot = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        Observation::watch(&mut slot, obj.record.key(&obj.resource_version), now_ms)
    }

    /// Create the Lease, or take it over from a holder whose record this process has watched
    /// unchanged for the record's duration; wait while a live one has it.
    pub fn acquire(&self) -> Result<LockHandle, LockError> {
        let ttl = whole_seconds(self.config.ttl);
        let start = self.clock.monotonic_ms();
        let wait = i64::try_from(self.config.wait.as_millis()).unwrap_or(i64::MAX);
        let mut pause = 50i64;
        loop {
            let deadline = self.deadline();
            let current = self.api.get(deadline).map_err(self.kube("read it"))?;
            let mono = self.clock.monotonic_ms();
            let write = match &current {
                None => self
                    .api
                    .create(
                        &rules::claim(None, &self.identity, ttl, self.clock.now()),
                        deadline,
                    )
                    .map_err(self.kube("create it"))?,
                Some(obj) => {
                    let unchanged = self.unchanged_for(obj, mono);
                    match rules::judge(&obj.record, &self.identity, unchanged, ttl * 1000) {
                        Judgement::Held {
                            holder,
                            expires_at,
                            takeover_in_ms,
                        } => {
                            let waited = (mono - start).max(0);
                            if waited >= wait {
                                return Err(LockError::Busy {
                                    lease: self.api.display(),
                                    holder,
                                    expires_at,
                                    waited_ms: u64::try_from(waited).unwrap_or(0),
                                });
                            }
                            let nap = pause.min(takeover_in_ms).min(wait - waited).max(1);
                            self.clock.sleep(u64::try_from(nap).unwrap_or(1));
                            pause = (pause * 2).min(1_000);
                            continue;
                        }
                        judgement => {
                            if let Judgement::Expired { holder, .. } = &judgement {
                                tracing::info!(lease = %self.api.display(), %holder,
                                    unchanged_ms = unchanged,
                                    "the holder stopped renewing for a lease duration (as \
                                     watched here): taking over the channel lock");
                            }
                            let record = rules::claim(
                                Some(&obj.record),
                                &self.identity,
                                ttl,
                                self.clock.now(),
                            );
                            self.api
                                .update(obj, &record, deadline)
                                .map_err(self.kube("claim it"))?
                        }
                    }
                }
            };
            match write {
                Write::Done(obj) => return self.handle(obj),
                // Someone else wrote between our read and our write: read again and re-judge.
                Write::LostRace => self.clock.sleep(u64::try_from(pause.min(200)).unwrap_or(1)),
            }
        }
    }

    /// Write `record` over `handle`'s object; on a lost race, retry once only if a fresh read
    /// still shows our identity. `Ok(None)`: the Lease is someone else's now.
    fn write_ours(
        &self,
        handle: &LockHandle,
        make: impl Fn(&rules::LeaseRecord) -> rules::LeaseRecord,
        action: &'static str,
    ) -> Result<Result<LeaseObject, Option<String>>, LockError> {
        let deadline = self.deadline();
        let first = self
            .api
            .update(&handle.object, &make(&handle.object.record), deadline)
            .map_err(self.kube(action))?;
        if let Write::Done(obj) = first {
            return Ok(Ok(obj));
        }
        let fresh = self.api.get(deadline).map_err(self.kube("read it"))?;
        match fresh {
            Some(obj) if obj.record.holder() == Some(self.identity.as_str()) => {
                match self
                    .api
                    .update(&obj, &make(&obj.record), deadline)
                    .map_err(self.kube(action))?
                {
                    Write::Done(obj) => Ok(Ok(obj)),
                    Write::LostRace => Ok(Err(None)),
                }
            }
            other => Ok(Err(other.and_then(|o| o.record.holder().map(str::to_owned)))),
        }
    }

    /// Extend our hold by the configured TTL. `Err(Lost)` when the Lease is someone else's now.
    pub fn renew(&self, handle: &mut LockHandle) -> Result<(), LockError> {
        self.renew_for(handle, self.config.ttl)
    }

    /// Extend our hold, declaring `ttl` as `leaseDurationSeconds` (a holder about to write
    /// declares more than its TTL, so a late landing of that write falls inside its hold;
    /// takers watch whatever the Lease declares, capped at [`rules::MAX_DURATION_MS`]).
    pub fn renew_for(&self, handle: &mut LockHandle, ttl: Duration) -> Result<(), LockError> {
        let ttl = whole_seconds(ttl);
        let now = self.clock.now();
        match self.write_ours(
            handle,
            |r| rules::claim(Some(r), &self.identity, ttl, now),
            "renew it",
        )? {
            Ok(obj) => {
                *handle = self.handle(obj)?;
                Ok(())
            }
            Err(holder) => Err(LockError::Lost {
                lease: self.api.display(),
                holder,
            }),
        }
    }

    /// Give the lock back; a no-op if it is someone else's already.
    pub fn release(&self, handle: LockHandle) -> Result<(), LockError> {
        let now = self.clock.now();
        match self.write_ours(&handle, |r| rules::release(r, now), "release it")? {
            Ok(_) => Ok(()),
            Err(holder) => {
                tracing::info!(lease = %self.api.display(), holder = ?holder,
                    "channel lock was no longer ours at release");
                Ok(())
            }
        }
    }
}

impl ChannelLock for LeaseLock {
    type Held = LockHandle;
    fn current(&self) -> Result<Option<LockHolder>, LockError> {
        LeaseLock::current(self)
    }
    fn acquire(&self) -> Result<LockHandle, LockError> {
        LeaseLock::acquire(self)
    }
    fn renew(&self, held: &mut LockHandle) -> Result<(), LockError> {
        LeaseLock::renew(self, held)
    }
    fn renew_for(&self, held: &mut LockHandle, ttl: Duration) -> Result<(), LockError> {
        LeaseLock::renew_for(self, held, ttl)
    }
    fn release(&self, held: LockHandle) -> Result<(), LockError> {
        LeaseLock::release(self, held)
    }
}
