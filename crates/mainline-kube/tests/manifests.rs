//! The deploy manifests (`deploy/kubernetes/`) and the container build file, parsed and checked
//! against the code: the RBAC grants exactly what `api::API_CALLS` needs (plus the documented
//! read-only extras), nothing cluster-wide beyond Flux reads, and the code runs against a fake
//! API server that enforces those very rules.

mod support;

use mainline_kube::api::{Scope, API_CALLS, EXTRA_READ_VERBS, KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::fake::{FakeKube, Grant};
use mainline_kube::flux::request_reconcile;
use mainline_kube::{
    Consumer, Consumers, ElectionConfig, KubeError, KubernetesConfig, LeaderElectionConfig,
    LeaderElector, Leadership, LeaseLock, LeaseLockConfig, ObjectRef, SystemClock,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{digest, kustomization_at, source_at, TOKEN};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every document of every `deploy/kubernetes/*.yaml`, with its file name.
fn documents() -> Vec<(String, Value)> {
    let dir = deploy_dir().join("kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", f.display()));
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        for d in docs.into_iter().filter(|d| !d.is_null()) {
            for field in ["/apiVersion", "/kind"] {
                assert!(
                    d.pointer(field).and_then(Value::as_str).is_some(),
                    "{name}: a document has no {field}"
                );
            }
            out.push((name.clone(), d));
        }
    }
    out
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing {pointer} in {v}"))
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn kinds<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| {
            s(d, "/kind") == kind && !s(d, "/apiVersion").starts_with("kustomize.config")
        })
        .map(|(_, d)| d)
        .collect()
}

fn one<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
    let found = kinds(docs, kind);
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

/// The guard's mainline.toml from the ConfigMap.
fn guard_toml(docs: &[(String, Value)]) -> toml::Table {
    let cm = one(docs, "ConfigMap");
    toml::from_str(s(cm, "/data/mainline.toml")).expect("the example mainline.toml is TOML")
}

fn example_consumers(docs: &[(String, Value)]) -> (KubernetesConfig, Vec<Consumer>) {
    let file = guard_toml(docs);
    let channel = &file["channels"].as_array().expect("[[channels]]")[0];
    let k8s: KubernetesConfig = channel["kubernetes"]
        .clone()
        .try_into()
        .expect("[channels.kubernetes] deserialises");
    let consumers = k8s.validate().expect("the example is valid");
    assert_eq!(channel["lock"].as_str(), Some("kubernetes"));
    (k8s, consumers)
}

/// RBAC grants of `subject` (namespace/name of a ServiceAccount), from the bindings.
fn grants_of(docs: &[(String, Value)], sa_ns: &str, sa: &str) -> Vec<Grant> {
    let mut grants = Vec::new();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in kinds(docs, kind) {
            let subjects = b["subjects"].as_array().expect("subjects");
            if !subjects.iter().any(|x| {
                s(x, "/kind") == "ServiceAccount"
                    && s(x, "/name") == sa
                    && s(x, "/namespace") == sa_ns
            }) {
                continue;
            }
            let role_kind = s(b, "/roleRef/kind");
            let binding_ns = b.pointer("/metadata/namespace").and_then(Value::as_str);
            if kind == "ClusterRoleBinding" {
                assert_eq!(role_kind, "ClusterRole");
            }
            let role = kinds(docs, role_kind)
                .into_iter()
                .find(|r| {
                    s(r, "/metadata/name") == s(b, "/roleRef/name")
                        && (role_kind == "ClusterRole"
                            || r.pointer("/metadata/namespace").and_then(Value::as_str)
                                == binding_ns)
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{kind} {} refers to a missing {role_kind}",
                        s(b, "/metadata/name")
                    )
                });
            for rule in role["rules"].as_array().expect("rules") {
                for group in strings(rule, "/apiGroups") {
                    grants.push(Grant {
                        group,
                        resources: strings(rule, "/resources"),
                        verbs: strings(rule, "/verbs"),
                        namespace: binding_ns.map(str::to_owned),
                        resource_names: strings(rule, "/resourceNames"),
                    });
                }
            }
        }
    }
    grants
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them_all() {
    let docs = documents();
    let files: BTreeSet<String> = docs
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    let kz = docs
        .iter()
        .find(|(f, _)| f == "kustomization.yaml")
        .map(|(_, d)| d)
        .expect("kustomization.yaml");
    let listed: BTreeSet<String> = strings(kz, "/resources").into_iter().collect();
    assert_eq!(listed, files);
    let have: BTreeSet<&str> = docs.iter().map(|(_, d)| s(d, "/kind")).collect();
    for k in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceMonitor",
    ] {
        assert!(have.contains(k), "no {k}");
    }
}

