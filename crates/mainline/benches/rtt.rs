//! Issue 15 item 5: mainline at a distance. The test registry sits behind a loopback proxy
//! that delays every request by D, and the git remote is served over smart HTTP by `git
//! http-backend` with a delay of G per request (`common/http_delay.rs`). For each D/G setting
//! it prints the median wall time of: restore (warm and fresh cache), deploy --candidate,
//! a no-op reconcile from a fresh cache, the hand-made locked restore with git and curl (the
//! floor), the peers `skopeo copy` and `crane tag` of the same artifact, and a `pin` and an
//! `unpin` that move the channel; then the requests each side saw, and the restore / floor,
//! pin / floor and unpin / floor ratios.
//!
//! Run: scripts/with-registry.sh cargo bench -p mainline --bench rtt
//! (MAINLINE_BENCH_RUNS: runs per case, default 5; MAINLINE_RTT_DELAYS: `D/G,...` in ms,
//! default `0/0,25/60,60/150`; MAINLINE_RTT_CRANE=0 skips crane, which needs Go.)
//! Loopback only. Prints figures; asserts nothing about speed (the request counts are
//! asserted by `tests/request_counts.rs`, where they are stable).

#[path = "common/mod.rs"]
mod common;
#[path = "common/go_tools.rs"]
#[allow(dead_code)] // the Flux oracle is the artifacts bench's peer, not this one's
mod go_tools;
#[path = "common/http_delay.rs"]
mod http_delay;
#[path = "common/rtt_scenario.rs"]
mod rtt_scenario;

