//! Issue 2 through the CLI: push, inspect, pull and tag, against a real docker-registry and an
//! OCI image layout (one behavioural suite, two backends), read back by skopeo.

#[macro_use]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use support::*;

const REV: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const CREATED: &str = "2024-05-01T12:00:00Z";

fn sample_tree(dir: &Path) {
    write_tree(
        dir,
        &[
            ("app.yaml", "kind: Deployment\n"),
            ("base/svc.yaml", "kind: Service\n"),
            ("base/kustomization.yaml", "resources: [svc.yaml]\n"),
        ],
    );
}

fn push_json(store: &str, dir: &Path, rev: &str) -> serde_json::Value {
    mainline(&[
        "push",
        dir.to_str().unwrap(),
        "--to",
        store,
        "--revision",
        rev,
        "--created",
        CREATED,
        "--source",
        "https://example.com/acme/app",
        "-o",
        "json",
    ])
    .ok()
    .json()
}

/// skopeo's name for a store reference.
fn skopeo_ref(store: &str, tag: &str) -> Vec<String> {
    if let Some(path) = store.strip_prefix("oci-layout:") {
        vec![format!("oci:{path}:{tag}")]
    } else {
        let rest = store.strip_prefix("oci://").expect("oci:// store");
        vec![
            "--tls-verify=false".into(),
            format!("docker://{rest}:{tag}"),
        ]
    }
}

