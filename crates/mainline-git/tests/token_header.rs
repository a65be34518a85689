//! The https token reaches the server as `Authorization: Basic base64(x-access-token:TOKEN)`
//! through git's own requests (set via environment config, never argv), and it appears in no
//! error. A loopback TLS server stands in for the git host and records what git sends.
//!
//! This binary holds one test because it sets `GIT_SSL_CAINFO` for the git it spawns.

mod support;

use mainline_git::{GitRemote, RemoteOptions, Token};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Fixture;

const TOKEN: &str = "ghs_TESTTOKEN0123456789";

fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

/// Serve https on a loopback port: answer every request 404 and record its head.
fn serve(requests: Arc<Mutex<Vec<String>>>) -> u16 {
    let certs = CertificateDer::pem_file_iter(tls_dir().join("cert.pem"))
        .expect("cert file")
        .collect::<Result<Vec<_>, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("key.pem")).expect("key pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // Bounded: git makes one or two requests; the thread ends with the test process.
        for stream in listener.incoming().take(8) {
            let Ok(tcp) = stream else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            requests
                .lock()
                .expect("requests")
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = tls.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

#[test]
fn the_token_is_sent_as_a_basic_auth_header_and_never_shown() {
    std::env::set_var("GIT_SSL_CAINFO", tls_dir().join("cert.pem"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let port = serve(Arc::clone(&requests));
    let fx = Fixture::new();
    let url = format!("https://127.0.0.1:{port}/org/repo.git");
    let remote = GitRemote::open_with(
        &url,
        &fx.cache_root("cache"),
        RemoteOptions {
            token: Token::new(TOKEN),
            timeout: Duration::from_secs(60),
        },
    )
    .expect("open");

    let err = remote
        .remote_refs("main")
        .expect_err("the server answers 404");
    let requests = requests.lock().expect("requests").clone();
    assert!(
        !requests.is_empty(),
        "git must have reached the server: {err}"
    );
    use base64::Engine as _;
    let expected = format!(
        "authorization: basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"))
    );
    let first = requests[0].to_ascii_lowercase();
    assert!(
        first.starts_with("get /org/repo.git/info/refs?service=git-upload-pack"),
        "{first}"
    );
    assert!(
        first.contains(&expected.to_ascii_lowercase()),
        "the token header must be sent: {}",
        requests[0]
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("not found"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(
        !shown.contains("eC1hY2Nlc3MtdG9rZW46"),
        "no encoded token either: {shown}"
    );
}
