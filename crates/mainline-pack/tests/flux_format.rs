//! The manifest encoding and parsing of Flux artifacts.

mod common;

use mainline_core::Digest;
use mainline_pack::{
    manifest_bytes, parse_manifest, Descriptor, FormatError, FLUX_CONFIG_BYTES,
    FLUX_CONFIG_MEDIA_TYPE, FLUX_LAYER_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
};

fn layer() -> Descriptor {
    Descriptor::of(FLUX_LAYER_MEDIA_TYPE, b"pretend this is a gzip tar")
}

fn config() -> Descriptor {
    Descriptor::of(FLUX_CONFIG_MEDIA_TYPE, FLUX_CONFIG_BYTES)
}

#[test]
fn manifest_round_trips_and_is_flux() {
    let meta = common::meta();
    let bytes = manifest_bytes(&config(), &layer(), &meta);
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert!(
        !text.contains(' ') && !text.contains('\n'),
        "compact: {text}"
    );
    assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"#));
    let parsed = parse_manifest(&bytes).expect("parses");
    assert!(parsed.is_flux());
    assert_eq!(parsed.media_type.as_deref(), Some(OCI_MANIFEST_MEDIA_TYPE));
    assert_eq!(parsed.config, config());
    assert_eq!(parsed.layers, [layer()]);
    assert_eq!(
        parsed.revision().expect("present").expect("valid"),
        meta.revision
    );
    let keys: Vec<&str> = parsed.annotations.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "org.opencontainers.image.created",
            "org.opencontainers.image.revision",
            "org.opencontainers.image.source"
        ]
    );
    assert_eq!(config().size, 2);
    assert_eq!(config().digest, Digest::of(b"{}"));
}

#[test]
fn manifest_bytes_depend_on_every_input() {
    let meta = common::meta();
    let base = manifest_bytes(&config(), &layer(), &meta);
    assert_eq!(
        base,
        manifest_bytes(&config(), &layer(), &meta),
        "deterministic"
    );
    let other_layer = Descriptor::of(FLUX_LAYER_MEDIA_TYPE, b"another layer");
    assert_ne!(base, manifest_bytes(&config(), &other_layer, &meta));
    let mut later = meta.clone();
    later.created = "2024-05-02T12:00:00Z".to_owned();
    assert_ne!(base, manifest_bytes(&config(), &layer(), &later));
    let other = common::meta_for("89abcdef0123456789abcdef0123456789abcdef");
    assert_ne!(base, manifest_bytes(&config(), &layer(), &other));
}

#[test]
fn foreign_manifests_are_not_flux() {
    let docker_image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
    let parsed = parse_manifest(docker_image).expect("a valid OCI manifest");
    assert!(!parsed.is_flux());
    assert!(parsed.revision().is_none(), "no annotations at all");

    let d = r#"{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;
    let two_layers = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"{FLUX_CONFIG_MEDIA_TYPE}","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[{d},{d}],"annotations":{{"org.opencontainers.image.revision":"main@sha1:nothex"}}}}"#
    );
    let parsed = parse_manifest(two_layers.as_bytes()).expect("valid JSON");
    assert!(!parsed.is_flux(), "exactly one layer");
    assert_eq!(parsed.media_type, None);
    assert!(
        parsed.revision().expect("present").is_err(),
        "malformed revision is reported"
    );
    let one_layer = two_layers.replacen(&format!(",{d}"), "", 1);
    assert!(
        parse_manifest(one_layer.as_bytes())
            .expect("valid")
            .is_flux(),
        "mediaType is optional"
    );
}

#[test]
fn invalid_manifests_are_errors() {
    assert!(matches!(
        parse_manifest(b"{not json"),
        Err(FormatError::ManifestJson(_))
    ));
    assert!(matches!(
        parse_manifest(br#"{"schemaVersion":2}"#),
        Err(FormatError::ManifestJson(_))
    ));
    let v1 = br#"{"schemaVersion":1,"config":{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}"#;
    assert!(matches!(
        parse_manifest(v1),
        Err(FormatError::SchemaVersion { found: 1 })
    ));
    let bad_digest =
        br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"md5:abc","size":2}}"#;
    assert!(matches!(
        parse_manifest(bad_digest),
        Err(FormatError::ManifestJson(_))
    ));
}
