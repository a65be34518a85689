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

#[test]
fn the_command_deadline_bounds_each_call_and_a_passed_deadline_starts_nothing() {
    let fx = Fixture::new();
    // Each call may take 300 s on its own; the command's deadline leaves it 2 s.
    let remote = GitRemote::open_with(
        &fx.url(),
        &fx.cache_root("cache"),
        RemoteOptions {
            token: None,
            timeout: Duration::from_secs(300),
        },
    )
    .expect("open")
    .with_deadline(Some(Instant::now() + Duration::from_secs(2)));
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
    let err = remote
        .remote_refs("main")
        .expect_err("must hit the deadline");
    assert!(matches!(err, GitError::Deadline { .. }), "{err:?}");
    assert_eq!(err.kind(), GitErrorKind::Unavailable);
    assert!(
        err.to_string().contains("did not answer `git ls-remote`"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: the per-call 300 s was not cut to the deadline",
        started.elapsed()
    );
    let first = mainline_git::first_stall().expect("the cut call is remembered");
    assert!(first.1.contains("ls-remote"), "{}", first.1);

    let again = Instant::now();
    let err = remote
        .remote_refs("main")
        .expect_err("the deadline has passed");
    assert!(matches!(err, GitError::DeadlinePassed { .. }), "{err:?}");
    assert!(
        again.elapsed() < Duration::from_millis(500),
        "a call started after the deadline"
    );
}
