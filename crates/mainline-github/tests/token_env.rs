//! `Token::from_env`, alone in its own test binary because it changes the environment.

use mainline_github::{GithubError, Token, TOKEN_ENV};

#[test]
fn token_comes_from_github_token() {
    assert_eq!(TOKEN_ENV, "GITHUB_TOKEN");
    std::env::remove_var(TOKEN_ENV);
    let err = Token::from_env().expect_err("unset");
    assert!(matches!(&err, GithubError::MissingToken { var } if var == "GITHUB_TOKEN"));
    assert!(err.to_string().contains("configure a GitHub App"), "{err}");

    std::env::set_var(TOKEN_ENV, "   ");
    assert!(Token::from_env().is_err(), "blank counts as unset");

    std::env::set_var(TOKEN_ENV, " ghp_fromTheEnvironment \n");
    let token = Token::from_env().expect("set");
    assert_eq!(token, Token::plain("ghp_fromTheEnvironment"));
    assert!(!format!("{token:?}").contains("fromTheEnvironment"));
    std::env::remove_var(TOKEN_ENV);
}
