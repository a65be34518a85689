//! Packing is a pure function of the tree: same names, contents, exec bits and symlinks give
//! the same bytes, whatever the mtimes, permission bits, creation order or listing order.
//! Symlinks are resolved here (`common::pack_dir`): an artifact never holds one.

mod common;

use common::{layer_bytes, pack_dir, raw_entries, set_mtime, symlink, write_file};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The files of the reproducibility tree: (path, contents, executable).
const FILES: &[(&str, &str, bool)] = &[
    ("kustomization.yaml", "resources:\n- apps\n", false),
    ("apps/a.yaml", "kind: ConfigMap\n", false),
    ("apps/a-b.yaml", "kind: Secret\n", false),
    ("apps/a/deep/z.yaml", "kind: Service\n", false),
    ("scripts/run.sh", "#!/bin/sh\necho hi\n", true),
    ("a", "top-level file named like a folder prefix\n", false),
    ("a-z/x.yaml", "x: 1\n", false),
];

/// Builds the tree, choosing permission bits (`exec_mode`/`plain_mode`/`dir_mode`),
/// creation order and mtimes from `variant`.
fn build(root: &Path, variant: u32) {
    let (exec_mode, plain_mode, dir_mode) = if variant == 0 {
        (0o755, 0o644, 0o755)
    } else {
        (0o710, 0o600, 0o700)
    };
    let mut files: Vec<_> = FILES.to_vec();
    if variant != 0 {
        files.reverse();
    }
    for (path, contents, exec) in &files {
        write_file(
            root,
            path,
            contents.as_bytes(),
            if *exec { exec_mode } else { plain_mode },
        );
    }
    symlink(root, "apps/current", "a.yaml");
    symlink(root, "scripts/up", "../apps");
    fs::create_dir_all(root.join("empty/nested")).expect("empty dirs");
    fs::create_dir_all(root.join(".git/objects")).expect(".git dir");
    fs::write(root.join(".git/HEAD"), format!("variant {variant}\n")).expect(".git file");
    fs::write(root.join("apps/.git"), "gitdir: elsewhere\n").expect(".git file in subdir");
    for (i, (path, _, _)) in files.iter().enumerate() {
        set_mtime(
            root,
            path,
            1_000_000 + u64::from(variant) * 7_777 + i as u64,
        );
    }
    for dir in ["apps", "apps/a", "apps/a/deep", "scripts", "a-z", "empty"] {
        fs::set_permissions(root.join(dir), fs::Permissions::from_mode(dir_mode))
            .expect("chmod dir");
        set_mtime(root, dir, 5_000 + u64::from(variant));
    }
}

#[test]
fn same_tree_gives_identical_bytes_whatever_mtimes_modes_and_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    build(&one, 0);
    build(&two, 1);
    let a = pack_dir(&one, tmp.path());
    let b = pack_dir(&two, tmp.path());
    assert_eq!(layer_bytes(&a), layer_bytes(&b), "layer bytes differ");
    assert_eq!(a.layer, b.layer);
    assert_eq!(a.config_bytes, b.config_bytes);
    assert_eq!(a.manifest_bytes, b.manifest_bytes);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.entries, b.entries);
    // Packing the same folder twice is also stable.
    let again = pack_dir(&one, tmp.path());
    assert_eq!(layer_bytes(&a), layer_bytes(&again));
}

#[test]
fn content_or_exec_bit_change_changes_the_digest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    build(&root, 0);
    let base = pack_dir(&root, tmp.path()).manifest_digest;
    fs::set_permissions(root.join("apps/a.yaml"), fs::Permissions::from_mode(0o744))
        .expect("chmod");
    let exec = pack_dir(&root, tmp.path()).manifest_digest;
    assert_ne!(base, exec, "exec bit must be part of the artifact");
    fs::set_permissions(root.join("apps/a.yaml"), fs::Permissions::from_mode(0o644))
        .expect("chmod");
    assert_eq!(pack_dir(&root, tmp.path()).manifest_digest, base);
    write_file(&root, "apps/a.yaml", b"kind: ConfigMap \n", 0o644);
    assert_ne!(pack_dir(&root, tmp.path()).manifest_digest, base);
}

#[test]
fn entries_are_normalised_sorted_and_skip_git_and_empty_dirs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    build(&root, 1);
    let packed = pack_dir(&root, tmp.path());
    let entries = raw_entries(&layer_bytes(&packed));
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "a",
            "a-z/",
            "a-z/x.yaml",
            "apps/",
            "apps/a-b.yaml",
            "apps/a.yaml",
            "apps/a/",
            "apps/a/deep/",
            "apps/a/deep/z.yaml",
            "apps/current",
            "kustomization.yaml",
            "scripts/",
            "scripts/run.sh",
            "scripts/up/",
            "scripts/up/a-b.yaml",
            "scripts/up/a.yaml",
            "scripts/up/a/",
            "scripts/up/a/deep/",
            "scripts/up/a/deep/z.yaml",
            "scripts/up/current",
        ]
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted bytewise by name");
    assert_eq!(packed.entries, names.len() as u64);
    for e in &entries {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.name);
        assert_eq!((e.uname.as_str(), e.gname.as_str()), ("", ""), "{}", e.name);
        let expected = match (e.kind, e.name.as_str()) {
            ('5', _) => 0o755,
            ('0', "scripts/run.sh") => 0o755,
            ('0', _) => 0o644,
            (k, n) => panic!("unexpected entry type {k:?} for {n}"),
        };
        assert_eq!(e.mode, expected, "mode of {}", e.name);
    }
    let copy = |name: &str| {
        let e = entries.iter().find(|e| e.name == name).expect(name);
        String::from_utf8(e.contents.clone()).expect("utf-8")
    };
    assert_eq!(
        copy("apps/current"),
        "kind: ConfigMap\n",
        "a link stores its target"
    );
    assert_eq!(copy("scripts/up/current"), "kind: ConfigMap\n");
    assert_eq!(copy("scripts/up/a/deep/z.yaml"), "kind: Service\n");
    let content: u64 = entries.iter().map(|e| e.size).sum();
    assert_eq!(packed.content_bytes, content);
}

