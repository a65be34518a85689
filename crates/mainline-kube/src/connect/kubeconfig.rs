//! kubeconfig files (`apiVersion: v1`, `kind: Config`) as kubectl reads them: one or more
//! files merged (the first to define a name wins, and the first `current-context` wins), paths
//! relative to the file that names them, `-data` fields base64.
//!
//! Must never: quote a kubeconfig line in an error (it may be a token): parse errors say where,
//! not what.

use super::{check_server, check_token, read_file, Connection, Credentials, Plugin};
use crate::error::ConnectError;
use crate::secret::SecretBytes;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default, rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterEntry,
}

#[derive(Debug, Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(default, rename = "certificate-authority")]
    ca_file: Option<PathBuf>,
    #[serde(default, rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(default, rename = "insecure-skip-tls-verify")]
    insecure: Option<bool>,
    #[serde(default, rename = "tls-server-name")]
    tls_server_name: Option<String>,
    #[serde(default, rename = "proxy-url")]
    proxy_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Debug, Deserialize)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: UserEntry,
}

#[derive(Default, Deserialize)]
struct UserEntry {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(default, rename = "client-certificate")]
    cert_file: Option<PathBuf>,
    #[serde(default, rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(default, rename = "client-key")]
    key_file: Option<PathBuf>,
    #[serde(default, rename = "client-key-data")]
    key_data: Option<String>,
    #[serde(default)]
    username: Option<IgnoredAny>,
    #[serde(default)]
    exec: Option<kube::config::ExecConfig>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<kube::config::AuthProviderConfig>,
}

// Hand-written so a token or key can never reach a Debug dump.
impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserEntry(<redacted>)")
    }
}

/// A file's entries with their paths made absolute.
struct Loaded {
    path: PathBuf,
    file: File,
}

pub(super) fn load(paths: &[PathBuf], context: Option<&str>) -> Result<Connection, ConnectError> {
    let mut loaded = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| ConnectError::KubeconfigRead {
            path: path.clone(),
            reason: e.kind().to_string(),
        })?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| ConnectError::KubeconfigParse {
                path: path.clone(),
                reason: describe_parse_error(&e),
            })?
        };
        loaded.push(Loaded {
            path: path.clone(),
            file,
        });
    }
    let first = paths.first().cloned().unwrap_or_default();
    let context_name = match context {
        Some(c) => c.to_owned(),
        None => loaded
            .iter()
            .find_map(|l| l.file.current_context.clone().filter(|c| !c.is_empty()))
            .ok_or_else(|| ConnectError::NoCurrentContext {
                path: first.clone(),
            })?,
    };
    let (ctx_file, ctx) =
        find(&loaded, |f| &f.contexts, |c| &c.name, &context_name).ok_or_else(|| {
            ConnectError::ContextNotFound {
                path: first.clone(),
                context: context_name.clone(),
                available: loaded
                    .iter()
                    .flat_map(|l| l.file.contexts.iter().flatten().map(|c| c.name.clone()))
                    .collect(),
            }
        })?;
    let dangling = |what, name: &str| ConnectError::Dangling {
        path: ctx_file.to_owned(),
        context: context_name.clone(),
        what,
        name: name.to_owned(),
    };
    let (cluster_file, cluster) = find(&loaded, |f| &f.clusters, |c| &c.name, &ctx.context.cluster)
        .ok_or_else(|| dangling("cluster", &ctx.context.cluster))?;
    let user = match &ctx.context.user {
        Some(u) if !u.is_empty() => {
            Some(find(&loaded, |f| &f.users, |x| &x.name, u).ok_or_else(|| dangling("user", u))?)
        }
        _ => None,
    };
    let origin = format!("kubeconfig {} context {}", ctx_file.display(), context_name);
    let entry = &cluster.cluster;
    if entry.tls_server_name.is_some() {
        return Err(ConnectError::Invalid {
            origin,
            field: "tls-server-name",
            reason: "is not supported: use a server URL whose host name is in the API server's \
                     certificate"
                .to_owned(),
        });
    }
    let server = check_server(&origin, &entry.server)?;
    let ca_pem = match (&entry.ca_data, &entry.ca_file) {
        (Some(data), _) => Some(decode(&origin, "certificate-authority-data", data)?),
        (None, Some(file)) => Some(read_file(
            "the cluster CA",
            &relative_to(cluster_file, file),
        )?),
        (None, None) => None,
    };
    let (credentials, identity) = match user {
        None => (Credentials::None, None),
        Some((user_file, u)) => credentials(&origin, user_file, &context_name, &u.user)?,
    };
    Ok(Connection {
        server,
        origin,
        namespace: ctx.context.namespace.clone().filter(|n| !n.is_empty()),
        ca_pem,
        client_cert_pem: identity.as_ref().map(|(cert, _)| cert.clone()),
        client_key_pem: identity.map(|(_, key)| key),
        credentials,
        insecure_skip_tls_verify: entry.insecure.unwrap_or(false),
        proxy_url: entry.proxy_url.clone().map(crate::secret::Secret::new),
    })
}

