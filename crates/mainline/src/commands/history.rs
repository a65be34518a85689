//! `mainline history`: what prod ran when, and why it moved — read from the journal on the git
//! remote, from any machine that can fetch it. `--verify` checks the hash chain.

use crate::adapters::git::GitRepo;
use crate::channel::journal::Journal;
use crate::channel::journal::{verify, Break, JournalError, Record};
use crate::channel::journal_verify::{self as checkpoints, verify_from, Checkpoint};
use crate::channel::ports::SystemClock;
use crate::cli::HistoryArgs;
use crate::commands::push::io_err;
use crate::error::{chain_message, CliError, Kind};
use crate::output::emit;
use crate::settings::Context;
use mainline_core::{Digest, Timestamp};
use mainline_store::Location;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct HistoryReport {
    channel: String,
    journal_ref: String,
    records: Vec<Record>,
    /// With --at: what the channel named at that time, and the record that put it there.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<AtReport>,
    /// With --verify: the breaks found (empty: the chain verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<Vec<Break>>,
    /// With --verify: how many records were checked, and the checkpoint's seq they were checked
    /// from (`null`: from record 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_records: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_from: Option<u64>,
    /// Seqs of intents no `moved`/`abandoned` record settles yet: their write may or may not
    /// have landed (a run died, or lost its answer). The next locked run settles them.
    unsettled: Vec<u64>,
}

#[derive(Serialize)]
struct AtReport {
    time: Timestamp,
    digest: Option<Digest>,
    record: Option<Record>,
}

pub fn run(ctx: &Context, args: &HistoryArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let now = crate::channel::ports::Clock::now(&crate::channel::ports::SystemClock);
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time(s, now, "--since"))
        .transpose()?;
    let at = args
        .at
        .as_deref()
        .map(|s| parse_time(s, now, "--at"))
        .transpose()?;
    // The journal lives on the git remote: history needs no store, so it opens none (and
    // never creates a layout). A layout path that is not a layout, for a channel with no
    // journal, is a typo: invalid input rather than "never deployed".
    let (config, cache_root) = crate::config::resolve(&args.channel)?;
    let repo = GitRepo::open_until(&config, &cache_root, ctx.deadline_at())?;
    let journal = Journal::new(&repo, &SystemClock, &config.key, &config.branch);
    let all = match args.last {
        Some(n) => journal.last(n),
        None => journal.records(),
    }
    .map_err(journal_err)?;
    if all.is_empty() {
        if let Location::Layout { path } = &config.store {
            if !path.join("oci-layout").is_file() {
                return Err(CliError::invalid(format!(
                    "there is no OCI image layout at {} and no journal for {}; check the path",
                    path.display(),
                    config.channel_display()
                )));
            }
        }
    }
    let checked = if args.verify {
        let remote = repo.remote().url().redacted().to_owned();
        let path = checkpoints::path(&cache_root, &remote, &journal.refname);
        Some(verify_chain(
            &journal,
            &all,
            args.last.is_some(),
            &path,
            &remote,
        )?)
    } else {
        None
    };
    let unsettled = unsettled_intents(&all);
    let at_report = at.map(|t| {
        let record = all
            .iter()
            .rev()
            .find(|r| r.entry.time <= t && r.entry.after.is_some())
            .cloned();
        AtReport {
            time: t,
            digest: record.as_ref().and_then(|r| r.entry.after.clone()),
            record,
        }
    });
    let records: Vec<Record> = all
        .into_iter()
        .filter(|r| since.is_none_or(|s| r.entry.time >= s))
        .collect();
    let report = HistoryReport {
        channel: config.channel_display(),
        journal_ref: journal.refname.clone(),
        records,
        at: at_report,
        verified_records: checked.as_ref().map(|c| c.records),
        verified_from: checked.as_ref().and_then(|c| c.from),
        verified: checked.map(|c| c.breaks),
        unsettled,
    };
    emit(ctx, out, &report, |w| render(&report, w)).map_err(io_err)?;
    match &report.verified {
        Some(breaks) if !breaks.is_empty() => Ok(Kind::Integrity.exit_code()),
        _ => Ok(0),
    }
}

