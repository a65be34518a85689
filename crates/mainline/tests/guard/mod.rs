//! Support for the guard tests: a raw HTTP/1.1 client (so a test can send exactly the bytes it
//! means, 10 MiB bodies and missing headers included), the guard as a child process of the
//! built binary, signed webhook deliveries from the shared fixtures, and a git + registry
//! fixture with a main line, a merge-group candidate, and their artifacts.
#![allow(dead_code)]

use crate::support::{self, git, git_at};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "webhook-secret-for-tests-only-0123456789";
pub const TOKEN: &str = "guard-action-token-for-tests-only";
pub const GITHUB_TOKEN: &str = "ghp_fake_token_for_tests_only";

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection (`Connection: close`). The body is written from a
/// second thread while the answer is read, so a server that answers early (413) is heard.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone stream");
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        // The server may close early (413): a failed write is expected then.
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() => {
                eprintln!("read ended with {e} after {} bytes", raw.len());
                break;
            }
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        }
    }
    let _ = sender.join();
    parse(&raw).unwrap_or_else(|| panic!("unparseable answer: {}", String::from_utf8_lossy(&raw)))
}

fn parse(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
    out
}

pub fn get(addr: &str, path: &str) -> Resp {
    http(addr, "GET", path, &[], b"")
}

pub fn post_token(addr: &str, path: &str, body: &str) -> Resp {
    http(
        addr,
        "POST",
        path,
        &[
            ("Authorization", format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
    )
}

/// A webhook payload from the shared fixtures (crates/mainline-github/fixtures/webhook/).
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mainline-github/fixtures/webhook")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read fixture"))
        .expect("fixture JSON")
}

/// POST a delivery signed with `SECRET`.
pub fn deliver(addr: &str, event: &str, id: &str, body: &[u8]) -> Resp {
    let sig = mainline_github::webhook::sign(SECRET.as_bytes(), body);
    http(
        addr,
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", event.into()),
            ("X-GitHub-Delivery", id.into()),
            ("X-Hub-Signature-256", sig),
            ("Content-Type", "application/json".into()),
        ],
        body,
    )
}

/// `merge_group` `destroyed` for `repo` with `reason`, group `pr-<pr>` with head `head`.
pub fn destroyed(repo: &str, reason: &str, pr: u64, head: &str, base: &str) -> Vec<u8> {
    let mut v = fixture("merge_group_destroyed.json");
    v["reason"] = reason.into();
    v["repository"]["full_name"] = repo.into();
    v["merge_group"]["head_sha"] = head.into();
    v["merge_group"]["head_ref"] =
        format!("refs/heads/gh-readonly-queue/main/pr-{pr}-{base}").into();
    v["merge_group"]["base_sha"] = base.into();
    serde_json::to_vec(&v).expect("json")
}

/// `push` of `git_ref` in `repo` from `before` to `after`.
pub fn push(repo: &str, git_ref: &str, before: &str, after: &str) -> Vec<u8> {
    let mut v = fixture("push.json");
    v["ref"] = git_ref.into();
    v["before"] = before.into();
    v["after"] = after.into();
    v["repository"]["full_name"] = repo.into();
    serde_json::to_vec(&v).expect("json")
}

/// Wait until `f` returns `Some`, or panic with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The guard as a child process of the built binary.
pub struct GuardProc {
    pub child: Child,
    pub addr: String,
    pub stderr: PathBuf,
}

impl GuardProc {
    /// Start `mainline --plain-http -v guard ARGS` in `dir` with `env`, and wait until it says
    /// where it listens.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GuardProc {
        GuardProc::start_wrapped(&[], dir, args, env)
    }

    /// [`GuardProc::start`] under a wrapper that execs its command (`prlimit --nofile=…`), so
    /// the child's pid is the guard's.
    pub fn start_wrapped(
        wrapper: &[&str],
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> GuardProc {
        let stderr = dir.join(format!("guard-{}.log", std::process::id()));
        let log = std::fs::File::create(&stderr).expect("create log");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(support::bin());
                c
            }
            None => Command::new(support::bin()),
        };
        cmd.current_dir(dir)
            .args(["--plain-http", "-v", "guard"])
            .args(args)
            .env("DOCKER_CONFIG", &home)
            .env("HOME", &home)
            .env("MAINLINE_SOURCE", "https://example.com/acme/app")
            .env("RUST_LOG", "info")
            .env_remove("GITHUB_SERVER_URL")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("MAINLINE_GUARD_TOKEN")
            .env_remove("MAINLINE_WEBHOOK_SECRET")
            .env_remove("MAINLINE_CHANNEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start mainline guard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so the guard never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let addr = line
            .split("http://")
            .nth(1)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "the guard did not say where it listens; stdout {line:?}, stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        GuardProc {
            child,
            addr,
            stderr,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Send SIGTERM and wait (at most `secs`) for the exit code.
    pub fn terminate(&mut self, secs: u64) -> i32 {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = wait_for(secs, "the guard to exit after SIGTERM", || {
            self.child.try_wait().expect("try_wait")
        });
        status.code().unwrap_or(-1)
    }

    /// The channel's entry in /api/channels.
    pub fn channel(&self, name: &str) -> Value {
        let all = get(&self.addr, "/api/channels").json();
        all["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no channel {name} in {all}"))
    }

    pub fn reconciles(&self, name: &str) -> u64 {
        self.channel(name)["reconciles"]
            .as_u64()
            .expect("reconciles")
    }

    /// Wait until the channel has finished more than `after` reconciles; its entry.
    pub fn wait_reconciled(&self, name: &str, after: u64) -> Value {
        wait_for(60, &format!("channel {name} to reconcile again"), || {
            let c = self.channel(name);
            (c["reconciles"].as_u64() > Some(after) && c["running"] == false).then_some(c)
        })
    }

    pub fn metrics(&self) -> String {
        get(&self.addr, "/metrics").text()
    }

    /// Open file descriptors of the guard process now.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Threads of the guard process now.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for GuardProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the metric line `name{labels}` (labels written exactly as the guard writes