use rtt_scenario::{Sample, Scenario};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn main() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo bench -p mainline --bench rtt",
    );
    let runs: usize = std::env::var("MAINLINE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let delays: Vec<(u64, u64)> = std::env::var("MAINLINE_RTT_DELAYS")
        .unwrap_or_else(|_| "0/0,25/60,60/150".to_owned())
        .split(',')
        .map(|s| {
            let (d, g) = s
                .split_once('/')
                .expect("MAINLINE_RTT_DELAYS: D/G,D/G in ms");
            (
                d.trim().parse().expect("D ms"),
                g.trim().parse().expect("G ms"),
            )
        })
        .collect();
    let crane = (std::env::var("MAINLINE_RTT_CRANE").as_deref() != Ok("0")).then(go_tools::crane);
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mainline"));
    let s = Scenario::new(bin, tmp.path(), &registry, "bench");
    let manifest = tmp.path().join("main-manifest.json");
    s.main_manifest(&manifest);
    let main = s.main();

    let mut table: Vec<(&str, Vec<Vec<Sample>>)> = [
        "restore (warm cache)",
        "restore (fresh cache)",
        "deploy --candidate",
        "no-op reconcile (fresh cache)",
        "hand-made locked restore (floor)",
        "skopeo copy (peer)",
        "crane tag (peer)",
        "pin (moves the channel)",
        "unpin (restores)",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let mut pr = 1000;
    for &(d, g) in &delays {
        s.set_delays(Duration::from_millis(d), Duration::from_millis(g));
        let mut cases: Vec<Vec<Sample>> = (0..table.len()).map(|_| Vec::new()).collect();
        for run in 0..runs {
            pr += 1;
            cases[2].push(s.diverge(pr));
            cases[0].push(s.measure_mainline(&["reconcile"], "runner", 1));
            // A pin during an incident and its unpin, warm cache: a candidate is deployed,
            // pinned away from (to main), pinned to, and the group fails before the unpin.
            pr += 1;
            let (group, head) = s.queue_group(pr);
            s.deploy_candidate(&group, &head);
            cases[7].push(s.measure_mainline(&["pin", &main, "--reason", "INC-1"], "runner", 1));
            s.mainline(&["pin", &head, "--reason", "INC-2"], "runner", &[0]);
            s.drop_group(&group);
            cases[8].push(s.measure_mainline(&["unpin"], "runner", 1));
            pr += 1;
            cases[2].push(s.diverge(pr));
            let fresh = s.fresh_cache();
            cases[1].push(s.measure_mainline(&["reconcile"], &fresh, 1));
            let fresh = s.fresh_cache();
            cases[3].push(s.measure_mainline(&["reconcile"], &fresh, 0));
            cases[4].push(s.floor(&manifest, pr));
            cases[5].push(s.measure(|| {
                run_ok(Command::new("skopeo").args([
                    "copy",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    &format!("docker://{}:sha-{main}", s.repo_ref),
                    &format!("docker://{}:skopeo-{run}", s.repo_ref),
                ]))
            }));
            if let Some(crane) = &crane {
                cases[6].push(s.measure(|| {
                    run_ok(Command::new(crane).args([
                        "tag",
                        "--insecure",
                        &format!("{}:sha-{main}", s.repo_ref),
                        &format!("crane-{run}"),
                    ]))
                }));
            }
        }
        for (row, samples) in table.iter_mut().zip(cases) {
            row.1.push(samples);
        }
    }

    println!("\nmainline against the test registry behind a delaying proxy (D per request) and a git http-backend remote (G per request); loopback; {runs} runs per case, medians in ms\n");
    print!("{:<34}", "operation");
    for (d, g) in &delays {
        print!(" {:>12}", format!("D/G={d}/{g}"));
    }
    println!(" {:>14}", "registry / git");
    for (name, per_setting) in &table {
        if per_setting.iter().all(Vec::is_empty) {
            continue;
        }
        print!("{name:<34}");
        for samples in per_setting {
            print!(" {:>12.0}", median(samples.iter().map(|s| s.ms)));
        }
        let last = per_setting.last().expect("a setting");
        println!(
            " {:>14}",
            format!(
                "{} / {}",
                median_count(last.iter().map(|s| s.registry.len())),
                median_count(last.iter().map(|s| s.git.len()))
            )
        );
    }
    println!();
    for (i, (d, g)) in delays.iter().enumerate() {
        let floor = median(table[4].1[i].iter().map(|s| s.ms));
        let ratio = |row: usize| median(table[row].1[i].iter().map(|s| s.ms)) / floor;
        println!(
            "D/G={d}/{g}: restore / floor = {:.2} (warm), {:.2} (fresh cache); pin / floor = {:.2}, unpin / floor = {:.2}",
            ratio(0),
            ratio(1),
            ratio(7),
            ratio(8),
        );
    }
    println!();
    for (name, per_setting) in &table {
        if let Some(sample) = per_setting.last().and_then(|s| s.first()) {
            println!("{name}: registry {}", breakdown(&sample.registry));
            println!("{name}: git {}", breakdown(&sample.git));
        }
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn peer");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_count(values: impl Iterator<Item = usize>) -> usize {
    let mut v: Vec<usize> = values.collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// `GET /v2/<repo>/manifests/latest ×2, …` with digests and commits folded.
fn breakdown(items: &[String]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in items {
        *counts.entry(fold(i)).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    format!("{} total: {}", items.len(), parts.join(", "))
}

fn fold(request: &str) -> String {
    let (method, path) = request.split_once(' ').unwrap_or((request, ""));
    let tail: Vec<&str> = path.rsplitn(3, '/').collect();
    let kind = match tail.as_slice() {
        [last, "manifests", ..] if last.starts_with("sha256:") => "manifests/<digest>".to_owned(),
        [last, "manifests", ..] if last.starts_with("sha-") => "manifests/sha-<commit>".to_owned(),
        [last, "manifests", ..] => format!("manifests/{last}"),
        [_, "blobs", ..] | [_, "uploads", ..] => "blobs/…".to_owned(),
        _ => path.rsplit('/').next().unwrap_or(path).to_owned(),
    };
    format!("{method} {kind}")
}
