//! Helpers shared by the test binaries: the real registries' coordinates, fixtures, and a
//! reader for the open registry's request log.
#![allow(dead_code)] // each test binary uses a different subset

pub mod fake;
pub mod suite;

use mainline_core::Digest;
use mainline_store::registry::{Credentials, RegistryOptions};
use mainline_store::Location;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A required environment variable set by scripts/with-registry.sh; its absence fails the
/// test (these tests never skip).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need real registries; run scripts/test.sh, or scripts/with-registry.sh cargo test -p mainline-store"
        )
    })
}

/// The open (anonymous) registry, `host:port`.
pub fn open_registry() -> String {
    env("MAINLINE_TEST_REGISTRY")
}

/// The basic-auth registry, `host:port`, with its user and password.
pub fn auth_registry() -> (String, Credentials) {
    (
        env("MAINLINE_TEST_REGISTRY_AUTH"),
        Credentials {
            username: env("MAINLINE_TEST_REGISTRY_USER"),
            password: env("MAINLINE_TEST_REGISTRY_PASSWORD"),
        },
    )
}

/// A repository name no other test uses.
pub fn unique_repository(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .subsec_nanos();
    format!(
        "mainline-test/{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn registry_location(host: &str, repository: &str) -> Location {
    format!("oci://{host}/{repository}")
        .parse()
        .expect("test locations are valid")
}

/// Options for a loopback registry over plain HTTP, with docker's config pointed at an
/// empty directory so the machine's own `~/.docker` cannot leak into a test.
pub fn plain_http_options(host: &str, empty_docker_dir: &Path) -> RegistryOptions {
    RegistryOptions {
        plain_http_hosts: vec![host.to_owned()],
        docker_config_dir: Some(empty_docker_dir.to_owned()),
        ..RegistryOptions::default()
    }
}

/// Writes `size` bytes of deterministic, incompressible-looking content to a file in `dir`,
/// in 1 MiB pieces (the test itself must not hold the blob in memory), and returns the path
/// and digest.
pub fn write_blob_file(dir: &Path, name: &str, size: u64, seed: u64) -> (PathBuf, Digest) {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create blob file"));
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size;
    let mut piece = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        for byte in piece[..n].iter_mut() {
            // xorshift64: cheap and deterministic.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        hasher.update(&piece[..n]);
        file.write_all(&piece[..n]).expect("write blob file");
        left -= n as u64;
    }
    file.flush().expect("flush blob file");
    (path, Digest::from_sha256(hasher.finalize().into()))
}

/// A `Write` that keeps only a hash and a count, so fetching a large blob costs no memory.
#[derive(Default)]
pub struct HashingSink {
    hasher: Sha256,
    pub count: u64,
}

impl HashingSink {
    pub fn digest(self) -> Digest {
        Digest::from_sha256(self.hasher.finalize().into())
    }
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One request the open registry logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub uri: String,
    pub status: String,
}

/// The open registry's request log (`MAINLINE_TEST_REGISTRY_LOG`).
pub struct RequestLog {
    path: PathBuf,
}

impl RequestLog {
    pub fn open() -> RequestLog {
        RequestLog {
            path: PathBuf::from(env("MAINLINE_TEST_REGISTRY_LOG")),
        }
    }

    /// Every request logged so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let text = std::fs::read_to_string(&self.path).expect("read the registry log");
        text.lines()
            .filter(|line| line.contains("msg=\"response completed"))
            .map(|line| LoggedRequest {
                method: field(line, "http.request.method="),
                uri: field(line, "http.request.uri="),
                status: field(line, "http.response.status="),
            })
            .collect()
    }

    /// The requests logged after the first `before`, waiting until the log has stopped
    /// growing (the registry writes a line after the response is sent).
    pub fn since(&self, before: usize) -> Vec<LoggedRequest> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = self.requests().len();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.requests().len();
            if now == seen && (now > before || Instant::now() > deadline) {
                break;
            }
            seen = now;
        }
        self.requests().split_off(before)
    }
}

fn field(line: &str, key: &str) -> String {
    let Some(start) = line.find(key) else {
        return String::new();
    };
    let rest = &line[start + key.len()..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    rest.split([' ', '"']).next().unwrap_or_default().to_owned()
}
