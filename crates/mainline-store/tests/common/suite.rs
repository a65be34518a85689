//! The behaviour every [`Store`] must have, run against each backend.

use super::{write_blob_file, HashingSink};
use mainline_core::{Digest, Tag};
use mainline_store::{ErrorKind, ReferenceTarget, Store, OCI_MANIFEST_MEDIA_TYPE};
use std::path::Path;
use std::sync::Mutex;

const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_LAYER: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const BIG: u64 = 30 * 1024 * 1024;
/// How much the process's peak memory may grow while pushing the 30 MiB blob.
const BIG_PUSH_MEMORY_BUDGET: u64 = 12 * 1024 * 1024;

/// Serialises the memory-measured pushes of the suites running in one test binary.
static MEASURED: Mutex<()> = Mutex::new(());

fn tag(name: &str) -> Tag {
    name.parse().expect("test tags are valid")
}

/// A Flux-style artifact manifest over the given config and layer.
pub fn manifest(config: (&Digest, u64), layer: (&Digest, u64), revision: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": FLUX_CONFIG, "digest": config.0.to_string(), "size": config.1},
        "layers": [{"mediaType": FLUX_LAYER, "digest": layer.0.to_string(), "size": layer.1}],
        "annotations": {
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.source": "https://example.invalid/acme/deploy",
        },
    });
    serde_json::to_vec_pretty(&value).expect("a JSON value serialises")
}

/// Runs the whole behavioural suite against a fresh, empty `store`. `scratch` is a private
/// temporary directory.
pub fn suite(store: &dyn Store, scratch: &Path) {
    assert_eq!(
        store.list_tags().expect("list tags of an empty store"),
        Vec::<Tag>::new()
    );

    // Blob round trip, with digest verification and progress.
    let (layer_path, layer) = write_blob_file(scratch, "layer", 100_000, 1);
    assert!(!store.blob_exists(&layer).expect("blob_exists before push"));
    let mut reported = Vec::new();
    store
        .push_blob(&layer, 100_000, &layer_path, &mut |n| reported.push(n))
        .expect("push a blob");
    assert_eq!(
        reported.last(),
        Some(&100_000),
        "progress ends at the blob size"
    );
    assert!(
        reported.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back"
    );
    assert!(store.blob_exists(&layer).expect("blob_exists after push"));
    let mut fetched = Vec::new();
    assert_eq!(
        store
            .fetch_blob(&layer, &mut fetched)
            .expect("fetch the blob"),
        100_000
    );
    assert_eq!(Digest::of(&fetched), layer);
    assert_eq!(
        fetched,
        std::fs::read(&layer_path).expect("read the source")
    );

    // A file that does not match its announced digest (or size) is refused, and not stored.
    let (other_path, other) = write_blob_file(scratch, "other", 5_000, 2);
    let wrong = Digest::of(b"not the content of that file");
    let err = store
        .push_blob(&wrong, 5_000, &other_path, &mut |_| {})
        .expect_err("a digest mismatch must fail");
    assert_eq!(err.kind, ErrorKind::Integrity, "{err}");
    assert!(
        err.message.contains(&other_path.display().to_string()),
        "{err}"
    );
    assert!(!store
        .blob_exists(&wrong)
        .expect("blob_exists of the refused digest"));
    let err = store
        .push_blob(&other, 4_000, &other_path, &mut |_| {})
        .expect_err("a size mismatch must fail");
    assert_eq!(err.kind, ErrorKind::Integrity, "{err}");

    // A missing blob is a clear error naming it.
    let missing = Digest::of(b"never pushed");
    let err = store
        .fetch_blob(&missing, &mut Vec::new())
        .expect_err("fetching a missing blob must fail");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains(missing.as_str()), "{err}");
    assert!(err.message.contains("push it first"), "{err}");

    // Manifests: put by tag, fetch by tag and by digest, identical bytes.
    let config_bytes = b"{}";
    let config_path = scratch.join("config");
    std::fs::write(&config_path, config_bytes).expect("write config");
    let config = Digest::of(config_bytes);
    store
        .push_blob(&config, 2, &config_path, &mut |_| {})
        .expect("push the config blob");
    let first = manifest(
        (&config, 2),
        (&layer, 100_000),
        "main@sha1:1111111111111111111111111111111111111111",
    );
    let digest = store
        .put_manifest(&tag("sha-1111"), OCI_MANIFEST_MEDIA_TYPE, &first)
        .expect("put a manifest");
    assert_eq!(digest, Digest::of(&first));
    let by_tag = store
        .fetch_manifest(&ReferenceTarget::Tag(tag("sha-1111")))
        .expect("fetch by tag")
        .expect("the tag exists");
    assert_eq!(by_tag.bytes, first);
    assert_eq!(by_tag.digest, digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST_MEDIA_TYPE);
    let by_digest = store
        .fetch_manifest(&ReferenceTarget::Digest(digest.clone()))
        .expect("fetch by digest")
        .expect("the digest exists");
    assert_eq!(by_digest, by_tag);
    assert_eq!(
        store.resolve(&tag("sha-1111")).expect("resolve"),
        Some(digest.clone())
    );

    // Absent things are None, not errors.
    assert_eq!(
        store
            .resolve(&tag("no-such-tag"))
            .expect("resolve a missing tag"),
        None
    );
    assert_eq!(
        store
            .fetch_manifest(&ReferenceTarget::Tag(tag("no-such-tag")))
            .expect("fetch a missing tag"),
        None
    );
    assert_eq!(
        store
            .fetch_manifest(&ReferenceTarget::Digest(missing.clone()))
            .expect("fetch a missing digest"),
        None
    );

    // Re-tag: the same bytes under the channel tag keep the digest, byte for byte.
    let retagged = store
        .put_manifest(&tag("latest"), OCI_MANIFEST_MEDIA_TYPE, &first)
        .expect("re-tag");
    assert_eq!(retagged, digest);
    assert_eq!(
        store.resolve(&tag("latest")).expect("resolve the channel"),
        Some(digest.clone())
    );
    let channel = store
        .fetch_manifest(&ReferenceTarget::Tag(tag("latest")))
        .expect("fetch the channel")
        .expect("the channel exists");
    assert_eq!(channel.bytes, first);

    // Moving the channel to another artifact leaves the first tag where it was.
    let second = manifest(
        (&config, 2),
        (&layer, 100_000),
        "main@sha1:2222222222222222222222222222222222222222",
    );
    let second_digest = store
        .put_manifest(&tag("sha-2222"), OCI_MANIFEST_MEDIA_TYPE, &second)
        .expect("put a second manifest");
    store
        .put_manifest(&tag("latest"), OCI_MANIFEST_MEDIA_TYPE, &second)
        .expect("move the channel");
    assert_eq!(
        store.resolve(&tag("latest")).expect("resolve"),
        Some(second_digest)
    );
    assert_eq!(
        store.resolve(&tag("sha-1111")).expect("resolve"),
        Some(digest)
    );

    assert_eq!(
        store.list_tags().expect("list tags"),
        vec![tag("latest"), tag("sha-1111"), tag("sha-2222")]
    );

    big_blob(store, scratch);
}

