//! The guard's listener: accepts connections, serves each with hyper's HTTP/1 connection
//! (whose header-read timer bounds a slow or idle client), caps how many are served at once,
//! keeps a reserve that only answers `/healthz` and `/readyz`, and shuts connections down
//! gracefully when told.
//!
//! Why not `axum::serve`: it has no header-read timeout, no connection cap and no reserve, so
//! 200 connections sending a byte a second held the guard's descriptors until the kubelet's
//! probes failed (issue 21). Everything here is hyper's and hyper-util's machinery (the
//! connection builder and its timer, `TowerToHyperService`, `GracefulShutdown`); this module
//! only counts connections and picks the service.
//!
//! Invariants: at most `max_connections` connections get the full router; up to
//! `health_reserve` more get the health-only router with a 2 s header timeout and no
//! keep-alive. When the reserve is full too, the oldest reserve connection is closed to make
//! room for the new one: a probe answers in a millisecond, so the newest connection is the one
//! most likely to be a probe, and idle attackers cannot keep the reserve (they would have to
//! outpace the probes). Nothing waits in the kernel's backlog in front of a probe. An accept
//! error (e.g. EMFILE) pauses accepting 50 ms instead of spinning.
//! Must never: block an async worker, or serve a connection without the header-read timer.

use super::limits::{HttpLimits, RESERVE_HEADER_TIMEOUT};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tower::ServiceExt as _;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Connection figures for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Connections open now (full and reserve).
    pub open: AtomicUsize,
    /// Connections served by the health-only reserve.
    pub reserve: AtomicU64,
    /// Reserve connections closed to make room for a newer one (cap and reserve full).
    pub refused: AtomicU64,
    /// Accept errors (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// Reserve connections, oldest first: an id and the sender that closes the connection.
type Reserve = VecDeque<(u64, oneshot::Sender<()>)>;

/// Decrements the open count when a connection ends, however it ends.
struct Open(Arc<ConnCounters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `app` (and `health` on reserve connections) until `stop` turns true; then stop
/// accepting, ask every open connection to finish its request and close, and wait up to
/// `drain` for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    health: Router,
    limits: HttpLimits,
    counters: Arc<ConnCounters>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let body_timeout = RequestBodyTimeoutLayer::new(limits.body_timeout);
    let app = app.layer(body_timeout.clone());
    let health = health.layer(body_timeout);
    // Reserve connections, oldest first: their ids and what closes them.
    let reserve: Arc<Mutex<Reserve>> = Arc::default();
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("accepting a connection failed: {e}; pausing 50ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = counters.open.load(Ordering::Relaxed);
        let full = open < limits.max_connections;
        let (evict_tx, mut evict) = oneshot::channel::<()>();
        next_id += 1;
        let id = next_id;
        if !full {
            counters.reserve.fetch_add(1, Ordering::Relaxed);
            let mut queue = reserve.lock().unwrap_or_else(|p| p.into_inner());
            if queue.len() >= limits.health_reserve {
                if let Some((_, oldest)) = queue.pop_front() {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    let _ = oldest.send(());
                }
            }
            queue.push_back((id, evict_tx));
        }
        counters.open.fetch_add(1, Ordering::Relaxed);
        let guard = Open(counters.clone());
        let _ = stream.set_nodelay(true);
        let router = if full { app.clone() } else { health.clone() };
        let service = router.map_request(move |mut req: axum::http::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(if full {
                limits.header_timeout
            } else {
                RESERVE_HEADER_TIMEOUT
            })
            .keep_alive(full)
            .max_buf_size(64 * 1024);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        let queue = reserve.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(peer = %peer, "connection ended: {e}");
                },
                // Only reserve connections can be evicted (a full one's sender is dropped here).
                Ok(()) = &mut evict => tracing::debug!(peer = %peer, "reserve connection closed for a newer one"),
            }
            if !full {
                queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(i, _)| *i != id);
            }
            drop(guard);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("every HTTP connection closed"),
        () = tokio::time::sleep(drain) => tracing::warn!("HTTP connections still open after {drain:?}; closing them"),
    }
}

/// The peer address a request came from (set on every request by [`serve`]).
pub fn peer(req: &axum::http::Request<axum::body::Body>) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