/// The first entry named `name` across the files, with the file that defines it.
fn find<'a, T>(
    loaded: &'a [Loaded],
    list: impl Fn(&'a File) -> &'a Option<Vec<T>>,
    name_of: impl Fn(&T) -> &String,
    name: &str,
) -> Option<(&'a Path, &'a T)> {
    loaded.iter().find_map(|l| {
        list(&l.file)
            .iter()
            .flatten()
            .find(|e| name_of(e) == name)
            .map(|e| (l.path.as_path(), e))
    })
}

/// The client certificate chain and its key.
type Identity = (Vec<u8>, SecretBytes);

fn credentials(
    origin: &str,
    file: &Path,
    context: &str,
    u: &UserEntry,
) -> Result<(Credentials, Option<Identity>), ConnectError> {
    let unsupported = |method| ConnectError::UnsupportedAuth {
        path: file.to_owned(),
        context: context.to_owned(),
        method,
    };
    if u.username.is_some() {
        return Err(unsupported("username/password"));
    }
    let creds = match (&u.token, &u.token_file, &u.exec, &u.auth_provider) {
        (_, _, Some(exec), _) => {
            let mut exec = exec.clone();
            exec.command = exec.command.map(|c| resolve_command(file, c));
            if exec.command.as_deref().unwrap_or_default().is_empty() {
                return Err(ConnectError::Invalid {
                    origin: origin.to_owned(),
                    field: "exec",
                    reason: "has no `command`".to_owned(),
                });
            }
            Credentials::Exec(Plugin::new(exec))
        }
        (_, _, None, Some(provider)) => Credentials::AuthProvider(Plugin::new(provider.clone())),
        (Some(t), _, _, _) if !t.is_empty() => Credentials::Token(check_token(origin, t)?),
        (_, Some(f), _, _) => {
            let path = relative_to(file, f);
            let text = std::fs::read_to_string(&path).map_err(|e| ConnectError::File {
                what: "the token file",
                path: path.clone(),
                reason: e.kind().to_string(),
            })?;
            check_token(origin, &text)?;
            Credentials::TokenFile(path)
        }
        _ => Credentials::None,
    };
    let cert = match (&u.cert_data, &u.cert_file) {
        (Some(d), _) => Some(decode(origin, "client-certificate-data", d)?),
        (None, Some(f)) => Some(read_file("the client certificate", &relative_to(file, f))?),
        (None, None) => None,
    };
    let key = match (&u.key_data, &u.key_file) {
        (Some(d), _) => Some(decode(origin, "client-key-data", d)?),
        (None, Some(f)) => Some(read_file("the client key", &relative_to(file, f))?),
        (None, None) => None,
    };
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, SecretBytes::new(key))),
        (None, None) => None,
        _ => {
            return Err(ConnectError::Invalid {
                origin: origin.to_owned(),
                field: "client-certificate",
                reason: "a client certificate needs both the certificate and its key".to_owned(),
            })
        }
    };
    Ok((creds, identity))
}

/// client-go runs an exec plugin's `command` from `$PATH` when it is a bare name, and resolves
/// it against the kubeconfig's folder when it is a relative path (`./bin/get-token`).
fn resolve_command(file: &Path, command: String) -> String {
    if Path::new(&command).components().count() > 1 {
        relative_to(file, Path::new(&command))
            .to_string_lossy()
            .into_owned()
    } else {
        command
    }
}

fn relative_to(file: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        return target.to_owned();
    }
    file.parent()
        .map(|dir| dir.join(target))
        .unwrap_or_else(|| target.to_owned())
}

fn decode(origin: &str, field: &'static str, data: &str) -> Result<Vec<u8>, ConnectError> {
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| ConnectError::Invalid {
            origin: origin.to_owned(),
            field,
            reason: "is not valid base64".to_owned(),
        })
}

/// Where the YAML went wrong, without quoting it (a kubeconfig line may hold a token).
fn describe_parse_error(e: &serde_saphyr::Error) -> String {
    match e.location() {
        Some(loc) => format!(
            "at line {} column {}; fix the file (`kubectl config view` shows it)",
            loc.line(),
            loc.column()
        ),
        None => "fix the file (`kubectl config view` shows it)".to_owned(),
    }
}
