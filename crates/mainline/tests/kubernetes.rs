//! Issue 7 through the `mainline` binary: Flux consumers and the Lease lock, against
//! mainline-kube's fake Kubernetes API server (HTTPS, reached through a kubeconfig named in
//! mainline.toml's `[kubernetes]` table), a real docker-registry and a bare git remote driven
//! like GitHub's merge queue.
//!
//! - the nudge after a restore: a merge patch of `reconcile.fluxcd.io/requestedAt` whose token
//!   the report names and Flux echoes back;
//! - `status`'s applied line: APPLIED, PENDING, STUCK (with Flux's condition message),
//!   UNREACHABLE;
//! - a hanging or refusing API server never delays a restore beyond the nudge budget, and the
//!   channel moves before the nudge ends (measured and printed: run with `--nocapture`);
//! - `deploy --candidate --wait`: exit 0 once Flux applied the digest, 10 when it did not in
//!   time, 2 (nothing written) without consumers;
//! - `--lock kubernetes`: the channel's Lease is created, held during the write and released;
//!   a live foreign holder makes writers give up (exit 6) while `status` still answers; an
//!   expired one is taken over.
//!
//! Every test fails (never skips) when scripts/with-registry.sh is not running it.

#[path = "support/kube.rs"]
mod kube;
mod support;

use kube::{
    config, flux_applies_after, lease, refused_server, seed, seed_lease, source_object, watching,
    with_config, CONSUMER,
};
use mainline::adapters::kube::NUDGE_BUDGET;
use mainline_kube::fake::{fixture, Failure};
use mainline_kube::flux::REQUESTED_AT;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use support::queue::{
    app, deploy, field, first_deploy, moves, verdict, Channel, Queue, DEPLOY_PATH,
};
use support::{mainline_in, registry_store, Run};

/// Scheduling slack on the shared 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

/// The timing test runs alone (write); every other test shares (read).
static TIMING: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

/// What prod ran before mainline first wrote the channel (any digest will do).
const BEFORE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A channel command in text form (no `-o json`).
fn text(ch: &Channel, args: &[&str]) -> Run {
    let cache = ch.cache.display().to_string();
    let reference = ch.reference();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--channel",
        &reference,
        "--git",
        &ch.git,
        "--path",
        DEPLOY_PATH,
        "--cache-dir",
        &cache,
    ]);
    all.extend(ch.extra.iter().map(String::as_str));
    mainline_in(&ch.cwd, &all, &[])
}

/// The `applied` entries of a report.
fn applied(r: &Value) -> &Vec<Value> {
    r["applied"]
        .as_array()
        .unwrap_or_else(|| panic!("no applied entries: {r}"))
}

/// The `triggers` lines of a report.
fn triggers(r: &Value) -> Vec<String> {
    r["triggers"]
        .as_array()
        .unwrap_or_else(|| panic!("no triggers: {r}"))
        .iter()
        .map(|t| t.as_str().expect("a line").to_owned())
        .collect()
}

/// `flux-system/app: reconcile requested (<token>) in N ms` → (token, N).
fn requested(line: &str) -> (String, u64) {
    let rest = line
        .strip_prefix(&format!("{CONSUMER}: reconcile requested ("))
        .unwrap_or_else(|| panic!("not a successful trigger of {CONSUMER}: {line:?}"));
    let (token, rest) = rest.split_once(") in ").expect("`) in N ms`");
    let ms = rest.strip_suffix(" ms").expect("ends in ms");
    (token.to_owned(), ms.parse().expect("a number of ms"))
}

/// `flux-system/app: reconcile request failed after N ms (…)` → N.
fn failed_after(line: &str) -> u64 {
    let rest = line
        .strip_prefix(&format!("{CONSUMER}: reconcile request failed after "))
        .unwrap_or_else(|| panic!("not a failed trigger of {CONSUMER}: {line:?}"));
    rest.split_once(" ms")
        .expect("N ms")
        .0
        .parse()
        .expect("a number of ms")
}

