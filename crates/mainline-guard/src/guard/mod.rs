//! `mainline guard`: the always-on reconciler. It watches every configured channel, reconciles
//! each on a jittered interval and at once on GitHub events, and serves what on-call looks at
//! first: a status page, a JSON API, Prometheus metrics, health checks and the webhook endpoint.
//!
//! Shape: settings are validated first ([`settings`]); then every channel's adapters are opened
//! once ([`open`], blocking, outside any async runtime) into [`slot::Slot`]s; [`serve`] runs a
//! tokio runtime with one loop per channel ([`schedule`]) and the HTTP surface ([`http`]). Each
//! reconcile is exactly the CLI's `reconcile` — the same executor, lock and journal — run on a
//! blocking thread under a guard-wide semaphore.
//!
//! Invariants: at most `parallelism` reconciles at once, and one channel's failure or slowness
//! never delays another's turn; on SIGTERM/SIGINT no new reconcile starts, in-flight ones get
//! `shutdown_grace` to finish and are then abandoned (the channel tag is only ever written
//! whole, the executor's lock expires by itself, and the next run settles the journal) — and
//! all that time the listener keeps serving: `/readyz` answers 503 (so the Service stops
//! routing here) and `/healthz` 200 (so the kubelet does not kill a guard that is finishing a
//! write); the listener closes only once in-flight work ended.
//! Must never: run the blocking executor, a registry store or the GitHub client on an async
//! worker thread, drop a slot inside the runtime (each registry store owns a runtime), or
//! decide anything itself: every decision is `mainline_core::decide` on fresh facts.

pub mod api;
pub mod applied_metrics;
pub mod auth;
pub mod error;
pub mod http;
pub mod kube;
pub mod leader;
pub mod limits;
pub mod metrics;
pub mod open;
pub mod page;
mod resolve;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod settings;
pub mod slot;
pub mod state;
pub mod timeline;
mod webhook;

pub use error::GuardError;
pub use open::open;
pub use settings::{GuardArgs, GuardSettings};

use crate::channel::ports::{Clock, SystemClock};
use mainline_github::webhook::ReplayGuard;
use schedule::{channel_loop, Jitter, Scheduler};
use slot::Slot;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Semaphore};

/// Who the guard acts as in journal entries and lock records: `guard@<pod>` (`POD_NAME`, so
/// replicas on one node differ), else `guard@<host>`.
pub fn actor() -> String {
    let pod = std::env::var("POD_NAME")
        .ok()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let host = pod.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    });
    format!("guard@{host}")
}

