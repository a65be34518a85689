//! Image-layout specifics: what `open` accepts, the index lock under concurrent writers,
//! corruption detection, foreign index content, and skopeo reading what we write (and us
//! reading what skopeo writes).

mod common;

use common::suite::manifest;
use common::write_blob_file;
use mainline_core::{Digest, Tag};
use mainline_store::layout::LayoutStore;
use mainline_store::{ErrorKind, Location, ReferenceTarget, Store, OCI_MANIFEST_MEDIA_TYPE};
use std::path::Path;
use std::process::Command;

fn layout(path: &Path) -> Location {
    Location::Layout {
        path: path.to_owned(),
    }
}

fn tag(name: &str) -> Tag {
    name.parse().expect("test tags are valid")
}

/// A store holding one artifact (config + layer + manifest) under `tags`; returns the
/// manifest bytes and digest.
fn store_artifact(store: &dyn Store, scratch: &Path, tags: &[&str]) -> (Vec<u8>, Digest) {
    let (layer_path, layer) = write_blob_file(scratch, "layer", 4096, 7);
    store
        .push_blob(&layer, 4096, &layer_path, &mut |_| {})
        .expect("push layer");
    let config_path = scratch.join("config");
    std::fs::write(&config_path, b"{}").expect("write config");
    let config = Digest::of(b"{}");
    store
        .push_blob(&config, 2, &config_path, &mut |_| {})
        .expect("push config");
    let bytes = manifest(
        (&config, 2),
        (&layer, 4096),
        "main@sha1:3333333333333333333333333333333333333333",
    );
    let mut digest = None;
    for name in tags {
        digest = Some(
            store
                .put_manifest(&tag(name), OCI_MANIFEST_MEDIA_TYPE, &bytes)
                .expect("put manifest"),
        );
    }
    (bytes, digest.expect("at least one tag"))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn open_creates_a_layout_in_a_new_or_empty_directory_and_reopens_it() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let new = scratch.path().join("a/b/new");
    LayoutStore::open(layout(&new)).expect("open a new path");
    assert_eq!(
        std::fs::read_to_string(new.join("oci-layout")).expect("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(new.join("index.json")).expect("index.json"))
            .expect("index is JSON");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    assert!(new.join("blobs/sha256").is_dir());

    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    LayoutStore::open(layout(&empty)).expect("open an empty dir");
    assert!(empty.join("oci-layout").is_file());

    // Reopening keeps what is there.
    let store = LayoutStore::open(layout(&new)).expect("reopen");
    let (_, digest) = store_artifact(&store, scratch.path(), &["latest"]);
    let again = LayoutStore::open(layout(&new)).expect("reopen again");
    assert_eq!(
        again.resolve(&tag("latest")).expect("resolve"),
        Some(digest)
    );
}

#[test]
fn a_non_empty_directory_that_is_not_a_layout_is_refused_untouched() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("project");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("README.md"), "not a layout").expect("write");
    let err = LayoutStore::open(layout(&dir)).expect_err("must refuse");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        err.message,
        format!(
            "{} is not an OCI image layout (no oci-layout file); pick an empty or new directory",
            dir.display()
        )
    );
    assert_eq!(
        entries(&dir),
        vec!["README.md".to_owned()],
        "nothing was written"
    );

    let file = scratch.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let err = LayoutStore::open(layout(&file)).expect_err("a file is not a layout");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("not a directory"), "{err}");

    let future = scratch.path().join("future");
    std::fs::create_dir(&future).expect("mkdir");
    std::fs::write(
        future.join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .expect("write");
    let err = LayoutStore::open(layout(&future)).expect_err("unknown version");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("2.0.0"), "{err}");
}