/// The commit every ref under refs/mainline/ points at (journal, pins, leases, lock).
fn mainline_refs(q: &Queue) -> Vec<(String, Option<String>)> {
    q.refs_under("refs/mainline/")
        .into_iter()
        .map(|r| {
            let at = q.remote_ref(&r);
            (r, at)
        })
        .collect()
}

/// Scenario 1 up to the heal: main promoted, group deployed its candidate, group ended.
struct Diverged {
    ch: Channel,
    main_digest: String,
    candidate: String,
}

fn diverged(root: &Path, name: &str) -> Diverged {
    let mut q = Queue::new(root);
    let ch = Channel::new(&registry_store(name), &q, "runner");
    let main_digest = first_deploy(&ch, &q);
    let group = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let candidate = deploy(&ch, &group);
    q.end(&group);
    assert_eq!(verdict(&ch.status(3)), "DIVERGED");
    Diverged {
        ch,
        main_digest,
        candidate,
    }
}

// 1. After a restore, the OCIRepository carries the token the report names, set by a merge
// patch; Flux's echo of it comes back in status.lastHandledReconcileAt.
#[test]
fn restore_nudges_flux_with_a_merge_patch_whose_token_the_report_names() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = kube::start();
    seed(&fake, BEFORE);
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-nudge"), &q, "runner");
    let ch = with_config(
        &plain,
        &config(&tmp.path().join("k"), "k", &fake.url()),
        &[],
    );

    // Every move nudges: the first deploy, the candidate, then the restore.
    let main_digest = first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let r = ch.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        0,
    );
    assert_eq!(field(&r, "final_verdict"), Some("CANDIDATE"), "{r}");
    let (candidate_token, _) = requested(&triggers(&r)[0]);
    q.end(&g);
    flux_applies_after(&fake, Duration::from_millis(100), &main_digest);

    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(moves(&r)[0]["action"], "restore");
    assert_eq!(
        plain.digest("latest").as_deref(),
        Some(main_digest.as_str())
    );
    let lines = triggers(&r);
    assert_eq!(lines.len(), 1, "one consumer, one nudge: {lines:?}");
    let (token, ms) = requested(&lines[0]);
    eprintln!("restore nudge: {:?} (took {ms} ms)", lines[0]);
    assert_ne!(token, candidate_token, "each move writes a fresh token");
    assert!(ms <= NUDGE_BUDGET.as_millis() as u64, "{ms} ms");

    let stored = source_object(&fake);
    assert_eq!(
        stored["metadata"]["annotations"][REQUESTED_AT],
        json!(token),
        "the OCIRepository carries the token the report names"
    );
    let patches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 3, "one PATCH per move: {patches:?}");
    for p in &patches {
        assert_eq!(
            p.path,
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/ocirepositories/app"
        );
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert!(p.authenticated, "the kubeconfig's token was sent");
        assert_eq!(p.status, 200);
    }
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.contains("kustomizations") && r.method != "GET"),
        "Kustomizations are only read"
    );

    // Flux acts on the request: the token comes back, and prod has applied main's digest.
    let echoed = kube::eventually(Duration::from_secs(5), || {
        source_object(&fake)["status"]["lastHandledReconcileAt"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(
        echoed.as_deref(),
        Some(token.as_str()),
        "Flux echoed the token"
    );
    let s = ch.status(0);
    assert_eq!(verdict(&s), "CONVERGED");
    assert_eq!(applied(&s)[0]["state"], "APPLIED", "{s}");
}

// 2. `status` says what prod applied against what the channel names.
#[test]
fn status_shows_applied_pending_stuck_and_unreachable() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-status"), &q, "runner");
    let d = first_deploy(&plain, &q);
    let fake = kube::start();
    let ch = with_config(
        &plain,
        &config(&tmp.path().join("k"), "k", &fake.url()),
        &[],
    );

    let check = |what: &str, ch: &Channel, state: &str| -> (Value, String) {
        let start = Instant::now();
        let s = ch.status(0);
        let took = start.elapsed();
        assert_eq!(verdict(&s), "CONVERGED", "{s}");
        let a = applied(&s);
        assert_eq!(a.len(), 1, "{s}");
        assert_eq!(a[0]["consumer"], CONSUMER);
        assert_eq!(a[0]["state"], state, "{what}: {s}");
        let t = text(ch, &["status"]);
        assert_eq!(t.code, 0, "{}\n{}", t.stdout, t.stderr);
        let line = t
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("applied"))
            .unwrap_or_else(|| panic!("{what}: no applied line in\n{}", t.stdout))
            .trim()
            .to_owned();
        eprintln!(
            "status, {what}: {line:?} (JSON status took {} ms)",
            took.as_millis()
        );
        let detail = a[0]["detail"].as_str().expect("detail").to_owned();
        let expected = if detail.is_empty() {
            format!("applied  {state} {CONSUMER}")
        } else {
            format!("applied  {state} {CONSUMER}: {detail}")
        };
        assert_eq!(line, expected, "{what}");
        (s, detail)
    };

    seed(&fake, &d);
    let (_, detail) = check("Flux runs the channel's digest", &ch, "APPLIED");
    assert_eq!(detail, "");

    seed(&fake, BEFORE);
    let (_, detail) = check("Flux is on another digest", &ch, "PENDING");
    assert!(
        detail.contains(BEFORE) && detail.contains(&d),
        "names both digests: {detail}"
    );

    let mut failing = fixture("flux/ocirepository_fetch_failed");
    failing["metadata"]["namespace"] = json!(kube::NS);
    failing["metadata"]["name"] = json!(kube::SOURCE);
    // source-controller stopped retrying (no Reconciling=True): only then is it STUCK.
    failing["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .retain(|c| c["type"] != "Reconciling");
    let ready = failing["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("a Ready condition")
        .clone();
    assert_eq!(ready["status"], "False");
    fake.put_object(&mainline_kube::api::OCI_REPOSITORY, failing);
    let (_, detail) = check("the source fails to fetch", &ch, "STUCK");
    let message = ready["message"].as_str().expect("message");
    let reason = ready["reason"].as_str().expect("reason");
    assert!(
        detail.contains(message) && detail.contains(reason),
        "quotes Flux's condition ({reason}: {message}): {detail}"
    );
    assert!(
        !detail.starts_with("STUCK"),
        "the state is not repeated: {detail}"
    );

    let down = with_config(
        &plain,
        &config(&tmp.path().join("down"), "down", &refused_server()),
        &[],
    );
    let start = Instant::now();
    let (_, detail) = check("the API server refuses connections", &down, "UNREACHABLE");
    assert!(detail.contains("could not reach"), "{detail}");
    assert!(
        start.elapsed() < 2 * mainline::adapters::kube::OBSERVE_BUDGET,
        "a refused connection does not wait out the budget"
    );
    // The verdict is the channel's, not the cluster's: the refused API changed nothing.
    assert_eq!(plain.digest("latest").as_deref(), Some(d.as_str()));
}

// 3. A hanging or refusing API server does not delay a restore beyond the nudge budget, and
// the channel has moved before the nudge ends.
#[test]
fn hanging_or_refusing_api_does_not_delay_a_restore() {
    let _alone = TIMING.write().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");

    // No consumers: the baseline.
    let base = diverged(&tmp.path().join("base"), "kube-base");
    let start = Instant::now();
    let r = base.ch.expect(&["reconcile"], 0);
    let t_base = start.elapsed();
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert!(r.get("triggers").is_none(), "no consumers, no nudge: {r}");
    assert_eq!(base.ch.digest("latest"), Some(base.main_digest.clone()));

    // The API server accepts the PATCH and never answers.
    let hang = diverged(&tmp.path().join("hang"), "kube-hang");
    let fake = kube::start();
    seed(&fake, &hang.candidate);
    fake.fail_next(Failure::Hang(Duration::from_secs(60)), 1);
    let ch = with_config(
        &hang.ch,
        &config(&tmp.path().join("hang-k"), "k", &fake.url()),
        &[],
    );
    let start = Instant::now();
    // While the PATCH hangs, read the channel from the registry (skopeo), as Flux would.
    let (r, seen) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            kube::eventually(Duration::from_secs(60), || {
                fake.requests()
                    .iter()
                    .any(|r| r.method == "PATCH")
                    .then(Instant::now)
            })
            .map(|patch_seen| {
                let digest = hang.ch.digest("latest");
                (patch_seen, digest, Instant::now())
            })
        });
        let r = ch.expect(&["reconcile"], 0);
        let end = Instant::now();
        (r, watcher.join().expect("watcher").map(|w| (w, end)))
    });
    let t_hang = start.elapsed();
    let ((patch_seen, digest_then, read_at), ended) = seen.expect("the nudge reached the fake");
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(
        digest_then.as_deref(),
        Some(hang.main_digest.as_str()),
        "the registry already named main's artifact while the nudge hung"
    );
    assert!(
        read_at < ended,
        "the registry was read while the command still ran"
    );
    let hung_for = failed_after(&triggers(&r)[0]);
    assert!(
        read_at.duration_since(patch_seen) < Duration::from_millis(hung_for),
        "read {} ms into a nudge that hung {hung_for} ms",
        read_at.duration_since(patch_seen).as_millis()
    );
    assert!(
        hung_for >= NUDGE_BUDGET.as_millis() as u64 - 100
            && hung_for <= (NUDGE_BUDGET + SLACK).as_millis() as u64,
        "the nudge waited for the hanging server until its budget, no longer: {hung_for} ms"
    );
    assert_eq!(hang.ch.digest("latest"), Some(hang.main_digest.clone()));
    let patches = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "one request, never retried");

    // Nothing listens: connection refused.
    let down = diverged(&tmp.path().join("down"), "kube-down");
    let ch = with_config(
        &down.ch,
        &config(&tmp.path().join("down-k"), "k", &refused_server()),
        &[],
    );
    let start = Instant::now();
    let r = ch.expect(&["reconcile"], 0);
    let t_down = start.elapsed();
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    let refused_after = failed_after(&triggers(&r)[0]);
    assert_eq!(down.ch.digest("latest"), Some(down.main_digest.clone()));

    eprintln!(
        "restore wall time: no consumers {} ms; hanging API {} ms (nudge gave up after {hung_for} \
         ms; registry read back main's digest {} ms after the PATCH arrived); refused API {} ms \
         (nudge failed after {refused_after} ms); nudge budget {} ms",
        t_base.as_millis(),
        t_hang.as_millis(),
        read_at.duration_since(patch_seen).as_millis(),
        t_down.as_millis(),
        NUDGE_BUDGET.as_millis()
    );
    assert!(
        t_hang < t_base + NUDGE_BUDGET + SLACK,
        "a hanging API costs at most the nudge budget: {} ms vs {} ms",
        t_hang.as_millis(),
        t_base.as_millis()
    );
    assert!(
        t_down < t_base + SLACK,
        "a refused API costs nothing noticeable: {} ms vs {} ms",
        t_down.as_millis(),
        t_base.as_millis()
    );
    assert!(
        refused_after < 1000,
        "refused is immediate: {refused_after} ms"
    );
}

