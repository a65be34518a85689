//! The one behavioural suite (tests/common/suite.rs), run against every backend: an image
//! layout, the open registry, and the basic-auth registry with explicit credentials.

mod common;

use common::{
    auth_registry, open_registry, plain_http_options, registry_location, unique_repository,
};
use mainline_store::layout::LayoutStore;
use mainline_store::registry::{RegistryOptions, RegistryStore};
use mainline_store::Location;

#[test]
fn layout_store_passes_the_suite() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let location = Location::Layout {
        path: scratch.path().join("store"),
    };
    let store = LayoutStore::open(location).expect("open a new layout");
    common::suite::suite(&store, scratch.path());
}

#[test]
fn open_registry_store_passes_the_suite() {
    let host = open_registry();
    let scratch = tempfile::tempdir().expect("temp dir");
    let location = registry_location(&host, &unique_repository("suite-open"));
    let store = RegistryStore::new(location, plain_http_options(&host, scratch.path()))
        .expect("registry store");
    common::suite::suite(&store, scratch.path());
    assert!(
        !store.is_authenticated(),
        "an open registry never needs credentials"
    );
}

#[test]
fn auth_registry_store_passes_the_suite_with_explicit_credentials() {
    let (host, credentials) = auth_registry();
    let scratch = tempfile::tempdir().expect("temp dir");
    let location = registry_location(&host, &unique_repository("suite-auth"));
    let options = RegistryOptions {
        credentials: Some(credentials),
        ..plain_http_options(&host, scratch.path())
    };
    let store = RegistryStore::new(location, options).expect("registry store");
    common::suite::suite(&store, scratch.path());
    assert!(store.is_authenticated());
}

#[test]
fn open_dispatches_on_the_location() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let layout: Location = format!("oci-layout:{}", scratch.path().join("l").display())
        .parse()
        .expect("layout location");
    let store = mainline_store::open(&layout, &RegistryOptions::default()).expect("open layout");
    assert_eq!(store.location(), &layout);
    assert!(scratch.path().join("l/oci-layout").is_file());
    let registry = registry_location("127.0.0.1:1", "a/b");
    let store =
        mainline_store::open(&registry, &RegistryOptions::default()).expect("open registry");
    assert_eq!(store.location(), &registry);
}
