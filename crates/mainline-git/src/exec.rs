//! Running the git CLI: the transport, because it brings the user's credential helpers, ssh
//! configuration and `insteadOf` rewrites.
//!
//! Every invocation runs with `GIT_TERMINAL_PROMPT=0` and `LC_ALL=C` (so git never waits on a
//! terminal and its messages are parseable), in its own process group with a deadline (the
//! whole group is killed when it passes), against the cache with `--git-dir`, and with the
//! remote's URL and token passed as environment config (`GIT_CONFIG_COUNT`), so neither ever
//! appears in argv. Variables that would redirect git to another repository are removed.
//!
//! Each call is bounded by the smaller of its own timeout and what is left of the command's
//! deadline (a call that would start after the deadline fails at once, without spawning). git
//! gets `PR_SET_PDEATHSIG`, and its group is registered with the [`crate::reaper`], so nothing
//! we started outlives us.
//!
//! Must never: block without a deadline, let a credential reach argv or a message (stderr is
//! scrubbed before it is stored), or inherit a caller's `GIT_DIR`.

use crate::error::GitError;
use crate::url::{RemoteUrl, Token};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt as _;

/// The name the remote has inside the cache; its URL only ever arrives through the environment.
pub(crate) const REMOTE_NAME: &str = "origin";

/// Environment variables that would point git at another repository or alter its identity.
const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
    "GIT_CONFIG_PARAMETERS",
    "GIT_PREFIX",
    "GIT_REPLACE_REF_BASE",
    "GIT_NO_REPLACE_OBJECTS",
];

/// What a finished git process left behind. `stderr` is already scrubbed of credentials.
pub(crate) struct GitOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl GitOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs git for one remote against one cache directory.
#[derive(Clone)]
pub(crate) struct Git {
    pub url: RemoteUrl,
    pub token: Option<Token>,
    pub timeout: Duration,
    /// The command's overall deadline, when it has one: no call waits past it.
    pub deadline: Option<Instant>,
}

