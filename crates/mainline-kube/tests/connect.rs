//! Loading a connection: the pod's service account (token + CA from a temp dir, over real TLS
//! to the fake API server), kubeconfig files (contexts, merging, relative paths, base64 data),
//! refused auth methods — and no token in any message.

mod support;

use base64::Engine as _;
use mainline_kube::api::LEASE;
use mainline_kube::config::Cluster;
use mainline_kube::fake::{FakeKube, OTHER_CA_PEM, TEST_CA_PEM};
use mainline_kube::lease::LeaseApi;
use mainline_kube::{connect, ConnectError, Credentials, Environment, KubeClient, KubeError};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SA_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.sa-token-first.signature";
const SA_TOKEN_ROTATED: &str = "eyJhbGciOiJSUzI1NiJ9.sa-token-rotated.signature";
const USER_TOKEN: &str = "kubeconfig-user-token-0123456789";

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn service_account(dir: &Path, token: &str, ca: &[u8]) {
    std::fs::write(dir.join("token"), token).expect("token");
    std::fs::write(dir.join("ca.crt"), ca).expect("ca");
    std::fs::write(dir.join("namespace"), "mainline\n").expect("namespace");
}

fn in_cluster_env(fake: &FakeKube, dir: &Path) -> Environment {
    Environment {
        service_host: Some("127.0.0.1".into()),
        service_port: Some(fake.addr().port().to_string()),
        service_account_dir: dir.to_owned(),
        ..Environment::default()
    }
}

fn lease_api(client: KubeClient) -> LeaseApi {
    LeaseApi::new(Arc::new(client), "mainline", "probe")
}

fn no_secret(texts: &[String], secrets: &[&str]) {
    for t in texts {
        for s in secrets {
            assert!(!t.contains(s), "a secret leaked into {t:?}");
        }
    }
}

