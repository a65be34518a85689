//! Making a registry store: the options (plain HTTP and unverified TLS for named hosts only,
//! credentials, timeouts, retries, the command's deadline) and the two HTTP clients built from
//! them — oci-client's and our own reqwest client for the reads that must not ping
//! (see `direct`). Nothing here makes a request.
//!
//! Must never: turn off TLS verification or use plain HTTP for a host the options do not name,
//! or send a request while opening (a store for an unreachable registry opens fine and fails on
//! first use, naming the registry).

use super::auth::Credentials;
use super::{auth, direct, RegistryStore};
use crate::{ErrorKind, Location, StoreError};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

const USER_AGENT: &str = concat!("mainline/", env!("CARGO_PKG_VERSION"));

/// How to reach registries. `Default` verifies TLS, times out after 30 s and retries 3 times.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `host[:port]` of registries reached over plain HTTP.
    pub plain_http_hosts: Vec<String>,
    /// `host[:port]` of registries whose TLS certificate is not verified (named hosts only).
    pub insecure_tls_hosts: Vec<String>,
    /// Explicit credentials (from flags or the environment); they win over docker's config.
    pub credentials: Option<Credentials>,
    /// Where docker's `config.json` is; `None` means `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// Connect and read timeout, and the limit for one attempt of a small request.
    pub timeout: Duration,
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// The command's overall deadline: no request (token requests included) runs past it and
    /// no retry starts after it; the operation then fails as unavailable, naming the registry.
    pub deadline: Option<std::time::Instant>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http_hosts: Vec::new(),
            insecure_tls_hosts: Vec::new(),
            credentials: None,
            docker_config_dir: None,
            timeout: Duration::from_secs(30),
            retries: 3,
            deadline: None,
        }
    }
}

impl RegistryStore {
    /// A store for `location` (which must be a registry location). Makes no request.
    pub fn new(location: Location, options: RegistryOptions) -> Result<RegistryStore, StoreError> {
        let Location::Registry {
            registry,
            repository,
        } = &location
        else {
            return Err(StoreError::new(
                ErrorKind::Internal,
                format!("{location} is not an oci:// location; open it as an image layout"),
            ));
        };
        auth::install_crypto_provider();
        let plain_http = options.plain_http_hosts.iter().any(|h| h == registry);
        let insecure = options.insecure_tls_hosts.iter().any(|h| h == registry);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::Internal,
                    format!("cannot start the registry client for {registry}: {e}"),
                )
            })?;
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.plain_http_hosts.clone()),
            accept_invalid_certificates: insecure,
            use_monolithic_push: true,
            platform_resolver: None,
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| {
            StoreError::new(
                ErrorKind::Internal,
                format!("cannot build the registry client for {registry}: {e}"),
            )
        })?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::Internal,
                    format!("cannot build the HTTP client for {registry}: {e}"),
                )
            })?;
        let scheme = if plain_http { "http" } else { "https" };
        let store = RegistryStore {
            direct: direct::Direct::new(http, scheme, registry, repository),
            registry: registry.clone(),
            repository: repository.clone(),
            runtime,
            client,
            authenticated: AtomicBool::new(false),
            auth: Mutex::new(RegistryAuth::Anonymous),
            location: location.clone(),
            options,
        };
        if let Some(credentials) = store.options.credentials.clone() {
            store.set_auth(credentials.to_auth());
        }
        Ok(store)
    }
}
