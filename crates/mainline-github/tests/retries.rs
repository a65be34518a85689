//! GitHub's rate-limit and retry rules, against a fake that misbehaves on demand. Waits run on
//! a manual clock (recorded, not slept) except in one real-time test.

mod common;

use common::{client, commit, config, OWNER, REPO, TOKEN};
use mainline_github::fake::{Failure, FakeEntry, FakeGithub, ManualClock};
use mainline_github::{ErrorKind, GithubClient, GithubError, SystemClock, Token};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fake_with_queue() -> FakeGithub {
    let fake = FakeGithub::start();
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
    fake
}

fn read_queue(gh: &GithubClient) -> Result<usize, GithubError> {
    gh.in_flight_groups(OWNER, REPO, "main").map(|g| g.len())
}

#[test]
fn too_many_requests_with_retry_after_is_retried_after_waiting() {
    let fake = fake_with_queue();
    fake.fail_next(
        Failure::TooManyRequests {
            retry_after_secs: 2,
        },
        2,
    );
    let clock = ManualClock::at(1_700_000_000_000);
    let gh = client(&fake, Arc::new(clock.clone()));
    assert_eq!(read_queue(&gh).expect("succeeds after waiting"), 1);
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(2), Duration::from_secs(2)]
    );
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn ratelimit_reset_is_waited_for_exactly() {
    let fake = fake_with_queue();
    let now_ms = 1_700_000_000_250;
    fake.fail_next(
        Failure::RateLimitReset {
            reset_at_unix: 1_700_000_002,
        },
        1,
    );
    let clock = ManualClock::at(now_ms);
    let gh = client(&fake, Arc::new(clock.clone()));
    assert_eq!(read_queue(&gh).expect("succeeds after the reset"), 1);
    assert_eq!(clock.sleeps(), vec![Duration::from_millis(1_750)]);
    assert_eq!(clock.now_unix_millis(), 1_700_000_002_000);
}

#[test]
fn ratelimit_reset_in_real_time() {
    let fake = fake_with_queue();
    let clock = SystemClock;
    let start_ms = clock.now_unix_millis();
    // One to two seconds ahead: x-ratelimit-reset has whole-second resolution.
    let reset = start_ms / 1000 + 2;
    fake.fail_next(
        Failure::RateLimitReset {
            reset_at_unix: reset,
        },
        1,
    );
    let gh = client(&fake, Arc::new(clock));
    let started = Instant::now();
    assert_eq!(read_queue(&gh).expect("succeeds after the reset"), 1);
    let waited = started.elapsed();
    let owed = Duration::from_millis(u64::try_from(reset * 1000 - start_ms).expect("positive"));
    assert!(
        waited + Duration::from_millis(50) >= owed,
        "waited {waited:?}, owed {owed:?}"
    );
    assert!(waited < owed + Duration::from_secs(2), "waited {waited:?}");
    assert!(clock.now_unix_millis() >= reset * 1000);
}

#[test]
fn a_reset_beyond_the_maximum_wait_fails_at_once() {
    let fake = fake_with_queue();
    let now_ms = 1_700_000_000_000;
    let reset = 1_700_003_600;
    fake.fail_next(
        Failure::RateLimitReset {
            reset_at_unix: reset,
        },
        1,
    );
    let clock = ManualClock::at(now_ms);
    fake.accept_token(TOKEN);
    let mut settings = config(&fake, Token::plain(TOKEN), Arc::new(clock.clone()));
    settings.max_rate_limit_wait = Duration::from_secs(5);
    let gh = GithubClient::new(settings).expect("valid settings");
    let err = read_queue(&gh).expect_err("rate limited");
    match &err {
        GithubError::RateLimited {
            reset_at, max_wait, ..
        } => {
            assert_eq!(*reset_at, reset);
            assert_eq!(*max_wait, Duration::from_secs(5));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let message = err.to_string();
    assert!(message.contains("2023-11-14T23:13:20Z"), "{message}");
    assert!(message.contains("GitHub App"), "{message}");
    assert!(clock.sleeps().is_empty());
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn rate_limits_stop_after_max_retries() {
    let fake = fake_with_queue();
    fake.fail_next(
        Failure::TooManyRequests {
            retry_after_secs: 1,
        },
        5,
    );
    let clock = ManualClock::at(1_700_000_000_000);
    fake.accept_token(TOKEN);
    let mut settings = config(&fake, Token::plain(TOKEN), Arc::new(clock.clone()));
    settings.max_retries = 2;
    let gh = GithubClient::new(settings).expect("valid settings");
    let err = read_queue(&gh).expect_err("still limited");
    assert!(matches!(err, GithubError::RateLimited { .. }), "{err:?}");
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(1); 2]);
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn rate_limits_without_a_time_wait_a_minute_or_fail() {
    // No retry-after and no reset: GitHub asks for at least a minute.
    for failure in [Failure::TooManyRequestsBare, Failure::SecondaryRateLimit] {
        // Over a 10 s cap: fail at once, naming a reset a minute ahead.
        let fake = fake_with_queue();
        fake.fail_next(failure.clone(), 1);
        let clock = ManualClock::at(1_700_000_000_000);
        fake.accept_token(TOKEN);
        let mut settings = config(&fake, Token::plain(TOKEN), Arc::new(clock.clone()));
        settings.max_rate_limit_wait = Duration::from_secs(10);
        let gh = GithubClient::new(settings).expect("valid settings");
        let err = read_queue(&gh).expect_err("a minute is over the cap");
        assert!(
            matches!(
                err,
                GithubError::RateLimited {
                    reset_at: 1_700_000_060,
                    ..
                }
            ),
            "{failure:?}: {err:?}"
        );
        assert!(clock.sleeps().is_empty(), "{failure:?}");

        // Under a 2 min cap: wait the minute, then succeed.
        fake.fail_next(failure.clone(), 1);
        let mut settings = config(&fake, Token::plain(TOKEN), Arc::new(clock.clone()));
        settings.max_rate_limit_wait = Duration::from_secs(120);
        let gh = GithubClient::new(settings).expect("valid settings");
        assert_eq!(
            read_queue(&gh).expect("succeeds after a minute"),
            1,
            "{failure:?}"
        );
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(60)], "{failure:?}");
    }
}