/// them).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// A source repository, its bare remote, and artifacts on the test registry: main at `c3`
/// (artifact pushed, channel `latest` promoted to it), and a merge-group candidate `g` (a child
/// of `c3` changing the deploy tree) under `refs/heads/gh-readonly-queue/main/pr-7-<c3>`, its
/// artifact pushed too.
pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub remote: PathBuf,
    pub store: String,
    pub main: String,
    pub candidate: String,
    pub queue_ref: String,
}

impl World {
    pub fn new(name: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let (repo, commits) = support::fixture_repo(dir.path());
        let main = commits[2].clone();
        let remote = dir.path().join("remote.git");
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                repo.to_str().expect("utf8"),
                remote.to_str().expect("utf8"),
            ],
        );
        git(&repo, &["checkout", "-q", "-b", "queue"]);
        support::write_tree(
            &repo,
            &[("k8s/app.yaml", "kind: Deployment\nreplicas: 5\n")],
        );
        git_at(
            &repo,
            &["commit", "-q", "-am", "Merge pull request #7"],
            "2024-05-04T10:00:00Z",
        );
        let candidate = git(&repo, &["rev-parse", "HEAD"]);
        let queue_ref = format!("refs/heads/gh-readonly-queue/main/pr-7-{main}");
        git(
            &repo,
            &[
                "push",
                "-q",
                remote.to_str().expect("utf8"),
                &format!("HEAD:{queue_ref}"),
            ],
        );
        git(&repo, &["checkout", "-q", "main"]);
        let store = support::registry_store(name);
        let w = World {
            dir,
            repo,
            remote,
            store,
            main,
            candidate,
            queue_ref,
        };
        for c in [&w.main, &w.candidate] {
            w.mainline(&[
                "push",
                "--git",
                w.remote_str(),
                "--commit",
                c,
                "--path",
                "k8s",
                "--to",
                &w.store,
            ])
            .ok();
        }
        w.mainline(&["promote", "--commit", &w.main.clone()]).ok();
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remote_str(&self) -> &str {
        self.remote.to_str().expect("utf8")
    }

    pub fn channel(&self) -> String {
        format!("{}:latest", self.store)
    }

    /// Run a channel command against this world (its own cache dir, like a CI runner).
    pub fn mainline(&self, args: &[&str]) -> support::Run {
        let cache = self.dir.path().join("ci-cache");
        let channel = self.channel();
        let mut full: Vec<&str> = args.to_vec();
        let is_channel_cmd = matches!(
            args.first(),
            Some(&("status" | "reconcile" | "deploy" | "promote" | "pin" | "unpin" | "history"))
        );
        if is_channel_cmd {
            full.extend([
                "--channel",
                &channel,
                "--git",
                self.remote_str(),
                "--path",
                "k8s",
            ]);
        }
        support::mainline_in(
            self.dir.path(),
            &full,
            &[("MAINLINE_CACHE_DIR", cache.to_str().expect("utf8"))],
        )
    }

    /// The digest the channel names now (read with `mainline inspect`).
    pub fn channel_digest(&self) -> String {
        let run = self
            .mainline(&["inspect", "-o", "json", &self.channel()])
            .ok();
        run.json()["digest"].as_str().expect("digest").to_owned()
    }

    /// The digest of `sha-<commit>`.
    pub fn artifact(&self, commit: &str) -> String {
        let run = self
            .mainline(&[
                "inspect",
                "-o",
                "json",
                &format!("{}:sha-{commit}", self.store),
            ])
            .ok();
        run.json()["digest"].as_str().expect("digest").to_owned()
    }

    /// Commit `files` on main in the source repo and push main to the remote; the new commit.
    pub fn land(&self, files: &[(&str, &str)], date: &str) -> String {
        support::write_tree(&self.repo, files);
        git_at(&self.repo, &["commit", "-q", "-am", "land"], date);
        git(
            &self.repo,
            &[
                "push",
                "-q",
                "-f",
                self.remote_str(),
                "main:refs/heads/main",
            ],
        );
        git(&self.repo, &["rev-parse", "HEAD"])
    }

    /// GitHub deletes a group's queue ref when the group ends.
    pub fn end_group(&self) {
        git(
            &self.repo,
            &[
                "push",
                "-q",
                self.remote_str(),
                &format!(":{}", self.queue_ref),
            ],
        );
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// An executable from Debian's packages, or a failure that says how to get it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/test.sh (it installs Debian's {package}), or apt-get install -y {package}")
}
