//! DESIGN.md's scenario catalog, 7–10 (byte-identical re-tags, evidence policy, no-op commits,
//! hand moves and pins), through the `mainline` binary against a real docker-registry
//! and an OCI image layout, with a bare git remote driven like GitHub's merge queue
//! (support::queue). Scenarios 1–5 are in scenarios.rs, 6 in scenarios_race.rs.
//!
//! Each scenario runs on both stores (`on_both_stores!`): `scenario_NN_…::layout` and
//! `scenario_NN_…::registry`. The transient evidence failure needs a registry that misbehaves
//! on demand, so it runs against a loopback proxy in front of the real one ([`SigOutage`]).

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::queue::{
    app, deploy, field, first_deploy, moves, requests_to, sha256, verdict, Channel, Queue,
};
use support::*;

// 7. Re-tag: the channel's manifest is the artifact's manifest, byte for byte.
fn scenario_07_retag_keeps_manifest_bytes(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();
    let ci_digest = ch.push_artifact(&m0);
    let r = ch.expect(&["promote"], 0);
    assert_eq!(
        moves(&r)[0]["packed"],
        false,
        "CI's artifact is re-tagged: {r}"
    );
    let artifact = ch.raw_manifest(&format!("sha-{m0}")).expect("artifact");
    let channel = ch.raw_manifest("latest").expect("channel");
    assert!(
        channel == artifact,
        "channel bytes differ from the artifact's"
    );
    assert_eq!(sha256(&channel), ci_digest);
    assert_eq!(
        field(&ch.status(0), "channel_digest"),
        Some(ci_digest.as_str())
    );

    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&ch, &g);
    assert_eq!(
        ch.raw_manifest("latest"),
        ch.raw_manifest(&format!("sha-{}", g.head))
    );
    q.end(&g);
    ch.expect(&["reconcile"], 0);
    assert_eq!(ch.raw_manifest("latest"), Some(artifact));
}
on_both_stores!(scenario_07_retag_keeps_manifest_bytes);

/// Push a small manifest under `<digest as sha256-<hex>>.sig`, as cosign does (the content
/// does not matter to the policy, only the tag's presence).
fn sign(ch: &Channel, root: &Path, digest: &str) {
    let dir = root.join("signature");
    write_tree(&dir, &[("signature.json", "{\"critical\":{}}\n")]);
    let fake = "5167000000000000000000000000000000000000";
    mainline_in(
        root,
        &[
            "push",
            dir.to_str().expect("utf-8"),
            "--to",
            &ch.store,
            "--revision",
            &format!("cosign@sha1:{fake}"),
            "--created",
            "2024-05-01T12:00:00Z",
        ],
        &[],
    )
    .ok();
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    mainline_in(
        root,
        &["tag", &format!("{}:sha-{fake}", ch.store), &sig_tag],
        &[],
    )
    .ok();
}

// 8. Evidence required but missing → refused with a clear message; once a signature tag
// exists → the channel moves.
fn scenario_08_required_signature_missing_refuses_then_moves(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner").with(&["--require-signature"]);
    let m0 = q.main();
    let d0 = ch.push_artifact(&m0);

    let r = ch.expect(&["reconcile"], 5);
    assert_eq!(r["refusal"]["reason"], "evidence_missing", "{r}");
    let msg = r["refusal"]["message"].as_str().expect("message");
    assert!(
        msg.contains(&d0[..19]) && msg.contains("evidence") && msg.contains("sign"),
        "the refusal names the digest and what to do: {msg}"
    );
    assert!(moves(&r).is_empty());
    assert_eq!(ch.digest("latest"), None, "nothing was written");

    // A candidate that was never signed is refused too.
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let r = ch.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        5,
    );
    assert_eq!(r["refusal"]["reason"], "evidence_missing", "{r}");
    assert_eq!(ch.digest("latest"), None);
    q.end(&g);

    sign(&ch, root, &d0);
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"));
    assert_eq!(ch.digest("latest"), Some(d0));
}
on_both_stores!(scenario_08_required_signature_missing_refuses_then_moves);

/// A loopback proxy in front of the test registry that answers 503 to every request for a
/// cosign signature tag (`…/manifests/sha256-<hex>.sig`) and relays everything else. It forces
/// `Connection: close`, so every request arrives on a fresh connection and is inspected.
struct SigOutage {
    port: u16,
    sig_requests: Arc<AtomicUsize>,
}

impl SigOutage {
    fn start(upstream: String) -> SigOutage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let sig_requests = Arc::new(AtomicUsize::new(0));
        let counter = sig_requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                std::thread::spawn(move || relay(conn, &upstream, &counter));
            }
        });
        SigOutage { port, sig_requests }
    }
}

fn relay(mut client: TcpStream, upstream: &str, sig_requests: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let request_line = head.lines().next().unwrap_or_default();
    if request_line.contains("/manifests/sha256-") && request_line.contains(".sig ") {
        sig_requests.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut new_head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    new_head.push("Connection: close");
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut out = new_head.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&buf[end + 4..]);
    if up.write_all(&out).is_err() {
        return;
    }
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
    });
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}