// 4. deploy --candidate --wait: the pre-merge gate.
#[test]
fn deploy_wait_succeeds_once_flux_applied_the_candidate() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-wait"), &q, "runner");
    let d = first_deploy(&plain, &q);
    let fake = kube::start();
    seed(&fake, &d);
    let ch = with_config(
        &plain,
        &config(&tmp.path().join("k"), "k", &fake.url()),
        &[],
    );
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let candidate = plain.push_artifact(&g.head);
    // Flux fetches and applies the candidate 2 s after it is asked to.
    flux_applies_after(&fake, Duration::from_secs(2), &candidate);

    let r = ch.run(&[
        "deploy",
        "--candidate",
        "--group",
        &g.id,
        "--commit",
        &g.head,
        "--wait",
        "10s",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(field(&j, "final_verdict"), Some("CANDIDATE"), "{j}");
    assert_eq!(plain.digest("latest").as_deref(), Some(candidate.as_str()));
    let wait = &j["wait"];
    eprintln!(
        "deploy --wait 10s (Flux applies after 2 s): {wait}\nprogress:\n{}",
        r.stderr
    );
    assert_eq!(wait["applied"], true, "{j}");
    let elapsed = wait["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!(
        (1500..10_000).contains(&elapsed),
        "waited for Flux, not for the deadline: {elapsed} ms"
    );
    assert!(wait["polls"].as_u64().expect("polls") >= 2, "{wait}");
    assert_eq!(applied(&j)[0]["state"], "APPLIED", "{j}");
    // Progress: first PENDING, then APPLIED.
    let progress: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("waiting"))
        .collect();
    assert!(
        progress.len() >= 2
            && progress[0].contains(&format!("{CONSUMER} PENDING"))
            && progress
                .last()
                .expect("last")
                .contains(&format!("{CONSUMER} APPLIED")),
        "{progress:?}"
    );
    let (token, _) = requested(&triggers(&j)[0]);
    assert_eq!(
        source_object(&fake)["status"]["lastHandledReconcileAt"],
        json!(token)
    );
}

