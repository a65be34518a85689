//! Issue 15 item 3: the layer is gzip compressed on several threads as a series of members (one
//! per 1 MiB of tar stream), and its bytes are still a function of the tree alone. A tree of a
//! few MiB is packed with 1 thread and with 16 (same bytes, same digest, from a folder and from
//! git), and the layer is read by the readers users have: `gzip -t`, GNU `tar -xzf`, and Flux's
//! own untar (`tests/flux-oracle pull`, which fails, never skips, without
//! `MAINLINE_FLUX_ORACLE`).

mod common;

use common::{layer_bytes, meta, write_file, Git};
use mainline_pack::{pack_dir_with, pack_git_with, PackOptions, Packed};
use std::collections::BTreeMap;
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// ~3.4 MiB of varied YAML in 3 folders: four gzip members.
fn build(root: &Path) {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..340 {
        let mut body =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n");
        while body.len() < 10 * 1024 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push_str(&format!("  key-{:x}: \"{:016x}\"\n", seed % 4096, seed));
        }
        let exec = i % 97 == 0;
        let path = format!("ns-{}/cm-{i:03}.yaml", i % 3);
        write_file(
            root,
            &path,
            body.as_bytes(),
            if exec { 0o755 } else { 0o644 },
        );
    }
}

fn options(threads: usize) -> PackOptions {
    PackOptions {
        threads: NonZeroUsize::new(threads),
        ..PackOptions::default()
    }
}

fn pack(root: &Path, scratch: &Path, threads: usize) -> Packed {
    pack_dir_with(root, &meta(), scratch, options(threads), &mut |_| {}).expect("pack")
}

/// How many gzip members `layer` holds, found by decoding member after member.
fn member_count(layer: &[u8]) -> usize {
    let mut rest = layer;
    let mut members = 0;
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut decoder, &mut std::io::sink()).expect("decode one member");
        rest = decoder.into_inner();
        members += 1;
    }
    members
}

fn files_of(root: &Path) -> BTreeMap<String, (Vec<u8>, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).expect("read dir") {
            let entry = entry.expect("dir entry");
            let rel = rel.join(entry.file_name());
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(rel);
                }
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let bytes = fs::read(root.join(&rel)).expect("read file");
                out.insert(rel.to_string_lossy().into_owned(), (bytes, exec));
            }
        }
    }
    out
}

#[test]
fn one_thread_and_sixteen_give_the_same_bytes_from_a_folder_and_from_git() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let git = Git::init(&tmp.path().join("tree"));
    let root = git.dir.clone();
    build(&root);
    let one = pack(&root, tmp.path(), 1);
    let sixteen = pack(&root, tmp.path(), 16);
    let bytes = layer_bytes(&one);
    assert!(
        one.content_bytes > 3 * 1024 * 1024,
        "the tree spans several blocks"
    );
    assert_eq!(member_count(&bytes), 4, "one gzip member per MiB of tar");
    assert_eq!(layer_bytes(&sixteen), bytes, "16 threads vs 1: layer bytes");
    assert_eq!(sixteen.manifest_digest, one.manifest_digest);
    let auto = pack(&root, tmp.path(), 0);
    assert_eq!(auto.manifest_digest, one.manifest_digest, "default threads");

    let head = git
        .commit_all("tree", "2024-05-01T12:00:00Z")
        .parse()
        .expect("commit id");
    for threads in [1, 16] {
        let from_git = pack_git_with(
            &root,
            &head,
            "",
            &meta(),
            tmp.path(),
            options(threads),
            &mut |_| {},
        )
        .expect("pack_git");
        assert_eq!(layer_bytes(&from_git), bytes, "git, {threads} threads");
    }
}

/// Pins the bytes of a layer larger than one block: if this fails, the multi-member format
/// changed, and with it the digest of every artifact over 1 MiB of tar. (Format 2, libdeflate,
/// changed this digest and `reproducible.rs`'s single-member one together.)
#[test]
fn golden_digest_of_a_multi_member_layer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("tree");
    build(&root);
    let packed = pack(&root, tmp.path(), 2);
    assert_eq!(
        (mainline_pack::PACK_FORMAT, packed.layer.digest.as_str()),
        (GOLDEN_FORMAT, GOLDEN_LAYER),
        "the multi-member layer bytes changed: a packing format change. Bump \
         mainline_pack::PACK_FORMAT (so the store's tree index stops reusing layers of the old \
         format), then update GOLDEN_FORMAT, GOLDEN_LAYER and GOLDEN_SIZE"
    );
    assert_eq!(packed.layer.size, GOLDEN_SIZE);
}

/// The packing format GOLDEN_LAYER belongs to: update them together.
const GOLDEN_FORMAT: u32 = 2;

const GOLDEN_LAYER: &str =
    "sha256:00c99f7f45e075396a10bbaba357c535f03e7874baf9f536e149af77970f4350";
const GOLDEN_SIZE: u64 = 1_456_807;

#[test]
fn gzip_gnu_tar_and_flux_read_the_members_as_one_archive() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("tree");
    build(&root);
    let packed = pack(&root, tmp.path(), 16);
    let want = files_of(&root);

    let gzip = Command::new("gzip")
        .arg("-t")
        .arg(&packed.layer_file)
        .output()
        .expect("run gzip");
    assert!(
        gzip.status.success(),
        "gzip -t: {}",
        String::from_utf8_lossy(&gzip.stderr)
    );

    let by_tar = tmp.path().join("by-tar");
    fs::create_dir(&by_tar).expect("mkdir");
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&packed.layer_file)
        .arg("-C")
        .arg(&by_tar)
        .output()
        .expect("run tar");
    assert!(
        tar.status.success(),
        "tar -xzf: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    assert!(
        files_of(&by_tar) == want,
        "GNU tar unpacked a different tree"
    );

    let layout = tmp.path().join("layout");
    write_layout(&layout, &packed);
    let by_flux = tmp.path().join("by-flux");
    let oracle = std::env::var_os("MAINLINE_FLUX_ORACLE").expect(
        "MAINLINE_FLUX_ORACLE is not set: it names tests/flux-oracle built with Go \
         (scripts/test.sh builds it; or `cd tests/flux-oracle && go build -o /tmp/flux-oracle .`)",
    );
    let flux = Command::new(oracle)
        .arg("pull")
        .arg(format!("oci-layout:{}:latest", layout.display()))
        .arg(&by_flux)
        .arg("--raw")
        .output()
        .expect("run flux-oracle");
    assert!(
        flux.status.success(),
        "flux-oracle pull: {}",
        String::from_utf8_lossy(&flux.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&flux.stdout).expect("oracle json");
    assert_eq!(report["layer"], packed.layer.digest.as_str());
    assert!(
        files_of(&by_flux) == want,
        "Flux's untar gave a different tree"
    );
}

/// The packed artifact as an OCI image layout with tag `latest`.
fn write_layout(dir: &Path, packed: &Packed) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs dir");
    let hex = |d: &mainline_core::Digest| d.as_str().trim_start_matches("sha256:").to_owned();
    fs::copy(&packed.layer_file, blobs.join(hex(&packed.layer.digest))).expect("layer blob");
    fs::write(blobs.join(hex(&packed.config.digest)), &packed.config_bytes).expect("config");
    fs::write(
        blobs.join(hex(&packed.manifest_digest)),
        &packed.manifest_bytes,
    )
    .expect("manifest");
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": packed.manifest_digest.as_str(),
            "size": packed.manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
}