/// Bind the listener (before serving, so the address is known and a taken port fails early).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, GuardError> {
    std::net::TcpListener::bind(addr).map_err(|source| GuardError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// What ends [`serve`].
pub enum Stop {
    /// SIGTERM or SIGINT (the CLI).
    Signals,
    /// A message on this channel, or its sender dropped (tests, the load bench).
    Channel(oneshot::Receiver<()>),
}

async fn wait_for(stop: Stop) {
    match stop {
        Stop::Channel(rx) => {
            let _ = rx.await;
        }
        Stop::Signals => {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                _ => {
                    tracing::error!(
                        "cannot listen for SIGTERM/SIGINT; stop the guard with SIGKILL"
                    );
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Serve until `stop`, then shut down gracefully. Blocks the calling thread; the slots are
/// dropped by the caller, outside the runtime. With leader election, the elector is connected
/// here (before the runtime starts) and the Lease is released on the way out.
pub fn serve(
    settings: &GuardSettings,
    slots: &[Arc<Slot>],
    listener: std::net::TcpListener,
    stop: Stop,
) -> Result<(), GuardError> {
    let leader = Arc::new(leader::Leader::open(settings.leader_election.as_ref())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mainline-guard")
        .enable_all()
        .build()
        .map_err(GuardError::Runtime)?;
    let (tx, rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(settings.parallelism));
    let shared = Arc::new(http::Shared {
        slots: slots.to_vec(),
        index: slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name().to_owned(), i))
            .collect(),
        permits: permits.clone(),
        shutdown: rx.clone(),
        stopping: AtomicBool::new(false),
        webhook_secret: settings.webhook_secret.clone(),
        replay: Mutex::new(ReplayGuard::default()),
        webhooks: metrics::WebhookCounters::default(),
        tokens: settings.tokens.clone(),
        api_auth: settings.http.api_auth,
        rate: auth::RateLimit::new(settings.http.rate_limit, settings.http.rate_burst),
        conns: Arc::new(server::ConnCounters::default()),
        interval: settings.interval,
        started_at: SystemClock.now(),
        actor: actor(),
        leader: leader.clone(),
    });
    let grace = settings.shutdown_grace;
    let result = runtime.block_on(async {
        listener
            .set_nonblocking(true)
            .map_err(GuardError::Runtime)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(GuardError::Runtime)?;
        let sched = Arc::new(Scheduler {
            interval: settings.interval,
            permits,
            shutdown: rx.clone(),
            leader: leader.clone(),
        });
        // The elector outlives the channel loops: it keeps renewing while in-flight runs
        // drain, and stops just before stepping down.
        let (elector_stop, elector_rx) = watch::channel(false);
        let campaign = tokio::spawn(leader::campaign(leader.clone(), slots.to_vec(), elector_rx));
        let mut loops = tokio::task::JoinSet::new();
        for (i, slot) in slots.iter().enumerate() {
            let seed = settings.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            loops.spawn(channel_loop(
                slot.clone(),
                sched.clone(),
                Jitter::new(seed, settings.jitter),
            ));
        }
        // The listener outlives the channel loops: it stops only after in-flight work ended.
        let (server_stop, server_rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(
            listener,
            http::router(shared.clone()),
            http::health_router(shared.clone()),
            settings.http.clone(),
            shared.conns.clone(),
            server_rx,
            Duration::from_secs(5),
        ));
        if let Some(asked) = settings.http.max_connections_asked {
            tracing::warn!(
                asked,
                max_connections = settings.http.max_connections,
                "max_connections lowered to fit the open-file limit (ulimit -n), keeping {} \
                 descriptors for git and registry work and {} for the health reserve",
                limits::FD_HEADROOM,
                settings.http.health_reserve
            );
        }
        tracing::info!(
            channels = slots.len(),
            parallelism = settings.parallelism,
            interval = ?settings.interval,
            leader_election = leader.elected(),
            identity = %leader.view().identity,
            max_connections = settings.http.max_connections,
            header_timeout = ?settings.http.header_timeout,
            body_timeout = ?settings.http.body_timeout,
            "guard started"
        );
        wait_for(stop).await;
        shared.stopping.store(true, Ordering::Relaxed);
        let _ = tx.send(true);
        tracing::info!(
            "shutting down: no new reconciles; waiting up to {grace:?} for the ones in flight"
        );
        let drained =
            tokio::time::timeout(grace, async { while loops.join_next().await.is_some() {} }).await;
        match drained {
            Ok(()) => tracing::info!("every in-flight reconcile finished"),
            Err(_) => {
                let busy: Vec<&str> = slots
                    .iter()
                    .filter(|s| s.state().running)
                    .map(|s| s.name())
                    .collect();
                tracing::warn!(
                    channels = ?busy,
                    "abandoning reconciles still running after {grace:?}: the channel tag is \
                     written whole, their lock expires by itself, the next run settles the journal"
                );
            }
        }
        let _ = elector_stop.send(true);
        let _ = campaign.await;
        leader::step_down(&leader).await;
        let _ = server_stop.send(true);
        if let Err(e) = tokio::time::timeout(Duration::from_secs(10), server).await {
            tracing::warn!("the HTTP server did not stop: {e}");
        }
        Ok(())
    });
    drop(shared);
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// A guard serving on a background thread (tests and the load bench).
pub struct GuardHandle {
    pub addr: SocketAddr,
    pub slots: Vec<Arc<Slot>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), GuardError>>>,
}

impl GuardHandle {
    /// Stop the guard and wait for its thread.
    pub fn stop(mut self) -> Result<(), GuardError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), GuardError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(GuardError::Runtime(std::io::Error::other(
                "the guard thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for GuardHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Open the channels and serve on a background thread; returns once the listener is bound.
pub fn spawn(
    ctx: &dyn crate::OpenStore,
    settings: GuardSettings,
) -> Result<GuardHandle, GuardError> {
    let slots = open(ctx, &settings)?;
    let listener = bind(settings.listen)?;
    let addr = listener.local_addr().map_err(GuardError::Runtime)?;
    let (tx, rx) = oneshot::channel();
    let thread_slots = slots.clone();
    let thread = std::thread::Builder::new()
        .name("mainline-guard-main".into())
        .spawn(move || serve(&settings, &thread_slots, listener, Stop::Channel(rx)))
        .map_err(GuardError::Runtime)?;
    Ok(GuardHandle {
        addr,
        slots,
        stop: Some(tx),
        thread: Some(thread),
    })
}