#[test]
fn deploy_wait_exits_10_when_flux_never_applies() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-nowait"), &q, "runner");
    let d = first_deploy(&plain, &q);
    let fake = kube::start();
    seed(&fake, &d);
    let ch = with_config(
        &plain,
        &config(&tmp.path().join("k"), "k", &fake.url()),
        &[],
    );
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);

    let start = Instant::now();
    let r = ch.run(&[
        "deploy",
        "--candidate",
        "--group",
        &g.id,
        "--commit",
        &g.head,
        "--wait",
        "2s",
    ]);
    let took = start.elapsed();
    assert_eq!(r.code, 10, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let wait = &j["wait"];
    eprintln!(
        "deploy --wait 2s, Flux never applies: exit 10 after {} ms: {wait}",
        took.as_millis()
    );
    assert_eq!(wait["applied"], false, "{j}");
    let elapsed = wait["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!(
        (1900..(2000 + SLACK.as_millis() as u64)).contains(&elapsed),
        "waited the whole 2 s and no longer: {elapsed} ms"
    );
    let a = applied(&j);
    assert_eq!(a[0]["state"], "PENDING", "{j}");
    assert!(a[0]["detail"].as_str().expect("detail").contains(&d), "{j}");
    // The gate failed, the deploy stands: the group's job fails and its heal restores.
    assert_eq!(moves(&j).len(), 1, "{j}");
    let candidate = plain
        .digest(&format!("sha-{}", g.head))
        .expect("candidate artifact");
    assert_eq!(plain.digest("latest"), Some(candidate));
    let t = text(&ch, &["status"]);
    assert!(
        t.stdout.contains(&format!("applied  PENDING {CONSUMER}: ")),
        "{}",
        t.stdout
    );
}

