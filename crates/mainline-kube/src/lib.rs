//! The Kubernetes side of mainline: see and nudge what Flux *does* run, next to what the
//! channel tag says it *should* run — never on the critical path of a restore.
//!
//! - [`config`]: which Flux objects consume a channel (`OCIRepository`s and their
//!   `Kustomization`s) and on which cluster, validated before any I/O.
//! - [`mod@connect`]: kubeconfig or in-cluster service account → a [`Connection`].
//! - [`KubeClient`]: a blocking facade over kube-rs's client (which does kubeconfig
//!   credentials — exec plugins, OIDC, client certificates, rotated token files — TLS and the
//!   HTTP), every call bounded by a caller's deadline, and only the calls listed in
//!   [`api::API_CALLS`].
//! - [`flux`]: the reconcile trigger, the observed state, the pure [`assess`] of it against the
//!   digest the channel names ([`AppliedState`]), and [`Consumers::wait_applied`].
//! - [`lease`]: a `coordination.k8s.io/v1` Lease as channel lock ([`LeaseLock`]) and as leader
//!   election for the guard ([`LeaderElector`]).
//! - `fake` (feature `fake`): a local fake API server for tests.
//! - `apiserver` (feature `apiserver`): a real kube-apiserver (built from `tests/kube/`) as a
//!   test fixture.
//!
//! Why kube-rs (it was a ~330-line client on reqwest before): users connect from CI to EKS,
//! GKE and AKS through `exec` credential plugins and OIDC `auth-provider` entries, which a
//! hand-written client refused. kube-rs runs them as client-go does; it costs build time (see
//! the issue 18 closing note for the measured before/after) and is async, so [`KubeClient`]
//! owns a current-thread runtime. Flux's kinds and the Lease stay JSON values read by pure
//! functions ([`assess`], the lease rules), not generated types.
//!
//! Invariants: every network call takes a deadline and returns by it; nothing is retried
//! for long (a trigger is one request); a Lease is only written with the `resourceVersion` that
//! was read, so a stale write is a 409 reported as a lost race, never applied.
//! Must never: log or return a token, a client key or a kubeconfig secret; block a restore (the
//! caller triggers after the registry write, with a short deadline); decide anything from a
//! status it could not read (that is [`AppliedState::Unreachable`], not "applied").

pub mod api;
#[cfg(feature = "apiserver")]
pub mod apiserver;
mod client;
pub mod clock;
pub mod config;
pub mod connect;
pub mod discovery;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod flux;
pub mod lease;
mod secret;

pub use client::KubeClient;
pub use clock::{Clock, SystemClock};
pub use config::{
    Cluster, ConfigError, Consumer, ConsumerConfig, KubernetesConfig, LeaderElectionConfig,
    ObjectRef,
};
pub use connect::{connect, Connection, Credentials, Environment, Plugin};
pub use error::{ConnectError, ErrorKind, KubeError, ObjectName};
pub use flux::{
    assess, AppliedState, ConditionState, ConditionStatus, ConsumerState, Consumers, Observed,
    ReconcileToken, TriggerReport, WaitOptions, WaitOutcome, WaitProgress,
};
pub use lease::{
    channel_lease_name, ChannelLock, ElectionConfig, ElectionError, LeaderElector, Leadership,
    LeaseLock, LeaseLockConfig, LockError, LockHandle, LockHolder,
};
pub use secret::{Secret, SecretBytes};