#[test]
fn graphql_rate_limited_errors_wait_for_the_reset() {
    let fake = fake_with_queue();
    fake.fail_next(
        Failure::GraphqlRateLimited {
            reset_at_unix: 1_700_000_003,
        },
        1,
    );
    let clock = ManualClock::at(1_700_000_000_000);
    let gh = client(&fake, Arc::new(clock.clone()));
    assert_eq!(read_queue(&gh).expect("succeeds after the reset"), 1);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
}

#[test]
fn server_errors_are_retried_with_backoff_then_succeed() {
    let fake = fake_with_queue();
    fake.fail_next(Failure::ServerError, 2);
    let clock = ManualClock::at(1_700_000_000_000);
    let gh = client(&fake, Arc::new(clock.clone()));
    assert_eq!(read_queue(&gh).expect("succeeds on the third try"), 1);
    // retry_backoff is 1 ms in the test settings, doubling.
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_millis(1), Duration::from_millis(2)]
    );
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn server_errors_give_up_after_max_retries() {
    let fake = fake_with_queue();
    fake.fail_next(Failure::ServerError, 10);
    let gh = client(&fake, Arc::new(ManualClock::at(0)));
    let err = read_queue(&gh).expect_err("keeps failing");
    assert!(
        matches!(
            err,
            GithubError::Server {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(fake.requests().len(), 4);
}

#[test]
fn forbidden_without_rate_limit_signals_is_not_retried() {
    let fake = fake_with_queue();
    fake.fail_next(Failure::Forbidden, 1);
    let clock = ManualClock::at(0);
    let gh = client(&fake, Arc::new(clock.clone()));
    let err = read_queue(&gh).expect_err("forbidden");
    assert!(matches!(err, GithubError::Forbidden { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("Resource not accessible by integration"),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn unauthorized_names_the_fix_and_is_not_retried() {
    let fake = fake_with_queue();
    let gh = GithubClient::new(config(
        &fake,
        Token::plain("a-token-the-fake-does-not-know"),
        Arc::new(ManualClock::at(0)),
    ))
    .expect("valid settings");
    let err = read_queue(&gh).expect_err("bad credentials");
    assert!(matches!(err, GithubError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("set GITHUB_TOKEN with the `repo` scope or configure a GitHub App"),
        "{message}"
    );
    assert!(message.contains("Bad credentials"), "{message}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn unreachable_github_is_a_transport_error_after_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut settings = mainline_github::GithubConfig::new(Token::plain(TOKEN));
    settings.api_url = format!("http://127.0.0.1:{port}");
    settings.graphql_url = format!("http://127.0.0.1:{port}/graphql");
    let clock = ManualClock::at(0);
    settings.clock = Arc::new(clock.clone());
    settings.retry_backoff = Duration::from_millis(100);
    let gh = GithubClient::new(settings).expect("valid settings");
    let err = read_queue(&gh).expect_err("nothing listens");
    assert!(
        matches!(err, GithubError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(
        clock.sleeps(),
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
}