#[test]
fn wait_without_consumers_is_refused_before_anything_is_written() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let ch = Channel::new(&registry_store("kube-nocons"), &q, "runner");
    let d = first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let refs = mainline_refs(&q);
    assert!(!refs.is_empty(), "the first deploy was journalled");

    let r = ch.run(&[
        "deploy",
        "--candidate",
        "--group",
        &g.id,
        "--commit",
        &g.head,
        "--wait",
        "5s",
    ]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("--wait needs Flux consumers"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("[kubernetes]"),
        "says what to add: {}",
        r.stderr
    );

    let m = q.push_main(&[("k8s/app.yaml", &app(2))], "main moves on");
    let r = ch.run(&["promote", "--wait", "5s"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);

    assert_eq!(ch.digest("latest"), Some(d), "the channel did not move");
    assert_eq!(
        ch.digest(&format!("sha-{}", g.head)),
        None,
        "nothing was packed"
    );
    assert_eq!(ch.digest(&format!("sha-{m}")), None, "nothing was packed");
    assert_eq!(mainline_refs(&q), refs, "no journal entry, lock or lease");
}

// 5. --lock kubernetes: a Lease per channel.
#[test]
fn lease_lock_is_created_held_during_the_restore_and_released() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = kube::start();
    seed(&fake, BEFORE);
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-lease"), &q, "runner");
    let toml = config(&tmp.path().join("k"), "k", &fake.url());
    let ch = with_config(&plain, &toml, &["--lock", "kubernetes"]);
    let lease_path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
        kube::LEASE_NS
    );

    assert!(lease(&fake, &plain).is_none());
    let main_digest = first_deploy(&ch, &q);
    let created = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the first write created the Lease");
    assert_eq!(created.path, lease_path);
    assert_eq!(created.status, 201);
    let after_first = lease(&fake, &plain).expect("the Lease exists");
    assert!(
        after_first["spec"].get("holderIdentity").is_none(),
        "released: {after_first}"
    );

    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&ch, &g);
    q.end(&g);
    let before = fake.requests().len();

    let holder = |fake: &mainline_kube::fake::FakeKube| {
        lease(fake, &plain).and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    let (r, seen) = watching(
        || holder(&fake),
        || ch.run_env(&["reconcile"], &[("USER", "kube-test")]),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(moves(&j)[0]["action"], "restore", "{j}");
    assert_eq!(plain.digest("latest"), Some(main_digest));
    eprintln!("Lease holders seen during the restore: {seen:?}");
    let ours: Vec<&String> = seen.iter().flatten().collect();
    assert_eq!(ours.len(), 1, "held by this run only: {seen:?}");
    assert!(
        ours[0].starts_with("kube-test@"),
        "the run's identity: {ours:?}"
    );
    assert_eq!(seen.last(), Some(&None), "released at the end: {seen:?}");
    let released = lease(&fake, &plain).expect("lease");
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1, "{released}");

    let during: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|r| r.path.starts_with(&lease_path))
        .cloned()
        .collect();
    // Claim, the write hold declared right before the intent (the fence then finds it and
    // admits the write without another call), release: one update per step, no plain renewal
    // in between (there was one, 4 updates, before).
    assert_eq!(
        during
            .iter()
            .filter(|r| r.method == "PUT" && r.status == 200)
            .count(),
        3,
        "claimed, held for the write and released, one update each: {during:?}"
    );
    assert!(during.iter().all(|r| r.status < 400), "{during:?}");
    assert!(
        q.refs_under("refs/mainline/lock/").is_empty(),
        "the git-ref lock was not used"
    );
    let s = ch.status(0);
    assert!(
        field(&s, "lock").is_some_and(|l| l.starts_with("kubernetes") && l.contains("free")),
        "{s}"
    );
}

