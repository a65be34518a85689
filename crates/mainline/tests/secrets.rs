//! Issue 10 item 11, secrets at `-vv`: a token endpoint (or a registry) that answers an error
//! body echoing the Authorization header it received must not put the password, or
//! base64(user:password), on stdout or stderr — at any log level, in text or JSON.
//!
//! The peers are loopback fakes (support/loopback.rs): no real registry echoes credentials on
//! demand. Each case first proves the credentials were really sent to the echoing endpoint.

#[path = "support/loopback.rs"]
mod loopback;
mod support;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::sync::atomic::Ordering;
use support::*;

const USER: &str = "robot-deployer";

/// Arguments and extra environment of one run.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// The password and every form of it that must never be printed.
fn forbidden(password: &str) -> Vec<String> {
    let pair = format!("{USER}:{password}");
    let mut forms = vec![password.to_owned()];
    for bytes in [pair.as_bytes(), password.as_bytes()] {
        forms.push(STANDARD.encode(bytes));
        forms.push(STANDARD_NO_PAD.encode(bytes));
        forms.push(URL_SAFE.encode(bytes));
        forms.push(URL_SAFE_NO_PAD.encode(bytes));
    }
    forms
}

fn assert_clean(run: &Run, password: &str, what: &str) {
    for form in forbidden(password) {
        assert!(
            !run.stdout.contains(&form) && !run.stderr.contains(&form),
            "{what}: a form of the password ({form}) was printed\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
}

fn runs_against(realm: loopback::Realm, password: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _) = loopback::token_registry(realm);
    let reference = format!("oci://127.0.0.1:{port}/acme/app:latest");
    let env = [
        ("MAINLINE_TIMEOUT", "20s"),
        ("MAINLINE_REGISTRY_USERNAME", USER),
        ("MAINLINE_REGISTRY_PASSWORD", password),
    ];
    let cases: [Case; 4] = [
        (&["-vv", "inspect", &reference], &[]),
        (&["-vv", "-o", "json", "inspect", &reference], &[]),
        (&["-vv", "--log-format", "json", "inspect", &reference], &[]),
        (&["inspect", &reference], &[("RUST_LOG", "trace")]),
    ];
    for (args, extra) in cases {
        let before = loopback::ECHOED.load(Ordering::SeqCst);
        let all_env: Vec<(&str, &str)> = env.iter().chain(extra.iter()).copied().collect();
        let run = mainline_in(tmp.path(), args, &all_env);
        assert!(
            loopback::ECHOED.load(Ordering::SeqCst) > before,
            "{args:?}: the credentials never reached the echoing endpoint, so this proves nothing\nstderr:\n{}",
            run.stderr
        );
        assert_ne!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.is_empty(),
            "{args:?}: expected logs and an error on stderr"
        );
        assert_clean(&run, password, &format!("{args:?} {extra:?}"));
    }
}

#[test]
fn a_token_endpoint_echoing_the_authorization_header_never_reaches_the_output() {
    runs_against(
        loopback::Realm::EchoCredentials,
        "s3cr3t-Pa55word-token-echo",
    );
}

#[test]
fn a_registry_echoing_basic_credentials_in_a_500_never_reaches_the_output() {
    runs_against(loopback::Realm::BasicEcho, "s3cr3t-Pa55word-basic-echo");
}

/// The output writer redacts per line: a secret written in single bytes, inside a long line
/// (a JSON document is one line), is still replaced, and text after the last newline waits for
/// the flush. (The writer once rescanned the whole pending line on every write: quadratic, a
/// minute for `history -o json` of 3,000 records.)
#[test]
fn the_redacting_writer_replaces_secrets_split_across_writes() {
    use std::io::Write;
    let secret = "s3cr3t-redact-writer-token";
    mainline::redact::register(secret);
    let mut out = Vec::new();
    {
        let mut w = mainline::redact::Redacting::new(&mut out);
        let line = format!(
            "{}{secret}{}\nnext {secret}",
            "x".repeat(200_000),
            "y".repeat(10)
        );
        for b in line.as_bytes() {
            w.write_all(std::slice::from_ref(b)).expect("write");
        }
        w.flush().expect("flush");
    }
    let text = String::from_utf8(out).expect("utf8");
    assert!(!text.contains(secret), "a secret reached the output");
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with("next ***"), "{}", &text[text.len() - 40..]);
}
