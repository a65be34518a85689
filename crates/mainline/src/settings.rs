//! From raw command-line values to validated settings, before any I/O: registry access options
//! (plain HTTP only for loopback or explicitly named hosts; TLS verified otherwise) and the
//! output mode. Secrets come from the environment or stdin, never from flags.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::deadline::Deadline;
use crate::error::CliError;
use mainline_store::registry::{Credentials, RegistryOptions};
use mainline_store::{Location, Store};
use std::io::{IsTerminal, Read};
use std::sync::Mutex;

/// What every command needs to reach stores and to talk to the user.
pub struct Context {
    pub json: bool,
    pub progress: bool,
    /// The command's overall deadline (`None`: the daemon and offline commands).
    pub deadline: Option<Deadline>,
    plain_http_loopback: bool,
    registry: RegistryOptions,
    /// What a command found unanswered (an UNKNOWN verdict's explanation), for the deadline
    /// error when the deadline passed.
    unanswered: Mutex<Option<String>>,
}

impl Context {
    pub fn from_args(g: &GlobalArgs, deadline: Option<Deadline>) -> Result<Context, CliError> {
        let defaults = RegistryOptions::default();
        let mut registry = RegistryOptions {
            plain_http_hosts: g.registry.plain_http_host.clone(),
            insecure_tls_hosts: g.registry.insecure_skip_tls_verify_host.clone(),
            // One request never gets more than the whole command.
            timeout: deadline.map_or(defaults.timeout, |d| defaults.timeout.min(d.budget())),
            deadline: deadline.map(|d| d.at()),
            ..defaults
        };
        let env_password = std::env::var_os("MAINLINE_REGISTRY_PASSWORD").is_some();
        if g.registry.registry_username.is_none()
            && (g.registry.registry_password_stdin || env_password)
        {
            let given = if g.registry.registry_password_stdin {
                "--registry-password-stdin"
            } else {
                "MAINLINE_REGISTRY_PASSWORD"
            };
            return Err(CliError::invalid(format!(
                "{given} gives a registry password but no user name; a password alone is never used"
            ))
            .with_hint("pass --registry-username USER (or set MAINLINE_REGISTRY_USERNAME), or drop the password to use docker's config.json"));
        }
        if let Some(user) = &g.registry.registry_username {
            if user.trim().is_empty() || user.chars().any(char::is_control) {
                return Err(CliError::invalid(format!(
                    "--registry-username {user:?} is empty or holds control characters"
                ))
                .with_hint("pass the registry user name, e.g. --registry-username ci-bot"));
            }
            let password = if g.registry.registry_password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map_err(|e| {
                    CliError::invalid(format!(
                        "could not read the registry password from stdin: {e}"
                    ))
                })?;
                s.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                std::env::var("MAINLINE_REGISTRY_PASSWORD").map_err(|_| {
                    CliError::invalid(format!(
                        "--registry-username {user} is set but no password was given"
                    ))
                    .with_hint("set MAINLINE_REGISTRY_PASSWORD or pass --registry-password-stdin")
                })?
            };
            crate::redact::register_credentials(user, &password);
            registry.credentials = Some(Credentials {
                username: user.clone(),
                password,
            });
        }
        Ok(Context {
            json: g.output == OutputFormat::Json,
            progress: std::io::stderr().is_terminal() && g.output != OutputFormat::Json,
            deadline,
            plain_http_loopback: g.registry.plain_http,
            registry,
            unanswered: Mutex::new(None),
        })
    }

    /// Remember what could not be read (kept for the deadline error).
    pub fn note_unanswered(&self, what: impl Into<String>) {
        *self.unanswered.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.into());
    }

    pub fn take_unanswered(&self) -> Option<String> {
        self.unanswered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The deadline as the adapters take it.
    pub fn deadline_at(&self) -> Option<std::time::Instant> {
        self.deadline.map(|d| d.at())
    }

    /// Open the store at `location`, applying the plain-HTTP rule: `--plain-http` only ever
    /// downgrades loopback registries; any other host must be named with --plain-http-host.
    pub fn open_store(&self, location: &Location) -> Result<Box<dyn Store>, CliError> {
        let mut opts = self.registry.clone();
        if let Some(host) = location.registry_host() {
            if self.plain_http_loopback {
                if !location.is_loopback() {
                    return Err(CliError::invalid(format!(
                        "--plain-http only applies to loopback registries, and {host} is not one"
                    ))
                    .with_hint(format!(
                        "to really talk plain HTTP to it, name it: --plain-http-host {host}"
                    )));
                }
                opts.plain_http_hosts.push(host.to_owned());
            }
        }
        Ok(mainline_store::open(location, &opts)?)
    }

    /// [`Context::open_store`] for commands that only read: an image layout must already exist
    /// (a mistyped `oci-layout:` path is invalid input, and nothing is created there).
    pub fn open_store_read_only(&self, location: &Location) -> Result<Box<dyn Store>, CliError> {
        if let Location::Layout { .. } = location {
            return Ok(mainline_store::open_existing(location, &self.registry)?);
        }
        self.open_store(location)
    }
}

/// The guard opens its channels' stores with the CLI's registry settings.
impl mainline_guard::OpenStore for Context {
    fn open_store(&self, location: &Location) -> Result<Box<dyn Store>, CliError> {
        Context::open_store(self, location)
    }
}
