//! Credentials: secrets never shown, GitHub App installation tokens exchanged with an RS256
//! JWT and cached until shortly before they expire, and settings validated up front.

mod common;

use common::{commit, config, OWNER, REPO};
use mainline_github::fake::{
    Failure, FakeEntry, FakeGithub, ManualClock, TEST_APP_PRIVATE_KEY, TEST_APP_PUBLIC_KEY,
};
use mainline_github::{
    Clock, ErrorKind, GithubClient, GithubConfig, GithubError, Token, REFRESH_MARGIN,
};
use std::sync::Arc;
use std::time::Duration;

const SECRET_TOKEN: &str = "ghp_secretTokenThatMustNeverLeak0123456789";
const INSTALLATION: u64 = 777;

fn fake_with_queue(clock: Option<Arc<dyn Clock>>) -> FakeGithub {
    let fake = match clock {
        Some(c) => FakeGithub::start_with_clock(c),
        None => FakeGithub::start(),
    };
    fake.set_queue(
        OWNER,
        REPO,
        "main",
        vec![FakeEntry::new(
            42,
            "AWAITING_CHECKS",
            &commit(2),
            &commit(1),
        )],
    );
    fake.add_commit(&commit(1), &[]);
    fake.add_commit(&commit(2), &[&commit(1)]);
    fake
}

fn app_token(app_id: &str) -> Token {
    Token::App {
        app_id: app_id.to_owned(),
        installation_id: INSTALLATION,
        private_key_pem: mainline_github::Secret::new(TEST_APP_PRIVATE_KEY),
    }
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET_TOKEN),
        "{what} leaks the token: {text}"
    );
    assert!(
        !text.contains("secretToken"),
        "{what} leaks part of the token: {text}"
    );
}

#[test]
fn token_is_absent_from_debug_output() {
    let fake = fake_with_queue(None);
    let settings = config(
        &fake,
        Token::plain(SECRET_TOKEN),
        Arc::new(ManualClock::at(0)),
    );
    assert_no_secret("config Debug", &format!("{settings:?}"));
    assert_no_secret("token Debug", &format!("{:?}", Token::plain(SECRET_TOKEN)));
    let gh = GithubClient::new(settings).expect("valid settings");
    assert_no_secret("client Debug", &format!("{gh:?}"));
    assert_no_secret("client pretty Debug", &format!("{gh:#?}"));

    let app = format!("{:?}", app_token("Iv1.abc"));
    assert!(!app.contains("PRIVATE KEY"), "{app}");
    assert!(app.contains("Iv1.abc") && app.contains("777"), "{app}");
}

#[test]
fn token_is_absent_from_every_error() {
    let fake = fake_with_queue(None);
    fake.accept_token(SECRET_TOKEN);
    let clock = ManualClock::at(1_700_000_000_000);
    let mut settings = config(&fake, Token::plain(SECRET_TOKEN), Arc::new(clock));
    settings.max_rate_limit_wait = Duration::from_secs(1);
    let gh = GithubClient::new(settings).expect("valid settings");
    let queue = |gh: &GithubClient| gh.in_flight_groups(OWNER, REPO, "main").map(|_| ());
    let compare = |gh: &GithubClient| {
        gh.is_ancestor(
            OWNER,
            REPO,
            &commit(1).parse().expect("id"),
            &commit(99).parse().expect("id"),
        )
        .map(|_| ())
    };

    let mut errors: Vec<GithubError> = Vec::new();
    fake.fail_next(Failure::ServerError, 4);
    errors.push(queue(&gh).expect_err("server error"));
    fake.fail_next(
        Failure::RateLimitReset {
            reset_at_unix: 1_800_000_000,
        },
        1,
    );
    errors.push(queue(&gh).expect_err("rate limited"));
    fake.fail_next(Failure::Forbidden, 1);
    errors.push(queue(&gh).expect_err("forbidden"));
    // GitHub echoing the token back is redacted before it reaches an error.
    fake.fail_next(
        Failure::GraphqlErrors {
            message: format!("token {SECRET_TOKEN} lacks scope"),
        },
        1,
    );
    let echoed = queue(&gh).expect_err("graphql errors");
    assert!(
        echoed.to_string().contains("token <redacted> lacks scope"),
        "{echoed}"
    );
    errors.push(echoed);
    errors.push(compare(&gh).expect_err("not found"));
    errors.push(
        gh.in_flight_groups(OWNER, REPO, "develop")
            .expect_err("no queue"),
    );
    let stranger = GithubClient::new(config(
        &fake,
        Token::plain(format!("{SECRET_TOKEN}-revoked")),
        Arc::new(ManualClock::at(0)),
    ))
    .expect("valid settings");
    errors.push(queue(&stranger).expect_err("unauthorized"));

    for err in &errors {
        assert_no_secret("error Display", &err.to_string());
        assert_no_secret("error Debug", &format!("{err:?}"));
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            assert_no_secret("error source", &s.to_string());
            source = s.source();
        }
    }
    assert_eq!(errors.len(), 7);
}

#[test]
fn app_installation_token_is_exchanged_once_and_cached() {
    let fake = fake_with_queue(None);
    fake.register_app(
        "Iv1.mainline",
        INSTALLATION,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let gh = GithubClient::new(config(
        &fake,
        app_token("Iv1.mainline"),
        Arc::new(mainline_github::SystemClock),
    ))
    .expect("the test key parses");
    assert_eq!(
        gh.in_flight_groups(OWNER, REPO, "main")
            .expect("reads")
            .len(),
        1
    );
    assert!(gh
        .is_ancestor(
            OWNER,
            REPO,
            &commit(1).parse().expect("id"),
            &commit(2).parse().expect("id")
        )
        .expect("answers"));
    assert_eq!(fake.tokens_issued(), 1);

    let requests = fake.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths[0], "/app/installations/777/access_tokens");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(paths[1], "/graphql");
    assert!(paths[2].starts_with("/repos/octocat/Hello-World/compare/"));
    assert!(requests.iter().all(|r| r.authorized), "{requests:?}");
}

