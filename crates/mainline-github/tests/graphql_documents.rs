//! The GraphQL documents mainline sends are exactly the files in `graphql/` (which
//! tests/github-schemas validates against GitHub's schema), and the fake GitHub answers no
//! other query text — so a query GitHub would refuse cannot pass in our tests.

mod common;

use common::TOKEN;
use mainline_github::fake::{FakeEntry, FakeGithub};
use mainline_github::{is_known_document, GithubClient, GithubConfig, Token, GRAPHQL_DOCUMENTS};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn the_documents_sent_are_the_files_the_schema_checker_validates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphql");
    let mut on_disk = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("graphql/ is readable") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            name.ends_with(".graphql"),
            "graphql/ holds only .graphql files: {name}"
        );
        on_disk.insert(name, std::fs::read_to_string(&path).expect("readable"));
    }
    let compiled: BTreeMap<String, String> = GRAPHQL_DOCUMENTS
        .iter()
        .map(|d| (d.file.to_owned(), d.text.to_owned()))
        .collect();
    assert_eq!(
        compiled, on_disk,
        "GRAPHQL_DOCUMENTS must list every file in graphql/, unchanged"
    );
    assert!(!compiled.is_empty());
}

/// POST `query` to the fake's GraphQL endpoint as the client would.
fn post(fake: &FakeGithub, query: &str) -> Value {
    // Building a client installs the TLS provider reqwest needs (plain HTTP here).
    let mut config = GithubConfig::new(Token::plain(TOKEN));
    config.api_url = fake.url();
    GithubClient::new(config).expect("valid settings");
    let body = json!({ "query": query, "variables": {
        "owner": common::OWNER, "name": common::REPO, "branch": "main", "first": 100, "after": null } });
    let answer = reqwest::blocking::Client::new()
        .post(fake.graphql_url())
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the fake answers");
    assert_eq!(answer.status().as_u16(), 200);
    serde_json::from_slice(&answer.bytes().expect("a body")).expect("a JSON answer")
}

#[test]
fn the_fake_answers_only_validated_documents_byte_for_byte() {
    let fake = FakeGithub::start();
    fake.accept_token(TOKEN);
    fake.set_queue(
        common::OWNER,
        common::REPO,
        "main",
        vec![FakeEntry::new(
            1,
            "QUEUED",
            &common::commit(1),
            &common::commit(2),
        )],
    );
    let document = GRAPHQL_DOCUMENTS[0].text;
    let ok = post(&fake, document);
    assert!(ok["errors"].is_null(), "{ok}");
    assert_eq!(
        ok["data"]["repository"]["mergeQueue"]["entries"]["nodes"][0]["position"],
        1
    );

    // A field GitHub does not have, and the same document reformatted: neither was validated.
    for query in [
        document.replace("headCommit", "headComit"),
        document.replace("  ", " "),
        "query { viewer { login } }".to_owned(),
    ] {
        assert!(!is_known_document(&query));
        let refused = post(&fake, &query);
        assert!(refused["data"].is_null(), "{refused}");
        let message = refused["errors"][0]["message"]
            .as_str()
            .expect("an error message");
        assert!(
            message.contains("crates/mainline-github/graphql/"),
            "{message}"
        );
    }
}