/// Reading the journal failed: unavailable (6) only when the remote could not be reached;
/// a journal that is there but cannot be read (a record that does not parse, a ref at a tree, a
/// parent that is missing) is an integrity failure (8), as `--verify` reports a broken chain.
fn journal_err(e: JournalError) -> CliError {
    use crate::channel::ports::RepoError;
    let message = chain_message(&e);
    match e {
        JournalError::Repo {
            source: RepoError::Unavailable(_),
            ..
        }
        | JournalError::Contended { .. } => CliError::new(Kind::Unavailable, message)
            .with_hint("the git remote did not answer; retry later"),
        JournalError::Repo { refname, .. } | JournalError::Unreadable { refname, .. } => {
            CliError::new(Kind::Integrity, message).with_hint(format!(
                "the journal {refname} is damaged: its records can no longer be trusted; keep the ref for \
                 investigation (git fetch REMOTE {refname}), and ask who else writes refs/mainline/"
            ))
        }
    }
}

/// What `--verify` checked.
struct Checked {
    breaks: Vec<Break>,
    records: usize,
    from: Option<u64>,
}

/// Verify the chain. `loaded` is what was read for display; when it is only the newest records
/// (`partial`), the chain is read back from the head to this machine's checkpoint, and checked
/// from there when the checkpoint's record is still on the chain unchanged — else the whole
/// chain is read and checked. A chain without a break gets a new checkpoint at its head.
fn verify_chain(
    journal: &Journal<'_>,
    loaded: &[Record],
    partial: bool,
    path: &std::path::Path,
    remote: &str,
) -> Result<Checked, CliError> {
    let checkpoint = partial
        .then(|| checkpoints::load(path, remote, &journal.refname))
        .flatten();
    let (anchor, segment) = match &checkpoint {
        Some(c) => {
            let mut back = journal
                .tail(usize::MAX, |e| e.seq <= c.seq)
                .map_err(journal_err)?;
            back.reverse();
            match back.split_first() {
                Some((first, rest)) if c.matches(first) => (Some(first.clone()), rest.to_vec()),
                _ => (None, journal.records().map_err(journal_err)?),
            }
        }
        None if partial => (None, journal.records().map_err(journal_err)?),
        None => (None, loaded.to_vec()),
    };
    let breaks = match &anchor {
        Some(a) => verify_from(Some(&a.entry), &segment),
        None => verify(&segment),
    };
    if breaks.is_empty() {
        if let Some(newest) = segment.last().or(anchor.as_ref()) {
            let c = Checkpoint::at(remote, &journal.refname, newest);
            if let Err(e) = checkpoints::save(path, &c) {
                tracing::warn!(
                    "could not save the verification checkpoint {}: {e}",
                    path.display()
                );
            }
        }
    }
    Ok(Checked {
        breaks,
        records: segment.len(),
        from: anchor.map(|a| a.entry.seq),
    })
}

/// Intents that no `moved` or `abandoned` record names as settled.
fn unsettled_intents(records: &[Record]) -> Vec<u64> {
    use crate::channel::journal::EntryKind;
    let settled: std::collections::BTreeSet<u64> = records
        .iter()
        .filter(|r| matches!(r.entry.kind, EntryKind::Moved | EntryKind::Abandoned))
        .filter_map(|r| r.entry.intent)
        .collect();
    records
        .iter()
        .filter(|r| r.entry.kind == EntryKind::Intent && !settled.contains(&r.entry.seq))
        .map(|r| r.entry.seq)
        .collect()
}

