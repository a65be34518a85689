//! Shared by the race, crash, lock and journal tests: a seeded RNG, `mainline` processes that
//! can be started together and killed (SIGKILL to the whole process group, as when a runner
//! dies), an independent oracle for the invariant (registry HTTP + the git CLI, never mainline's
//! own code), and an auditor for the journal that `history --verify -o json` prints.
//!
//! Included by each test file with `#[path = "support/race.rs"] mod race;` next to
//! `mod support;` (it uses `crate::support`).
//!
//! Must never: decide validity with mainline's own types or code paths — the oracle reads
//! manifests over plain HTTP, hashes them with sha2, and asks `git merge-base --is-ancestor`.
#![allow(dead_code)]

use crate::support::queue::{Channel, Queue, DEPLOY_PATH};
use crate::support::{bin, Run};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Seeded randomness.

/// SplitMix64: tiny, seedable, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }
    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// The seed from `var` (decimal or 0x-hex), else `default`; printed so a run can be replayed.
pub fn seed(var: &str, default: u64) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(default);
    eprintln!("seed: {var}={seed} (set {var}={seed} to replay this run)");
    seed
}

/// A count from `var`, else `default`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// mainline processes.

/// The actor a run records (lock holder, journal `actor`) when `GITHUB_RUN_ID` is `id`.
pub fn actor_of(id: &str) -> String {
    format!("https://ci.example/acme/app/actions/runs/{id}")
}

/// `mainline <args…>` for channel `ch`, as `Channel::run_env` builds it, but not started: its own
/// process group (so a kill takes its git children too), its actor set to run `run_id`.
pub fn command(ch: &Channel, args: &[&str], run_id: &str) -> Command {
    command_as(ch, args, run_id, "json")
}

/// `command` with the output format `output` (`json` or `text`).
pub fn command_as(ch: &Channel, args: &[&str], run_id: &str, output: &str) -> Command {
    let home = ch.cwd.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let mut cmd = Command::new(bin());
    cmd.current_dir(&ch.cwd)
        .arg("--plain-http")
        .args(args)
        .arg("--channel")
        .arg(ch.reference())
        .arg("--git")
        .arg(&ch.git)
        .arg("--path")
        .arg(DEPLOY_PATH)
        .arg("--cache-dir")
        .arg(&ch.cache)
        .args(["-o", output])
        .args(&ch.extra)
        .env("DOCKER_CONFIG", &home)
        .env("HOME", &home)
        .env_remove("MAINLINE_REGISTRY_USERNAME")
        .env_remove("MAINLINE_REGISTRY_PASSWORD")
        .env_remove("GITHUB_EVENT_NAME")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_SHA")
        .env_remove("MAINLINE_LOCK")
        .env_remove("MAINLINE_LOCK_TTL")
        .env_remove("MAINLINE_LOCK_WAIT")
        .env("MAINLINE_SOURCE", "https://example.com/acme/app")
        .env("GITHUB_SERVER_URL", "https://ci.example")
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_RUN_ID", run_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd
}

/// A started `mainline` process.
pub struct Proc {
    pub label: String,
    pub run_id: String,
    pub child: Child,
    pub started: Instant,
}

impl Proc {
    pub fn spawn(ch: &Channel, args: &[&str], run_id: &str, label: &str) -> Proc {
        let child = command(ch, args, run_id).spawn().expect("start mainline");
        Proc {
            label: label.to_owned(),
            run_id: run_id.to_owned(),
            child,
            started: Instant::now(),
        }
    }

