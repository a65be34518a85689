//! Starting and stopping the `tests/kube` server process. A start that loses its port to
//! another process (the server picks a free port, then binds it) is retried with a fresh
//! directory; any other failure panics with the server's own output.

use super::BINARY_ENV;
use crate::secret::Secret;
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a start may take: a cold start on a loaded 2-core machine is several seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const ATTEMPTS: usize = 3;

pub(super) struct ServerProcess {
    child: Child,
    /// Held open: the server stops when it closes (`--exit-on-stdin-eof`).
    stdin: Option<ChildStdin>,
}

pub(super) struct Ready {
    pub process: ServerProcess,
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub admin_token: Secret,
    /// A client certificate and key the server trusts (user `mainline-cert-user`).
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

#[derive(Deserialize)]
struct ReadyLine {
    server: String,
    ca_file: PathBuf,
    admin_token_file: PathBuf,
    #[serde(default)]
    client_cert_file: Option<PathBuf>,
    #[serde(default)]
    client_key_file: Option<PathBuf>,
}

fn binary() -> PathBuf {
    let missing = || {
        panic!(
            "{BINARY_ENV} is not set to a built test API server. The Kubernetes tests run \
             against a real kube-apiserver: build it with `cd tests/kube && go build -o \
             \"$CARGO_TARGET_DIR/kube-apiserver/kube-test-server\" .` (Go 1.26+, the Go module \
             proxy reachable; scripts/test.sh does this) and export {BINARY_ENV} with its path."
        )
    };
    let path = PathBuf::from(std::env::var_os(BINARY_ENV).unwrap_or_else(missing));
    if !path.is_file() {
        panic!(
            "{BINARY_ENV}={} is not a file: build tests/kube (see scripts/test.sh) or fix the \
             variable.",
            path.display()
        );
    }
    path
}

pub(super) fn start(dir: &Path) -> Ready {
    let bin = binary();
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        let data = dir.join(format!("kube-apiserver-{attempt}"));
        match try_start(&bin, &data) {
            Ok(ready) => return ready,
            Err(log) if log.contains("address already in use") => last = log,
            Err(log) => panic!("the test API server did not start: {log}"),
        }
    }
    panic!("the test API server lost its port {ATTEMPTS} times: {last}")
}

fn try_start(bin: &Path, data: &Path) -> Result<Ready, String> {
    std::fs::create_dir_all(data).map_err(|e| format!("mkdir {}: {e}", data.display()))?;
    let log_path = data.with_extension("log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut process = ServerProcess { child, stdin };
    let until = Instant::now() + READY_TIMEOUT;
    let tail = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        format!(
            "{} (log {}):\n{}",
            "its output ends",
            p.display(),
            &text[start..]
        )
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let Ok(r) = serde_json::from_str::<ReadyLine>(&line) else {
                    continue;
                };
                let ca_pem = std::fs::read(&r.ca_file).map_err(|e| e.to_string())?;
                let token =
                    std::fs::read_to_string(&r.admin_token_file).map_err(|e| e.to_string())?;
                return Ok(Ready {
                    process,
                    server: r.server,
                    ca_pem,
                    admin_token: Secret::new(token.trim()),
                    client_identity: r.client_cert_file.zip(r.client_key_file),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = process.child.wait();
                return Err(tail(&log_path));
            }
        }
        if Instant::now() > until {
            drop(process);
            return Err(format!(
                "not ready after {READY_TIMEOUT:?}; {}",
                tail(&log_path)
            ));
        }
    }
}

impl ServerProcess {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // EOF on stdin: the server shuts down as on SIGTERM. Kill it if it takes too long.
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
