//! Hostile peers on loopback, for what no real registry or git server does on demand: accept
//! a connection and never answer; a registry whose token endpoint never answers, or echoes the
//! credentials it was sent in an error body. Plus a scan of /proc for processes we left behind.
//! Include with `#[path = "support/loopback.rs"] mod loopback;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A port that accepts connections and never sends a byte (the connections are held open).
pub fn silent() -> u16 {
    silent_counted().0
}

/// [`silent`], and the number of connections it accepted so far.
pub fn silent_counted() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// What the fake registry's token endpoint does.
#[derive(Clone, Copy)]
pub enum Realm {
    /// The realm is a port that accepts and never answers.
    Silent,
    /// The realm answers 500 with a body quoting the Authorization header it received, and
    /// the credentials decoded from it.
    EchoCredentials,
    /// No token endpoint: the registry asks for basic auth, then answers every authenticated
    /// request with that 500 echo itself.
    BasicEcho,
}

/// Requests that reached an echoing endpoint with an Authorization header (proof that the
/// credentials were really sent, so a clean output means they were redacted).
pub static ECHOED: AtomicUsize = AtomicUsize::new(0);

/// A registry that answers every `/v2/` request with 401 and a Bearer challenge naming a token
/// endpoint (`realm`). Returns (registry port, realm URL).
pub fn token_registry(realm: Realm) -> (u16, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let realm_url = match realm {
        Realm::Silent => format!("http://127.0.0.1:{}/token", silent()),
        Realm::EchoCredentials | Realm::BasicEcho => format!("http://127.0.0.1:{port}/token"),
    };
    let challenge = match realm {
        Realm::BasicEcho => "Basic realm=\"fake-registry\"".to_owned(),
        _ => format!("Bearer realm=\"{realm_url}\",service=\"fake-registry\""),
    };
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let challenge = challenge.clone();
            thread::spawn(move || serve(conn, &challenge));
        }
    });
    (port, realm_url)
}

fn serve(conn: TcpStream, challenge: &str) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_owned();
            }
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/");
    let mut conn = conn;
    let basic = challenge.starts_with("Basic");
    let echo = path.starts_with("/token") || (basic && path != "/v2/" && !authorization.is_empty());
    let response = if echo {
        if !authorization.is_empty() {
            ECHOED.fetch_add(1, Ordering::SeqCst);
        }
        use base64::Engine as _;
        let decoded = authorization
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let body = format!(
            "{{\"errors\":[{{\"code\":\"UNKNOWN\",\"message\":\"token service failed for Authorization: {authorization} ({decoded})\"}}]}}"
        );
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        let body =
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}";
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: {challenge}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = conn.write_all(response.as_bytes());
}

/// Live processes (zombies excluded: they run nothing) whose command line contains any of
/// `needles`, as "pid: cmdline".
pub fn processes_with(needles: &[&str]) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !needles.iter().any(|n| cmdline.contains(n)) {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_owned()))
            .and_then(|rest| rest.chars().next());
        if state == Some('Z') || state.is_none() {
            continue;
        }
        found.push(format!("{name}: {cmdline}"));
    }
    found
}

/// Wait up to `secs` for no process to match `needles`; the survivors if some remain.
pub fn wait_until_gone(needles: &[&str], secs: u64) -> Vec<String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let left = processes_with(needles);
        if left.is_empty() || std::time::Instant::now() > until {
            return left;
        }
        thread::sleep(std::time::Duration::from_millis(100));
    }
}