#[test]
fn numeric_app_id_is_accepted_as_issuer() {
    let fake = fake_with_queue(None);
    fake.register_app(
        "123456",
        INSTALLATION,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let gh = GithubClient::new(config(
        &fake,
        app_token("123456"),
        Arc::new(mainline_github::SystemClock),
    ))
    .expect("the test key parses");
    assert_eq!(
        gh.in_flight_groups(OWNER, REPO, "main")
            .expect("reads")
            .len(),
        1
    );
    assert_eq!(fake.tokens_issued(), 1);
}

#[test]
fn installation_token_is_renewed_shortly_before_it_expires() {
    let clock = ManualClock::starting_now();
    let fake = fake_with_queue(Some(Arc::new(clock.clone())));
    fake.register_app(
        "Iv1.mainline",
        INSTALLATION,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let gh = GithubClient::new(config(
        &fake,
        app_token("Iv1.mainline"),
        Arc::new(clock.clone()),
    ))
    .expect("the test key parses");
    let read = || gh.in_flight_groups(OWNER, REPO, "main").expect("reads");

    read();
    assert_eq!(fake.tokens_issued(), 1);
    // Just inside the hour minus the refresh margin: still cached.
    clock.advance(Duration::from_secs(3600) - REFRESH_MARGIN - Duration::from_secs(2));
    read();
    assert_eq!(fake.tokens_issued(), 1);
    // Past it: a new token, before the old one expired.
    clock.advance(Duration::from_secs(3));
    read();
    assert_eq!(fake.tokens_issued(), 2);
    read();
    assert_eq!(fake.tokens_issued(), 2);
}

#[test]
fn a_revoked_installation_token_is_replaced_once() {
    let fake = fake_with_queue(None);
    fake.register_app(
        "Iv1.mainline",
        INSTALLATION,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let gh = GithubClient::new(config(
        &fake,
        app_token("Iv1.mainline"),
        Arc::new(mainline_github::SystemClock),
    ))
    .expect("the test key parses");
    gh.in_flight_groups(OWNER, REPO, "main").expect("reads");
    fake.revoke_installation_tokens();
    gh.in_flight_groups(OWNER, REPO, "main")
        .expect("reads with a fresh token");
    assert_eq!(fake.tokens_issued(), 2);
    let unauthorized = fake.requests().iter().filter(|r| !r.authorized).count();
    assert_eq!(unauthorized, 1);
}

#[test]
fn a_jwt_github_does_not_accept_is_unauthorized() {
    let fake = fake_with_queue(None);
    // The fake knows the installation under another App id, so our JWT's `iss` is wrong.
    fake.register_app(
        "Iv1.someone-else",
        INSTALLATION,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let gh = GithubClient::new(config(
        &fake,
        app_token("Iv1.mainline"),
        Arc::new(mainline_github::SystemClock),
    ))
    .expect("the test key parses");
    let err = gh
        .in_flight_groups(OWNER, REPO, "main")
        .expect_err("JWT refused");
    assert!(matches!(err, GithubError::Unauthorized { .. }), "{err:?}");
    assert_eq!(fake.tokens_issued(), 0);
    // One exchange attempt, no loop.
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn a_bad_private_key_fails_at_construction_without_echoing_it() {
    let fake = FakeGithub::start();
    let token = Token::App {
        app_id: "Iv1.mainline".to_owned(),
        installation_id: INSTALLATION,
        private_key_pem: mainline_github::Secret::new(
            "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
        ),
    };
    let err = GithubClient::new(config(&fake, token, Arc::new(ManualClock::at(0))))
        .expect_err("not a key");
    assert!(
        matches!(err, GithubError::InvalidPrivateKey { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Iv1.mainline"), "{err}");
    assert!(!err.to_string().contains("bm90IGEga2V5"), "{err}");
    assert!(!format!("{err:?}").contains("bm90IGEga2V5"), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn settings_are_validated_before_any_request() {
    let base = || {
        let mut c = GithubConfig::new(Token::plain(SECRET_TOKEN));
        c.clock = Arc::new(ManualClock::at(0));
        c
    };
    let field_of = |c: GithubConfig| match GithubClient::new(c) {
        Err(GithubError::Config { field, reason }) => {
            assert_no_secret("config error", &reason);
            field
        }
        other => panic!("expected a Config error, got {other:?}"),
    };

    let mut c = base();
    c.api_url = format!("https://user:{SECRET_TOKEN}@api.github.com");
    assert_eq!(field_of(c), "api_url");
    let mut c = base();
    c.graphql_url = "not a url".to_owned();
    assert_eq!(field_of(c), "graphql_url");
    let mut c = base();
    c.api_url = "ftp://api.github.com".to_owned();
    assert_eq!(field_of(c), "api_url");
    let mut c = base();
    c.user_agent = " ".to_owned();
    assert_eq!(field_of(c), "user_agent");
    let mut c = base();
    c.timeout = Duration::ZERO;
    assert_eq!(field_of(c), "timeout");
    let mut c = base();
    c.token = Token::plain("");
    assert_eq!(field_of(c), "token");
    let mut c = base();
    c.token = Token::plain(format!("{SECRET_TOKEN}\n"));
    assert_eq!(field_of(c), "token");

    let defaults = base();
    assert_eq!(defaults.api_url, "https://api.github.com");
    assert_eq!(defaults.graphql_url, "https://api.github.com/graphql");
    assert!(GithubClient::new(defaults).is_ok());
}