/// A 30 MiB blob goes up streamed: the process's peak memory grows far less than the blob.
fn big_blob(store: &dyn Store, scratch: &Path) {
    let (path, digest) = write_blob_file(scratch, "big", BIG, 3);
    let _measured = MEASURED.lock().unwrap_or_else(|e| e.into_inner());
    let before = reset_peak_memory();
    let mut calls = 0u32;
    let mut last = 0u64;
    store
        .push_blob(&digest, BIG, &path, &mut |n| {
            calls += 1;
            last = n;
        })
        .expect("push a 30 MiB blob");
    let grown = peak_memory().saturating_sub(before);
    assert!(
        grown < BIG_PUSH_MEMORY_BUDGET,
        "pushing 30 MiB grew peak memory by {grown} bytes; the upload must stream"
    );
    assert_eq!(last, BIG);
    assert!(
        u64::from(calls) >= BIG / (1024 * 1024),
        "progress came in {calls} steps; expected at least one per MiB sent"
    );
    let mut sink = HashingSink::default();
    assert_eq!(
        store
            .fetch_blob(&digest, &mut sink)
            .expect("fetch the big blob"),
        BIG
    );
    assert_eq!(sink.digest(), digest);
}

/// Resets the kernel's peak-RSS mark to the current RSS and returns it (bytes).
fn reset_peak_memory() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (Linux >= 4.0)");
    status_kib("VmHWM:") * 1024
}

fn peak_memory() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM is in /proc/self/status")
}