    pub fn actor(&self) -> String {
        actor_of(&self.run_id)
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL the run. `Process`: only `mainline` dies; the git commands it had started (each
    /// in its own process group) finish on their own — a push in flight still lands — and this
    /// waits for them, so checks see their effect. `Runner`: `mainline` and every process it
    /// started die together, as when the machine goes away. Returns false when the run had
    /// already exited.
    pub fn kill(&mut self, mode: KillMode) -> bool {
        if !self.running() {
            return false;
        }
        let pid = self.child.id() as i32;
        // Freeze it so it starts no new child while its descendants are listed.
        // SAFETY: plain syscalls on a pid we own; errors are checked or harmless.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let family = descendants(pid);
        // The remote is a local bare repository, so its receive-pack/upload-pack (and their
        // index-pack) run as children of our git client. On a real host they run on the server
        // and do not die with the runner: never kill them, always let them finish.
        let server: Vec<i32> = family
            .iter()
            .copied()
            .filter(|p| is_server_side(*p))
            .flat_map(|p| std::iter::once(p).chain(descendants(p)))
            .collect();
        let rc = unsafe { libc::kill(-pid, libc::SIGKILL) };
        assert_eq!(
            rc,
            0,
            "kill -KILL -{pid}: {}",
            std::io::Error::last_os_error()
        );
        if mode == KillMode::Runner {
            for p in family.iter().filter(|p| !server.contains(p)) {
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
        }
        let gone = wait_until(Duration::from_secs(60), Duration::from_millis(5), || {
            family.iter().all(|p| !alive(*p))
        });
        assert!(
            gone,
            "processes of a killed run still running after 60 s: {family:?}"
        );
        true
    }

    /// Wait for the exit; the run's code (-1 when killed), stdout and stderr. Also reaps
    /// anything left in the process group.
    pub fn finish(self) -> (Run, Duration) {
        let pgid = self.child.id() as i32;
        let out = self.child.wait_with_output().expect("wait for mainline");
        let took = self.started.elapsed();
        // The leader is gone; make sure no git child of a killed run lingers.
        // SAFETY: as above; ESRCH (nothing left) is fine.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        (Run::from(out), took)
    }
}

/// Run `mainline <args…> -o text` for `ch` to completion.
pub fn run_text(ch: &Channel, args: &[&str]) -> Run {
    let out = command_as(ch, args, "text-run", "text")
        .output()
        .expect("run mainline");
    Run::from(out)
}

/// How a run dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    /// SIGKILL `mainline` alone.
    Process,
    /// SIGKILL `mainline` and everything it started.
    Runner,
}

/// `pid`'s descendants now (from /proc), excluding `pid`.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent: Vec<(i32, i32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // pid (comm) state ppid …; comm may hold spaces: split after the last ')'.
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    if let Some(pp) = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
                        parent.push((p, pp));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &parent {
            if *pp == p && !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

/// A git server-side process (the remote's half of a push or fetch).
fn is_server_side(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("receive-pack") || c.contains("upload-pack")
    })
}

/// Whether `pid` still runs (a zombie nobody reaps counts as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
    }
}

