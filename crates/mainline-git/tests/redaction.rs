//! Credentials never show: URLs print redacted in Display, Debug and every error, tokens
//! never print, and git's own messages are scrubbed.

mod support;

use mainline_git::{GitRemote, RemoteOptions, RemoteUrl, Token};
use std::time::Duration;
use support::Fixture;

const SECRET: &str = "s3cr3t-pa55";

#[test]
fn urls_with_userinfo_print_redacted() {
    let url =
        RemoteUrl::parse(&format!("https://bot:{SECRET}@github.com/org/repo.git")).expect("url");
    assert_eq!(url.to_string(), "https://***@github.com/org/repo.git");
    assert_eq!(url.redacted(), "https://***@github.com/org/repo.git");
    assert!(!format!("{url:?}").contains(SECRET));
    assert_eq!(url.host(), Some("github.com"));
    // A token-only userinfo is hidden too.
    let url = RemoteUrl::parse(&format!("https://{SECRET}@example.com/r.git")).expect("url");
    assert_eq!(url.to_string(), "https://***@example.com/r.git");
    // Plain URLs, scp-like ssh and paths print as given.
    for plain in [
        "https://github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "ssh://host/r.git",
    ] {
        assert_eq!(RemoteUrl::parse(plain).expect("url").to_string(), plain);
    }
    // The cache key ignores credentials, so rotating them keeps the cache.
    let a = RemoteUrl::parse("https://a:1@github.com/org/repo.git").expect("url");
    let b = RemoteUrl::parse("https://b:2@github.com/org/repo.git").expect("url");
    assert_eq!(a.cache_key(), b.cache_key());
    assert_eq!(a.cache_key().len(), 16);
}

#[test]
fn invalid_urls_are_reported_redacted() {
    let err = RemoteUrl::parse(&format!("ht tp://user:{SECRET}@host/x")).expect_err("bad scheme");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(err.to_string().contains("***"), "{err}");
    for bad in ["", "  ", "-upload-pack=evil", "https://x\n"] {
        assert!(RemoteUrl::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn errors_from_git_never_contain_the_credentials() {
    let fx = Fixture::new();
    // Nothing listens on port 9 of the loopback: git fails fast, mentioning the URL.
    let url = format!("https://user:{SECRET}@127.0.0.1:9/org/repo.git");
    let token = Token::new("tok-ABCDEF-123").expect("token");
    let remote = GitRemote::open_with(
        &url,
        &fx.cache_root("cache"),
        RemoteOptions {
            token: Some(token.clone()),
            timeout: Duration::from_secs(60),
        },
    )
    .expect("open does not contact the remote");
    assert!(!remote.to_string().contains(SECRET));
    let debug = format!("{remote:?}");
    assert!(
        !debug.contains(SECRET) && !debug.contains("tok-ABCDEF"),
        "{debug}"
    );
    assert!(!format!("{token:?}").contains("tok-ABCDEF"));

    let err = remote
        .remote_refs("main")
        .expect_err("nothing listens there");
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        shown.contains("https://***@127.0.0.1:9/org/repo.git"),
        "{shown}"
    );
    let err = remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect_err("unreachable");
    assert!(!format!("{err} {err:?}").contains(SECRET), "{err:?}");
    // Nothing on disk either.
    let config = std::fs::read_to_string(remote.cache_path().join("config")).expect("config");
    assert!(
        !config.contains(SECRET) && !config.contains("127.0.0.1"),
        "{config}"
    );
}

#[test]
fn tokens_come_from_the_environment_by_host() {
    let github = RemoteUrl::parse("https://github.com/org/repo.git").expect("url");
    let other = RemoteUrl::parse("https://git.example.com/org/repo.git").expect("url");
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let both = env(&[("MAINLINE_GIT_TOKEN", "m"), ("GITHUB_TOKEN", "g")]);
    assert_eq!(Token::for_url(&github, both), Token::new("m"));
    let gh_only = env(&[("GITHUB_TOKEN", "g")]);
    assert_eq!(Token::for_url(&github, gh_only), Token::new("g"));
    assert_eq!(
        Token::for_url(&other, gh_only),
        None,
        "GITHUB_TOKEN is for github.com only"
    );
    assert_eq!(
        Token::for_url(&other, env(&[("MAINLINE_GIT_TOKEN", " ")])),
        None
    );
}