#[test]
fn deployment_runs_two_guard_replicas_as_non_root_with_the_config_and_identity() {
    let docs = documents();
    let dep = one(&docs, "Deployment");
    let ns = s(dep, "/metadata/namespace");
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        strings(c, "/args"),
        ["guard", "--config", "/etc/mainline/mainline.toml"]
    );
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(s(pod, "/serviceAccountName"), s(sa, "/metadata/name"));
    assert_eq!(s(sa, "/metadata/namespace"), ns);
    assert_eq!(s(one(&docs, "Namespace"), "/metadata/name"), ns);
    // Identity for leader election: the pod name.
    let env = c["env"].as_array().expect("env");
    let pod_name = env
        .iter()
        .find(|e| e["name"] == "POD_NAME")
        .expect("POD_NAME");
    assert_eq!(
        s(pod_name, "/valueFrom/fieldRef/fieldPath"),
        "metadata.name"
    );
    // Secrets only by reference.
    for e in env {
        let name = s(e, "/name");
        if name.contains("TOKEN") || name.contains("SECRET") {
            assert!(e.get("value").is_none(), "{name} must come from a Secret");
            assert!(
                e.pointer("/valueFrom/secretKeyRef/name").is_some(),
                "{name}"
            );
        }
    }
    // Non-root, read-only, no privileges.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_u64().expect("uid") > 0);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(strings(c, "/securityContext/capabilities/drop"), ["ALL"]);
    // The config file is the ConfigMap, mounted where --config points.
    let mounts = c["volumeMounts"].as_array().expect("mounts");
    let config_mount = mounts
        .iter()
        .find(|m| s(m, "/mountPath") == "/etc/mainline")
        .expect("/etc/mainline mounted");
    let vol = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == config_mount["name"])
        .expect("volume");
    let cm = one(&docs, "ConfigMap");
    assert_eq!(s(vol, "/configMap/name"), s(cm, "/metadata/name"));
    assert!(cm["data"].get("mainline.toml").is_some());
    // The guard listens on all interfaces, on the container port the probes and Service use.
    let file = guard_toml(&docs);
    let listen: std::net::SocketAddr = file["guard"]["listen"]
        .as_str()
        .expect("listen")
        .parse()
        .expect("addr");
    assert!(
        listen.ip().is_unspecified(),
        "loopback is unreachable from the Service"
    );
    let port = &c["ports"][0];
    assert_eq!(
        port["containerPort"].as_u64(),
        Some(u64::from(listen.port()))
    );
    assert_eq!(s(c, "/readinessProbe/httpGet/path"), "/readyz");
    assert_eq!(s(c, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(s(c, "/readinessProbe/httpGet/port"), s(port, "/name"));
    // Every writable path the guard uses is a volume (the root filesystem is read-only).
    let mounted: BTreeSet<&str> = mounts.iter().map(|m| s(m, "/mountPath")).collect();
    let cache = file["cache_dir"].as_str().expect("cache_dir");
    for p in [cache, "/tmp", "/var/lib/mainline"] {
        assert!(mounted.contains(p), "{p} is not mounted");
    }
}

#[test]
fn service_and_service_monitor_reach_the_pods_metrics() {
    let docs = documents();
    let dep = one(&docs, "Deployment");
    let labels = &dep["spec"]["template"]["metadata"]["labels"];
    let svc = one(&docs, "Service");
    for (k, v) in svc["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[k], v, "the Service selects the guard pods");
    }
    let port_name = s(
        &dep["spec"]["template"]["spec"]["containers"][0]["ports"][0],
        "/name",
    );
    assert_eq!(s(&svc["spec"]["ports"][0], "/targetPort"), port_name);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(s(sm, "/apiVersion"), "monitoring.coreos.com/v1");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(s(ep, "/port"), s(&svc["spec"]["ports"][0], "/name"));
    assert_eq!(s(ep, "/path"), "/metrics");
    assert_eq!(s(sm, "/metadata/namespace"), s(svc, "/metadata/namespace"));
}

#[test]
fn rbac_grants_exactly_what_the_code_calls_and_nothing_cluster_wide_but_flux_reads() {
    let docs = documents();
    let dep = one(&docs, "Deployment");
    let ns = s(dep, "/metadata/namespace");
    let sa = s(&dep["spec"]["template"]["spec"], "/serviceAccountName");
    let grants = grants_of(&docs, ns, sa);
    let (k8s, consumers) = example_consumers(&docs);
    assert_eq!(
        k8s.lease_namespace.as_deref(),
        Some(ns),
        "Leases live in the guard's namespace"
    );

    // Every call the code makes is granted where it is made.
    for call in API_CALLS {
        let (group, plural, verb) = (
            call.resource.group,
            call.resource.plural,
            call.verb.as_str(),
        );
        let places: Vec<(Option<&str>, Option<&str>)> = match call.scope {
            Scope::FluxNamespaces => vec![(None, None)],
            Scope::LeaseNamespace => vec![(Some(ns), None)],
            Scope::ConfiguredSources => consumers
                .iter()
                .map(|c| {
                    (
                        Some(c.source.namespace.as_str()),
                        Some(c.source.name.as_str()),
                    )
                })
                .collect(),
        };
        for (place_ns, name) in places {
            let ok = grants.iter().any(|g| {
                g.group == group
                    && g.resources.iter().any(|r| r == plural)
                    && g.verbs.iter().any(|v| v == verb)
                    && match place_ns {
                        None => g.namespace.is_none(),
                        Some(n) => g.namespace.as_deref().is_none_or(|gn| gn == n),
                    }
                    && name.is_none_or(|n| {
                        g.resource_names.is_empty() || g.resource_names.iter().any(|r| r == n)
                    })
            });
            assert!(
                ok,
                "{verb} {plural}.{group} in {place_ns:?} ({name:?}) is not granted: {}",
                call.why
            );
        }
    }
    // And nothing else is granted.
    for g in &grants {
        for r in &g.resources {
            for v in &g.verbs {
                assert!(
                    g.group != "*" && r != "*" && v != "*",
                    "no wildcards: {g:?}"
                );
                let called = API_CALLS.iter().any(|c| {
                    c.resource.group == g.group && c.resource.plural == r && c.verb.as_str() == v
                });
                let flux_read = [&OCI_REPOSITORY, &KUSTOMIZATION]
                    .iter()
                    .any(|k| k.group == g.group && k.plural == r)
                    && EXTRA_READ_VERBS.contains(&v.as_str());
                assert!(
                    called || flux_read,
                    "granted but never called: {v} {r}.{}",
                    g.group
                );
            }
        }
        if g.namespace.is_none() {
            assert!(
                g.group.ends_with(".toolkit.fluxcd.io"),
                "cluster-wide beyond Flux: {g:?}"
            );
            assert!(
                g.verbs
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                "cluster-wide writes: {g:?}"
            );
        }
        if g.verbs.iter().any(|v| v == "patch") {
            assert!(
                !g.resource_names.is_empty(),
                "patch is limited to the configured OCIRepositories: {g:?}"
            );
            assert!(
                g.resources == ["ocirepositories"],
                "only OCIRepositories are patched: {g:?}"
            );
        }
        assert!(
            !g.resources.iter().any(|r| r == "kustomizations")
                || g.verbs
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
            "Kustomizations are read-only: {g:?}"
        );
    }
    // The patch Role names exactly the configured sources.
    let patchable: BTreeSet<(String, String)> = grants
        .iter()
        .filter(|g| g.verbs.iter().any(|v| v == "patch"))
        .flat_map(|g| {
            g.resource_names
                .iter()
                .map(|n| (g.namespace.clone().expect("namespaced"), n.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let configured: BTreeSet<(String, String)> = consumers
        .iter()
        .map(|c| (c.source.namespace.clone(), c.source.name.clone()))
        .collect();
    assert_eq!(patchable, configured);
}

#[test]
fn the_code_runs_within_the_manifests_rbac_and_is_refused_outside_it() {
    let docs = documents();
    let dep = one(&docs, "Deployment");
    let ns = s(dep, "/metadata/namespace").to_owned();
    let sa = s(&dep["spec"]["template"]["spec"], "/serviceAccountName").to_owned();
    let (_, consumers) = example_consumers(&docs);
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let d = digest(7);
    for c in &consumers {
        fake.put_object(
            &OCI_REPOSITORY,
            source_at(&c.source.namespace, &c.source.name, &d),
        );
        for k in &c.kustomizations {
            fake.put_object(&KUSTOMIZATION, kustomization_at(&k.namespace, &k.name, &d));
        }
    }
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "someone-elses", &d),
    );
    fake.restrict_to(
        &format!("system:serviceaccount:{ns}:{sa}"),
        grants_of(&docs, &ns, &sa),
    );

    let deadline = || Instant::now() + Duration::from_secs(5);
    let set = Consumers::from_clients(
        consumers
            .iter()
            .map(|c| (c.clone(), client.clone()))
            .collect(),
    );
    for r in set.request_reconcile(&SystemClock, deadline()) {
        r.result.expect("trigger allowed");
    }
    for st in set.observe(&d, deadline()) {
        assert!(st.state.is_applied(), "{}", st.state);
    }
    let file = guard_toml(&docs);
    let le: LeaderElectionConfig = file["guard"]["leader_election"]
        .clone()
        .try_into()
        .expect("[guard.leader_election]");
    let elector = LeaderElector::new(
        client.clone(),
        Arc::new(SystemClock),
        ElectionConfig::from_config(&le, "mainline-guard-abc", Some(&ns)).expect("valid"),
    )
    .expect("elector");
    assert!(matches!(
        elector.try_acquire_or_renew().expect("lease allowed"),
        Leadership::Leader { .. }
    ));
    elector.step_down().expect("update allowed");
    let lock = LeaseLock::new(
        client.clone(),
        Arc::new(SystemClock),
        LeaseLockConfig::new(
            &ns,
            &mainline_kube::channel_lease_name("ghcr.io/acme/app-manifests/latest"),
            "guard",
        ),
    )
    .expect("lock");
    let mut held = lock.acquire().expect("create allowed");
    lock.renew(&mut held).expect("update allowed");
    lock.release(held).expect("release allowed");
    let reqs = fake.requests();
    assert!(
        reqs.iter().all(|r| r.status != 401 && r.status != 403),
        "{reqs:?}"
    );
    let verbs: BTreeSet<&str> = reqs.iter().map(|r| r.verb.as_str()).collect();
    assert_eq!(
        verbs,
        BTreeSet::from(["get", "create", "update", "patch"]),
        "every verb was exercised"
    );

    // Outside the grants: another OCIRepository, Leases elsewhere.
    let other = ObjectRef::new("flux-system", "someone-elses").expect("valid");
    let err =
        request_reconcile(&client, &other, &SystemClock, deadline()).expect_err("not configured");
    assert!(matches!(err, KubeError::Forbidden { .. }), "{err:?}");
    let elsewhere = LeaseLock::new(
        client,
        Arc::new(SystemClock),
        LeaseLockConfig::new("default", "x", "guard"),
    )
    .expect("lock");
    assert!(
        elsewhere.acquire().is_err(),
        "no Leases outside the guard's namespace"
    );
}

#[test]
fn containerfile_builds_static_binary_and_runs_non_root_without_shell() {
    let text =
        std::fs::read_to_string(deploy_dir().join("Containerfile")).expect("deploy/Containerfile");
    // Join continuation lines, drop comments.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(
        froms[0].contains("rust:") && froms[0].ends_with(" AS build"),
        "{}",
        froms[0]
    );
    assert_eq!(
        froms[1], "FROM scratch",
        "distroless-style runtime (issue 20)"
    );
    let runtime_start = lines.iter().position(|l| *l == froms[1]).expect("stage 2");
    let (build, runtime) = lines.split_at(runtime_start);
    assert!(
        build.iter().any(|l| l.starts_with("RUN ")
            && l.contains("cargo build --release --locked")
            && l.contains("-unknown-linux-musl")
            && l.contains("deploy/rootfs.sh /rootfs")),
        "static musl release build, root assembled by deploy/rootfs.sh"
    );
    assert!(
        build
            .iter()
            .any(|l| l.starts_with("RUN ") && l.contains("apt-get install") && l.contains(" git ")),
        "git installed in the build stage, for rootfs.sh to copy"
    );
    assert!(
        !runtime.iter().any(|l| l.starts_with("RUN ")),
        "no RUN in the runtime stage: it has no shell"
    );
    assert!(runtime.contains(&"COPY --from=build /rootfs/ /"));
    let user = runtime
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER");
    let uid: u32 = user["USER ".len()..]
        .split(':')
        .next()
        .expect("uid")
        .parse()
        .expect("numeric uid (runAsNonRoot needs one)");
    assert!(uid > 0);
    let dep = one(&documents(), "Deployment").clone();
    assert_eq!(
        dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(u64::from(uid))
    );
    let cmd = runtime.iter().find(|l| l.starts_with("CMD ")).expect("CMD");
    let cmd: Vec<String> = serde_json::from_str(&cmd["CMD ".len()..]).expect("exec-form CMD");
    assert_eq!(cmd, strings(&dep, "/spec/template/spec/containers/0/args"));
    assert!(runtime.contains(&r#"ENTRYPOINT ["/usr/local/bin/mainline"]"#));
}
