//! X-Hub-Signature-256 verification and replay detection.

use mainline_github::fake::Delivery;
use mainline_github::webhook::{sign, verify_signature, ReplayGuard, WebhookError, MAX_BODY_BYTES};

const SECRET: &[u8] = b"webhook-secret-for-tests";
const BODY: &[u8] = br#"{"zen":"Keep it logically awesome."}"#;

#[test]
fn github_documented_test_vector_verifies() {
    // From docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries.
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(sign(secret, body), header);
    assert_eq!(verify_signature(secret, body, Some(header)), Ok(()));
}

/// (name, body, header, expected).
type Case<'a> = (&'a str, &'a [u8], Option<&'a str>, Result<(), WebhookError>);

#[test]
fn signature_table() {
    let good = sign(SECRET, BODY);
    let other_secret = sign(b"another-secret", BODY);
    let uppercase = format!("sha256={}", good["sha256=".len()..].to_uppercase());
    // The same digest with its last hex digit changed: a comparison that stopped early, or
    // compared a prefix, would accept it.
    let mut last_digit = good.clone();
    let flipped = if last_digit.ends_with('0') { '1' } else { '0' };
    last_digit.pop();
    last_digit.push(flipped);
    let sha1_prefixed = good.replacen("sha256=", "sha1=", 1);
    let short = good[..good.len() - 2].to_owned();
    let not_hex = format!("sha256={}", "zz".repeat(32));
    let padded = format!(" {good} ");

    let malformed = |reason: &'static str| Err(WebhookError::MalformedSignature { reason });
    let cases: Vec<Case<'_>> = vec![
        ("good signature", BODY, Some(good.as_str()), Ok(())),
        (
            "surrounding whitespace",
            BODY,
            Some(padded.as_str()),
            Ok(()),
        ),
        ("uppercase hex", BODY, Some(uppercase.as_str()), Ok(())),
        (
            "signed with another secret",
            BODY,
            Some(other_secret.as_str()),
            Err(WebhookError::SignatureMismatch),
        ),
        (
            "last digit changed",
            BODY,
            Some(last_digit.as_str()),
            Err(WebhookError::SignatureMismatch),
        ),
        (
            "body altered",
            br#"{"zen":"Keep it logically awesome!"}"#,
            Some(good.as_str()),
            Err(WebhookError::SignatureMismatch),
        ),
        (
            "missing header",
            BODY,
            None,
            Err(WebhookError::MissingSignature),
        ),
        (
            "sha1= prefix",
            BODY,
            Some(sha1_prefixed.as_str()),
            malformed("it does not start with `sha256=`"),
        ),
        (
            "no prefix",
            BODY,
            Some(&good["sha256=".len()..]),
            malformed("it does not start with `sha256=`"),
        ),
        (
            "digest too short",
            BODY,
            Some(short.as_str()),
            malformed("the digest is not 64 hex digits"),
        ),
        (
            "digest not hex",
            BODY,
            Some(not_hex.as_str()),
            malformed("the digest is not hexadecimal"),
        ),
        (
            "empty header",
            BODY,
            Some(""),
            malformed("it does not start with `sha256=`"),
        ),
    ];
    for (name, body, header, expected) in cases {
        assert_eq!(
            verify_signature(SECRET, body, header),
            expected,
            "case: {name}"
        );
    }
}

#[test]
fn empty_secret_is_refused_even_with_a_matching_signature() {
    let header = sign(b"", BODY);
    assert_eq!(
        verify_signature(b"", BODY, Some(&header)),
        Err(WebhookError::EmptySecret)
    );
}

#[test]
fn oversized_body_is_refused_before_hashing() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let header = sign(SECRET, &body);
    assert_eq!(
        verify_signature(SECRET, &body, Some(&header)),
        Err(WebhookError::TooLarge {
            len: MAX_BODY_BYTES + 1,
            max: MAX_BODY_BYTES
        })
    );
    let at_cap = vec![b' '; MAX_BODY_BYTES];
    assert_eq!(
        verify_signature(SECRET, &at_cap, Some(&sign(SECRET, &at_cap))),
        Ok(())
    );
}

#[test]
fn errors_never_echo_the_secret() {
    let secret = b"s3cr3t-value-that-must-not-leak";
    let errors = [
        verify_signature(secret, BODY, None),
        verify_signature(secret, BODY, Some("sha256=00")),
        verify_signature(secret, BODY, Some(&sign(b"other", BODY))),
    ];
    for e in errors {
        let e = e.expect_err("each case fails");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
    }
}

#[test]
fn fake_delivery_carries_githubs_headers_and_a_valid_signature() {
    let d = Delivery::new(SECRET, "ping", "72d3162e-cc78-11e3-81ab-4c9367dc0958", BODY);
    let headers = d.headers();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("X-GitHub-Event").as_deref(), Some("ping"));
    assert_eq!(
        get("X-GitHub-Delivery").as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    let signature = get("X-Hub-Signature-256").expect("signed");
    assert_eq!(verify_signature(SECRET, &d.body, Some(&signature)), Ok(()));
    assert_eq!(mainline_github::fake::sign(SECRET, BODY), signature);
}

#[test]
fn replayed_delivery_is_recognised() {
    let mut guard = ReplayGuard::default();
    let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    assert_eq!(guard.check_and_record(id), Ok(()));
    assert_eq!(
        guard.check_and_record(id),
        Err(WebhookError::Replayed {
            delivery: id.to_owned()
        })
    );
    assert_eq!(guard.check_and_record("another-id"), Ok(()));
    assert_eq!(guard.len(), 2);
}

#[test]
fn replay_guard_forgets_the_oldest_beyond_its_capacity() {
    let mut guard = ReplayGuard::new(3);
    for id in ["a", "b", "c", "d"] {
        assert_eq!(guard.check_and_record(id), Ok(()), "{id}");
    }
    assert_eq!(guard.len(), 3);
    // "a" was evicted by "d"; "b".."d" are still remembered.
    assert!(matches!(
        guard.check_and_record("c"),
        Err(WebhookError::Replayed { .. })
    ));
    assert!(matches!(
        guard.check_and_record("d"),
        Err(WebhookError::Replayed { .. })
    ));
    assert_eq!(guard.check_and_record("a"), Ok(()));
    // Recording "a" again evicted "b".
    assert_eq!(guard.check_and_record("b"), Ok(()));
}

#[test]
fn default_replay_guard_remembers_ten_thousand_deliveries() {
    let mut guard = ReplayGuard::default();
    assert_eq!(ReplayGuard::DEFAULT_CAPACITY, 10_000);
    for n in 0..=10_000u32 {
        guard
            .check_and_record(&format!("delivery-{n}"))
            .expect("all distinct");
    }
    assert_eq!(guard.len(), 10_000);
    assert!(matches!(
        guard.check_and_record("delivery-1"),
        Err(WebhookError::Replayed { .. })
    ));
    assert_eq!(guard.check_and_record("delivery-0"), Ok(()));
}

#[test]
fn unusable_delivery_ids_are_rejected_and_not_recorded() {
    let mut guard = ReplayGuard::default();
    let long = "x".repeat(129);
    for bad in ["", "has space", "tab\there", long.as_str(), "ünïcode"] {
        assert!(
            matches!(
                guard.check_and_record(bad),
                Err(WebhookError::BadDeliveryId { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(guard.is_empty());
}