#[test]
fn long_paths_use_gnu_long_names_and_stay_reproducible() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let long_dir = "d".repeat(120);
    let long_file = format!("{long_dir}/{}.yaml", "f".repeat(150));
    let long_target = format!("../{}", "t".repeat(130));
    let mut digests = Vec::new();
    for name in ["x", "y"] {
        let root = tmp.path().join(name);
        write_file(&root, &long_file, b"long: true\n", 0o644);
        write_file(&root, &"t".repeat(130), b"target\n", 0o644);
        symlink(&root, &format!("{long_dir}/link"), &long_target);
        let packed = pack_dir(&root, tmp.path());
        let names: Vec<String> = raw_entries(&layer_bytes(&packed))
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            [
                format!("{long_dir}/"),
                long_file.clone(),
                format!("{long_dir}/link"),
                "t".repeat(130)
            ]
        );
        let layer = layer_bytes(&packed);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut tar)
            .expect("gunzip");
        assert!(
            tar.windows(13).any(|w| w == b"././@LongLink"),
            "a GNU long-name entry carries the long path"
        );
        digests.push(packed.manifest_digest);
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn progress_reports_cumulative_content_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "a.yaml", &[b'a'; 10], 0o644);
    write_file(&root, "b/c.yaml", &[b'c'; 32], 0o644);
    let mut seen = Vec::new();
    let packed = mainline_pack::pack_dir(&root, &common::meta(), tmp.path(), &mut |n| seen.push(n))
        .expect("pack");
    assert_eq!(seen, [10, 42]);
    assert_eq!(packed.content_bytes, 42);
}

#[test]
fn layer_file_is_in_scratch_and_removed_on_drop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scratch = tmp.path().join("scratch");
    fs::create_dir(&scratch).expect("scratch");
    let root = tmp.path().join("t");
    write_file(&root, "a.yaml", b"a: 1\n", 0o644);
    let packed = pack_dir(&root, &scratch);
    let path = packed.layer_file.to_path_buf();
    assert_eq!(path.parent(), Some(scratch.as_path()));
    assert_eq!(
        fs::metadata(&path).expect("layer exists").len(),
        packed.layer.size
    );
    assert_eq!(
        mainline_core::Digest::of(&layer_bytes(&packed)),
        packed.layer.digest
    );
    drop(packed);
    assert!(!path.exists(), "the layer temp file is deleted with Packed");
}

/// Pins the exact bytes of a small artifact: if this fails, the artifact format changed, and
/// every existing artifact's digest with it. Change the constants only deliberately. (Changed
/// once, for issue 13: `app/current.yaml` is a symlink, now stored as a copy of its target
/// with --resolve-symlinks, because Flux drops symlink entries when it unpacks; and for packing
/// format 2, libdeflate: the same tar stream, other gzip bytes, 317 bytes instead of 312.)
#[test]
fn golden_manifest_digest_of_a_fixed_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("golden");
    write_file(&root, "kustomization.yaml", b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- app/deploy.yaml\n", 0o644);
    write_file(
        &root,
        "app/deploy.yaml",
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
        0o644,
    );
    write_file(&root, "app/hooks/pre.sh", b"#!/bin/sh\nexit 0\n", 0o755);
    symlink(&root, "app/current.yaml", "deploy.yaml");
    let packed = pack_dir(&root, tmp.path());
    assert_eq!(
        String::from_utf8(packed.manifest_bytes.clone()).expect("utf-8 manifest"),
        format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""config":{{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"#,
                r#""layers":[{{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"{}","size":{}}}],"#,
                r#""annotations":{{"org.opencontainers.image.created":"2024-05-01T12:00:00Z","#,
                r#""org.opencontainers.image.revision":"main@sha1:0123456789abcdef0123456789abcdef01234567","#,
                r#""org.opencontainers.image.source":"https://github.com/example/deploy"}}}}"#
            ),
            packed.layer.digest, packed.layer.size
        )
    );
    assert_eq!(packed.layer.size, 317);
    assert_eq!(
        (mainline_pack::PACK_FORMAT, packed.layer.digest.as_str()),
        (GOLDEN_FORMAT, GOLDEN_LAYER),
        "the layer bytes of a fixed tree changed: a packing format change. Bump \
         mainline_pack::PACK_FORMAT (so the store's tree index stops reusing layers of the old \
         format), then update GOLDEN_FORMAT and the golden digests"
    );
    assert_eq!(packed.manifest_digest.as_str(), GOLDEN_MANIFEST);
}

/// The packing format the golden digests below belong to: update them together, never one
/// without the other.
const GOLDEN_FORMAT: u32 = 2;

const GOLDEN_LAYER: &str =
    "sha256:b55b5ce272e305e52eea47e9b98b6ad15806e1d10d17ac7ac905fe2324e880cc";
const GOLDEN_MANIFEST: &str =
    "sha256:73913228bc375c914d6b868222686a81806436db1dfb7f47bce035c918a71094";
