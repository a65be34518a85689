//! One registry attempt's failure, classified: what retrying can fix, what credentials can
//! fix, and what neither can. Built from oci-client's errors and from our own requests.
//!
//! Must never: carry a credential or a signed URL (reqwest errors are stripped of their URL;
//! registry bodies are truncated and kept only as a hint).

use crate::{ErrorKind, StoreError};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use std::time::Duration;

/// How much of a registry's error body we quote.
const MAX_DETAIL: usize = 200;

#[derive(Debug)]
pub(crate) enum Failure {
    /// No HTTP answer: refused, reset, DNS, TLS, or no answer within the timeout.
    Transport { detail: String },
    /// No answer before the command's overall deadline (`started`: an attempt was cut; else
    /// none could start): never retried.
    Deadline { started: bool },
    /// 5xx or 429: the registry may answer later.
    Busy {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// 401 or 403.
    Unauthorized { status: u16 },
    /// 404, or an error envelope saying the manifest, blob or repository is unknown.
    NotFound,
    /// Any other refusal (4xx): retrying the same request cannot help.
    Rejected { status: Option<u16>, detail: String },
    /// Bytes whose digest is not the one named.
    Integrity { detail: String },
    /// A download broke off after bytes were already handed to the caller.
    Interrupted { written: u64, detail: String },
    /// Our side is wrong (a file that does not match its announced digest, bad input).
    Local { kind: ErrorKind, message: String },
    /// The registry broke the protocol in a way retrying will not fix.
    Protocol { detail: String },
    /// The write's fence refused the next attempt (no request was sent for it).
    Fenced { reason: String },
    /// We spoke TLS and the registry answered in plain HTTP: a flag is missing, and retrying
    /// cannot help.
    PlainHttp,
}

impl Failure {
    /// Worth another attempt after a pause.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Failure::Transport { .. } | Failure::Busy { .. })
    }

