//! Leader election between guard replicas (`[guard.leader_election]`): one `coordination.k8s.io`
//! Lease, mainline-kube's [`LeaderElector`](mainline_kube::LeaderElector) with client-go's rules.
//! The leader reconciles (scheduled and webhook-triggered runs); a standby runs the same passes
//! read-only (`Request::Status`: no lock, no write, no journal entry), so its page and metrics
//! stay true, answers `/readyz` as ready, acknowledges webhooks without acting, and takes over
//! between one lease duration and one lease duration plus one retry period after the leader's
//! last renew. On SIGTERM the leader steps down (releases the Lease) after its in-flight runs,
//! so a standby takes over at its next retry instead of after the lease duration.
//!
//! Without `[guard.leader_election]` the guard always leads (one replica, or several that
//! converge through the channel lock, as any number of CI jobs do).
//!
//! Invariants: the elector's calls (blocking reqwest) run on blocking threads, one round per
//! `retry_period`; leadership is checked when a run starts, and a leader whose renewals fail
//! stops starting runs by its `renew_deadline`, before any standby can take over. A run that
//! started while leading finishes even if leadership lapses meanwhile: that is safe for the
//! same reason two CI jobs are (the channel lock, and every run re-deciding from fresh facts).
//! Must never: call the elector on an async worker thread, or start a writing run without
//! being leader at that moment.

use super::error::GuardError;
use super::slot::Slot;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// `[guard.leader_election]`, validated, with this replica's identity.
#[cfg(feature = "kubernetes")]
pub type ElectionSettings = mainline_kube::ElectionConfig;
/// Without the `kubernetes` feature leader election cannot be configured.
#[cfg(not(feature = "kubernetes"))]
pub type ElectionSettings = std::convert::Infallible;

/// This replica's identity: `POD_NAME` (the downward API), else `<hostname>-<pid>`.
pub fn identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME")
        .ok()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
    {
        return pod;
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

fn invalid(reason: impl Into<String>) -> GuardError {
    GuardError::LeaderElection {
        reason: reason.into(),
    }
}

/// Validate `[guard.leader_election]`: timing, the Lease's name and namespace (the table's
/// `namespace`, else `POD_NAMESPACE`), and this replica's identity. Opens nothing.
#[cfg(feature = "kubernetes")]
pub fn settings(raw: Option<toml::Value>) -> Result<Option<ElectionSettings>, GuardError> {
    let Some(raw) = raw else { return Ok(None) };
    let config: mainline_kube::LeaderElectionConfig = raw
        .try_into()
        .map_err(|e| invalid(e.to_string().trim().to_owned()))?;
    let pod_namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.trim().is_empty());
    mainline_kube::ElectionConfig::from_config(&config, &identity(), pod_namespace.as_deref())
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(not(feature = "kubernetes"))]
pub fn settings(raw: Option<toml::Value>) -> Result<Option<ElectionSettings>, GuardError> {
    match raw {
        None => Ok(None),
        Some(_) => Err(invalid(
            "this mainline was built without the `kubernetes` feature: use a release build (the \
             feature is on by default), or drop [guard.leader_election]",
        )),
    }
}

/// The replica's role, for `/api/channels` and the page.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderView {
    /// `leader`, `standby`, or `single` (no leader election: this guard always reconciles).
    pub role: &'static str,
    pub identity: String,
    /// `namespace/name` of the leader Lease, with leader election.
    pub lease: Option<String>,
    /// Who leads, as the last election round saw it.
    pub leader: Option<String>,
}

/// Whether this replica may reconcile now, and who leads.
pub struct Leader {
    identity: String,
    #[cfg(feature = "kubernetes")]
    elector: Option<Arc<mainline_kube::LeaderElector>>,
    /// Who leads, as the last round saw it.
    known: Mutex<Option<String>>,
}

impl Leader {
    /// No leader election: always leads.
    pub fn single() -> Leader {
        Leader {
            identity: identity(),
            #[cfg(feature = "kubernetes")]
            elector: None,
            known: Mutex::new(None),
        }
    }