impl Git {
    /// How long the next call may take, and whether the command's deadline (rather than the
    /// per-call timeout) is what bounds it.
    pub fn limit(&self) -> (Duration, bool) {
        match self.deadline {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left < self.timeout {
                    (left, true)
                } else {
                    (self.timeout, false)
                }
            }
            None => (self.timeout, false),
        }
    }

    /// A call cut by the deadline: the remote did not answer (the first is remembered).
    fn deadline_error(&self, command: &str) -> GitError {
        let e = GitError::Deadline {
            command: command.to_owned(),
            remote: self.url.redacted().to_owned(),
        };
        note_stall(e.to_string());
        e
    }

    /// The config git receives through the environment, in order.
    fn env_config(&self) -> Vec<(String, String)> {
        let mut config = vec![
            (
                format!("remote.{REMOTE_NAME}.url"),
                self.url.raw().to_owned(),
            ),
            // Helpers must not open a prompt either (git >= 2.46; older versions ignore it).
            ("credential.interactive".to_owned(), "false".to_owned()),
            // No background maintenance in a cache that other processes read concurrently.
            ("maintenance.auto".to_owned(), "false".to_owned()),
            ("gc.auto".to_owned(), "0".to_owned()),
        ];
        if let (Some(token), Some(base)) = (&self.token, self.url.https_base()) {
            if !self.url.has_userinfo() {
                config.push((
                    format!("http.{base}.extraHeader"),
                    token.authorization_header(),
                ));
            }
        }
        config
    }

    /// Replace every credential in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = self.url.scrub(text);
        if let Some(token) = &self.token {
            for secret in token.secrets() {
                out = out.replace(&secret, "***");
            }
        }
        out
    }

    /// Run `git --git-dir=<cache> <args>` (or without `--git-dir` when `cache` is `None`),
    /// feeding `stdin`. A non-zero exit is returned, not an error; a timeout is an error.
    pub fn run(
        &self,
        cache: Option<&Path>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<GitOutput, GitError> {
        let mut cmd = Command::new("git");
        if let Some(dir) = cache {
            cmd.arg("--git-dir").arg(dir);
        }
        cmd.args(args);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let config = self.env_config();
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (key, value)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group, so a timeout also ends ssh / git-remote-https children.
            .process_group(0);

        // Only for a remote across the network: there git's children (git-remote-http, ssh)
        // are ours and may wait forever on a silent server. A local remote's children are its
        // server side (receive-pack, upload-pack), which on a real host would not die with us:
        // killing them mid-push would leave the remote's ref locked, so they may finish.
        let networked = self.url.host().is_some();
        if networked {
            // SAFETY: the closure runs between fork and exec and only makes one prctl(2)
            // call, which is async-signal-safe; it allocates nothing and takes no lock.
            unsafe {
                cmd.pre_exec(|| {
                    // git dies with us (or with the thread that spawned it, which waits for
                    // it); TERM, so it removes its lock files first.
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::TERM,
                    ))
                    .map_err(std::io::Error::from)
                });
            }
        }

        let command = args
            .iter()
            .copied()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .unwrap_or("git")
            .to_owned();
        let (limit, by_deadline) = self.limit();
        if by_deadline && limit.is_zero() {
            return Err(GitError::DeadlinePassed {
                command,
                remote: self.url.redacted().to_owned(),
            });
        }
        tracing::debug!(command = %command, remote = %self.url, limit_ms = limit.as_millis() as u64, "running git");
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
            program: "git".to_owned(),
            source,
        })?;
        let pgid = child.id();
        if networked {
            crate::reaper::register(pgid);
        }

        let writer = match (stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => Some(thread::spawn(move || {
                // git may exit early (e.g. on a fatal error); a broken pipe then is expected.
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);

        let waited = child.wait_timeout(limit);
        let status = match waited {
            Ok(Some(status)) => status,
            Ok(None) | Err(_) => {
                end_group(&mut child);
                if networked {
                    crate::reaper::release(pgid);
                }
                join_all(writer, stdout, stderr);
                return Err(match waited {
                    Err(source) => GitError::Spawn {
                        program: format!("git {command}"),
                        source,
                    },
                    Ok(_) if by_deadline => self.deadline_error(&command),
                    Ok(_) => GitError::Timeout {
                        command,
                        remote: self.url.redacted().to_owned(),
                        after: self.timeout,
                    },
                });
            }
        };
        if networked {
            crate::reaper::release(pgid);
        }
        let (stdout, stderr) = join_all(writer, stdout, stderr);
        Ok(GitOutput {
            status,
            stdout,
            stderr: self.scrub(String::from_utf8_lossy(&stderr).trim()),
        })
    }

    /// Like [`Git::run`], but a non-zero exit becomes [`GitError::Command`].
    pub fn run_ok(
        &self,
        cache: Option<&Path>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<GitOutput, GitError> {
        let out = self.run(cache, args, stdin)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.failed(args, &out))
        }
    }

    /// The error for a git process that exited unsuccessfully.
    pub fn failed(&self, args: &[&str], out: &GitOutput) -> GitError {
        GitError::Command {
            command: args.first().copied().unwrap_or("git").to_owned(),
            remote: self.url.redacted().to_owned(),
            status: out.status.to_string(),
            stderr: last_lines(&out.stderr, 6),
        }
    }
}

/// End a git that ran out of time, with its whole process group: SIGTERM (git removes its
/// `*.lock` files, e.g. a local remote's receive-pack mid-push), then SIGKILL after a short
/// grace for anything that ignored it. Reaps the leader.
fn end_group(child: &mut std::process::Child) {
    use rustix::process::{kill_process_group, Pid, Signal};
    let pid = Pid::from_child(child);
    let _ = kill_process_group(pid, Signal::TERM);
    let ended = matches!(child.wait_timeout(TERM_GRACE), Ok(Some(_)));
    // Helpers may outlive the leader by a moment; the group goes either way.
    let _ = kill_process_group(pid, Signal::KILL);
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// How long a git process group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// The first git call of this process that the deadline cut, and when: what did not answer.
static FIRST_STALL: OnceLock<(Instant, String)> = OnceLock::new();

fn note_stall(message: String) {
    let _ = FIRST_STALL.set((Instant::now(), message));
}

/// The first git call of this process that was cut by its deadline (when, and the error), so
/// the command's final message names what did not answer rather than a call that came after.
pub fn first_stall() -> Option<(Instant, String)> {
    FIRST_STALL.get().cloned()
}

type Drain = thread::JoinHandle<Vec<u8>>;

fn drain(mut pipe: impl Read + Send + 'static) -> Drain {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join_all(
    writer: Option<thread::JoinHandle<()>>,
    stdout: Option<Drain>,
    stderr: Option<Drain>,
) -> (Vec<u8>, Vec<u8>) {
    if let Some(w) = writer {
        let _ = w.join();
    }
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    (out, err)
}

/// The last `n` non-empty lines: git's fatal line comes last, after progress noise.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        "git printed no error message".to_owned()
    } else {
        lines[start..].join(" | ")
    }
}
