//! Retrying one registry operation: exponential backoff on connection errors, timeouts, 5xx
//! and 429 (waiting for `Retry-After` when the answer carries it and it is short), never on
//! another 4xx or an integrity failure.
//!
//! Invariants: at most `1 + retries` attempts; every attempt starts from scratch (a new
//! upload session, a new request), so the operations we retry are idempotent; no sleep is
//! longer than [`MAX_WAIT`]; with a deadline, no attempt runs past it and no pause ends after
//! it (the operation fails with [`Failure::Deadline`], or with its last failure).

use super::failure::Failure;
use std::future::Future;
use std::time::{Duration, Instant};

/// The first pause; each further one doubles, up to [`MAX_WAIT`].
const BASE_WAIT: Duration = Duration::from_millis(250);
/// The longest we pause between attempts, and the longest `Retry-After` we honour: a
/// registry that asks for more is reported as unavailable now, so callers can decide.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) retries: u32,
    /// Per attempt, for requests without a large body (`None` for blob transfers, which rely
    /// on the client's connect and read timeouts instead).
    pub(crate) timeout: Option<Duration>,
    /// The command's overall deadline: bounds every attempt (blob transfers and the token
    /// requests inside an attempt included) and every pause.
    pub(crate) deadline: Option<Instant>,
}

impl Policy {
    /// The limit for the next attempt, and whether the deadline (not the timeout) sets it.
    fn limit(&self) -> (Option<Duration>, bool) {
        let left = self
            .deadline
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (self.timeout, left) {
            (Some(t), Some(l)) if l < t => (Some(l), true),
            (Some(t), _) => (Some(t), false),
            (None, Some(l)) => (Some(l), true),
            (None, None) => (None, false),
        }
    }
}

/// The pause before attempt `attempt + 1` (0-based), honouring a short `Retry-After`.
pub(crate) fn pause(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    match retry_after {
        Some(wait) if wait > MAX_WAIT => None,
        Some(wait) => Some(wait),
        None => Some(
            BASE_WAIT
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(MAX_WAIT),
        ),
    }
}

/// Runs attempts until one succeeds, fails for good, or the retries are spent. Returns the last
/// failure with the number of attempts made.
///
/// `fence` is asked right before every attempt how long it may take (the shorter of that and
/// the policy's limit applies); a refusal stops the loop with [`Failure::Fenced`], so no attempt
/// starts that the fence cannot cover to its end. The loop itself is synchronous on purpose: a
/// fence may renew a lock through another client (a git process, a Kubernetes client with a
/// runtime of its own), which must not happen inside the store's async runtime. `run` carries
/// out one attempt within a limit (see [`timed`]); `sleep` pauses between attempts.
pub(crate) fn with_fence<T>(
    policy: Policy,
    what: &str,
    fence: &dyn crate::WriteFence,
    mut run: impl FnMut(Option<Duration>) -> Result<T, Failure>,
    mut sleep: impl FnMut(Duration),
) -> Result<T, (Failure, u32)> {
    let mut made = 0u32;
    loop {
        let (own_limit, by_deadline) = policy.limit();
        if by_deadline && own_limit.is_some_and(|l| l.is_zero()) {
            return Err((Failure::Deadline { started: false }, made.max(1)));
        }
        let admitted = match fence.admit() {
            Ok(limit) => limit,
            Err(refused) => {
                let reason = match made {
                    0 => format!("not attempted: {refused}"),
                    n => {
                        format!("no further attempt after {n} (the last may still land): {refused}")
                    }
                };
                return Err((Failure::Fenced { reason }, made));
            }
        };
        made += 1;
        // The fence may allow less than the timeout and the deadline; then it sets the limit,
        // and a cut attempt is a plain timeout, not the deadline.
        let (limit, by_deadline) = match own_limit {
            Some(own) if admitted < own => (Some(admitted), false),
            Some(own) => (Some(own), by_deadline),
            None if admitted < Duration::MAX => (Some(admitted), false),
            None => (None, false),
        };
        let failure = match run(limit) {
            Ok(value) => return Ok(value),
            // Cut off by the command's deadline (not by its own timeout or the fence): say so.
            Err(Failure::Transport { .. })
                if by_deadline && policy.deadline.is_some_and(|at| Instant::now() >= at) =>
            {
                Failure::Deadline { started: true }
            }
            Err(failure) => failure,
        };
        if failure.outcome_unknown() {
            fence.note_uncertain();
        }
        if !failure.is_transient() || made > policy.retries {
            return Err((failure, made));
        }
        let Some(wait) = pause(made - 1, failure.retry_after()) else {
            return Err((failure, made));
        };
        if policy
            .deadline
            .is_some_and(|at| Instant::now() + wait >= at)
        {
            return Err((failure, made));
        }
        tracing::warn!(
            operation = what,
            attempt = made,
            wait_ms = wait.as_millis() as u64,
            failure = ?failure,
            "registry operation failed; retrying"
        );
        sleep(wait);
    }
}

/// One attempt, cut off after `limit` (a cut-off is a transport failure: no answer came).
pub(crate) async fn timed<T>(
    limit: Option<Duration>,
    attempt: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match limit {
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Transport {
                detail: format!("no answer within {} s", limit.as_secs_f32()),
            }),
        },
        None => attempt.await,
    }
}