fn skopeo(args: &[String]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is not installed: run scripts/test.sh (it installs Debian's skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn push_then_skopeo_reads_it(store: &str, tmp: &Path) {
    let src = tmp.join("src");
    sample_tree(&src);
    let pushed = push_json(store, &src, REV);
    let tag = pushed["tag"].as_str().unwrap();
    assert_eq!(tag, "sha-0123456789abcdef0123456789abcdef01234567");
    assert_eq!(pushed["revision"], REV);
    assert!(pushed["bytes_uploaded"].as_u64().unwrap() > 0);

    // skopeo, an independent reader, sees the Flux media types and annotations.
    let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
    args.extend(skopeo_ref(store, tag));
    let raw = skopeo(&args);
    let m: serde_json::Value = serde_json::from_str(&raw).expect("manifest json");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    assert_eq!(m["annotations"]["org.opencontainers.image.revision"], REV);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.source"],
        "https://example.com/acme/app"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.created"],
        CREATED
    );
    assert_eq!(
        pushed["digest"].as_str().unwrap(),
        format!("sha256:{}", sha256_hex(raw.as_bytes()))
    );

    // skopeo copies the artifact out; the layer, unpacked by GNU tar, equals the source files.
    let copy = tmp.join("copy");
    let mut args = vec!["copy".to_owned()];
    if !store.starts_with("oci-layout:") {
        args.push("--src-tls-verify=false".into());
    }
    let src_ref = skopeo_ref(store, tag).pop().unwrap();
    args.extend([src_ref, format!("dir:{}", copy.display())]);
    skopeo(&args);
    let layer_hex = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let unpacked = tmp.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let st = Command::new("tar")
        .args([
            "-xzf",
            copy.join(layer_hex).to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_same_files(&src, &unpacked);
}
on_both_stores!(push_then_skopeo_reads_it);

fn sha256_hex(b: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn assert_same_files(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let out = Command::new("find")
            .arg(".")
            .arg("-type")
            .arg("f")
            .current_dir(root)
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "file lists differ");
    for f in la {
        assert_eq!(
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
            "{f} differs"
        );
    }
}

fn reproducible_across_mtimes_umask_and_order(store: &str, tmp: &Path) {
    let a = tmp.join("a");
    let b = tmp.join("b");
    sample_tree(&a);
    // b: created in reverse order, with other permissions and mtimes.
    write_tree(
        &b,
        &[("base/kustomization.yaml", "resources: [svc.yaml]\n")],
    );
    write_tree(
        &b,
        &[
            ("base/svc.yaml", "kind: Service\n"),
            ("app.yaml", "kind: Deployment\n"),
        ],
    );
    for f in ["app.yaml", "base/svc.yaml", "base/kustomization.yaml"] {
        std::fs::set_permissions(b.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = std::fs::File::options()
            .write(true)
            .open(b.join(f))
            .unwrap();
        t.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
    }
    let da = push_json(store, &a, REV)["digest"].clone();
    let second = push_json(store, &b, REV);
    assert_eq!(second["digest"], da, "same tree must give the same digest");
    assert_eq!(
        second["bytes_uploaded"], 0,
        "re-push of an unchanged tree uploads nothing"
    );
}
on_both_stores!(reproducible_across_mtimes_umask_and_order);

fn retag_keeps_the_digest(store: &str, tmp: &Path) {
    let src = tmp.join("src");
    sample_tree(&src);
    let pushed = push_json(store, &src, REV);
    let digest = pushed["digest"].as_str().unwrap();
    let from = format!("{store}:{}", pushed["tag"].as_str().unwrap());
    let tagged = mainline(&["tag", &from, "latest", "-o", "json"])
        .ok()
        .json();
    assert_eq!(tagged["digest"], digest);
    // by digest, too
    let by_digest = format!("{store}@{digest}");
    let again = mainline(&["tag", &by_digest, "stable", "-o", "json"])
        .ok()
        .json();
    assert_eq!(again["digest"], digest);
    let inspected = mainline(&["inspect", &format!("{store}:latest"), "-o", "json"])
        .ok()
        .json();
    assert_eq!(inspected["digest"], digest);
    assert_eq!(
        inspected["annotations"]["org.opencontainers.image.revision"],
        REV
    );
    let files: Vec<&str> = inspected["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"base/svc.yaml"), "{files:?}");
}
on_both_stores!(retag_keeps_the_digest);

fn pull_extracts_and_refuses_to_overwrite(store: &str, tmp: &Path) {
    let src = tmp.join("src");
    sample_tree(&src);
    let pushed = push_json(store, &src, REV);
    let r = format!("{store}:{}", pushed["tag"].as_str().unwrap());
    let out = tmp.join("out");
    mainline(&["pull", &r, "--output-dir", out.to_str().unwrap()]).ok();
    assert_same_files(&src, &out);
    let again = mainline(&["pull", &r, "--output-dir", out.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    mainline(&["pull", &r, "--output-dir", out.to_str().unwrap(), "--force"]).ok();
}
on_both_stores!(pull_extracts_and_refuses_to_overwrite);

fn git_packing_equals_checkout_packing(store: &str, tmp: &Path) {
    let (repo, commits) = fixture_repo(tmp);
    for c in &commits {
        let checkout = tmp.join(format!("co-{c}"));
        std::fs::create_dir_all(&checkout).unwrap();
        git(
            &repo,
            &[
                "--work-tree",
                checkout.to_str().unwrap(),
                "checkout",
                c,
                "--",
                "k8s",
            ],
        );
        // A commit id is recorded with the one branch that contains it (issue 14, item 4).
        let rev = format!("main@sha1:{c}");
        let from_git = mainline(&[
            "push",
            "--git",
            repo.to_str().unwrap(),
            "--commit",
            c,
            "--path",
            "k8s",
            "--to",
            store,
            "-o",
            "json",
        ])
        .ok()
        .json();
        // the checkout gets the same revision; created comes from the enclosing repository
        let from_dir = mainline(&[
            "push",
            checkout.join("k8s").to_str().unwrap(),
            "--to",
            store,
            "--revision",
            &rev,
            "--created",
            from_git["created"].as_str().unwrap(),
            "-o",
            "json",
        ])
        .ok()
        .json();
        assert_eq!(from_git["digest"], from_dir["digest"], "commit {c}");
        assert_eq!(from_git["revision"], rev);
    }
}
on_both_stores!(git_packing_equals_checkout_packing);

fn bad_input_is_refused_and_nothing_written(store: &str, tmp: &Path) {
    let src = tmp.join("src");
    sample_tree(&src);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "push".into(),
                tmp.join("missing").display().to_string(),
                "--to".into(),
                store.into(),
                "--revision".into(),
                REV.into(),
                "--created".into(),
                CREATED.into(),
            ],
            2,
            "no such directory",
        ),
        (
            vec![
                "push".into(),
                src.display().to_string(),
                "--to".into(),
                store.into(),
                "--revision".into(),
                "main@sha1:nothex".into(),
            ],
            2,
            "invalid revision",
        ),
        (
            vec!["tag".into(), format!("{store}:nope"), "latest".into()],
            2,
            "no such tag",
        ),
        (
            vec!["tag".into(), format!("{store}:nope"), "bad/tag".into()],
            2,
            "invalid tag",
        ),
        (
            vec![
                "push".into(),
                src.display().to_string(),
                "--to".into(),
                "ftp://x/y".into(),
                "--revision".into(),
                REV.into(),
            ],
            2,
            "oci://",
        ),
    ];
    for (args, code, needle) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = mainline(&a);
        assert_eq!(r.code, code, "{a:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(needle),
            "{a:?}: expected {needle:?} in: {}",
            r.stderr
        );
    }
    // A symlink pointing outside DIR.
    std::os::unix::fs::symlink("/etc/passwd", src.join("leak")).unwrap();
    let r = mainline(&[
        "push",
        src.to_str().unwrap(),
        "--to",
        store,
        "--revision",
        REV,
        "--created",
        CREATED,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("leak"), "{}", r.stderr);
    // Nothing was written: the artifact tag does not exist.
    let r = mainline(&[
        "inspect",
        &format!("{store}:sha-0123456789abcdef0123456789abcdef01234567"),
    ]);
    assert_ne!(r.code, 0);
}
on_both_stores!(bad_input_is_refused_and_nothing_written);

#[test]
fn layout_dir_that_is_not_a_layout_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let notlayout = tmp.path().join("notlayout");
    write_tree(&notlayout, &[("precious.txt", "keep me\n")]);
    let r = mainline(&[
        "push",
        src.to_str().unwrap(),
        "--to",
        &format!("oci-layout:{}", notlayout.display()),
        "--revision",
        REV,
        "--created",
        CREATED,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not an OCI image layout"), "{}", r.stderr);
    let entries: Vec<_> = std::fs::read_dir(&notlayout).unwrap().collect();
    assert_eq!(
        entries.len(),
        1,
        "nothing may be written into a non-layout directory"
    );
}

#[test]
fn unreachable_registry_is_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = mainline(&[
        "push",
        src.to_str().unwrap(),
        "--to",
        &format!("oci://127.0.0.1:{port}/x"),
        "--revision",
        REV,
        "--created",
        CREATED,
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
}

#[test]
fn registry_401_names_the_host_and_hides_the_password() {
    let (host, user, password) = auth_registry();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let store = format!("oci://{host}/auth/app");
    let r = mainline(&[
        "push",
        src.to_str().unwrap(),
        "--to",
        &store,
        "--revision",
        REV,
        "--created",
        CREATED,
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains(&host), "{}", r.stderr);
    // With credentials from the environment it works, and the password is never printed.
    let ok = mainline_in(
        Path::new("."),
        &[
            "push",
            src.to_str().unwrap(),
            "--to",
            &store,
            "--revision",
            REV,
            "--created",
            CREATED,
            "-v",
        ],
        &[
            ("MAINLINE_REGISTRY_USERNAME", &user),
            ("MAINLINE_REGISTRY_PASSWORD", &password),
        ],
    )
    .ok();
    assert!(!ok.stdout.contains(&password) && !ok.stderr.contains(&password));
    // A wrong password: 401 again, still not printed.
    let bad = mainline_in(
        Path::new("."),
        &[
            "push",
            src.to_str().unwrap(),
            "--to",
            &store,
            "--revision",
            REV,
            "--created",
            CREATED,
        ],
        &[
            ("MAINLINE_REGISTRY_USERNAME", &user),
            ("MAINLINE_REGISTRY_PASSWORD", "wrong-password-xyz"),
        ],
    );
    assert_eq!(bad.code, 7, "{}", bad.stderr);
    assert!(!bad.stderr.contains("wrong-password-xyz"));
}

#[test]
fn tag_costs_three_registry_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let store = registry_store("reqcount");
    let pushed = push_json(&store, &src, REV);
    let from = format!("{store}:{}", pushed["tag"].as_str().unwrap());
    let before = registry_requests(&store);
    mainline(&["tag", &from, "latest"]).ok();
    // the registry writes its log line after answering; give it a moment
    std::thread::sleep(std::time::Duration::from_millis(200));
    let used = registry_requests(&store) - before;
    // GET source manifest + PUT + HEAD read-back (the /v2/ probe names no repository).
    assert!(used <= 3, "tag used {used} requests");
    assert!(
        used >= 3,
        "tag used only {used} requests: did it skip the read-back?"
    );
}

/// Write a hand-made artifact (layer bytes as given) into a fresh OCI layout under `tag`.
fn layout_with_layer(dir: &Path, layer: &[u8], tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h = sha256_hex(b);
        std::fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let (cd, cs) = put(b"{}");
    let (ld, ls) = put(layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"{ld}","size":{ls}}}],"annotations":{{"org.opencontainers.image.revision":"{REV}"}}}}"#
    );
    let (md, ms) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#),
    )
    .unwrap();
}