// 8'. Evidence read fails transiently → retried, then no move and a visible "could not read",
// never a silent promotion.
#[test]
fn scenario_08_evidence_read_failing_is_retried_then_unknown() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let direct = registry_store("scenario_08");
    let mut q = Queue::new(root);
    let ch = Channel::new(&direct, &q, "runner").with(&["--require-signature"]);
    let d0 = ch.push_artifact(&q.main());
    sign(&ch, root, &d0);
    ch.expect(&["reconcile"], 0);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(2))], "scale to 2");
    let d1 = ch.push_artifact(&m1);
    sign(&ch, root, &d1);

    let proxy = SigOutage::start(registry());
    let path = direct
        .strip_prefix("oci://")
        .and_then(|rest| rest.split_once('/'))
        .expect("oci://HOST/REPO")
        .1;
    let proxied = Channel {
        store: format!("oci://127.0.0.1:{}/{path}", proxy.port),
        ..ch.elsewhere("proxied")
    };
    let r = proxied.run(&["reconcile"]);
    let j = r.json();
    assert!(moves(&j).is_empty(), "no move on unreadable evidence: {j}");
    assert_eq!(j["refusal"]["reason"], "facts_unknown", "{j}");
    let msg = j["refusal"]["message"].as_str().expect("message");
    assert!(
        msg.contains("evidence") && msg.contains("could not be read"),
        "{msg}"
    );
    assert_eq!(r.code, 4, "UNKNOWN: a fact could not be read\n{}", r.stderr);
    let attempts = proxy.sig_requests.load(Ordering::SeqCst);
    assert!(
        attempts >= 4,
        "the evidence read is retried (1 + 3 attempts), saw {attempts}"
    );
    assert_eq!(ch.digest("latest"), Some(d0), "the channel did not move");
    // The outage ends: the same reconcile promotes.
    let r = ch.elsewhere("after").expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "promote", "{r}");
    assert_eq!(ch.digest("latest"), Some(d1));
}

// 9. mainline advances with commits that do not touch the deploy tree → CONVERGED, no move,
// no tag write.
fn scenario_09_commits_outside_deploy_tree_converge_without_a_move(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();
    let d0 = first_deploy(&ch, &q);
    q.push_main(&[("README.md", "app, documented\n")], "docs");
    let g = q.enqueue(4, &[("src/lib.rs", "pub fn f() {}\n")]);
    q.merge(&g);

    let s = ch.status(0);
    assert_eq!(verdict(&s), "CONVERGED", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(m0.as_str()));
    assert_eq!(field(&s, "mainline_commit"), Some(g.head.as_str()));

    let index = |store: &str| {
        store
            .strip_prefix("oci-layout:")
            .map(|p| std::fs::read(Path::new(p).join("index.json")).expect("index.json"))
    };
    let (log_before, index_before) = (requests_to(store).len(), index(store));
    for args in [&["reconcile"][..], &["promote"][..]] {
        let r = ch.expect(args, 0);
        assert!(moves(&r).is_empty(), "{args:?}: {r}");
        assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"));
    }
    let writes: Vec<String> = requests_to(store)
        .split_off(log_before)
        .into_iter()
        .filter(|l| {
            !l.contains("http.request.method=GET") && !l.contains("http.request.method=HEAD")
        })
        .collect();
    assert!(writes.is_empty(), "no write to the registry: {writes:#?}");
    assert_eq!(index(store), index_before, "no write to the layout");
    assert_eq!(ch.digest("latest"), Some(d0));
}
on_both_stores!(scenario_09_commits_outside_deploy_tree_converge_without_a_move);

/// Put a manifest mainline did not make (no revision annotation) under the channel tag, as a
/// person with skopeo would. Returns its digest.
fn move_by_hand(ch: &Channel, root: &Path) -> String {
    let src = root.join("hand");
    let blobs = src.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let config = b"{}";
    let config_digest = sha256(config);
    std::fs::write(blobs.join(&config_digest[7..]), config).expect("write config");
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
         \"digest\":\"{config_digest}\",\"size\":2}},\"layers\":[],\
         \"annotations\":{{\"note\":\"hotfix applied by hand\"}}}}"
    );
    let digest = sha256(manifest.as_bytes());
    std::fs::write(blobs.join(&digest[7..]), &manifest).expect("write manifest");
    std::fs::write(src.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").expect("layout");
    std::fs::write(
        src.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\
             \"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{digest}\",\"size\":{},\
             \"annotations\":{{\"org.opencontainers.image.ref.name\":\"hand\"}}}}]}}",
            manifest.len()
        ),
    )
    .expect("index");
    let dest = match ch.store.strip_prefix("oci-layout:") {
        Some(p) => format!("oci:{p}:latest"),
        None => format!("docker://{}:latest", &ch.store["oci://".len()..]),
    };
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:hand", src.display()))
        .arg(&dest)
        .output()
        .expect("run skopeo");
    let out = if out.status.success() || dest.starts_with("docker://") {
        out
    } else {
        // skopeo rejects --dest-tls-verify for oci: destinations on some versions.
        Command::new("skopeo")
            .args(["copy", "--quiet", "--preserve-digests"])
            .arg(format!("oci:{}:hand", src.display()))
            .arg(&dest)
            .output()
            .expect("run skopeo")
    };
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ch.digest("latest").as_deref(), Some(digest.as_str()));
    digest
}

