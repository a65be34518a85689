//! A git that hangs (here: an upload-pack that never answers) is killed with its whole process
//! group at the deadline and reported as a timeout, instead of blocking the reconcile.

mod support;

use mainline_git::{GitError, GitErrorKind, GitRemote, RemoteOptions};
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};
use support::{git, Fixture};

#[test]
fn a_hanging_remote_times_out_and_its_children_are_killed() {
    let fx = Fixture::new();
    let remote = GitRemote::open_with(
        &fx.url(),
        &fx.cache_root("cache"),
        RemoteOptions {
            token: None,
            timeout: Duration::from_secs(2),
        },
    )
    .expect("open");
    // The grandchild `sleep` holds git's stdout and stderr open: if only git were killed,
    // reading its output would wait the full 60 seconds.
    let hang = fx.dir.path().join("hang.sh");
    std::fs::write(&hang, "#!/bin/sh\nsleep 60\n").expect("script");
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    git(
        remote.cache_path(),
        &[
            "config",
            "remote.origin.uploadpack",
            hang.to_str().expect("utf-8"),
        ],
    );

    let started = Instant::now();
    let err = remote.remote_refs("main").expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert_eq!(err.kind(), GitErrorKind::Unavailable);
    assert!(err.to_string().contains("timed out after 2s"), "{err}");
    assert!(
        elapsed < Duration::from_secs(15),
        "took {elapsed:?}: the process group was not killed"
    );
}
