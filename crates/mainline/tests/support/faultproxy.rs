//! A fault-injecting HTTP/1.1 proxy in front of the real test registry, on loopback only: it
//! lets a real `docker-registry` misbehave on demand the way networks and overloaded registries
//! do — a request held and applied late (after the client gave up), a request swallowed with
//! no answer, an answer lost after the request was applied.
//!
//! Every connection is served once (`Connection: close` is forced both ways), so each request is
//! seen and matched against the armed rules; an unmatched request is piped to the registry
//! byte for byte. A held request is forwarded on the proxy's own connection even when the
//! client has disconnected — exactly the "write that lands after its writer stopped waiting"
//! that fencing must survive. Everything stops when the proxy is dropped; a held request waits
//! at most its configured delay.
//!
//! Included with `#[path = "support/faultproxy.rs"] mod faultproxy;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do with a matched request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Hold the request this long, then apply it at the registry whether or not the client is
    /// still waiting (its answer goes to the client if it is).
    Delay(Duration),
    /// Never apply it and never answer; the connection stays open until the client leaves.
    Blackhole,
    /// Apply it at the registry, then close the client's connection without an answer.
    LoseAnswer,
}

/// A rule: requests with this method whose path ends with `path_suffix` get `fault`, for the
/// next `times` matches.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: String,
    pub path_suffix: String,
    pub fault: Fault,
    pub times: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// `"<method> <path> -> <what happened>"`, in order.
    log: Vec<String>,
}

pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    upstream: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// Held or blackholed requests not finished yet.
    pending: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let proxy = FaultProxy {
            addr,
            upstream: upstream.to_owned(),
            state: Arc::default(),
            stop: Arc::default(),
            pending: Arc::default(),
        };
        let (state, stop, pending, upstream) = (
            proxy.state.clone(),
            proxy.stop.clone(),
            proxy.pending.clone(),
            proxy.upstream.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, stop, pending, upstream) = (
                    state.clone(),
                    stop.clone(),
                    pending.clone(),
                    upstream.clone(),
                );
                std::thread::spawn(move || serve(conn, &upstream, &state, &stop, &pending));
            }
        });
        proxy
    }

    /// Arm a rule (matched in the order armed).
    pub fn arm(&self, method: &str, path_suffix: &str, fault: Fault, times: usize) {
        self.state.lock().expect("state").rules.push(Rule {
            method: method.to_owned(),
            path_suffix: path_suffix.to_owned(),
            fault,
            times,
        });
    }

    /// Drop every armed rule.
    pub fn disarm(&self) {
        self.state.lock().expect("state").rules.clear();
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("state").log.clone()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }

    /// Wait until no held request is left (each ends after its delay), up to `limit`.
    pub fn drain(&self, limit: Duration) -> bool {
        let t = Instant::now();
        while self.pending.load(Ordering::SeqCst) > 0 {
            if t.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// A request head and whatever body bytes were read with it.
struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    stop: &AtomicBool,
    pending: &AtomicUsize,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let fault = {
        let mut s = state.lock().expect("state");
        let hit = s
            .rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == req.method && req.path.ends_with(&r.path_suffix));
        let fault = hit.map(|r| {
            r.times -= 1;
            r.fault
        });
        s.log.push(format!(
            "{} {} -> {}",
            req.method,
            req.path,
            fault.map_or("forwarded".to_owned(), |f| format!("{f:?}"))
        ));
        fault
    };
    match fault {
        None => pipe(client, upstream, &req),
        Some(Fault::Delay(d)) => {
            pending.fetch_add(1, Ordering::SeqCst);
            let body = read_whole_body(&mut client, &req);
            sleep_unless_stopped(d, stop);
            let answer = exchange(upstream, &req.head, &body);
            let applied = answer.is_some();
            let delivered = answer.is_some_and(|a| client.write_all(&a).is_ok());
            state.lock().expect("state").log.push(format!(
                "{} {} -> applied after {d:?} (applied: {applied}, answer delivered: {delivered})",
                req.method, req.path
            ));
            let _ = client.shutdown(Shutdown::Both);
            pending.fetch_sub(1, Ordering::SeqCst);
        }
        Some(Fault::Blackhole) => {
            pending.fetch_add(1, Ordering::SeqCst);
            let _ = read_whole_body(&mut client, &req);
            // Hold until the client leaves (read gives 0 or an error) or the proxy stops.
            let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
            let mut b = [0u8; 1];
            while !stop.load(Ordering::SeqCst) {
                match client.read(&mut b) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            pending.fetch_sub(1, Ordering::SeqCst);
        }
        Some(Fault::LoseAnswer) => {
            let body = read_whole_body(&mut client, &req);
            let applied = exchange(upstream, &req.head, &body).is_some();
            state.lock().expect("state").log.push(format!(
                "{} {} -> applied, answer dropped (applied: {applied})",
                req.method, req.path
            ));
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let t = Instant::now();
    while t.elapsed() < d && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10).min(d - t.elapsed().min(d)));
    }
}

/// Read the head (up to the blank line), rewriting `Connection` to `close`.
fn read_request(client: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let mut parts = first.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.split('?').next()?.to_owned();
    let mut out = format!("{first}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    Some(Request {
        method,
        path,
        head: out.into_bytes(),
        body: buf[end..].to_vec(),
    })
}

fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The whole body of a request with a `Content-Length` (manifest PUTs have one) or a chunked
/// body (read to its terminating chunk).
fn read_whole_body(client: &mut TcpStream, req: &Request) -> Vec<u8> {
    let mut body = req.body.clone();
    let mut chunk = [0u8; 8192];
    if let Some(len) = header(&req.head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len {
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    } else if header(&req.head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !body.ends_with(b"0\r\n\r\n") {
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    }
    body
}

/// Send a request on a new connection and read the whole answer (the registry closes after
/// it); `None` when the registry could not be reached.
fn exchange(upstream: &str, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
    up.write_all(head).ok()?;
    up.write_all(body).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    Some(answer)
}

/// Forward the request and copy bytes both ways until the registry closes.
fn pipe(client: TcpStream, upstream: &str, req: &Request) {
    let Ok(mut up) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    if up.write_all(&req.head).is_err() || up.write_all(&req.body).is_err() {
        return;
    }
    let (Ok(mut client_in), Ok(mut up_out)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut up_out);
    });
    let mut client_out = client;
    let _ = std::io::copy(&mut up, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
    let _ = forward.join();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
