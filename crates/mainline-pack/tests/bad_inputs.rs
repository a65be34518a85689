//! Each bad input gives its own error, naming the input, and leaves no layer behind.

mod common;

use common::{meta, symlink, write_file};
use mainline_core::{CommitId, Revision};
use mainline_pack::{
    pack_dir, pack_dir_with, ArtifactMeta, FormatError, LinkProblem, PackError, PackOptions,
    Symlinks,
};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const RESOLVE: PackOptions = PackOptions {
    symlinks: Symlinks::Resolve,
    threads: None,
};

fn pack_err(dir: &Path, scratch: &Path) -> PackError {
    pack_err_with(dir, scratch, PackOptions::default())
}

fn pack_err_with(dir: &Path, scratch: &Path, options: PackOptions) -> PackError {
    let err =
        pack_dir_with(dir, &meta(), scratch, options, &mut |_| {}).expect_err("packing must fail");
    assert_eq!(
        fs::read_dir(scratch)
            .expect("ls scratch")
            .filter(|e| {
                e.as_ref()
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".mainline-layer-")
            })
            .count(),
        0,
        "a failed pack leaves no layer file in scratch"
    );
    err
}

#[test]
fn missing_dir_and_file_instead_of_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("k8s");
    let err = pack_err(&missing, tmp.path());
    assert!(
        matches!(&err, PackError::DirNotFound { dir } if dir == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains(&missing.display().to_string()));
    write_file(tmp.path(), "file.yaml", b"a: 1\n", 0o644);
    let err = pack_err(&tmp.path().join("file.yaml"), tmp.path());
    assert!(matches!(err, PackError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn missing_scratch_is_a_scratch_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "a.yaml", b"a: 1\n", 0o644);
    let scratch = tmp.path().join("no-scratch");
    let err = pack_dir(&root, &meta(), &scratch, &mut |_| {}).expect_err("no scratch");
    assert!(
        matches!(&err, PackError::Scratch { scratch: s, .. } if s == &scratch),
        "{err:?}"
    );
}

fn symlink_problem(target: &str, extra: impl Fn(&Path)) -> (String, String, LinkProblem) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "apps/a.yaml", b"a: 1\n", 0o644);
    extra(&root);
    symlink(&root, "apps/link", target);
    match pack_err_with(&root, tmp.path(), RESOLVE) {
        PackError::Symlink {
            path,
            target,
            problem,
            root: r,
        } => {
            assert_eq!(r, root.display().to_string());
            (path, target, problem)
        }
        other => panic!("expected a symlink error for {target:?}, got {other:?}"),
    }
}

#[test]
fn symlink_pointing_outside_is_refused() {
    let (path, target, problem) = symlink_problem("../../etc/passwd", |_| {});
    assert_eq!(
        (path.as_str(), target.as_str(), problem),
        ("apps/link", "../../etc/passwd", LinkProblem::Outside)
    );
    assert_eq!(
        symlink_problem("/etc/passwd", |_| {}).2,
        LinkProblem::Absolute
    );
    assert_eq!(
        symlink_problem("sub/../../../x", |_| {}).2,
        LinkProblem::Outside
    );
}

#[test]
fn symlink_escaping_through_another_symlink_is_refused() {
    // Spelled, `apps/link -> up/../../x` stays inside (apps/up, apps, root/x); but `apps/up`
    // is itself a link to `..` (the root), so the real path climbs above the root.
    let (_, _, problem) = symlink_problem("up/../../x", |root| symlink(root, "apps/up", ".."));
    assert_eq!(problem, LinkProblem::Outside);
    // A loop is refused rather than followed forever.
    let (_, _, problem) = symlink_problem("loop", |root| symlink(root, "apps/loop", "link"));
    assert_eq!(problem, LinkProblem::TooManyHops);
}

#[test]
fn symlinks_are_refused_by_default_naming_the_path() {
    // Flux's source-controller drops symlinks when it unpacks: shipping one would make the
    // file vanish from the cluster.
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "apps/a.yaml", b"a: 1\n", 0o644);
    symlink(&root, "apps/current.yaml", "a.yaml");
    match pack_err(&root, tmp.path()) {
        PackError::SymlinkRefused { path, target, .. } => {
            assert_eq!(
                (path.as_str(), target.as_str()),
                ("apps/current.yaml", "a.yaml")
            );
        }
        other => panic!("expected SymlinkRefused, got {other:?}"),
    }
    let shown = pack_err(&root, tmp.path()).to_string();
    assert!(
        shown.contains("apps/current.yaml") && shown.contains("--resolve-symlinks"),
        "{shown}"
    );
}

#[test]
fn resolving_refuses_dangling_links_and_cycles() {
    assert_eq!(
        symlink_problem("not/there.yaml", |_| {}).2,
        LinkProblem::Dangling
    );
    assert_eq!(symlink_problem("..", |_| {}).2, LinkProblem::Cycle);
    assert_eq!(symlink_problem(".", |_| {}).2, LinkProblem::Cycle);
}

