//! From a resolved [`Connection`] to what the client needs: the kube-rs `Config` (server, CA,
//! client certificate, exec plugin or auth-provider) and the bearer token this crate sends
//! itself ([`Bearer`]).
//!
//! Must never: put a credential in an error message; trust anything but the configured CA
//! when one is given.

use crate::connect::{check_token, Connection, Credentials};
use crate::error::{ConnectError, KubeError, ObjectName};
use crate::secret::Secret;
use base64::Engine as _;
use std::path::PathBuf;

/// The kube-rs configuration for `conn`.
pub(super) fn kube_config(conn: &Connection) -> Result<kube::Config, ConnectError> {
    let invalid = |field: &'static str, reason: &str| ConnectError::Invalid {
        origin: conn.origin.clone(),
        field,
        reason: reason.to_owned(),
    };
    let url: http::Uri = conn
        .server
        .parse()
        .map_err(|_| invalid("server", "is not a URL"))?;
    let mut config = kube::Config::new(url);
    if let Some(ns) = &conn.namespace {
        config.default_namespace = ns.clone();
    }
    // Every call has its own deadline; kube's retry layer would spend it behind our back.
    config.default_retry = false;
    config.read_timeout = None;
    config.write_timeout = None;
    config.connect_timeout = None;
    if let Some(ca) = &conn.ca_pem {
        config.root_cert = Some(ca_certificates(conn, ca)?);
    }
    config.accept_invalid_certs = conn.insecure_skip_tls_verify;
    if let Some(proxy) = &conn.proxy_url {
        config.proxy_url = Some(
            proxy
                .expose()
                .parse()
                .map_err(|_| invalid("proxy-url", "is not a usable proxy URL"))?,
        );
    }
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let auth = &mut config.auth_info;
    if let (Some(cert), Some(key)) = (&conn.client_cert_pem, &conn.client_key_pem) {
        auth.client_certificate_data = Some(b64(cert));
        auth.client_key_data = Some(b64(key.expose()).into());
    }
    match &conn.credentials {
        // Sent by this module: see [`Bearer`].
        Credentials::None | Credentials::Token(_) | Credentials::TokenFile(_) => {}
        Credentials::Exec(plugin) => {
            let mut exec = plugin.config().clone();
            if exec.provide_cluster_info {
                exec.cluster = Some(exec_cluster(conn));
            }
            auth.exec = Some(exec);
        }
        Credentials::AuthProvider(provider) => {
            auth.auth_provider = Some(provider.config().clone());
        }
    }
    Ok(config)
}

/// What an exec plugin with `provideClusterInfo: true` is told about the cluster.
fn exec_cluster(conn: &Connection) -> kube::config::ExecAuthCluster {
    kube::config::ExecAuthCluster {
        server: Some(conn.server.clone()),
        certificate_authority_data: conn.ca_pem.clone(),
        insecure_skip_tls_verify: Some(conn.insecure_skip_tls_verify),
        ..Default::default()
    }
}

/// A bearer token this module sends itself rather than through kube-rs: kube-rs sends a token
/// file's content untrimmed (a file ending in a newline gives an invalid header, where
/// client-go trims it) and re-reads it only every minute. Here the file is read, checked and
/// trimmed on every request, so a rotated service-account token is used at once.
pub(super) enum Bearer {
    None,
    Fixed(Secret),
    File(PathBuf),
}

impl Bearer {
    pub(super) fn token(
        &self,
        origin: &str,
        server: &str,
        object: &ObjectName,
    ) -> Result<Option<Secret>, KubeError> {
        match self {
            Bearer::None => Ok(None),
            Bearer::Fixed(t) => Ok(Some(t.clone())),
            Bearer::File(path) => {
                let file_error = |reason: String| KubeError::TokenFile {
                    path: path.clone(),
                    server: server.to_owned(),
                    reason,
                };
                let text =
                    std::fs::read_to_string(path).map_err(|e| file_error(e.kind().to_string()))?;
                let token = check_token(origin, &text).map_err(|_| {
                    file_error(format!(
                        "its content is empty or not a single-line token (while reading {object})"
                    ))
                })?;
                Ok(Some(token))
            }
        }
    }

    pub(super) fn path(&self) -> PathBuf {
        match self {
            Bearer::File(p) => p.clone(),
            _ => PathBuf::from("<kubeconfig token>"),
        }
    }
}

/// The DER certificates of a PEM bundle (none is an error: it would trust nothing).
fn ca_certificates(conn: &Connection, pem: &[u8]) -> Result<Vec<Vec<u8>>, ConnectError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let pem_error = |reason: String| ConnectError::Pem {
        what: "the cluster CA",
        origin: conn.origin.clone(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("it holds no certificate".to_owned()));
    }
    Ok(certs)
}
