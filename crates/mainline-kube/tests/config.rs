//! The channel's `kubernetes` table: deserialised from TOML, validated before any I/O, with
//! messages that name the bad value; and the API call table's own consistency.

use mainline_kube::api::{Verb, API_CALLS};
use mainline_kube::{Cluster, ConfigError, KubernetesConfig, ObjectRef};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn parse(text: &str) -> Result<KubernetesConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn consumers_deserialise_and_validate() {
    let cfg = parse(
        r#"
        lease_namespace = "mainline"
        [[consumers]]
        namespace = "flux-system"
        oci_repository = "app-manifests"
        kustomizations = ["app", "monitoring/app-alerts"]
        in_cluster = true

        [[consumers]]
        namespace = "flux-system"
        oci_repository = "app-manifests"
        kubeconfig = "/etc/mainline/eu.kubeconfig"
        context = "prod-eu"
        "#,
    )
    .expect("valid TOML");
    let consumers = cfg.validate().expect("valid");
    assert_eq!(consumers.len(), 2);
    assert_eq!(consumers[0].cluster, Cluster::InCluster);
    assert_eq!(
        consumers[0].source,
        ObjectRef::new("flux-system", "app-manifests").expect("valid")
    );
    assert_eq!(
        consumers[0].kustomizations,
        vec![
            ObjectRef::new("flux-system", "app").expect("valid"),
            ObjectRef::new("monitoring", "app-alerts").expect("valid"),
        ]
    );
    assert_eq!(
        consumers[1].cluster,
        Cluster::Kubeconfig {
            path: Some(PathBuf::from("/etc/mainline/eu.kubeconfig")),
            context: Some("prod-eu".into())
        }
    );
    assert_eq!(consumers[1].to_string(), "OCIRepository flux-system/app-manifests (kubeconfig /etc/mainline/eu.kubeconfig context prod-eu)");
    // Defaults: no consumers, no lease namespace.
    assert_eq!(parse("").expect("empty").validate().expect("valid"), vec![]);
}

#[test]
fn unknown_keys_and_secrets_in_the_file_are_refused() {
    let err = parse("[[consumers]]\nnamespace = \"a\"\noci_repository = \"b\"\ntoken = \"x\"\n")
        .expect_err("no token key");
    assert!(err.to_string().contains("unknown field `token`"), "{err}");
}

#[test]
fn invalid_values_are_named() {
    let cases = [
        ("namespace = \"Flux_System\"\noci_repository = \"a\"", "invalid Kubernetes namespace \"Flux_System\""),
        ("namespace = \"flux-system\"\noci_repository = \"-a\"", "invalid Kubernetes name \"-a\""),
        ("namespace = \"flux-system\"\noci_repository = \"a\"\nin_cluster = true\ncontext = \"x\"", "cannot be combined with `context`"),
        ("namespace = \"flux-system\"\noci_repository = \"a\"\nkustomizations = [\"a/b/c\"]", "kustomization \"a/b/c\""),
        ("namespace = \"flux-system\"\noci_repository = \"a\"\nkustomizations = [\"x/\"]", "invalid Kubernetes name \"\""),
    ];
    for (body, expected) in cases {
        let cfg = parse(&format!("[[consumers]]\n{body}\n")).expect("TOML");
        let err = cfg.validate().expect_err(body);
        assert!(err.to_string().contains(expected), "{body}: {err}");
    }
    let dup = parse("[[consumers]]\nnamespace = \"a\"\noci_repository = \"b\"\n[[consumers]]\nnamespace = \"a\"\noci_repository = \"b\"\n")
        .expect("TOML");
    assert!(matches!(dup.validate(), Err(ConfigError::Duplicate { .. })));
    let long = "a".repeat(64);
    assert!(
        ObjectRef::new(&long, "x").is_err(),
        "a namespace is at most 63 characters"
    );
    assert!(
        ObjectRef::new("x", &format!("{long}.{long}")).is_ok(),
        "a name may have dots"
    );
}

#[test]
fn the_call_table_is_unique_and_uses_only_four_verbs() {
    let mut seen = BTreeSet::new();
    for c in API_CALLS {
        assert!(
            seen.insert((c.resource.group, c.resource.plural, c.verb)),
            "duplicate {c:?}"
        );
        assert!(!c.why.is_empty());
        assert!(c.resource.group.contains('.'), "namespaced API groups only");
    }
    let verbs: BTreeSet<Verb> = API_CALLS.iter().map(|c| c.verb).collect();
    assert_eq!(
        verbs,
        BTreeSet::from([Verb::Get, Verb::Create, Verb::Update, Verb::Patch])
    );
    assert_eq!(Verb::Patch.method(), "PATCH");
    assert_eq!(Verb::Update.method(), "PUT");
    assert_eq!(Verb::Create.method(), "POST");
}