#[test]
fn resolving_stores_file_and_folder_targets_as_regular_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "apps/a.yaml", b"a: 1\n", 0o644);
    write_file(&root, "bin/run.sh", b"#!/bin/sh\n", 0o755);
    symlink(&root, "apps/current.yaml", "a.yaml");
    symlink(&root, "apps/run", "../bin/run.sh");
    symlink(&root, "web", "apps");
    let packed = pack_dir_with(&root, &meta(), tmp.path(), RESOLVE, &mut |_| {})
        .expect("inside links resolve");
    let entries = common::raw_entries(&common::layer_bytes(&packed));
    assert!(entries.iter().all(|e| e.kind != '2'), "no symlink entry");
    let files: Vec<(&str, u32, &[u8])> = entries
        .iter()
        .filter(|e| e.kind == '0')
        .map(|e| (e.name.as_str(), e.mode, e.contents.as_slice()))
        .collect();
    assert_eq!(
        files,
        [
            ("apps/a.yaml", 0o644, &b"a: 1\n"[..]),
            ("apps/current.yaml", 0o644, b"a: 1\n"),
            ("apps/run", 0o755, b"#!/bin/sh\n"),
            ("bin/run.sh", 0o755, b"#!/bin/sh\n"),
            ("web/a.yaml", 0o644, b"a: 1\n"),
            ("web/current.yaml", 0o644, b"a: 1\n"),
            ("web/run", 0o755, b"#!/bin/sh\n"),
        ]
    );
}

#[test]
fn names_flux_would_refuse_are_refused() {
    for (name, dir) in [("back\\slash.yaml", false), ("dots..", true)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("t");
        let rel = if dir {
            format!("{name}/a.yaml")
        } else {
            name.to_owned()
        };
        write_file(&root, &rel, b"a: 1\n", 0o644);
        match pack_err(&root, tmp.path()) {
            PackError::FluxUnsafeName { path, .. } => assert_eq!(path, name),
            other => panic!("expected FluxUnsafeName for {name:?}, got {other:?}"),
        }
    }
}

#[test]
fn fifo_and_socket_are_refused_naming_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "apps/a.yaml", b"a: 1\n", 0o644);
    let fifo = root.join("apps/pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    match pack_err(&root, tmp.path()) {
        PackError::UnsupportedFileType { path, kind, .. } => {
            assert_eq!((path, kind), (fifo.clone(), "fifo"))
        }
        other => panic!("expected UnsupportedFileType, got {other:?}"),
    }
    fs::remove_file(&fifo).expect("rm fifo");
    let sock = root.join("apps/sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind socket");
    let err = pack_err(&root, tmp.path());
    assert!(
        err.to_string().contains("apps/sock") && err.to_string().contains("socket"),
        "{err}"
    );
}

#[test]
fn non_utf8_name_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("t");
    write_file(&root, "apps/a.yaml", b"a: 1\n", 0o644);
    fs::write(
        root.join("apps").join(OsStr::from_bytes(b"bad-\xff.yaml")),
        b"x",
    )
    .expect("write");
    let err = pack_err(&root, tmp.path());
    assert!(
        matches!(&err, PackError::NonUtf8Name { path } if path.contains("bad-")),
        "{err:?}"
    );
}

#[test]
fn created_must_be_rfc3339_and_is_normalised_to_utc() {
    let commit: CommitId = common::COMMIT.parse().expect("commit");
    let revision = Revision::new(Some("main".to_owned()), commit);
    let src = "https://github.com/example/deploy";
    for bad in [
        "yesterday",
        "2024-05-01",
        "2024-05-01 12:00:00",
        "2024-13-01T00:00:00Z",
        "",
    ] {
        match ArtifactMeta::new(src, revision.clone(), bad) {
            Err(e @ FormatError::Created { .. }) => {
                assert!(e.to_string().contains(&format!("{bad:?}")), "{e}")
            }
            other => panic!("expected Created error for {bad:?}, got {other:?}"),
        }
    }
    let meta =
        ArtifactMeta::new(src, revision.clone(), "2024-05-01T14:00:00.987+02:00").expect("valid");
    assert_eq!(meta.created, "2024-05-01T12:00:00Z");
    let meta = ArtifactMeta::new(src, revision, "2024-05-01t23:30:00-01:00")
        .expect("lowercase t is RFC 3339");
    assert_eq!(meta.created, "2024-05-02T00:30:00Z");
}

#[test]
fn source_with_credentials_is_refused_without_echoing_them() {
    let commit: CommitId = common::COMMIT.parse().expect("commit");
    let revision = Revision::new(None, commit);
    for bad in [
        "https://x-access-token:s3cr3t@github.com/o/r",
        "https://s3cr3t@github.com/o/r",
        "ssh://git:s3cr3t@host/r",
    ] {
        let err = ArtifactMeta::new(bad, revision.clone(), "2024-05-01T12:00:00Z")
            .expect_err("credentials");
        assert!(matches!(err, FormatError::Source { .. }), "{err:?}");
        assert!(!err.to_string().contains("s3cr3t"), "secret leaked: {err}");
        assert!(
            !format!("{err:?}").contains("s3cr3t"),
            "secret leaked in Debug: {err:?}"
        );
    }
    for good in [
        "https://github.com/o/r",
        "ssh://git@github.com/o/r",
        "git@github.com:o/r.git",
    ] {
        ArtifactMeta::new(good, revision.clone(), "2024-05-01T12:00:00Z")
            .expect("plain source is fine");
    }
    assert!(ArtifactMeta::new("", revision, "2024-05-01T12:00:00Z").is_err());
}
