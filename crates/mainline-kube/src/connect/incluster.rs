//! The pod's own service account: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`,
//! trusting `ca.crt` and sending `token` from the service-account directory (re-read every
//! minute by kube-rs, as client-go does: the kubelet rotates bound tokens), in the namespace written in `namespace`.
//!
//! Must never: fall back to the system roots or to no token when a file is missing (that would
//! talk to the API server as anonymous): a missing file is an error.

use super::{check_token, read_file, Connection, Credentials, Environment};
use crate::error::ConnectError;

pub(super) fn load(env: &Environment) -> Result<Connection, ConnectError> {
    let host = env
        .service_host
        .as_deref()
        .ok_or_else(|| ConnectError::InCluster {
            what: "KUBERNETES_SERVICE_HOST is not set".to_owned(),
        })?;
    let port = env.service_port.as_deref().unwrap_or("443");
    if port.parse::<u16>().is_err() {
        return Err(ConnectError::InCluster {
            what: format!("KUBERNETES_SERVICE_PORT is {port:?}, not a port number"),
        });
    }
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let dir = &env.service_account_dir;
    let origin = format!("in-cluster service account ({})", dir.display());
    let token_path = dir.join("token");
    let token = std::fs::read_to_string(&token_path).map_err(|e| ConnectError::InCluster {
        what: format!(
            "the service-account token {} cannot be read ({})",
            token_path.display(),
            e.kind()
        ),
    })?;
    // Validate now so a broken mount fails at start-up, not on the first reconcile.
    check_token(&origin, &token)?;
    let ca_path = dir.join("ca.crt");
    let ca = read_file("the service-account CA", &ca_path)?;
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    Ok(Connection {
        server: format!("https://{host}:{port}"),
        origin,
        namespace,
        ca_pem: Some(ca),
        client_cert_pem: None,
        client_key_pem: None,
        credentials: Credentials::TokenFile(token_path),
        insecure_skip_tls_verify: false,
        proxy_url: None,
    })
}
