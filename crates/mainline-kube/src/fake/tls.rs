//! HTTPS for the fake API server: a listener that completes a rustls handshake with the
//! throwaway server certificate in `fixtures/tls/` (CN and SAN 127.0.0.1, signed by the
//! throwaway test CA) before handing the stream to axum — so in-cluster loading is tested
//! end to end, CA verification included.
//!
//! Must never: be used outside tests; the key in `fixtures/tls/` is public.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

const SERVER_CERT: &[u8] = include_bytes!("../../fixtures/tls/throwaway-server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../../fixtures/tls/throwaway-server-key.pem");

pub(crate) struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    pub(crate) fn new(tcp: tokio::net::TcpListener) -> TlsListener {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_CERT)
            .collect::<Result<_, _>>()
            .expect("the fixture server certificate is PEM");
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("the fixture server key is PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the fixture certificate matches its key");
        TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            // A failed handshake (e.g. a client that distrusts our CA) is that client's error.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
