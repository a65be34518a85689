//! What the guard knows about each channel between reconciles: the last decision's facts (for
//! the page and `/api/channels`), counters and the duration histogram (for `/metrics`), the lock
//! as last seen, and the tail of the journal (for the timeline).
//!
//! Invariants: every field is written only by [`ChannelState::record`] (after a run) or by the
//! history and lock readers, under the slot's mutex; a run that failed leaves the last good
//! facts visible but makes the channel's verdict UNKNOWN (never a stale CONVERGED); times are
//! unix milliseconds from the guard's clock.
//! Must never: hold a secret, or do I/O (callers read, then record).

use crate::channel::exec::Report;
use crate::channel::journal::Record;
use crate::channel::report::ChannelReport;
use crate::error::CliError;
use mainline_core::{Action, CommitId, Digest, Group, Pin, Refusal, Timestamp, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;

/// Upper bounds (seconds) of the reconcile duration histogram's buckets.
pub const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A Prometheus histogram: per-bucket counts (not cumulative), total count and sum.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// `(le, cumulative count)` for every bucket, `+Inf` last.
    pub fn cumulative(&self) -> Vec<(String, u64)> {
        let mut total = 0;
        let mut out: Vec<(String, u64)> = BUCKETS
            .iter()
            .zip(self.buckets.iter())
            .map(|(b, n)| {
                total += n;
                (b.to_string(), total)
            })
            .collect();
        out.push(("+Inf".into(), self.count));
        out
    }
}

/// What the last successful run saw.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The verdict after the run (what the channel is now).
    pub verdict: Verdict,
    pub explanation: String,
    /// The verdict the run started from (e.g. DIVERGED before a restore).
    pub first_verdict: Verdict,
    pub channel_digest: Option<Digest>,
    pub channel_commit: Option<CommitId>,
    pub mainline_commit: Option<CommitId>,
    /// The pull requests of the in-flight group prod runs, when it runs a candidate.
    pub prs: Vec<u64>,
    pub groups: Vec<Group>,
    pub pin: Option<Pin>,
    pub refusal: Option<Refusal>,
}

/// The channel lock as the guard last saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LockView {
    /// `git`, `kubernetes` (a Lease) or `none`.
    pub backend: String,
    /// Some writer held the lock when the guard last looked (expired or not): the git lock ref
    /// existed, or the Lease named a holder.
    pub held: bool,
    pub holder: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// Why the holder could not be read.
    pub error: Option<String>,
}

/// What one Flux consumer has applied.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerView {
    /// `namespace/name` of the OCIRepository.
    pub consumer: String,
    /// `APPLIED`, `PENDING`, `STUCK` or `UNREACHABLE`.
    pub state: String,
    /// Why it is not APPLIED (the condition message, the revision it is at, the error).
    pub detail: String,
}

/// What prod has applied versus what the channel names, read after a run.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedView {
    /// The worst of the consumers' states.
    pub state: String,
    /// The digest the channel named when they were read.
    pub digest: Digest,
    pub at: Timestamp,
    pub consumers: Vec<ConsumerView>,
}

/// The last failure of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub kind: crate::error::Kind,
    pub message: String,
    pub at: Timestamp,
}

/// Everything the guard keeps per channel.
#[derive(Debug, Default)]
pub struct ChannelState {
    pub snapshot: Option<Snapshot>,
    pub error: Option<LastError>,
    /// When the guard started watching (unix ms).
    pub watching_since: i64,
    pub last_started: Option<Timestamp>,
    pub last_finished: Option<Timestamp>,
    pub last_trigger: Option<String>,
    pub last_duration_ms: Option<u64>,
    pub running: bool,
    pub reconciles: u64,
    pub errors: u64,
    /// Channel writes by action (`promote`, `restore`, …).
    pub moves: BTreeMap<&'static str, u64>,
    pub refusals: u64,
    /// When a run last found the channel CONVERGED.
    pub matched_at: Option<Timestamp>,
    /// Since when prod runs code that is not on mainline (a candidate or ejected code).
    pub unmerged_since: Option<Timestamp>,
    pub durations: Histogram,
    pub lock: LockView,
    /// The newest journal records, oldest first.
    pub history: Vec<Record>,
    /// The journal head the history was read at.
    pub history_head: Option<CommitId>,
    pub history_error: Option<String>,
    /// When the history was last read.
    pub history_read_at: Option<Timestamp>,
    /// The history API's JSON body for what is above, built on the first request after a read
    /// (a flood of requests serialises it once, not once each).
    pub history_body: Option<std::sync::Arc<str>>,
    /// Why the GitHub API queue fell back to git refs on the last run.
    pub queue_warning: Option<String>,
    /// What the Flux consumers applied, when the channel has some.
    pub applied: Option<AppliedView>,
    /// How long digests took to be APPLIED everywhere (issue 18: metrics).
    pub apply_timing: super::applied_metrics::ApplyTiming,
}