    /// Connect the elector (reads kubeconfig or the service account as kubectl does:
    /// `$KUBECONFIG`, `~/.kube/config`, else the pod's service account). Blocking: call it
    /// outside the async runtime. No request is made yet.
    #[cfg(feature = "kubernetes")]
    pub fn open(settings: Option<&ElectionSettings>) -> Result<Leader, GuardError> {
        let Some(config) = settings else {
            return Ok(Leader::single());
        };
        let cluster = mainline_kube::Cluster::Kubeconfig {
            path: None,
            context: None,
        };
        let client = mainline_kube::KubeClient::connect(
            &cluster,
            &mainline_kube::Environment::from_process(),
        )
        .map_err(|e| {
            invalid(format!(
                "cannot reach the cluster for the leader Lease ({e}); the guard connects \
                         as kubectl does: $KUBECONFIG, ~/.kube/config, else the pod's service \
                         account"
            ))
        })?;
        let elector = mainline_kube::LeaderElector::new(
            Arc::new(client),
            Arc::new(mainline_kube::SystemClock),
            config.clone(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Leader {
            identity: config.identity.clone(),
            elector: Some(Arc::new(elector)),
            known: Mutex::new(None),
        })
    }

    #[cfg(not(feature = "kubernetes"))]
    pub fn open(settings: Option<&ElectionSettings>) -> Result<Leader, GuardError> {
        match settings {
            None => Ok(Leader::single()),
            Some(never) => match *never {},
        }
    }

    /// Whether leader election is configured.
    pub fn elected(&self) -> bool {
        #[cfg(feature = "kubernetes")]
        return self.elector.is_some();
        #[cfg(not(feature = "kubernetes"))]
        false
    }

    /// Whether this replica may start a writing run now (no I/O: a clock read).
    pub fn may_reconcile(&self) -> bool {
        #[cfg(feature = "kubernetes")]
        return self.elector.as_ref().is_none_or(|e| e.is_leader());
        #[cfg(not(feature = "kubernetes"))]
        true
    }

    /// Who leads, as the last election round saw it.
    pub fn known_leader(&self) -> Option<String> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[cfg(feature = "kubernetes")]
    fn set_known(&self, who: Option<String>) {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = who;
    }

    pub fn view(&self) -> LeaderView {
        let role = match (self.elected(), self.may_reconcile()) {
            (false, _) => "single",
            (true, true) => "leader",
            (true, false) => "standby",
        };
        LeaderView {
            role,
            identity: self.identity.clone(),
            #[cfg(feature = "kubernetes")]
            lease: self
                .elector
                .as_ref()
                .map(|e| format!("{}/{}", e.config().namespace, e.config().name)),
            #[cfg(not(feature = "kubernetes"))]
            lease: None,
            leader: if role == "leader" {
                Some(self.identity.clone())
            } else {
                self.known_leader()
            },
        }
    }
}

/// Run election rounds every `retry_period` until `stop`; when this replica becomes leader,
/// every channel reconciles at once. Returns at once without leader election.
#[cfg(feature = "kubernetes")]
pub async fn campaign(
    leader: Arc<Leader>,
    slots: Vec<Arc<Slot>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use mainline_kube::Leadership;
    let Some(elector) = leader.elector.clone() else {
        return;
    };
    let period = elector.config().retry_period;
    let lease = format!("{}/{}", elector.config().namespace, elector.config().name);
    loop {
        let started = tokio::time::Instant::now();
        let was = elector.is_leader();
        let e = elector.clone();
        let round = tokio::task::spawn_blocking(move || e.try_acquire_or_renew()).await;
        match round {
            Ok(Ok(Leadership::Leader { .. })) => {
                leader.set_known(Some(leader.identity.clone()));
                if !was {
                    tracing::info!(%lease, identity = %leader.identity,
                        "elected leader: reconciling every channel now");
                    for s in &slots {
                        s.request("elected leader");
                    }
                }
            }
            Ok(Ok(Leadership::Follower { holder })) => {
                if was {
                    tracing::warn!(%lease, leader = ?holder,
                        "lost the leader Lease: standing by (read-only passes)");
                } else if holder != leader.known_leader() {
                    tracing::info!(%lease, leader = ?holder, "standing by");
                }
                if holder.is_some() {
                    leader.set_known(holder);
                }
            }
            Ok(Err(e)) => tracing::warn!(
                %lease,
                leading = elector.is_leader(),
                "leader election round failed (a leader keeps acting only until its renew \
                 deadline): {}",
                crate::error::chain_message(&e)
            ),
            Err(e) => tracing::error!("a leader election round panicked: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + period) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(not(feature = "kubernetes"))]
pub async fn campaign(_: Arc<Leader>, _: Vec<Arc<Slot>>, _: tokio::sync::watch::Receiver<bool>) {}

/// Step down (release the Lease when it is ours) so a standby takes over at its next round.
#[cfg(feature = "kubernetes")]
pub async fn step_down(leader: &Arc<Leader>) {
    let Some(elector) = leader.elector.clone() else {
        return;
    };
    let was = elector.is_leader();
    match tokio::task::spawn_blocking(move || elector.step_down()).await {
        Ok(Ok(())) if was => tracing::info!(identity = %leader.identity,
            "stepped down as leader: the Lease is released for a standby"),
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            "could not release the leader Lease (a standby takes over after the lease \
             duration): {}",
            crate::error::chain_message(&e)
        ),
        Err(e) => tracing::error!("stepping down panicked: {e}"),
    }
}

#[cfg(not(feature = "kubernetes"))]
pub async fn step_down(_: &Arc<Leader>) {}