#[test]
fn in_cluster_uses_the_service_account_token_and_ca_over_tls_and_rereads_a_rotated_token() {
    let fake = FakeKube::start_tls();
    fake.accept_token(SA_TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    service_account(dir.path(), SA_TOKEN, TEST_CA_PEM);
    let env = in_cluster_env(&fake, dir.path());

    let conn = connect(&Cluster::InCluster, &env).expect("in-cluster config");
    assert_eq!(
        conn.server,
        format!("https://127.0.0.1:{}", fake.addr().port())
    );
    assert_eq!(conn.namespace.as_deref(), Some("mainline"));
    assert_eq!(
        conn.credentials,
        Credentials::TokenFile(dir.path().join("token"))
    );
    no_secret(&[format!("{conn:?}")], &[SA_TOKEN]);

    let api = lease_api(KubeClient::new(conn).expect("client"));
    assert_eq!(
        api.get(soon()).expect("GET over TLS with the SA token"),
        None
    );
    assert!(fake.requests()[0].authenticated);

    // The kubelet rotates the token file: the next request sends the new token.
    std::fs::write(dir.path().join("token"), SA_TOKEN_ROTATED).expect("rotate");
    let err = api
        .get(soon())
        .expect_err("the fake does not know the rotated token yet");
    assert!(matches!(err, KubeError::Unauthorized { .. }), "{err:?}");
    no_secret(
        &[err.to_string(), format!("{err:?}")],
        &[SA_TOKEN, SA_TOKEN_ROTATED],
    );
    fake.accept_token(SA_TOKEN_ROTATED);
    assert_eq!(api.get(soon()).expect("rotated token accepted"), None);
}

#[test]
fn in_cluster_refuses_a_server_its_ca_did_not_sign() {
    let fake = FakeKube::start_tls();
    fake.accept_token(SA_TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    service_account(dir.path(), SA_TOKEN, OTHER_CA_PEM);
    let client = KubeClient::connect(&Cluster::InCluster, &in_cluster_env(&fake, dir.path()))
        .expect("client");
    let err = lease_api(client)
        .get(soon())
        .expect_err("untrusted certificate");
    assert!(matches!(err, KubeError::Unreachable { .. }), "{err:?}");
    let chain = error_chain(&err);
    assert!(
        chain.to_lowercase().contains("certificate"),
        "the cause says why: {chain}"
    );
    no_secret(&[chain, format!("{err:?}")], &[SA_TOKEN]);
    assert!(fake.requests().is_empty(), "nothing reached the server");
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[test]
fn in_cluster_errors_name_the_file_not_the_content() {
    let fake = FakeKube::start_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let env = in_cluster_env(&fake, dir.path());
    let err = connect(&Cluster::InCluster, &env).expect_err("no token file");
    assert!(
        err.to_string()
            .contains(&dir.path().join("token").display().to_string()),
        "{err}"
    );

    let bad = "line-one-of-token\nline-two-s3cr3t";
    service_account(dir.path(), bad, TEST_CA_PEM);
    let err = connect(&Cluster::InCluster, &env).expect_err("a two-line token");
    assert!(err.to_string().contains("invalid token"), "{err}");
    no_secret(
        &[err.to_string(), format!("{err:?}")],
        &["line-one-of-token", "s3cr3t"],
    );

    service_account(dir.path(), SA_TOKEN, b"not a certificate");
    let err = KubeClient::connect(&Cluster::InCluster, &env).expect_err("bad CA");
    assert!(matches!(err, ConnectError::Pem { .. }), "{err:?}");

    let env_no_host = Environment {
        service_host: None,
        ..env
    };
    let err = connect(&Cluster::InCluster, &env_no_host).expect_err("not in a pod");
    assert!(
        err.to_string()
            .contains("KUBERNETES_SERVICE_HOST is not set"),
        "{err}"
    );
}

fn kubeconfig(server: &str, ca: &[u8]) -> String {
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca);
    format!(
        r#"apiVersion: v1
kind: Config
current-context: staging
clusters:
  - name: prod
    cluster:
      server: {server}
      certificate-authority-data: {ca_b64}
  - name: staging
    cluster:
      server: https://staging.example.invalid:6443
contexts:
  - name: prod
    context:
      cluster: prod
      user: deployer
      namespace: flux-system
  - name: staging
    context:
      cluster: staging
      user: deployer
  - name: laptop
    context:
      cluster: prod
      user: sso
users:
  - name: deployer
    user:
      token: {USER_TOKEN}
  - name: sso
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: kubelogin
"#
    )
}

#[test]
fn kubeconfig_context_token_and_ca_data_reach_the_server() {
    let fake = FakeKube::start_tls();
    fake.accept_token(USER_TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig(&fake.url(), TEST_CA_PEM)).expect("write");

    let cluster = Cluster::Kubeconfig {
        path: Some(path.clone()),
        context: Some("prod".into()),
    };
    let conn = connect(&cluster, &Environment::default()).expect("prod context");
    assert_eq!(conn.namespace.as_deref(), Some("flux-system"));
    assert!(conn.origin.contains("context prod"));
    no_secret(&[format!("{conn:?}")], &[USER_TOKEN]);
    let api = lease_api(KubeClient::new(conn).expect("client"));
    assert_eq!(api.get(soon()).expect("GET"), None);
    assert!(fake.requests()[0].authenticated);

    // Default: current-context (staging).
    let current = connect(
        &Cluster::Kubeconfig {
            path: Some(path.clone()),
            context: None,
        },
        &Environment::default(),
    )
    .expect("current context");
    assert_eq!(current.server, "https://staging.example.invalid:6443");

    let err = connect(
        &Cluster::Kubeconfig {
            path: Some(path.clone()),
            context: Some("nope".into()),
        },
        &Environment::default(),
    )
    .expect_err("unknown context");
    assert!(
        err.to_string()
            .contains("no context \"nope\" (it has: prod, staging, laptop)"),
        "{err}"
    );

    // An exec plugin (kubelogin, aws eks get-token…) is handed to kube-rs as written: a bare
    // command is looked up in $PATH, as client-go does.
    let conn = connect(
        &Cluster::Kubeconfig {
            path: Some(path),
            context: Some("laptop".into()),
        },
        &Environment::default(),
    )
    .expect("an exec plugin is accepted");
    match &conn.credentials {
        Credentials::Exec(plugin) => {
            assert_eq!(plugin.config().command.as_deref(), Some("kubelogin"));
            assert_eq!(
                plugin.config().api_version.as_deref(),
                Some("client.authentication.k8s.io/v1")
            );
        }
        other => panic!("expected an exec plugin, got {other:?}"),
    }
    // A kubelogin that is not installed fails when the client is built, saying so.
    let err = KubeClient::new(conn).expect_err("kubelogin is not installed here");
    assert!(matches!(err, ConnectError::Credentials { .. }), "{err:?}");
    assert!(err.to_string().contains("could not be started"), "{err}");
}

#[test]
fn kubeconfig_list_merges_files_and_resolves_relative_paths() {
    let fake = FakeKube::start_tls();
    fake.accept_token(USER_TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.yaml");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let b = sub.join("b.yaml");
    std::fs::write(
        &a,
        "current-context: ci\ncontexts:\n  - name: ci\n    context: {cluster: c, user: u}\n",
    )
    .expect("a");
    std::fs::write(sub.join("ca.pem"), TEST_CA_PEM).expect("ca");
    std::fs::write(sub.join("token"), format!("{USER_TOKEN}\n")).expect("token");
    std::fs::write(
        &b,
        format!(
            "clusters:\n  - name: c\n    cluster:\n      server: {}\n      certificate-authority: ca.pem\n\
             users:\n  - name: u\n    user:\n      tokenFile: token\n\
             current-context: ignored-because-a-sets-it\n",
            fake.url()
        ),
    )
    .expect("b");
    let list = std::env::join_paths([&a, &b]).expect("join");
    let env = Environment {
        kubeconfig: Some(list),
        ..Environment::default()
    };
    let conn = connect(
        &Cluster::Kubeconfig {
            path: None,
            context: None,
        },
        &env,
    )
    .expect("merged");
    assert_eq!(conn.credentials, Credentials::TokenFile(sub.join("token")));
    assert_eq!(conn.ca_pem.as_deref(), Some(TEST_CA_PEM));
    let api = lease_api(KubeClient::new(conn).expect("client"));
    api.get(soon())
        .expect("GET with the token file's token (newline trimmed)");
}

#[test]
fn inference_falls_back_to_in_cluster_and_reports_what_it_tried() {
    let fake = FakeKube::start_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    service_account(dir.path(), SA_TOKEN, TEST_CA_PEM);
    let home = tempfile::tempdir().expect("home");
    let env = Environment {
        home: Some(home.path().to_owned()),
        ..in_cluster_env(&fake, dir.path())
    };
    let conn = connect(
        &Cluster::Kubeconfig {
            path: None,
            context: None,
        },
        &env,
    )
    .expect("in-cluster");
    assert!(conn.origin.starts_with("in-cluster"));

    let env = Environment {
        service_host: None,
        ..env
    };
    let err = connect(
        &Cluster::Kubeconfig {
            path: None,
            context: None,
        },
        &env,
    )
    .expect_err("nothing");
    let msg = err.to_string();
    assert!(
        msg.contains(&home.path().join(".kube/config").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("in_cluster = true"), "{msg}");
}

#[test]
fn a_broken_kubeconfig_says_where_without_quoting_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config");
    let secret = "tok-9f8e7d6c5b4a-very-secret";
    std::fs::write(
        &path,
        format!("users:\n  - name: u\n    user:\n      token: [{secret}\n"),
    )
    .expect("write");
    let err = connect(
        &Cluster::Kubeconfig {
            path: Some(path),
            context: None,
        },
        &Environment::default(),
    )
    .expect_err("invalid YAML");
    assert!(
        matches!(err, ConnectError::KubeconfigParse { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line "), "{err}");
    no_secret(&[err.to_string(), format!("{err:?}")], &[secret]);
}

#[test]
fn a_plain_token_reaches_the_fake_and_not_the_log() {
    let fake = FakeKube::start();
    let client = fake.client(support::TOKEN);
    fake.put_object(&LEASE, mainline_kube::fake::fixture("kube/lease"));
    let api = LeaseApi::new(client.clone(), "mainline", "mainline-guard-leader");
    assert!(api.get(soon()).expect("get").is_some());
    no_secret(
        &[format!("{client:?}"), format!("{:?}", fake.requests())],
        &[support::TOKEN],
    );
}
