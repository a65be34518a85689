//! kube's answers as mainline's typed [`KubeError`]: a `Status` object by its code and reason
//! (401, 403 with the RBAC resource to grant, 404, 409 `AlreadyExists` vs `Conflict`, 5xx,
//! anything else as rejected), a credential plugin's failure said without quoting what it
//! printed, and anything else as unreachable.
//!
//! Must never: quote a credential — the server's message is redacted of the bearer token, and a
//! plugin's stdout (where its credential would be) is never shown.

use super::KubeClient;
use crate::api::Verb;
use crate::error::{KubeError, ObjectName};
use crate::secret::{redact, Secret};

impl KubeClient {
    pub(super) fn map_error(
        &self,
        verb: Verb,
        object: ObjectName,
        e: kube::Error,
        token: Option<&Secret>,
    ) -> KubeError {
        match e {
            kube::Error::Api(status) => {
                let secrets: Vec<&str> = token.map(Secret::expose).into_iter().collect();
                let message = redact(status.message.trim(), &secrets);
                status_error(
                    &self.server,
                    verb,
                    object,
                    status.code,
                    status.reason,
                    message,
                )
            }
            kube::Error::Auth(auth) => KubeError::Credentials {
                verb,
                object,
                server: self.server.clone(),
                reason: describe_auth(&auth),
            },
            // The auth layer's errors reach us boxed inside the service error.
            kube::Error::Service(boxed)
                if boxed.downcast_ref::<kube::client::AuthError>().is_some() =>
            {
                let reason = boxed
                    .downcast_ref::<kube::client::AuthError>()
                    .map(describe_auth)
                    .unwrap_or_default();
                KubeError::Credentials {
                    verb,
                    object,
                    server: self.server.clone(),
                    reason,
                }
            }
            other => KubeError::Unreachable {
                verb,
                object,
                server: self.server.clone(),
                source: Box::new(other),
            },
        }
    }
}

/// A non-2xx answer (a `Status` object) as a typed error.
fn status_error(
    server: &str,
    verb: Verb,
    object: ObjectName,
    status: u16,
    reason: String,
    message: String,
) -> KubeError {
    match status {
        401 => KubeError::Unauthorized {
            verb,
            object,
            server: server.to_owned(),
        },
        403 => KubeError::Forbidden {
            verb,
            resource: resource_of(&object),
            object,
            message,
        },
        404 => KubeError::NotFound { verb, object },
        409 if reason == "AlreadyExists" => KubeError::AlreadyExists { object },
        409 => KubeError::Conflict {
            verb,
            object,
            message,
        },
        s if s >= 500 => KubeError::Server {
            verb,
            object,
            server: server.to_owned(),
            status,
            message,
        },
        _ => KubeError::Rejected {
            verb,
            object,
            status,
            reason,
            message,
        },
    }
}

/// Why kube could not produce credentials, without quoting what a plugin printed on stdout
/// (that is where a credential would be).
pub(super) fn describe_auth(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError as A;
    match e {
        A::AuthExecStart(io) => format!(
            "the exec credential plugin could not be started ({io}): install it or fix `command`"
        ),
        A::AuthExecRun { cmd, out } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = redact(stderr.trim(), &[]);
            format!(
                "the exec credential plugin `{cmd}` failed ({}): {stderr}",
                out.status
            )
        }
        A::AuthExecParse(_) => {
            "the exec credential plugin printed something that is not an ExecCredential".to_owned()
        }
        A::AuthExec(why) => format!("the exec credential plugin's answer is unusable: {why}"),
        A::ReadTokenFile(io, path) => {
            format!(
                "cannot read the token file {} ({})",
                path.display(),
                io.kind()
            )
        }
        A::MissingCommand => "the exec plugin has no `command`".to_owned(),
        A::Oidc(e) => format!("OIDC: {e}"),
        other => {
            // The remaining variants (header values, expiry formats) carry no credential text
            // in their messages, but bound them anyway.
            redact(&other.to_string(), &[])
        }
    }
}

/// `plural.group` of the object's kind, for the RBAC hint.
fn resource_of(object: &ObjectName) -> String {
    crate::api::API_CALLS
        .iter()
        .find(|c| c.resource.kind == object.kind)
        .map(|c| c.resource.qualified())
        .unwrap_or_else(|| object.kind.to_owned())
}