// 10. The channel was moved by hand to something mainline did not make → UNKNOWN with a hint;
// restored when the operator asks.
fn scenario_10_hand_moved_channel_is_unknown_until_force_restore(store: &str, root: &Path) {
    let q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let d0 = first_deploy(&ch, &q);
    let hand = move_by_hand(&ch, root);

    let s = ch.status(4);
    assert_eq!(verdict(&s), "UNKNOWN", "{s}");
    let why = field(&s, "explanation").expect("explanation");
    assert!(
        why.contains(&hand[7..19]) && why.contains("by hand") && why.contains("--force-restore"),
        "names the digest and the way out: {why}"
    );
    let r = ch.expect(&["reconcile"], 4);
    assert!(moves(&r).is_empty(), "never overwritten silently: {r}");
    assert_eq!(ch.digest("latest").as_ref(), Some(&hand));
    // A candidate deploy does not overwrite it either.
    let mut q = q;
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let r = ch.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        5,
    );
    assert_eq!(r["refusal"]["reason"], "channel_foreign", "{r}");
    q.end(&g);

    let r = ch.expect(&["reconcile", "--force-restore"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(ch.digest("latest"), Some(d0));
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");
}
on_both_stores!(scenario_10_hand_moved_channel_is_unknown_until_force_restore);

// 10'. Pins survive reconciles (and hand moves) until unpinned or expired.
fn scenario_10_pin_survives_reconciles_until_unpin_or_expiry(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();
    let d0 = first_deploy(&ch, &q);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(2))], "scale to 2");
    ch.expect(&["reconcile"], 0);
    let d1 = ch.digest(&format!("sha-{m1}")).expect("m1 promoted");

    let r = ch.expect(&["pin", &d0, "--reason", "INC-42: back to one replica"], 0);
    assert_eq!(moves(&r)[0]["action"], "apply_pin", "{r}");
    let s = ch.status(0);
    assert_eq!(verdict(&s), "PINNED", "{s}");
    assert_eq!(s["pin"]["reason"], "INC-42: back to one replica");
    assert_eq!(ch.digest("latest").as_ref(), Some(&d0));

    // Reconciles from anywhere hold; a landing does not move it; a hand move is undone.
    let m2 = q.push_main(&[("k8s/app.yaml", &app(3))], "scale to 3");
    for other in ["elsewhere-1", "elsewhere-2"] {
        let r = ch.elsewhere(other).expect(&["reconcile"], 0);
        assert!(moves(&r).is_empty(), "{r}");
        assert_eq!(field(&r, "verdict"), Some("PINNED"));
    }
    mainline_in(
        root,
        &["tag", &format!("{}:sha-{m1}", ch.store), "latest"],
        &[],
    )
    .ok();
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(
        moves(&r)[0]["action"],
        "apply_pin",
        "the pin is re-applied: {r}"
    );
    assert_eq!(ch.digest("latest").as_ref(), Some(&d0));

    // Rollback is a pin too.
    let r = ch.expect(&["rollback", &m1, "--reason", "INC-43: 2 replicas"], 0);
    assert_eq!(ch.digest("latest").as_ref(), Some(&d1), "{r}");
    assert_eq!(ch.status(0)["pin"]["kind"], "rollback");

    let r = ch.expect(&["unpin"], 0);
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
    let s = ch.status(0);
    assert_eq!(field(&s, "channel_commit"), Some(m2.as_str()));
    assert!(s["pin"].is_null(), "{s}");

    // An expired pin is ignored.
    let r = ch.expect(
        // Long enough for the pin's own run on a loaded machine (it took up to 1.4 s here).
        &["pin", &d0, "--reason", "brief hold", "--expires", "4s"],
        0,
    );
    assert_eq!(ch.digest("latest").as_ref(), Some(&d0), "{r}");
    assert_eq!(field(&r, "final_verdict"), Some("PINNED"));
    std::thread::sleep(std::time::Duration::from_millis(4300));
    let s = ch.status(3);
    assert_eq!(verdict(&s), "BEHIND", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(m0.as_str()));
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "promote", "{r}");
    assert_eq!(ch.digest("latest"), ch.digest(&format!("sha-{m2}")));
}
on_both_stores!(scenario_10_pin_survives_reconciles_until_unpin_or_expiry);