/// The metric/label name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Promote => "promote",
        Action::Restore => "restore",
        Action::DeployCandidate => "deploy_candidate",
        Action::ApplyPin => "apply_pin",
    }
}

impl ChannelState {
    /// Restores so far: the `restore` entry of `moves` (derived, never counted twice).
    pub fn restores(&self) -> u64 {
        self.moves
            .get(action_name(Action::Restore))
            .copied()
            .unwrap_or(0)
    }

    pub fn new(now: Timestamp) -> ChannelState {
        ChannelState {
            watching_since: now.millis(),
            ..ChannelState::default()
        }
    }

    /// The verdict to show now: UNKNOWN when the last run failed or none finished yet.
    pub fn verdict(&self) -> Verdict {
        match (&self.error, &self.snapshot) {
            (None, Some(s)) => s.verdict,
            _ => Verdict::Unknown,
        }
    }

    /// Seconds since a run last found the channel on mainline (since the guard started
    /// watching when it never did: a lower bound).
    pub fn seconds_since_mainline(&self, now: Timestamp) -> f64 {
        if self.verdict() == Verdict::Converged {
            return 0.0;
        }
        let since = self.matched_at.unwrap_or(Timestamp(self.watching_since));
        secs_between(since, now)
    }

    /// Seconds prod has run code that is not on mainline (0 when it runs mainline's).
    pub fn unmerged_seconds(&self, now: Timestamp) -> f64 {
        self.unmerged_since.map_or(0.0, |t| secs_between(t, now))
    }

    /// Take in a read of the journal's tail.
    pub fn take_history(
        &mut self,
        read: Result<(Vec<Record>, Option<CommitId>), String>,
        now: Timestamp,
    ) {
        self.history_body = None;
        match read {
            Ok((records, head)) => {
                self.history = records;
                self.history_head = head;
                self.history_error = None;
                self.history_read_at = Some(now);
            }
            Err(e) => self.history_error = Some(e),
        }
    }

    /// Take in the outcome of one run.
    pub fn record(
        &mut self,
        config: &crate::channel::ChannelConfig,
        result: &Result<Report, CliError>,
        now: Timestamp,
        seconds: f64,
    ) {
        self.reconciles += 1;
        self.durations.observe(seconds);
        self.last_finished = Some(now);
        self.last_duration_ms = Some((seconds * 1000.0) as u64);
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                self.errors += 1;
                self.error = Some(LastError {
                    kind: e.kind,
                    message: e.to_string(),
                    at: now,
                });
                return;
            }
        };
        for m in &report.moves {
            *self.moves.entry(action_name(m.action)).or_insert(0) += 1;
        }
        if report.refusal.is_some() {
            self.refusals += 1;
        }
        let r = ChannelReport::new(config, report);
        let prs = r
            .after
            .channel_commit
            .as_ref()
            .map(|c| {
                r.groups
                    .iter()
                    .filter(|g| &g.head == c)
                    .flat_map(|g| g.prs.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        match r.final_verdict {
            Verdict::Converged => {
                self.matched_at = Some(now);
                self.unmerged_since = None;
            }
            Verdict::Behind => self.unmerged_since = None,
            Verdict::Candidate | Verdict::Diverged => {
                self.unmerged_since.get_or_insert(now);
            }
            Verdict::Pinned | Verdict::Unknown => {}
        }
        if r.final_verdict == Verdict::Unknown {
            // A fact could not be read (an unreachable git remote, registry or API): the run
            // failed at its job, whatever the executor returned.
            self.errors += 1;
        }
        self.error = None;
        self.snapshot = Some(Snapshot {
            verdict: r.final_verdict,
            explanation: r.final_explanation,
            first_verdict: r.verdict,
            channel_digest: r.after.channel_digest,
            channel_commit: r.after.channel_commit,
            mainline_commit: r.mainline_commit,
            prs,
            groups: r.groups,
            pin: r.pin,
            refusal: r.refusal,
        });
    }
}

fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    ((to.millis() - from.millis()).max(0) as f64) / 1000.0
}