/// A gzip tar made by Python's tarfile, which (unlike our packer) will write hostile entries.
fn hostile_layer(kind: &str) -> Vec<u8> {
    let script = r#"
import io, sys, tarfile
kind = sys.argv[1]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    def add(name, data=b"x", **kw):
        ti = tarfile.TarInfo(name)
        for k, v in kw.items(): setattr(ti, k, v)
        if ti.type == tarfile.REGTYPE: ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        else: t.addfile(ti)
    add("ok.yaml")
    if kind == "dotdot": add("../escape.yaml")
    if kind == "absolute": add("/tmp/mainline-absolute.yaml")
    if kind == "symlink": add("link", type=tarfile.SYMTYPE, linkname="/etc")
    if kind == "through-link":
        add("d", type=tarfile.SYMTYPE, linkname="..")
        add("d/escape.yaml")
    if kind == "hardlink": add("h", type=tarfile.LNKTYPE, linkname="../../etc/passwd")
    if kind == "device": add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
sys.stdout.buffer.write(buf.getvalue())
"#;
    let out = Command::new("python3")
        .args(["-c", script, kind])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn pull_rejects_hostile_layers_and_writes_nothing() {
    for kind in [
        "dotdot",
        "absolute",
        "symlink",
        "through-link",
        "hardlink",
        "device",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("evil");
        layout_with_layer(&layout, &hostile_layer(kind), "evil");
        let out = tmp.path().join("out");
        let r = mainline(&[
            "pull",
            &format!("oci-layout:{}:evil", layout.display()),
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 2, "{kind}: {}", r.stderr);
        assert!(
            r.stderr.contains("refusing to extract"),
            "{kind}: {}",
            r.stderr
        );
        let written = out.exists() && std::fs::read_dir(&out).unwrap().next().is_some();
        assert!(
            !written,
            "{kind}: something was extracted into {}",
            out.display()
        );
        assert!(!tmp.path().join("escape.yaml").exists(), "{kind}: escaped");
    }
}
