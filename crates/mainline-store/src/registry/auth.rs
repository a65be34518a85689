//! Where registry credentials come from, in the order docker, flux and oras use: explicit
//! credentials (flags or environment, resolved by the caller), else docker's `config.json`
//! (`auths`, `credHelpers`, `credsStore`, read by the `docker_credential` crate), else none.
//!
//! Also installs rustls' `ring` crypto provider, once per process (oci-client and reqwest are
//! built without one).
//!
//! Must never: print, log or put in an error a password, token or `auth` value; the `Debug`
//! of [`Credentials`] redacts the password. Credential helpers are run synchronously, never
//! on the async runtime.

use crate::{ErrorKind, StoreError};
use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The environment variables that error messages tell users to set; the caller (the CLI's
/// settings) reads them into [`super::RegistryOptions::credentials`].
pub const USERNAME_ENV: &str = "MAINLINE_REGISTRY_USERNAME";
pub const PASSWORD_ENV: &str = "MAINLINE_REGISTRY_PASSWORD";

/// A username and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub(crate) fn to_auth(&self) -> RegistryAuth {
        RegistryAuth::Basic(self.username.clone(), self.password.clone())
    }
}

/// Makes rustls usable; safe to call any number of times from any thread.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed a provider first: also fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The directory holding docker's `config.json`: the option, else `$DOCKER_CONFIG`, else
/// `~/.docker`.
pub(crate) fn docker_config_dir(option: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = option {
        return Some(dir.to_owned());
    }
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
}

/// The key docker uses for a registry in `config.json` (Docker Hub has a legacy URL).
fn docker_server_key(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    }
}

/// The credentials for `host` from docker's configuration, or anonymous when it has none.
pub(crate) fn from_docker_config(
    config_dir: Option<&Path>,
    host: &str,
) -> Result<RegistryAuth, StoreError> {
    let Some(dir) = config_dir else {
        return Ok(RegistryAuth::Anonymous);
    };
    let path = dir.join("config.json");
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => {
            return Err(StoreError::new(
                ErrorKind::InvalidInput,
                format!("cannot read docker config {} ({e}) for registry {host}; fix its permissions, or set MAINLINE_REGISTRY_USERNAME/MAINLINE_REGISTRY_PASSWORD", path.display()),
            ))
        }
    };
    let found = docker_credential::get_credential_from_reader(
        BufReader::new(file),
        docker_server_key(host),
    );
    match found {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(RegistryAuth::Basic(username, password))
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(StoreError::new(
            ErrorKind::InvalidInput,
            format!("docker config {} holds an identity token for registry {host}, which mainline cannot exchange; set MAINLINE_REGISTRY_USERNAME/MAINLINE_REGISTRY_PASSWORD instead", path.display()),
        )),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(RegistryAuth::Anonymous),
        // What docker's helpers say when they hold nothing for the host; docker goes on
        // anonymously, and so do we.
        Err(CredentialRetrievalError::HelperFailure { stdout, .. })
            if stdout.contains("credentials not found") =>
        {
            Ok(RegistryAuth::Anonymous)
        }
        Err(e) => Err(StoreError::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot get credentials for registry {host} from docker config {}: {}; run `docker login {host}` or set MAINLINE_REGISTRY_USERNAME/MAINLINE_REGISTRY_PASSWORD",
                path.display(),
                describe(&e)
            ),
        )),
    }
}

/// A credential lookup failure without the helper's output (which may echo a secret).
fn describe(error: &CredentialRetrievalError) -> String {
    match error {
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            format!("credential helper `{helper}` failed")
        }
        CredentialRetrievalError::ConfigReadError => "it is not valid JSON".to_owned(),
        CredentialRetrievalError::CredentialDecodingError => {
            "its `auth` value is not base64 of user:password".to_owned()
        }
        other => other.to_string(),
    }
}