#[test]
fn lease_namespace_defaults_to_the_kubeconfig_context_namespace() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = kube::start();
    seed(&fake, BEFORE);
    let q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-leasens"), &q, "runner");
    let toml = kube::config_with(
        &tmp.path().join("k"),
        "k",
        &fake.url(),
        None,
        Some("mainline-system"),
    );
    let ch = with_config(&plain, &toml, &["--lock", "kubernetes"]);
    first_deploy(&ch, &q);
    let created = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the first write created the Lease");
    assert_eq!(
        created.path, "/apis/coordination.k8s.io/v1/namespaces/mainline-system/leases",
        "no lease_namespace: the context's namespace, as [kubernetes] documents"
    );
}

#[test]
fn live_foreign_lease_stops_writers_not_status_and_an_expired_one_is_taken_over() {
    let _shared = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = diverged(tmp.path(), "kube-busy");
    let fake = kube::start();
    seed(&fake, &s.candidate);
    let toml = config(&tmp.path().join("k"), "k", &fake.url());
    let ch = with_config(&s.ch, &toml, &["--lock", "kubernetes", "--lock-wait", "1s"]);
    const OTHER: &str = "mainline-guard-7c9d8f6b5-x2x9q";

    // A guard replica holds the channel's Lease for the next hour.
    let seeded = seed_lease(&fake, &s.ch, OTHER, Duration::ZERO, 3600, 3);
    let start = Instant::now();
    let r = ch.run(&["reconcile"]);
    let took = start.elapsed();
    eprintln!(
        "reconcile against a live foreign Lease: exit {} after {} ms\n{}",
        r.code,
        took.as_millis(),
        r.stderr.trim()
    );
    assert_eq!(
        r.code, 6,
        "unavailable: retry later\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        took >= Duration::from_secs(1),
        "it waited --lock-wait: {took:?}"
    );
    assert!(
        took < Duration::from_secs(1) + SLACK * 2,
        "then gave up: {took:?}"
    );
    assert!(r.stderr.contains(OTHER), "names the holder: {}", r.stderr);
    assert_eq!(
        s.ch.digest("latest"),
        Some(s.candidate.clone()),
        "nothing written"
    );
    assert_eq!(
        lease(&fake, &s.ch),
        Some(seeded.clone()),
        "the Lease is untouched"
    );

    // Reading needs no lock.
    let st = ch.status(3);
    assert_eq!(verdict(&st), "DIVERGED");
    let lock = field(&st, "lock").expect("lock");
    assert!(
        lock.starts_with("kubernetes") && lock.contains(OTHER),
        "{lock}"
    );
    assert_eq!(lease(&fake, &s.ch), Some(seeded), "status wrote nothing");

    // The replica died an hour ago (its renewTime says so): its Lease is taken over, but only
    // after this run watched the record unchanged for its duration (2 s) — the renewTime, a
    // remote clock's reading, is never compared with ours (issue 18, item 4).
    seed_lease(&fake, &s.ch, OTHER, Duration::from_secs(3600), 2, 3);
    let patient = with_config(
        &s.ch,
        &toml,
        &["--lock", "kubernetes", "--lock-wait", "10s"],
    );
    let start = Instant::now();
    let (r, seen) = watching(
        || {
            lease(&fake, &s.ch)
                .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        },
        || patient.run_env(&["reconcile"], &[("USER", "kube-test")]),
    );
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        took >= Duration::from_secs(2),
        "took over after watching one duration, not at once: {took:?}"
    );
    eprintln!("Lease holders seen during the takeover: {seen:?}");
    let j = r.json();
    assert_eq!(moves(&j)[0]["action"], "restore", "{j}");
    assert_eq!(s.ch.digest("latest"), Some(s.main_digest.clone()));
    assert_eq!(seen.first(), Some(&Some(OTHER.to_owned())), "{seen:?}");
    assert!(
        seen.iter().flatten().any(|h| h.starts_with("kube-test@")),
        "taken over by this run: {seen:?}"
    );
    let after = lease(&fake, &s.ch).expect("lease");
    assert_eq!(
        after["spec"]["leaseTransitions"], 4,
        "one more hand-over: {after}"
    );
    assert!(
        after["spec"].get("holderIdentity").is_none(),
        "released: {after}"
    );
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");
}
