use mainline_core::{CommitId, Digest, Revision, Tag};

const C: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn revision_forms_round_trip() {
    let r: Revision = format!("main@sha1:{C}").parse().unwrap();
    assert_eq!(r.reference.as_deref(), Some("main"));
    assert_eq!(r.to_string(), format!("main@sha1:{C}"));
    let bare: Revision = C.parse().unwrap();
    assert_eq!(bare.reference, None);
    assert_eq!(bare.to_string(), format!("sha1:{C}"));
    let q: Revision = format!("refs/heads/gh-readonly-queue/main/pr-7-{C}@sha1:{C}")
        .parse()
        .unwrap();
    assert_eq!(q.commit.as_str(), C);
}

/// Every form `flux push artifact --revision` has been given in the wild parses to the same
/// commit, so a `latest` that Flux's push wrote gets a real verdict.
#[test]
fn flux_revision_forms_parse_including_the_legacy_slash_form() {
    let cases = [
        (format!("main@sha1:{C}"), Some("main")),
        (format!("sha1:{C}"), None),
        (C.to_owned(), None),
        (format!("main/{C}"), Some("main")),
        (format!("refs/heads/main/{C}"), Some("refs/heads/main")),
        (format!("v1.2.3/{C}"), Some("v1.2.3")),
    ];
    for (text, reference) in cases {
        let r: Revision = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(r.commit.as_str(), C, "{text}");
        assert_eq!(r.reference.as_deref(), reference, "{text}");
    }
    let legacy: Revision = format!("main/{C}").parse().unwrap();
    assert_eq!(
        legacy.to_string(),
        format!("main@sha1:{C}"),
        "written back as flux 2 does"
    );
}

#[test]
fn bad_revisions_are_rejected_with_the_input_named() {
    for bad in [
        "",
        "main",
        "main@",
        "@sha1:abc",
        "main@sha1:XYZ",
        "main@md5:0123",
        &format!("main@sha1:{}", &C[..39]),
        &C.to_uppercase(),
        &format!("/{C}"),
        &format!("main/{}", &C[..39]),
        &format!("main@main/{C}"),
        &format!("ma in/{C}"),
    ] {
        let err = bad.parse::<Revision>().unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn tags_follow_the_distribution_grammar() {
    for ok in ["latest", "sha-abc", "v1.2.3", "_x", "A-b_c.d"] {
        ok.parse::<Tag>().unwrap();
    }
    for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"x".repeat(129)] {
        assert!(bad.parse::<Tag>().is_err(), "{bad}");
    }
}

#[test]
fn digests_and_artifact_tags() {
    let d = Digest::of(b"");
    assert_eq!(
        d.as_str(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        d.cosign_signature_tag().as_str(),
        format!("sha256-{}.sig", d.hex())
    );
    assert!("sha256:XYZ".parse::<Digest>().is_err());
    let c: CommitId = C.parse().unwrap();
    assert_eq!(c.artifact_tag().as_str(), format!("sha-{C}"));
    assert_eq!(c.artifact_tag().artifact_commit(), Some(c));
}
