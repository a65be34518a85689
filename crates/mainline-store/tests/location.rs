//! Parsing and printing store locations and references.

use mainline_core::{Digest, Tag};
use mainline_store::{Location, LocationError, Reference, ReferenceTarget};
use std::path::PathBuf;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn both_forms_named(message: &str) {
    assert!(message.contains("oci://HOST[:PORT]/REPO"), "{message}");
    assert!(message.contains("oci-layout:PATH"), "{message}");
}

#[test]
fn registry_locations_parse_and_round_trip() {
    for text in [
        "oci://ghcr.io/acme/deploy",
        "oci://127.0.0.1:5000/a",
        "oci://localhost:5000/team/app/k8s",
        "oci://[::1]:5000/x",
        "oci://registry.example.com/a.b_c__d--e/f-g",
    ] {
        let location: Location = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(location.to_string(), text);
    }
    let location: Location = "oci://127.0.0.1:5000/team/app".parse().expect("valid");
    assert_eq!(
        location,
        Location::Registry {
            registry: "127.0.0.1:5000".to_owned(),
            repository: "team/app".to_owned(),
        }
    );
    assert_eq!(location.registry_host(), Some("127.0.0.1:5000"));
}

#[test]
fn layout_locations_parse_and_round_trip() {
    for text in [
        "oci-layout:./store",
        "oci-layout:/var/lib/mainline",
        "oci-layout:dir:with:colons",
    ] {
        let location: Location = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(location.to_string(), text);
        assert_eq!(location.registry_host(), None);
    }
    let location: Location = "oci-layout:./store".parse().expect("valid");
    assert_eq!(
        location,
        Location::Layout {
            path: PathBuf::from("./store")
        }
    );
}

#[test]
fn malformed_locations_are_rejected_with_both_forms() {
    for text in [
        "ghcr.io/acme/deploy",
        "https://ghcr.io/acme/deploy",
        "oci://ghcr.io",
        "oci://ghcr.io/",
        "oci://ghcr.io/Acme/deploy",
        "oci://ghcr.io/acme//deploy",
        "oci://ghcr.io/acme/-deploy",
        "oci://ghcr.io/acme/de___ploy",
        "oci://ghcr.io/acme/deploy:latest",
        "oci://gh cr.io/acme",
        "oci://host:0/a",
        "oci://host:99999/a",
        "oci://host:/a",
        "oci://user:pass@host/a",
        "oci-layout:",
        "",
    ] {
        let err = text.parse::<Location>().expect_err(text);
        both_forms_named(&err.to_string());
        assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
    }
}

#[test]
fn references_split_at_the_last_colon_or_at_after_the_last_slash() {
    let cases = [
        (
            "oci://127.0.0.1:5000/team/app:latest",
            "oci://127.0.0.1:5000/team/app",
            ReferenceTarget::Tag("latest".parse::<Tag>().expect("tag")),
        ),
        (
            "oci-layout:./dir:latest",
            "oci-layout:./dir",
            ReferenceTarget::Tag("latest".parse::<Tag>().expect("tag")),
        ),
        (
            "oci-layout:dir:v1.2",
            "oci-layout:dir",
            ReferenceTarget::Tag("v1.2".parse::<Tag>().expect("tag")),
        ),
        (
            &format!("oci://ghcr.io/acme/deploy@sha256:{HEX}"),
            "oci://ghcr.io/acme/deploy",
            ReferenceTarget::Digest(format!("sha256:{HEX}").parse::<Digest>().expect("digest")),
        ),
        (
            &format!("oci-layout:/srv/store@sha256:{HEX}"),
            "oci-layout:/srv/store",
            ReferenceTarget::Digest(format!("sha256:{HEX}").parse::<Digest>().expect("digest")),
        ),
    ];
    for (text, store, target) in cases {
        let reference: Reference = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(reference.location.to_string(), store, "{text}");
        assert_eq!(reference.target, target, "{text}");
        assert_eq!(reference.to_string(), text);
    }
}

#[test]
fn a_reference_without_tag_or_digest_names_both_forms() {
    for text in [
        "oci://127.0.0.1:5000/team/app",
        "oci-layout:./dir",
        "oci-layout:store",
    ] {
        let err = text.parse::<Reference>().expect_err(text);
        assert!(
            matches!(err, LocationError::MissingTarget { .. }),
            "{text}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("STORE:TAG"), "{message}");
        assert!(message.contains("STORE@sha256:HEX"), "{message}");
    }
}

#[test]
fn a_reference_with_a_bad_tag_or_digest_is_rejected() {
    for text in [
        "oci://ghcr.io/acme/deploy:-bad",
        "oci://ghcr.io/acme/deploy@sha256:abc",
        "oci-layout:./dir@md5:0011",
        "oci-layout:./dir:",
    ] {
        let err = text.parse::<Reference>().expect_err(text);
        assert!(
            matches!(err, LocationError::Target { .. }),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains("STORE:TAG"), "{err}");
    }
}

#[test]
fn loopback_registries_are_recognised() {
    for (text, loopback) in [
        ("oci://127.0.0.1:5000/a", true),
        ("oci://127.8.9.10/a", true),
        ("oci://localhost:5000/a", true),
        ("oci://LOCALHOST/a", true),
        ("oci://[::1]:5000/a", true),
        ("oci://[::2]:5000/a", false),
        ("oci://128.0.0.1/a", false),
        ("oci://ghcr.io/a", false),
        ("oci://localhost.example.com/a", false),
        ("oci-layout:./localhost", false),
    ] {
        let location: Location = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(location.is_loopback(), loopback, "{text}");
    }
}
