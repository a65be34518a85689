//! Issue 21's journal bench: a channel whose journal holds 100,000 records (written straight
//! into a real bare git remote with `git fast-import`, each a hash-chained entry exactly as
//! mainline appends them), read the way the guard and `history --last` read it.
//!
//! Prints: the first read on a fresh cache (it fetches the chain once), the last-50 read warm
//! (target < 50 ms), the whole-chain read (what every history request cost before issue 21),
//! `history --verify --last 50` cold and resumed from its checkpoint, and `mainline reconcile`
//! on this channel next to the same channel with a 3-record journal (target: unaffected).
//!
//! Run: cargo bench -p mainline --bench journal   (MAINLINE_BENCH_RECORDS scales it,
//! MAINLINE_BENCH_ROUNDS sets the reconcile rounds, MAINLINE_BENCH_KEEP=1 keeps the directory
//! to look into afterwards)
//! Asserts only what must hold (the counts, the chain verifying), not speed.

#[path = "common/mod.rs"]
mod common;
use clap::Parser;
use common::git;
use mainline::adapters::git::GitRepo;
use mainline::channel::journal::{Entry, EntryKind, Journal};
use mainline::channel::ports::SystemClock;
use mainline::cli::{Cli, Command as Sub};
use mainline_core::Timestamp;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let n: u64 = std::env::var("MAINLINE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let bin = env!("CARGO_BIN_EXE_mainline");

    // A source repository with k8s/, two bare remotes (long and short journal), a layout store.
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("k8s")).expect("mkdir");
    std::fs::write(repo.join("k8s/app.yaml"), "kind: Deployment\n").expect("write");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    for r in ["long.git", "short.git"] {
        git(dir, &["clone", "-q", "--bare", "repo", r]);
    }
    let store = format!("oci-layout:{}", dir.join("store").display());
    let channel = format!("{store}:latest");
    let args = |remote: &str, cache: &str| {
        vec![
            "mainline".to_owned(),
            "history".into(),
            "--channel".into(),
            channel.clone(),
            "--git".into(),
            dir.join(remote).display().to_string(),
            "--path".into(),
            "k8s".into(),
            "--cache-dir".into(),
            dir.join(cache).display().to_string(),
        ]
    };
    let Sub::History(h) = Cli::try_parse_from(args("long.git", "c0"))
        .expect("cli")
        .command
    else {
        panic!("history args")
    };
    let (config, _) = mainline::config::resolve(&h.channel).expect("channel config");
    let refname = config.key.journal_ref();

    let t = Instant::now();
    write_chain(
        &dir.join("long.git"),
        &refname,
        &config.channel_display(),
        n,
    );
    eprintln!(
        "wrote {n} journal records with git fast-import in {:?}",
        t.elapsed()
    );

    // In-process reads, as the guard makes them.
    let cache = dir.join("c1");
    let repo_long = GitRepo::open(&config, &cache).expect("open");
    let journal = Journal::new(&repo_long, &SystemClock, &config.key, &config.branch);
    let t = Instant::now();
    let first = journal.last(50).expect("last 50");
    let cold = t.elapsed();
    assert_eq!(first.len(), 50);
    assert_eq!(first.last().map(|r| r.entry.seq), Some(n));
    let warm: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let r = journal.last(50).expect("last 50");
            assert_eq!(r.len(), 50);
            t.elapsed()
        })
        .collect();
    let t = Instant::now();
    let all = journal.records().expect("records");
    let whole = t.elapsed();
    assert_eq!(all.len() as u64, n);
    println!("journal of {n} records:");
    println!("  last 50, first read on a fresh cache (fetches the chain): {cold:?}");
    println!(
        "  last 50, warm: median {:?}, max {:?} (target < 50 ms)",
        median(&warm),
        warm.iter().max().expect("runs")
    );
    println!("  whole chain (what each history request read before issue 21): {whole:?}");

    // The CLI: --last, and --verify resumed from its checkpoint.
    let cli = |extra: &[&str], remote: &str, cache: &str| {
        let mut a = args(remote, cache);
        a.remove(0);
        a.extend(extra.iter().map(|s| s.to_string()));
        let t = Instant::now();
        let out = Command::new(bin)
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            t.elapsed(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (d1, _) = cli(&["--last", "50", "--verify"], "long.git", "c2");
    let (d2, text) = cli(&["--last", "50", "--verify"], "long.git", "c2");
    assert!(text.contains("checkpoint unchanged"), "{text}");
    println!("  history --last 50 --verify: {d1:?} first (whole chain checked), {d2:?} resumed from the checkpoint");

    // Reconcile on the long journal next to a short one: each channel gets a push and a
    // promote, then the no-op reconciles alternate between the two, so a change in the machine's
    // load (a shared 2-core runner) lands on both sides instead of skewing one.
    let run = |cmd: &str, remote: &str, cache: &str| {
        let mut a = args(remote, cache);
        a.remove(0);
        a[0] = cmd.into();
        if cmd == "push" {
            a = vec![
                "push".into(),
                "--git".into(),
                dir.join(remote).display().to_string(),
                "--commit".into(),
                "main".into(),
                "--path".into(),
                "k8s".into(),
                "--to".into(),
                store.clone(),
            ];
        }
        let t = Instant::now();
        let out = Command::new(bin)
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    let sides = [("short.git", "c3"), ("long.git", "c4")];
    for (remote, cache) in sides {
        run("push", remote, cache);
        run("promote", remote, cache);
        run("reconcile", remote, cache); // warms the cache: not counted
    }
    let rounds: usize = std::env::var("MAINLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut short = Vec::with_capacity(rounds);
    let mut long = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        short.push(run("reconcile", sides[0].0, sides[0].1));
        long.push(run("reconcile", sides[1].0, sides[1].1));
    }
    let (ms, ml) = (median(&short), median(&long));
    if std::env::var_os("MAINLINE_BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!(
            "kept {} (remotes short.git and long.git, caches c3 and c4, store {store})",
            kept.display()
        );
    }
    println!("  mainline reconcile, short journal: median {ms:?} of {rounds}");
    println!("  mainline reconcile, {n}-record journal: median {ml:?} of {rounds} (alternated with the short one)");
    println!(
        "  ratio long/short: {:.2} (target: unaffected, i.e. about 1)",
        ml.as_secs_f64() / ms.as_secs_f64()
    );
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// `n` chained journal records on `refname` of the bare repository `remote`.
fn write_chain(remote: &Path, refname: &str, channel: &str, n: u64) {
    let mut child = Command::new("git")
        .current_dir(remote)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let mut w = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
    let mut prev: Option<String> = None;
    let t0: i64 = 1_714_564_800_000;
    for seq in 1..=n {
        // A journal's usual rhythm, newest last: pin, intent, moved. A run reads back to the
        // newest settling record, so with a settled head it reads one record, as on a short
        // journal. (A tail of 256+ unsettled records, e.g. all pins, costs a 256-record walk
        // per run whatever the chain's length: the settle window.)
        let (kind, word) = match (n - seq) % 3 {
            0 => (EntryKind::Moved, "moved"),
            1 => (EntryKind::Intent, "intent"),
            _ => (EntryKind::Pin, "pin"),
        };
        let mut e = Entry::new(
            channel,
            kind,
            "bench@example",
            "a record, for the bench",
            Timestamp(t0 + seq as i64 * 1000),
        );
        e.seq = seq;
        e.prev = prev.take();
        if kind == EntryKind::Moved {
            e.intent = Some(seq - 1);
        }
        let message = format!("mainline journal #{seq} {word}\n\n{}\n", e.json());
        let secs = (t0 / 1000) + seq as i64;
        writeln!(w, "commit {refname}\nmark :{seq}").expect("write");
        writeln!(w, "committer mainline <mainline@localhost> {secs} +0000").expect("write");
        writeln!(w, "data {}\n{message}", message.len()).expect("write");
        if seq > 1 {
            writeln!(w, "from :{}", seq - 1).expect("write");
        }
        writeln!(w).expect("write");
        prev = Some(e.hash());
    }
    writeln!(w, "done").expect("write");
    drop(w);
    assert!(
        child.wait().expect("wait").success(),
        "git fast-import failed"
    );
}