fn render(r: &HistoryReport, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "history of {} ({})", r.channel, r.journal_ref)?;
    if r.records.is_empty() {
        writeln!(w, "  (no records)")?;
    }
    for rec in &r.records {
        let e = &rec.entry;
        let short =
            |d: &Option<Digest>| d.as_ref().map_or("-".to_owned(), |d| d.short().to_owned());
        let commit = e
            .to_commit
            .as_ref()
            .map_or("-".to_owned(), |c| c.short().to_owned());
        let action = e.action.map(|a| format!("{a:?}")).unwrap_or_default();
        writeln!(
            w,
            "#{:<4} {}  {:<9} {:<15} {} -> {} ({commit})  by {}",
            e.seq,
            e.time,
            format!("{:?}", e.kind).to_lowercase(),
            action,
            short(&e.from_digest),
            short(&e.to_digest),
            e.actor
        )?;
        writeln!(w, "       {}", e.reason)?;
        if r.unsettled.contains(&e.seq) {
            writeln!(
                w,
                "       UNSETTLED: this write may or may not have landed; the next locked run (any reconcile) records which"
            )?;
        }
    }
    if let Some(at) = &r.at {
        match (&at.digest, &at.record) {
            (Some(d), Some(rec)) => {
                // An intent's `after` is where the channel still was: pair it with the commit it
                // came from, never with the commit it was about to move to.
                let intent = rec.entry.kind == crate::channel::journal::EntryKind::Intent;
                let commit = if intent {
                    rec.entry.from_commit.as_ref()
                } else {
                    rec.entry
                        .to_commit
                        .as_ref()
                        .or(rec.entry.from_commit.as_ref())
                };
                writeln!(
                    w,
                    "at {} prod ran {} ({}), since #{} {}: {}",
                    at.time,
                    d,
                    commit.map_or("commit unknown", |c| c.as_str()),
                    rec.entry.seq,
                    rec.entry.time,
                    rec.entry.reason
                )?;
                if r.unsettled.contains(&rec.entry.seq) {
                    writeln!(
                        w,
                        "  unless the unsettled intent #{} landed: then {}",
                        rec.entry.seq,
                        match (&rec.entry.to_digest, &rec.entry.to_commit) {
                            (Some(d), _) => d.to_string(),
                            (None, Some(c)) => format!("the artifact of {c}"),
                            (None, None) => "its target".to_owned(),
                        }
                    )?;
                }
            }
            _ => writeln!(w, "at {} the journal records nothing yet", at.time)?,
        }
    }
    if let Some(breaks) = &r.verified {
        if breaks.is_empty() {
            let checked = r.verified_records.unwrap_or(r.records.len());
            match r.verified_from {
                Some(seq) => writeln!(
                    w,
                    "chain verified: {checked} records after #{seq} (verified before, checkpoint unchanged), each naming its predecessor's hash"
                )?,
                None => writeln!(
                    w,
                    "chain verified: {checked} records, each naming its predecessor's hash"
                )?,
            }
        } else {
            for b in breaks {
                writeln!(w, "BROKEN at #{} ({}): {}", b.seq, b.commit, b.problem)?;
            }
        }
    }
    Ok(())
}

/// RFC 3339 (`2024-05-01T16:08:00Z`), `YYYY-MM-DD HH:MM` (UTC), `HH:MM` (today, UTC), or a
/// duration meaning that long ago (`2h`, `30m`).
pub fn parse_time(s: &str, now: Timestamp, flag: &str) -> Result<Timestamp, CliError> {
    use time::format_description::well_known::Rfc3339;
    use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
    let from = |t: OffsetDateTime| Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64);
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(from(t));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.plus_millis(-(d.as_millis() as i64)));
    }
    let fmt_dt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    if let Ok(t) = PrimitiveDateTime::parse(s, fmt_dt) {
        return Ok(from(t.assume_utc()));
    }
    let fmt_t = time::macros::format_description!("[hour]:[minute]");
    if let Ok(t) = Time::parse(s, fmt_t) {
        let today = OffsetDateTime::from_unix_timestamp(now.millis() / 1000)
            .map(|n| n.date())
            .unwrap_or(Date::MIN);
        return Ok(from(PrimitiveDateTime::new(today, t).assume_utc()));
    }
    Err(CliError::invalid(format!(
        "{flag} {s:?} is not a time: use `now`, RFC 3339 (2024-05-01T16:08:00Z), \"2024-05-01 16:08\" or \"16:08\" (UTC), or a duration ago (2h)"
    )))
}