/// The JSON report of a run, or `Value::Null` when it printed none (killed).
pub fn report(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// The registry, read over plain HTTP.

/// One repository on the open test registry, read with hand-written HTTP/1.1 (no mainline code).
#[derive(Clone)]
pub struct Registry {
    pub host: String,
    pub repo: String,
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    /// The registry of an `oci://HOST/REPO` store.
    pub fn of(store: &str) -> Registry {
        let rest = store
            .strip_prefix("oci://")
            .expect("a registry store (oci://HOST/REPO)");
        let (host, repo) = rest.split_once('/').expect("oci://HOST/REPO");
        Registry {
            host: host.to_owned(),
            repo: repo.to_owned(),
        }
    }

    /// GET, retrying connection failures and 5xx answers (a loaded registry) a few times.
    fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let mut last = String::new();
        for _ in 0..8 {
            match self.try_get(path, accept) {
                Ok((status, body)) if status < 500 => return (status, body),
                Ok((status, body)) => {
                    last = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("GET http://{}{path}: {last}", self.host)
    }

    fn try_get(&self, path: &str, accept: &str) -> Result<(u16, Vec<u8>), String> {
        let mut s = TcpStream::connect(&self.host).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n",
            self.host
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of headers")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        if chunked {
            body = dechunk(&body)?;
        }
        Ok((status, body))
    }

    /// The manifest bytes `reference` (tag or digest) names, `None` on 404.
    pub fn manifest(&self, reference: &str) -> Option<Vec<u8>> {
        let (status, body) = self.get(
            &format!("/v2/{}/manifests/{reference}", self.repo),
            MANIFEST_ACCEPT,
        );
        match status {
            200 => Some(body),
            404 => None,
            s => panic!(
                "GET manifest {reference}: HTTP {s}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// The blob's bytes, `None` on 404.
    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        let (status, body) = self.get(&format!("/v2/{}/blobs/{digest}", self.repo), "*/*");
        match status {
            200 => Some(body),
            404 => None,
            s => panic!("GET blob {digest}: HTTP {s}"),
        }
    }

    /// `sha256:<hex>` of what `tag` names now.
    pub fn digest(&self, tag: &str) -> Option<String> {
        self.manifest(tag).map(|b| sha256(&b))
    }

    /// Successful channel writes the registry logged for `tag` of this repository: lines
    /// `"PUT /v2/<repo>/manifests/<tag> HTTP/1.1" 201` of MAINLINE_TEST_REGISTRY_LOG.
    pub fn tag_puts(&self, tag: &str) -> usize {
        let needle = format!("\"PUT /v2/{}/manifests/{tag} HTTP/1.1\" 201", self.repo);
        let log = std::env::var("MAINLINE_TEST_REGISTRY_LOG")
            .expect("MAINLINE_TEST_REGISTRY_LOG is not set: run scripts/with-registry.sh");
        // The access line is written as the response completes: read until the count settles.
        let mut last = usize::MAX;
        for _ in 0..20 {
            let n = std::fs::read_to_string(&log)
                .expect("read registry log")
                .lines()
                .filter(|l| l.contains(&needle))
                .count();
            if n == last {
                return n;
            }
            last = n;
            std::thread::sleep(Duration::from_millis(50));
        }
        last
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("short chunk")?);
        b = b.get(size + 2..).ok_or("short chunk")?;
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex_lower(&Sha256::digest(bytes)))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// git, through the CLI on the bare remote.

fn git_bare(q: &Queue, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("--git-dir")
        .arg(&q.remote)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git")
}

/// `git merge-base --is-ancestor a d` on the remote (a == d counts).
pub fn is_ancestor(q: &Queue, a: &str, d: &str) -> bool {
    let out = git_bare(q, &["merge-base", "--is-ancestor", a, d]);
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "git merge-base --is-ancestor {a} {d}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The deploy folder's tree id at `commit`, `None` when absent.
pub fn deploy_tree(q: &Queue, commit: &str) -> Option<String> {
    let out = git_bare(
        q,
        &[
            "rev-parse",
            "-q",
            "--verify",
            &format!("{commit}:{DEPLOY_PATH}"),
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The in-flight groups: queue ref name (without refs/heads/) → head commit.
pub fn live_groups(q: &Queue) -> BTreeMap<String, String> {
    q.queue_refs()
        .into_iter()
        .filter_map(|r| {
            let head = q.remote_ref(&r)?;
            Some((r.trim_start_matches("refs/heads/").to_owned(), head))
        })
        .collect()
}

/// The message of a commit on the remote.
pub fn commit_message(q: &Queue, commit: &str) -> String {
    let out = git_bare(q, &["cat-file", "commit", commit]);
    assert!(out.status.success(), "cat-file {commit}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_once("\n\n")
        .map(|(_, m)| m.to_owned())
        .unwrap_or_default()
}

/// The journal's head record on the remote (its JSON), read with the git CLI.
pub fn journal_head(q: &Queue) -> Option<Value> {
    let refs = q.refs_under("refs/mainline/journal/");
    let name = refs.first()?;
    let commit = q.remote_ref(name)?;
    let msg = commit_message(q, &commit);
    let body = &msg[msg.find('{')?..];
    Some(serde_json::from_str(body.trim()).expect("journal record JSON"))
}

/// The lock record on the remote (`refs/mainline/lock/…`), parsed from its commit's JSON.
pub fn lock_record(q: &Queue) -> Option<(String, Value)> {
    let refs = q.refs_under("refs/mainline/lock/");
    let name = refs.first()?;
    let commit = q.remote_ref(name)?;
    let msg = commit_message(q, &commit);
    let body = &msg[msg.find('{')?..];
    let v: Value = serde_json::from_str(body.trim()).expect("lock record JSON");
    Some((commit, v))
}

// ---------------------------------------------------------------------------------------------
// The oracle: does the channel satisfy the invariant, judged without mainline?

/// Why the channel is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// The channel's commit is on main and deploys main's tree.
    Converged,
    /// The channel names the head of this in-flight group, which descends from main.
    Candidate(String),
}

/// What the oracle saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub digest: String,
    pub commit: String,
    pub main: String,
}

/// S1 alone: the channel names complete manifest bytes (every blob present and hashing to its
/// digest) of an artifact that exists under its immutable tag `sha-<commit>`, byte for byte.
/// `Ok(None)` when the tag is absent.
pub fn complete(reg: &Registry, tag: &str) -> Result<Option<Seen>, String> {
    let Some(bytes) = reg.manifest(tag) else {
        return Ok(None);
    };
    let digest = sha256(&bytes);
    let m: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{tag} names bytes that are not a JSON manifest: {e}"))?;
    let revision = m["annotations"]["org.opencontainers.image.revision"]
        .as_str()
        .ok_or_else(|| format!("{tag} ({digest}) has no revision annotation"))?;
    // `<ref>@sha1:<commit>` or `sha1:<commit>` (Flux's two forms).
    let commit = revision
        .rsplit_once("sha1:")
        .map(|(_, c)| c.to_owned())
        .filter(|c| c.len() == 40 && c.chars().all(|x| x.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{tag}: revision {revision:?} names no sha1 commit"))?;
    let artifact = reg.digest(&format!("sha-{commit}")).ok_or_else(|| {
        format!("{tag} ({digest}) names commit {commit}, which has no artifact tag")
    })?;
    if artifact != digest {
        return Err(format!(
            "{tag} is {digest} but sha-{commit} is {artifact}: not a byte-identical re-tag"
        ));
    }
    let mut blobs = vec![&m["config"]];
    blobs.extend(m["layers"].as_array().into_iter().flatten());
    for b in blobs {
        let d = b["digest"].as_str().ok_or("a descriptor without digest")?;
        let size = b["size"].as_u64().ok_or("a descriptor without size")?;
        let data = reg
            .blob(d)
            .ok_or_else(|| format!("{tag} ({digest}) refers to blob {d}, which is missing"))?;
        if sha256(&data) != d || data.len() as u64 != size {
            return Err(format!(
                "blob {d} is incomplete or corrupt ({} bytes)",
                data.len()
            ));
        }
    }
    Ok(Some(Seen {
        digest,
        commit,
        main: String::new(),
    }))
}

/// The whole invariant at rest: S1, and the channel names mainline's deploy tree (a commit on
/// main with main's tree) or the head of an in-flight group that descends from main.
pub fn invariant(q: &Queue, reg: &Registry, tag: &str) -> Result<(Seen, Holds), String> {
    let mut seen = complete(reg, tag)?.ok_or_else(|| format!("{tag} is absent"))?;
    let main = q.main();
    seen.main = main.clone();
    let x = seen.commit.clone();
    let groups = live_groups(q);
    if let Some((id, _)) = groups.iter().find(|(_, h)| **h == x) {
        if is_ancestor(q, &main, &x) {
            return Ok((seen, Holds::Candidate(id.clone())));
        }
    }
    if is_ancestor(q, &x, &main) && deploy_tree(q, &x) == deploy_tree(q, &main) {
        return Ok((seen, Holds::Converged));
    }
    Err(format!(
        "{tag} names {} (commit {x}), which is neither main {main}'s deploy tree nor a live \
         group built on it (live groups: {groups:?})",
        seen.digest
    ))
}

/// `status -o json` must agree with the oracle: same digest and commit, and CONVERGED or
/// CANDIDATE as the oracle found.
pub fn status_agrees(ch: &Channel, seen: &Seen, holds: &Holds) -> Result<(), String> {
    let r = ch.run(&["status"]);
    let v = report(&r);
    let verdict = v["verdict"].as_str().unwrap_or("(none)");
    let want = match holds {
        Holds::Converged => "CONVERGED",
        Holds::Candidate(_) => "CANDIDATE",
    };
    if r.code != 0 || verdict != want {
        return Err(format!(
            "status says {verdict} (exit {}), the oracle says {want}: {}",
            r.code, r.stdout
        ));
    }
    if v["channel_digest"].as_str() != Some(seen.digest.as_str())
        || v["channel_commit"].as_str() != Some(seen.commit.as_str())
    {
        return Err(format!(
            "status names {} / {}, the registry {} / {}",
            v["channel_digest"], v["channel_commit"], seen.digest, seen.commit
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The journal, as `history --verify -o json` prints it.

pub struct History {
    pub code: i32,
    pub records: Vec<Value>,
    pub breaks: Vec<Value>,
}

/// `mainline history --verify -o json` (from `ch`'s cache).
pub fn history(ch: &Channel) -> History {
    let r = ch.run(&["history", "--verify"]);
    let v = report(&r);
    assert!(
        v.is_object() && v.get("records").is_some(),
        "history --verify printed no report (exit {}):\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    History {
        code: r.code,
        records: v["records"].as_array().cloned().unwrap_or_default(),
        breaks: v["verified"].as_array().cloned().unwrap_or_default(),
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// A `moved` record: (seq, from_digest, to_digest).
pub type JournalMove = (u64, Option<String>, Option<String>);

/// What the journal says, and every way it disagrees with itself or with the channel.
#[derive(Debug, Default)]
pub struct Audit {
    pub records: usize,
    pub intents: usize,
    pub moved: usize,
    /// `moved` records written by a later run for a writer that died after writing.
    pub settled_moved: usize,
    pub abandoned: usize,
    /// `abandoned` records of a write another writer overtook at once: its PUT landed and was
    /// replaced before the read-back (only unlocked writers race like that).
    pub overtaken: usize,
    pub observed: usize,
    pub refused: usize,
    /// Intents not settled by any later record.
    pub unsettled: Vec<u64>,
    /// Each a sentence naming the seq: order breaks, double settlements, lost intents.
    pub anomalies: Vec<String>,
    /// `moved` records by actor, in journal order: (seq, from_digest, to_digest).
    pub moves_by_actor: BTreeMap<String, Vec<JournalMove>>,
    /// intent seq → the seq of the record that settled it.
    pub settled_by: BTreeMap<u64, u64>,
    /// intent seq → its actor.
    pub intent_actor: BTreeMap<u64, String>,
}

/// Audit `records` (oldest first). `channel_now` is what the registry says the channel names.
/// Checks: seq counts 1..=N; each `moved`/`abandoned` settles exactly one earlier intent, once;
/// the channel digest the journal implies is continuous — every intent, move and observation
/// starts from where the previous move left the channel (refusals are read outside the lock and
/// are not part of the chain of moves); an abandoned intent left the channel where it was; every
/// intent but the head is settled; and the journal ends where the channel is.
pub fn audit(records: &[Value], channel_now: Option<&str>) -> Audit {
    let mut a = Audit {
        records: records.len(),
        ..Audit::default()
    };
    let mut cur: Option<String> = None;
    let mut intents: BTreeMap<u64, Value> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let seq = r["seq"].as_u64().unwrap_or(0);
        if seq != i as u64 + 1 {
            a.anomalies.push(format!("record {} has seq {seq}", i + 1));
        }
        let kind = s(r, "kind").unwrap_or_default();
        let from = s(r, "from_digest");
        let to = s(r, "to_digest");
        let after = s(r, "after");
        let actor = s(r, "actor").unwrap_or_default();
        let settle = |a: &mut Audit, what: &str| match r["intent"].as_u64() {
            None => a.anomalies.push(format!("#{seq} {what} names no intent")),
            Some(n) => match (intents.get(&n), a.settled_by.get(&n)) {
                (None, _) => a.anomalies.push(format!(
                    "#{seq} {what} settles #{n}, which is not an intent"
                )),
                (Some(_), Some(prev)) => a.anomalies.push(format!(
                    "#{seq} {what} settles intent #{n} a second time (first by #{prev})"
                )),
                (Some(intent), None) => {
                    a.settled_by.insert(n, seq);
                    if s(intent, "to_commit") != s(r, "to_commit")
                        || s(intent, "action") != s(r, "action")
                    {
                        a.anomalies.push(format!(
                            "#{seq} {what} settles #{n} but names another target"
                        ));
                    }
                }
            },
        };
        match kind.as_str() {
            "intent" => {
                a.intents += 1;
                if from != cur {
                    a.anomalies.push(format!(
                        "#{seq} intent decided from {from:?} while the journal had the channel at {cur:?}"
                    ));
                }
                intents.insert(seq, r.clone());
                a.intent_actor.insert(seq, actor.clone());
            }
            "moved" => {
                a.moved += 1;
                settle(&mut a, "moved");
                if let Some(n) = r["intent"].as_u64() {
                    if intents.get(&n).and_then(|i| s(i, "actor")) != Some(actor.clone()) {
                        a.settled_moved += 1;
                    }
                }
                if from != cur {
                    a.anomalies.push(format!(
                        "#{seq} moved from {from:?} but the previous move left the channel at {cur:?}"
                    ));
                }
                if after != to {
                    a.anomalies
                        .push(format!("#{seq} moved to {to:?} but says after {after:?}"));
                }
                a.moves_by_actor.entry(actor.clone()).or_default().push((
                    seq,
                    from.clone(),
                    to.clone(),
                ));
                cur = after;
            }
            "abandoned" => {
                a.abandoned += 1;
                if r["reason"]
                    .as_str()
                    .is_some_and(|x| x.contains("another writer moved the channel"))
                {
                    a.overtaken += 1;
                }
                settle(&mut a, "abandoned");
                if after != cur {
                    a.anomalies.push(format!(
                        "#{seq} abandoned, yet the channel is at {after:?}, not {cur:?}: the write happened and was not recorded as a move"
                    ));
                }
                cur = after;
            }
            "observed" => {
                a.observed += 1;
                if from != cur {
                    a.anomalies.push(format!(
                        "#{seq} observed a change from {from:?}, but the journal had the channel at {cur:?}: a spurious observation"
                    ));
                }
                cur = after;
            }
            "refused" => a.refused += 1,
            _ => {}
        }
    }
    // Where the last settling record (moved / abandoned / observed) is: intents after it are
    // pending — the next locked writing run settles them (refusals and pins recorded in between
    // do not hide them).
    let last_settle = records
        .iter()
        .rposition(|r| matches!(r["kind"].as_str(), Some("moved" | "abandoned" | "observed")))
        .map_or(0, |i| i as u64 + 1);
    for n in intents.keys() {
        if !a.settled_by.contains_key(n) {
            a.unsettled.push(*n);
            if *n < last_settle {
                a.anomalies.push(format!(
                    "intent #{n} is never settled, though record #{last_settle} settled the journal after it"
                ));
            }
        }
    }
    // A dangling intent may have written: the journal then lags the channel until the next
    // locked run settles it.
    let pending = a.unsettled.iter().any(|n| *n > last_settle);
    if cur.as_deref() != channel_now && !pending {
        a.anomalies.push(format!(
            "the journal leaves the channel at {cur:?}, the registry has {channel_now:?}"
        ));
    }
    a
}

/// Deadline helper: poll `f` every `every` until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(every);
    }
    f()
}

/// A fresh bare remote + queue and a registry channel on it, for one test.
pub fn world(root: &Path, name: &str) -> (Queue, Channel, Registry) {
    let q = Queue::new(root);
    let store = crate::support::registry_store(name);
    let ch = Channel::new(&store, &q, "runner");
    let reg = Registry::of(&store);
    (q, ch, reg)
}