#[test]
fn concurrent_writers_in_separate_handles_lose_no_tag() {
    const WRITERS: usize = 4;
    const TAGS_EACH: usize = 25;
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("store");
    let first = LayoutStore::open(layout(&dir)).expect("open");
    let (bytes, digest) = store_artifact(&first, scratch.path(), &["seed"]);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (dir, bytes) = (&dir, &bytes);
            scope.spawn(move || {
                // Each writer has its own handle (its own lock file descriptor), as separate
                // processes would.
                let store = LayoutStore::open(layout(dir)).expect("open in writer");
                for n in 0..TAGS_EACH {
                    store
                        .put_manifest(
                            &tag(&format!("w{writer}-{n}")),
                            OCI_MANIFEST_MEDIA_TYPE,
                            bytes,
                        )
                        .expect("re-tag");
                }
            });
        }
    });
    let tags = first.list_tags().expect("list tags");
    assert_eq!(
        tags.len(),
        WRITERS * TAGS_EACH + 1,
        "a concurrent writer lost a tag"
    );
    for writer in 0..WRITERS {
        for n in 0..TAGS_EACH {
            let name = tag(&format!("w{writer}-{n}"));
            assert_eq!(
                first.resolve(&name).expect("resolve"),
                Some(digest.clone()),
                "{name}"
            );
        }
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("JSON");
    assert_eq!(
        index["manifests"].as_array().expect("array").len(),
        WRITERS * TAGS_EACH + 1
    );
    let leftovers: Vec<String> = entries(&dir)
        .into_iter()
        .filter(|n| n.starts_with(".mainline-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn retagging_replaces_the_entry_and_keeps_foreign_index_content() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("store");
    let store = LayoutStore::open(layout(&dir)).expect("open");
    let (_, digest) = store_artifact(&store, scratch.path(), &["latest"]);
    // Another tool adds an untagged entry and a field of its own.
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("JSON");
    index["annotations"] = serde_json::json!({"written-by": "another tool"});
    index["manifests"]
        .as_array_mut()
        .expect("array")
        .push(serde_json::json!({"mediaType": OCI_MANIFEST_MEDIA_TYPE, "digest": digest.to_string(), "size": 1, "platform": {"os": "linux"}}));
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("JSON"),
    )
    .expect("write");

    store
        .put_manifest(
            &tag("latest"),
            OCI_MANIFEST_MEDIA_TYPE,
            &manifest((&digest, 1), (&digest, 1), "x"),
        )
        .expect("move latest");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("JSON");
    assert_eq!(index["annotations"]["written-by"], "another tool");
    let manifests = index["manifests"].as_array().expect("array");
    let tagged: Vec<_> = manifests
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest")
        .collect();
    assert_eq!(tagged.len(), 1, "one entry per tag");
    assert!(
        manifests.iter().any(|m| m["platform"]["os"] == "linux"),
        "foreign entry kept"
    );
}

#[test]
fn corrupted_blobs_are_detected_on_read() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("store");
    let store = LayoutStore::open(layout(&dir)).expect("open");
    let (_, digest) = store_artifact(&store, scratch.path(), &["latest"]);
    let (_, layer) = write_blob_file(scratch.path(), "layer", 4096, 7);
    std::fs::write(dir.join("blobs/sha256").join(layer.hex()), b"tampered").expect("tamper");
    let err = store
        .fetch_blob(&layer, &mut Vec::new())
        .expect_err("tampered blob");
    assert_eq!(err.kind, ErrorKind::Integrity, "{err}");
    assert!(err.message.contains(layer.as_str()), "{err}");

    std::fs::write(dir.join("blobs/sha256").join(digest.hex()), b"{}").expect("tamper");
    for target in [
        ReferenceTarget::Tag(tag("latest")),
        ReferenceTarget::Digest(digest),
    ] {
        let err = store
            .fetch_manifest(&target)
            .expect_err("tampered manifest");
        assert_eq!(err.kind, ErrorKind::Integrity, "{err}");
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn skopeo_reads_what_we_write_and_we_read_what_skopeo_copies() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("store");
    let store = LayoutStore::open(layout(&dir)).expect("open");
    let (bytes, digest) = store_artifact(&store, scratch.path(), &["sha-3333", "latest"]);

    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:latest", dir.display())]);
    assert_eq!(raw, bytes, "skopeo sees our exact manifest bytes");
    assert_eq!(Digest::of(&raw), digest);

    let copy = scratch.path().join("copy");
    skopeo(&[
        "copy",
        &format!("oci:{}:latest", dir.display()),
        &format!("oci:{}:channel", copy.display()),
    ]);
    let copied = LayoutStore::open(layout(&copy)).expect("open skopeo's layout");
    assert_eq!(
        copied.resolve(&tag("channel")).expect("resolve"),
        Some(digest.clone())
    );
    let fetched = copied
        .fetch_manifest(&ReferenceTarget::Tag(tag("channel")))
        .expect("fetch")
        .expect("present");
    assert_eq!(fetched.bytes, bytes);
    assert_eq!(fetched.media_type, OCI_MANIFEST_MEDIA_TYPE);
}

#[test]
fn open_existing_refuses_a_path_that_is_not_a_layout_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("typo");
    let err = LayoutStore::open_existing(layout(&missing)).expect_err("not a layout");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("no OCI image layout"), "{err}");
    assert!(
        !missing.exists(),
        "open_existing created {}",
        missing.display()
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert!(LayoutStore::open_existing(layout(&empty)).is_err());
    assert!(entries(&empty).is_empty(), "wrote into an empty directory");
    // A real layout opens.
    LayoutStore::open(layout(&empty)).expect("create");
    LayoutStore::open_existing(layout(&empty)).expect("now it is one");
}

#[test]
fn blob_intact_reads_and_hashes_the_blob() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = LayoutStore::open(layout(&tmp.path().join("store"))).expect("open");
    let (path, digest) = write_blob_file(tmp.path(), "blob", 1024, 3);
    assert!(!store.blob_intact(&digest).expect("check"), "absent blob");
    store
        .push_blob(&digest, 1024, &path, &mut |_| {})
        .expect("push");
    assert!(store.blob_intact(&digest).expect("check"));
    let file = tmp.path().join("store/blobs/sha256").join(digest.hex());
    std::fs::write(&file, b"corrupt").expect("corrupt");
    assert!(
        store.blob_exists(&digest).expect("exists"),
        "the file is there"
    );
    assert!(
        !store.blob_intact(&digest).expect("check"),
        "corrupt is not intact"
    );
}

/// Like a registry (MANIFEST_BLOB_UNKNOWN), the layout refuses a manifest that names a blob it
/// lacks, and writes nothing: no tag, no manifest blob.
#[test]
fn a_manifest_over_a_missing_blob_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let store = LayoutStore::open(layout(&dir)).expect("open");
    let scratch = tempfile::tempdir().expect("scratch");
    let (bytes, _) = store_artifact(&store, scratch.path(), &["ok"]);
    let missing = Digest::of(b"never pushed");
    let config = Digest::of(b"{}");
    let dangling = manifest(
        (&config, 2),
        (&missing, 12),
        "main@sha1:4444444444444444444444444444444444444444",
    );
    let err = store
        .put_manifest(&tag("dangling"), OCI_MANIFEST_MEDIA_TYPE, &dangling)
        .expect_err("a manifest over a missing layer");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains(missing.as_str()), "{err}");
    assert_eq!(store.resolve(&tag("dangling")).expect("resolve"), None);
    assert!(!store.blob_exists(&Digest::of(&dangling)).expect("stat"));
    // The artifact whose blobs are there is still accepted under another tag.
    store
        .put_manifest(&tag("again"), OCI_MANIFEST_MEDIA_TYPE, &bytes)
        .expect("a manifest over present blobs");
}
