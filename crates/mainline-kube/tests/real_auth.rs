//! How users connect from CI to a cloud cluster, against a real kube-apiserver (tests/kube):
//! a kubeconfig whose user is an `exec` credential plugin (a script in the test that prints an
//! ExecCredential, as `aws eks get-token` or `kubelogin` do), and one whose user is an OIDC
//! `auth-provider`. Both go through kube-rs, which runs the plugin / sends the id-token.
//!
//! The test server authenticates bearer tokens only (static and ServiceAccount tokens), so the
//! OIDC case uses a ServiceAccount token — a JWT with an `exp` claim — as the `id-token`: what
//! this proves is that the id-token is sent as the bearer and accepted by a real server, not
//! that an OIDC issuer is trusted (that is the API server's configuration, not the client's).

mod real;

use base64::Engine as _;
use mainline_kube::config::Cluster;
use mainline_kube::lease::LeaseApi;
use mainline_kube::{ConnectError, Environment, KubeClient};
use real::{guard_token, server, GUARD_NS};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// A kubeconfig in `dir` reaching the test server (CA beside it) as `user` (YAML, indented
/// for the `user:` key).
fn kubeconfig(dir: &Path, user: &str) -> PathBuf {
    std::fs::write(dir.join("ca.pem"), server().ca_pem()).expect("write the CA");
    let path = dir.join("config");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: ci\nclusters:\n  - name: cloud\n    \
         cluster:\n      server: {}\n      certificate-authority: ca.pem\ncontexts:\n  - name: \
         ci\n    context:\n      cluster: cloud\n      user: ci\nusers:\n  - name: ci\n    \
         user:\n{user}",
        server().server()
    );
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}

fn connect(path: &Path) -> Result<KubeClient, ConnectError> {
    KubeClient::connect(
        &Cluster::Kubeconfig {
            path: Some(path.to_owned()),
            context: None,
        },
        &Environment::default(),
    )
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write the plugin");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn an_exec_plugin_kubeconfig_connects_with_the_token_the_plugin_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = guard_token();
    let log = dir.path().join("plugin.log");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    // Records its argument and the KUBERNETES_EXEC_INFO it was given, then answers as
    // client-go's credential plugins do.
    script(
        &dir.path().join("bin/get-token"),
        &format!(
            "printf '%s\\n%s\\n' \"$1\" \"$KUBERNETES_EXEC_INFO\" >> \"$PLUGIN_LOG\"\n\
             printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
             \"status\":{{\"token\":\"%s\"}}}}' '{}'\n",
            token.expose()
        ),
    );
    let path = kubeconfig(
        dir.path(),
        &format!(
            "      exec:\n        apiVersion: client.authentication.k8s.io/v1\n        \
             command: ./bin/get-token\n        args: [\"--cluster=ci\"]\n        env:\n          \
             - name: PLUGIN_LOG\n            value: {}\n        interactiveMode: Never\n",
            log.display()
        ),
    );
    let client = connect(&path).expect("an exec-plugin kubeconfig connects");
    let api = LeaseApi::new(Arc::new(client), GUARD_NS, "real-auth-exec");
    assert_eq!(
        api.get(soon())
            .expect("the real server accepts the plugin's token"),
        None
    );
    let ran = std::fs::read_to_string(&log).expect("the plugin ran");
    assert!(ran.starts_with("--cluster=ci\n"), "{ran}");
    assert!(
        ran.contains("\"kind\":\"ExecCredential\""),
        "KUBERNETES_EXEC_INFO is passed as client-go passes it: {ran}"
    );
}

#[test]
fn a_failing_exec_plugin_says_what_it_printed_on_stderr_and_never_its_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    script(
        &dir.path().join("get-token"),
        "echo 'stdout-secret-0123456789'\necho 'the SSO session expired: run aws sso login' >&2\nexit 3\n",
    );
    let path = kubeconfig(
        dir.path(),
        "      exec:\n        apiVersion: client.authentication.k8s.io/v1\n        command: ./get-token\n        interactiveMode: Never\n",
    );
    let err = connect(&path).expect_err("the plugin fails");
    let msg = err.to_string();
    assert!(matches!(err, ConnectError::Credentials { .. }), "{err:?}");
    assert!(msg.contains("run aws sso login"), "{msg}");
    assert!(!msg.contains("stdout-secret"), "stdout leaked: {msg}");
}

#[test]
fn an_oidc_auth_provider_sends_its_id_token_as_the_bearer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A ServiceAccount token is a JWT with `exp`, which kube-rs reads to decide whether to
    // refresh: one hour ahead, so it is sent as is.
    let token = guard_token();
    let path = kubeconfig(
        dir.path(),
        &format!(
            "      auth-provider:\n        name: oidc\n        config:\n          client-id: \
             mainline\n          id-token: {}\n",
            token.expose()
        ),
    );
    let client = connect(&path).expect("an OIDC kubeconfig connects");
    let api = LeaseApi::new(Arc::new(client), GUARD_NS, "real-auth-oidc");
    assert_eq!(
        api.get(soon())
            .expect("the real server accepts the id-token as bearer"),
        None
    );
}

#[test]
fn an_expired_oidc_id_token_without_a_refresh_token_is_a_credentials_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let expired = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"exp":1000000000,"sub":"ci"}"#)
    );
    let path = kubeconfig(
        dir.path(),
        &format!(
            "      auth-provider:\n        name: oidc\n        config:\n          client-id: \
             mainline\n          id-token: {expired}\n"
        ),
    );
    let client = connect(&path).expect("the configuration itself is valid");
    let api = LeaseApi::new(Arc::new(client), GUARD_NS, "real-auth-oidc-expired");
    let err = api.get(soon()).expect_err("expired and not refreshable");
    let msg = err.to_string();
    assert_eq!(err.kind(), mainline_kube::ErrorKind::Unauthorized, "{msg}");
    assert!(msg.contains("OIDC"), "{msg}");
    assert!(!msg.contains(&expired), "the id-token leaked: {msg}");
}

/// A kubeconfig user with a client certificate (files, and inline `-data` as AKS and kind
/// write them): kube-rs presents it in the TLS handshake, and the real server authenticates
/// the certificate's subject. That user has no RBAC grant, so the server's 403 names it: proof
/// the request arrived as `mainline-cert-user`, not anonymous (anonymous is off: 401).
#[test]
fn a_client_certificate_kubeconfig_is_authenticated_as_the_certificate_subject() {
    let (cert, key) = server().client_identity();
    let b64 = |p: &Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).expect("read PEM"))
    };
    let users = [
        format!(
            "      client-certificate: {}\n      client-key: {}\n",
            cert.display(),
            key.display()
        ),
        format!(
            "      client-certificate-data: {}\n      client-key-data: {}\n",
            b64(cert),
            b64(key)
        ),
    ];
    for (i, user) in users.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = kubeconfig(dir.path(), user);
        let client = connect(&path).expect("a client-certificate kubeconfig connects");
        let api = LeaseApi::new(Arc::new(client), GUARD_NS, "real-auth-cert");
        let err = api
            .get(soon())
            .expect_err("the certificate's user has no grant");
        let msg = err.to_string();
        assert!(
            msg.contains("mainline-cert-user"),
            "case {i}: the server should name the certificate's user: {msg}"
        );
        assert_eq!(
            err.kind(),
            mainline_kube::ErrorKind::InvalidInput,
            "case {i}: {msg}"
        );
    }
}
