//! Where a store is, and what in it a reference names, as users write them:
//!
//! - `oci://HOST[:PORT]/REPO` — a repository on an OCI distribution registry;
//! - `oci-layout:PATH` — an OCI image-layout directory.
//!
//! A [`Reference`] adds a tag (`STORE:TAG`) or a digest (`STORE@sha256:HEX`).
//!
//! Invariants: every [`Location`] and [`Reference`] value is well-formed, and `Display` gives
//! back a string that parses to the same value. Parsing never touches the file system or the
//! network. A location never carries credentials (there is no `user:pass@` form), so printing
//! one is always safe.

use mainline_core::{Digest, IdError, Tag};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

const REGISTRY_PREFIX: &str = "oci://";
const LAYOUT_PREFIX: &str = "oci-layout:";
const FORMS: &str = "expected oci://HOST[:PORT]/REPO (a registry repository, e.g. oci://ghcr.io/acme/deploy) or oci-layout:PATH (an OCI image-layout directory)";
const REF_FORMS: &str = "expected STORE:TAG or STORE@sha256:HEX, e.g. oci://ghcr.io/acme/deploy:latest or oci-layout:./store@sha256:<64 hex>";

/// Why a location or reference was rejected. Each variant carries the offending input, and
/// every message shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("unrecognised store location {input:?}: {FORMS}")]
    Unrecognised { input: String },
    #[error("invalid registry host {host:?} in {input:?}: a host is a DNS name, an IPv4 address or a [bracketed] IPv6 address, with an optional :PORT (1-65535); {FORMS}")]
    Host { input: String, host: String },
    #[error("invalid repository {repository:?} in {input:?}: a repository is lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'; {FORMS}")]
    Repository { input: String, repository: String },
    #[error("empty layout path in {input:?}: {FORMS}")]
    EmptyPath { input: String },
    #[error("{input:?} names a store but no tag or digest: {REF_FORMS}")]
    MissingTarget { input: String },
    #[error("invalid tag or digest in reference {input:?} ({reason}); {REF_FORMS}")]
    Target { input: String, reason: IdError },
}

/// A store: a registry repository or an image-layout directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// An OCI image-layout directory (`oci-layout:PATH`).
    Layout { path: PathBuf },
    /// A repository on an OCI distribution registry (`oci://HOST[:PORT]/REPO`).
    Registry {
        /// `host[:port]`, as credentials and `--plain-http` flags name it.
        registry: String,
        repository: String,
    },
}

impl Location {
    /// The registry's `host[:port]` (the key docker's `config.json` uses); `None` for a layout.
    pub fn registry_host(&self) -> Option<&str> {
        match self {
            Location::Registry { registry, .. } => Some(registry),
            Location::Layout { .. } => None,
        }
    }

    /// Is this a registry on this machine (127.0.0.0/8, ::1, localhost)? Callers use it to
    /// allow plain HTTP without a flag. A layout is not a registry and answers `false`.
    pub fn is_loopback(&self) -> bool {
        let Some(registry) = self.registry_host() else {
            return false;
        };
        let host = split_port(registry).0;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl FromStr for Location {
    type Err = LocationError;
    fn from_str(input: &str) -> Result<Location, LocationError> {
        if let Some(path) = input.strip_prefix(LAYOUT_PREFIX) {
            if path.is_empty() {
                return Err(LocationError::EmptyPath {
                    input: input.to_owned(),
                });
            }
            return Ok(Location::Layout {
                path: PathBuf::from(path),
            });
        }
        let Some(rest) = input.strip_prefix(REGISTRY_PREFIX) else {
            return Err(LocationError::Unrecognised {
                input: input.to_owned(),
            });
        };
        let Some((registry, repository)) = rest.split_once('/') else {
            return Err(LocationError::Repository {
                input: input.to_owned(),
                repository: String::new(),
            });
        };
        if !valid_registry(registry) {
            return Err(LocationError::Host {
                input: input.to_owned(),
                host: registry.to_owned(),
            });
        }
        if !valid_repository(repository) {
            return Err(LocationError::Repository {
                input: input.to_owned(),
                repository: repository.to_owned(),
            });
        }
        Ok(Location::Registry {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout { path } => write!(f, "{LAYOUT_PREFIX}{}", path.display()),
            Location::Registry {
                registry,
                repository,
            } => write!(f, "{REGISTRY_PREFIX}{registry}/{repository}"),
        }
    }
}

/// What a reference names inside a store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReferenceTarget {
    Tag(Tag),
    Digest(Digest),
}

impl fmt::Display for ReferenceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceTarget::Tag(tag) => write!(f, "{tag}"),
            ReferenceTarget::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

/// A tag or digest in a store: `STORE:TAG` or `STORE@sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub location: Location,
    pub target: ReferenceTarget,
}

impl FromStr for Reference {
    type Err = LocationError;
    /// The target is looked for after the last `/`, so `oci://host:5000/repo:tag` and
    /// `oci-layout:./dir:latest` both split where a user expects.
    fn from_str(input: &str) -> Result<Reference, LocationError> {
        let last_slash = input.rfind('/').map_or(0, |i| i + 1);
        // A layout path with no '/' starts after the scheme's own ':'.
        let search_from = if input.starts_with(LAYOUT_PREFIX) {
            last_slash.max(LAYOUT_PREFIX.len())
        } else {
            last_slash
        };
        let tail = &input[search_from..];
        let target_error = |reason: IdError| LocationError::Target {
            input: input.to_owned(),
            reason,
        };
        let (store, target) = if let Some(at) = tail.rfind('@') {
            let digest = tail[at + 1..].parse::<Digest>().map_err(target_error)?;
            (&input[..search_from + at], ReferenceTarget::Digest(digest))
        } else if let Some(colon) = tail.rfind(':') {
            let tag = tail[colon + 1..].parse::<Tag>().map_err(target_error)?;
            (&input[..search_from + colon], ReferenceTarget::Tag(tag))
        } else {
            // Tell "no target" apart from "not a store at all".
            input.parse::<Location>()?;
            return Err(LocationError::MissingTarget {
                input: input.to_owned(),
            });
        };
        let location = store.parse::<Location>()?;
        Ok(Reference { location, target })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            ReferenceTarget::Tag(tag) => write!(f, "{}:{tag}", self.location),
            ReferenceTarget::Digest(digest) => write!(f, "{}@{digest}", self.location),
        }
    }
}

/// Splits `host[:port]` (host may be `[v6]`) into host and optional port text.
fn split_port(registry: &str) -> (&str, Option<&str>) {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(end) => match registry[end + 1..].strip_prefix(':') {
                Some(port) => (&registry[..=end], Some(port)),
                None => (registry, None),
            },
            None => (registry, None),
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = split_port(registry);
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    port_ok && host_ok
}

/// The distribution spec's repository grammar: components
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
fn valid_repository(repository: &str) -> bool {
    !repository.is_empty() && repository.len() <= 255 && repository.split('/').all(valid_component)
}

fn valid_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}
