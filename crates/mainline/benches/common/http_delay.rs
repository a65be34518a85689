//! Loopback HTTP/1.1 servers that add a fixed delay to every request and count them: what a
//! CI runner sees of a registry and of a git host at a distance, without leaving the machine.
//! - [`Server::proxy`] forwards each request to an upstream (the test registry) after `delay`.
//! - [`Server::git`] serves the bare repositories under a folder through `git http-backend`
//!   (git's own smart-HTTP CGI program) after `delay`, pushes allowed.
//!
//! One request per connection (`Connection: close` both ways): the delay stands for a round
//! trip per request, and the log records `METHOD path` for each. Listens on 127.0.0.1 only.
//! Shared by the `rtt` bench and the request-count test (`#[path]`).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

enum Backend {
    Proxy(SocketAddr),
    Git(PathBuf),
}

/// A running server: its address and request log. It runs until the process ends.
pub struct Server {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    delay: Arc<Mutex<Duration>>,
    /// Requests being served now, and the most at once since the last `clear`.
    load: Arc<Load>,
}

#[derive(Default)]
struct Load {
    now: AtomicUsize,
    peak: AtomicUsize,
    /// Count only requests whose path contains one of these (all when `None`).
    only: Mutex<Option<Vec<String>>>,
}

impl Server {
    /// A delaying proxy in front of `upstream` (`HOST:PORT`).
    pub fn proxy(upstream: &str, delay: Duration) -> Server {
        let upstream = upstream
            .parse()
            .or_else(|_| {
                std::net::ToSocketAddrs::to_socket_addrs(upstream)
                    .map(|mut a| a.next().expect("upstream resolves"))
            })
            .expect("upstream HOST:PORT");
        Server::start(Backend::Proxy(upstream), delay)
    }

    /// A smart-HTTP git server for the bare repositories under `root`
    /// (`http://ADDR/NAME.git`).
    pub fn git(root: &Path, delay: Duration) -> Server {
        Server::start(Backend::Git(root.to_owned()), delay)
    }

    fn start(backend: Backend, delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(delay));
        let backend = Arc::new(backend);
        let load = Arc::new(Load::default());
        let (l, d, ld) = (log.clone(), delay.clone(), load.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (backend, log, delay, load) =
                    (backend.clone(), l.clone(), d.clone(), ld.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &backend, &log, &delay, &load);
                });
            }
        });
        Server {
            addr,
            log,
            delay,
            load,
        }
    }

    /// Changes the per-request delay from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().expect("delay lock") = delay;
    }

    /// Requests served so far, as `METHOD /path` (no query).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Forgets the requests served so far (and the peak of requests at once).
    pub fn clear(&self) {
        self.log.lock().expect("log lock").clear();
        self.load.peak.store(0, Ordering::SeqCst);
    }

    /// The most requests this server was holding at once since the last `clear` (each counted
    /// from its request line read to the end of its delay; the answer is sent after that).
    pub fn peak_in_flight(&self) -> usize {
        self.load.peak.load(Ordering::SeqCst)
    }

    /// From now on, [`Server::peak_in_flight`] counts only requests whose path contains one
    /// of `needles` (all of them again with `None`).
    pub fn count_in_flight_only(&self, needles: Option<Vec<String>>) {
        *self.load.only.lock().expect("load lock") = needles;
    }
}

struct Request {
    method: String,
    target: String,
    /// Header lines as received, without the line ends.
    headers: Vec<String>,
    /// The body, de-chunked.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn serve(
    conn: TcpStream,
    backend: &Backend,
    log: &Mutex<Vec<String>>,
    delay: &Mutex<Duration>,
    load: &Load,
) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let Some(req) = read_request(&mut reader)? else {
        return Ok(());
    };
    let path = req.target.split('?').next().unwrap_or("").to_owned();
    log.lock()
        .expect("log lock")
        .push(format!("{} {path}", req.method));
    let counted = match &*load.only.lock().expect("load lock") {
        Some(needles) => needles.iter().any(|n| req.target.contains(n.as_str())),
        None => true,
    };
    // In flight while held by the delay: the answer is written after it, so a client that
    // sends its next request on receiving this answer never overlaps it here.
    if counted {
        let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
        load.peak.fetch_max(now, Ordering::SeqCst);
    }
    let wait = *delay.lock().expect("delay lock");
    std::thread::sleep(wait);
    if counted {
        load.now.fetch_sub(1, Ordering::SeqCst);
    }
    match backend {
        Backend::Proxy(upstream) => forward(&req, *upstream, &mut conn),
        Backend::Git(root) => cgi(&req, root, &mut conn),
    }
}

fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let h = line.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        headers.push(h.to_owned());
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = req.body.len();
            req.body.resize(start + size, 0);
            r.read_exact(&mut req.body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| io::Error::other("bad length"))?;
        req.body.resize(len, 0);
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

/// Sends `req` upstream with `Connection: close` and relays the answer, marked
/// `Connection: close`, until upstream closes.
fn forward(req: &Request, upstream: SocketAddr, client: &mut TcpStream) -> io::Result<()> {
    let mut up = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for h in &req.headers {
        let name = h.split(':').next().unwrap_or("").trim();
        if [
            "connection",
            "transfer-encoding",
            "content-length",
            "keep-alive",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !req.body.is_empty() || matches!(req.method.as_str(), "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    let mut up = BufReader::new(up);
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if up.read_line(&mut line)? == 0 {
            break;
        }
        let h = line.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let name = h.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    client.write_all(&out)?;
    io::copy(&mut up, client)?;
    client.flush()
}

/// Runs `git http-backend` for `req` (CGI/1.1) and answers with what it printed.
fn cgi(req: &Request, root: &Path, client: &mut TcpStream) -> io::Result<()> {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (header, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "HTTP_GIT_PROTOCOL"),
    ] {
        if let Some(v) = req.header(header) {
            cmd.env(var, v);
        }
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let body = req.body.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .unwrap_or((out.stdout.len(), 0));
    let (head, body) = (&out.stdout[..split.0], &out.stdout[split.0 + split.1..]);
    let head = String::from_utf8_lossy(head);
    let mut status = "200 OK".to_owned();
    let mut headers = String::new();
    for h in head.lines().map(|l| l.trim_end_matches('\r')) {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some((k, _)) if k.eq_ignore_ascii_case("content-length") => {}
            Some(_) => {
                headers.push_str(h);
                headers.push_str("\r\n");
            }
            None => {}
        }
    }
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(response.as_bytes())?;
    client.write_all(body)?;
    client.flush()
}