    /// The request may have reached the registry and may still be applied: no answer came, or
    /// a 5xx (a gateway's 502/504 says nothing about whether the registry got it).
    pub(crate) fn outcome_unknown(&self) -> bool {
        match self {
            Failure::Transport { .. } => true,
            // An attempt the deadline cut may have reached the registry (a PUT may land).
            Failure::Deadline { started } => *started,
            Failure::Busy { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Busy { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies an HTTP status that is not a success.
    pub(crate) fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> Failure {
        match status {
            401 | 403 => Failure::Unauthorized { status },
            404 => Failure::NotFound,
            429 | 500..=599 => Failure::Busy {
                status,
                retry_after,
                detail: truncate(body),
            },
            _ => Failure::Rejected {
                status: Some(status),
                detail: truncate(body),
            },
        }
    }

    /// Classifies a transport error of our own reqwest client.
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Failure {
        if let Some(status) = error.status() {
            return Failure::from_status(status.as_u16(), None, "");
        }
        let error = error.without_url();
        if answered_plain_http(&chain(&error)) {
            return Failure::PlainHttp;
        }
        let what = if error.is_timeout() {
            "no answer in time"
        } else if error.is_connect() {
            "cannot connect"
        } else if error.is_body() || error.is_decode() {
            "the answer broke off"
        } else {
            "request failed"
        };
        Failure::Transport {
            detail: format!("{what}: {}", chain(&error)),
        }
    }

    /// Classifies what oci-client returned.
    pub(crate) fn from_oci(error: OciDistributionError) -> Failure {
        use OciDistributionError as E;
        match error {
            E::RequestError(e) => Failure::from_reqwest(e),
            E::ServerError { code, message, .. } => Failure::from_status(code, None, &message),
            E::UnauthorizedError { .. } => Failure::Unauthorized { status: 401 },
            // The token endpoint refused what we sent.
            E::AuthenticationFailure(_) => Failure::Unauthorized { status: 401 },
            E::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let any = |c: &[OciErrorCode]| codes.iter().any(|code| c.contains(code));
                if any(&[OciErrorCode::Unauthorized]) {
                    Failure::Unauthorized { status: 401 }
                } else if any(&[OciErrorCode::Denied]) {
                    Failure::Unauthorized { status: 403 }
                } else if any(&[OciErrorCode::Toomanyrequests]) {
                    Failure::Busy {
                        status: 429,
                        retry_after: None,
                        detail: truncate(&envelope.to_string()),
                    }
                } else if any(&[
                    OciErrorCode::ManifestUnknown,
                    OciErrorCode::BlobUnknown,
                    OciErrorCode::NameUnknown,
                    OciErrorCode::NotFound,
                ]) {
                    Failure::NotFound
                } else {
                    Failure::Rejected {
                        status: None,
                        detail: truncate(&envelope.to_string()),
                    }
                }
            }
            E::DigestError(e) => Failure::Integrity {
                detail: e.to_string(),
            },
            // Only reading a response body yields these in the calls we make.
            E::IoError(e) => Failure::Transport {
                detail: format!("the answer broke off: {e}"),
            },
            other => Failure::Protocol {
                detail: truncate(&other.to_string()),
            },
        }
    }

    /// The user-facing error, naming the registry, repository and operation, and what to do.
    pub(crate) fn into_store_error(self, ctx: &Context<'_>, attempts: u32) -> StoreError {
        let Context {
            host,
            repository,
            op,
            realm,
        } = *ctx;
        let tries = if attempts == 1 {
            "once".to_owned()
        } else {
            format!("{attempts} times")
        };
        let (kind, message) = match self {
            Failure::Transport { detail } => (
                ErrorKind::Unavailable,
                format!("registry {host} is unreachable ({op} on {repository}, tried {tries}: {detail}); check the address, that the registry is up, and whether it needs plain HTTP or a TLS exception for this host"),
            ),
            Failure::Deadline { started: true } => {
                let message = format!(
                    "{} did not answer {op} on {repository} before the command's deadline; it may accept connections and never reply: check it and retry later, or allow more time with --timeout (MAINLINE_TIMEOUT)",
                    match realm {
                        Some(realm) => format!("registry {host} or its token endpoint {realm}"),
                        None => format!("registry {host}"),
                    }
                );
                let _ = FIRST_STALL.set((std::time::Instant::now(), message.clone()));
                (ErrorKind::Unavailable, message)
            }
            Failure::Deadline { started: false } => (
                ErrorKind::Unavailable,
                format!("{op} on {repository} at registry {host} was not started: the command's deadline had already passed (something before it did not answer in time)"),
            ),
            Failure::Busy { status, detail, .. } => (
                ErrorKind::Unavailable,
                format!("registry {host} answered {status} to {op} on {repository} (tried {tries}){}; try again later", hint(&detail)),
            ),
            Failure::Unauthorized { status } => (
                ErrorKind::Unauthorized,
                format!("registry {host} refused the credentials ({status}) for {repository}: run `docker login {host}` or set MAINLINE_REGISTRY_USERNAME/MAINLINE_REGISTRY_PASSWORD"),
            ),
            Failure::NotFound => (
                ErrorKind::InvalidInput,
                format!("{op}: not found in {repository} on registry {host}; check the repository name and push it first"),
            ),
            Failure::Rejected { status, detail } => (
                ErrorKind::InvalidInput,
                format!("registry {host} rejected {op} on {repository}{}{}; check the input and the registry's limits", status.map(|s| format!(" with {s}")).unwrap_or_default(), hint(&detail)),
            ),
            Failure::Integrity { detail } => (
                ErrorKind::Integrity,
                format!("registry {host} returned content for {op} on {repository} that does not match its digest ({detail}); do not use it, and report it to the registry's operator"),
            ),
            Failure::Interrupted { written, detail } => (
                ErrorKind::Unavailable,
                format!("{op} from {repository} on registry {host} broke off after {written} bytes ({detail}); discard the partial output and run it again"),
            ),
            Failure::Local { kind, message } => (kind, message),
            Failure::Fenced { reason } => (
                ErrorKind::Fenced,
                format!("{op} on {repository} (registry {host}): {reason}"),
            ),
            Failure::PlainHttp => (
                ErrorKind::InvalidInput,
                format!("registry {host} speaks plain HTTP, not HTTPS ({op} on {repository}): pass --plain-http (loopback registries) or --plain-http-host {host}, or use its HTTPS address"),
            ),
            Failure::Protocol { detail } => (
                ErrorKind::Internal,
                format!("registry {host} broke the OCI distribution protocol during {op} on {repository} ({detail}); check that {host} is an OCI registry"),
            ),
        };
        StoreError::new(kind, message)
    }
}

/// The first registry request of this process that the deadline cut, and when.
static FIRST_STALL: std::sync::OnceLock<(std::time::Instant, String)> = std::sync::OnceLock::new();

/// The first registry operation of this process cut by its deadline (when, and the message),
/// so the command's final error names what did not answer rather than a call after it.
pub fn first_stall() -> Option<(std::time::Instant, String)> {
    FIRST_STALL.get().cloned()
}

/// What an operation was, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) host: &'a str,
    pub(crate) repository: &'a str,
    pub(crate) op: &'a str,
    /// The token endpoint the registry named, if a 401 showed one.
    pub(crate) realm: Option<&'a str>,
}

fn hint(detail: &str) -> String {
    if detail.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", detail.trim())
    }
}

fn truncate(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Whether a TLS handshake failed because the peer answered in plain HTTP: rustls reads the
/// first bytes of `HTTP/1.1 400 …` as a record of an invalid content type. Matched on rustls's
/// own wording (`received corrupt message of type InvalidContentType`), because between reqwest
/// and rustls the cause is boxed by hyper's connector and no downcast reaches the typed
/// `rustls::Error` (tried: through io::Error's inner error and the source chain).
fn answered_plain_http(chain_text: &str) -> bool {
    chain_text.contains("corrupt message of type InvalidContentType")
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}
