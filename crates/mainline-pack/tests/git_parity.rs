//! `pack_git` reads a commit's folder from git objects and must give the same bytes as
//! `pack_dir` on a checkout of it; the checkout is made by the `git` CLI (the oracle).

mod common;

use common::{layer_bytes, meta_for, symlink, write_file, Git};
use mainline_core::CommitId;
use mainline_pack::{
    git_commit_info, pack_dir_with, pack_git, pack_git_with, PackError, PackOptions, Packed,
    Symlinks,
};
use std::fs;
use std::path::Path;

struct Fixture {
    _tmp: tempfile::TempDir,
    git: Git,
    commits: Vec<String>,
}

/// Five commits:
/// 1. k8s/ with nested folders, an executable, a symlink, a >64 KiB file; README outside.
/// 2. only README changes (outside k8s/).
/// 3. k8s/ changes: edits, a deeper folder, a symlink to a folder, a long path, exec bit
///    dropped, a file and a folder whose names sort differently with and without `/`.
/// 4. a submodule entry (gitlink) inside k8s/.
/// 5. a file is deleted, leaving its folder empty (git drops it).
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let git = Git::init(&tmp.path().join("repo"));
    let root = git.dir.clone();
    let mut commits = Vec::new();

    write_file(&root, "README.md", b"# deploy\n", 0o644);
    write_file(
        &root,
        "k8s/kustomization.yaml",
        b"resources:\n- apps/web\n",
        0o644,
    );
    write_file(
        &root,
        "k8s/apps/web/deploy.yaml",
        b"kind: Deployment\nreplicas: 1\n",
        0o644,
    );
    symlink(&root, "k8s/apps/web/current.yaml", "deploy.yaml");
    write_file(&root, "k8s/scripts/check.sh", b"#!/bin/sh\nexit 0\n", 0o755);
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| b"abcdefghij klmnop\n"[(i.wrapping_mul(2_654_435_761) >> 27) as usize % 18])
        .collect();
    write_file(&root, "k8s/data/big.yaml", &big, 0o644);
    commits.push(git.commit_all("one", "2024-05-01T12:00:00Z"));

    write_file(&root, "README.md", b"# deploy\n\nmore docs\n", 0o644);
    commits.push(git.commit_all("two: docs only", "2024-05-02T12:00:00Z"));

    write_file(
        &root,
        "k8s/apps/web/deploy.yaml",
        b"kind: Deployment\nreplicas: 3\n",
        0o644,
    );
    write_file(
        &root,
        "k8s/apps/db/x/y/z.yaml",
        b"kind: StatefulSet\n",
        0o644,
    );
    symlink(&root, "k8s/web", "apps/web");
    write_file(
        &root,
        &format!("k8s/{}/{}.yaml", "l".repeat(90), "m".repeat(90)),
        b"long: path\n",
        0o644,
    );
    fs::set_permissions(
        root.join("k8s/scripts/check.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    write_file(&root, "k8s/a-b.yaml", b"dash\n", 0o644);
    write_file(&root, "k8s/a/c.yaml", b"slash\n", 0o755);
    commits.push(git.commit_all("three", "2024-05-03T08:30:00+02:00"));

    git.run(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{},k8s/vendor/sub", commits[0]),
    ]);
    git.run_dated(
        &["commit", "-q", "-m", "four: submodule"],
        "2024-05-04T12:00:00Z",
    );
    commits.push(git.run(&["rev-parse", "HEAD"]));

    fs::remove_file(root.join("k8s/apps/db/x/y/z.yaml")).expect("rm");
    commits.push(git.commit_all("five: delete", "2024-05-05T12:00:00Z"));
    Fixture {
        _tmp: tmp,
        git,
        commits,
    }
}

fn commit_id(hex: &str) -> CommitId {
    hex.parse().expect("git prints commit ids")
}

/// The fixture holds symlinks (to a file, to a folder): both walkers resolve them, the same
/// way, so a checkout and its commit still pack alike.
const RESOLVE: PackOptions = PackOptions {
    symlinks: Symlinks::Resolve,
    threads: None,
};

fn git_pack(f: &Fixture, commit: &str, subdir: &str, scratch: &Path) -> Packed {
    pack_git_with(
        &f.git.dir,
        &commit_id(commit),
        subdir,
        &meta_for(commit),
        scratch,
        RESOLVE,
        &mut |_| {},
    )
    .expect("pack_git succeeds")
}

fn assert_same(a: &Packed, b: &Packed, what: &str) {
    assert_eq!(layer_bytes(a), layer_bytes(b), "layer bytes differ: {what}");
    assert_eq!(
        a.manifest_bytes, b.manifest_bytes,
        "manifest differs: {what}"
    );
    assert_eq!(a.manifest_digest, b.manifest_digest, "{what}");
    assert_eq!(
        (a.entries, a.content_bytes),
        (b.entries, b.content_bytes),
        "{what}"
    );
}

#[test]
fn pack_git_equals_pack_dir_of_a_checkout_for_every_commit() {
    let f = fixture();
    let scratch = tempfile::tempdir().expect("scratch");
    for (i, commit) in f.commits.iter().enumerate() {
        for subdir in ["k8s", "", "k8s/apps"] {
            let checkout = f.git.checkout(
                commit,
                subdir,
                &scratch
                    .path()
                    .join(format!("co-{i}-{}", subdir.replace('/', "_"))),
            );
            let from_dir = pack_dir_with(
                &checkout,
                &meta_for(commit),
                scratch.path(),
                RESOLVE,
                &mut |_| {},
            )
            .expect("pack_dir of checkout");
            let from_git = git_pack(&f, commit, subdir, scratch.path());
            assert_same(
                &from_git,
                &from_dir,
                &format!("commit {} ({i}) subdir {subdir:?}", &commit[..12]),
            );
            assert!(
                from_git.entries >= 3,
                "the fixture tree is not trivially empty"
            );
        }
    }
}

#[test]
fn same_deploy_tree_gives_same_layer_across_commits() {
    let f = fixture();
    let scratch = tempfile::tempdir().expect("scratch");
    let one = git_pack(&f, &f.commits[0], "k8s", scratch.path());
    let two = git_pack(&f, &f.commits[1], "k8s", scratch.path());
    let three = git_pack(&f, &f.commits[2], "k8s", scratch.path());
    assert_eq!(
        layer_bytes(&one),
        layer_bytes(&two),
        "README is outside k8s/"
    );
    assert_eq!(one.layer.digest, two.layer.digest);
    assert_ne!(
        one.manifest_digest, two.manifest_digest,
        "the revision annotation differs"
    );
    assert_ne!(one.layer.digest, three.layer.digest);
    // A submodule leaves only an empty folder, which is not packed; a folder whose last
    // file was deleted disappears from git entirely.
    let four = git_pack(&f, &f.commits[3], "k8s", scratch.path());
    assert_eq!(
        four.layer.digest, three.layer.digest,
        "a submodule adds nothing"
    );
    let five = git_pack(&f, &f.commits[4], "k8s", scratch.path());
    let names: Vec<String> = common::raw_entries(&layer_bytes(&five))
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("apps/db")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("vendor")), "{names:?}");
    // The links resolve: `web -> apps/web` becomes a folder, `current.yaml` a file.
    assert!(
        names.contains(&"web/".to_owned()) && names.contains(&"apps/web/current.yaml".to_owned()),
        "{names:?}"
    );
}

#[test]
fn subdir_spellings_are_equivalent() {
    let f = fixture();
    let scratch = tempfile::tempdir().expect("scratch");
    let c = &f.commits[2];
    let base = git_pack(&f, c, "k8s", scratch.path()).manifest_digest;
    for spelling in ["k8s/", "./k8s", "k8s//"] {
        assert_eq!(
            git_pack(&f, c, spelling, scratch.path()).manifest_digest,
            base,
            "{spelling:?}"
        );
    }
    let whole = git_pack(&f, c, "", scratch.path()).manifest_digest;
    assert_eq!(git_pack(&f, c, ".", scratch.path()).manifest_digest, whole);
    assert_ne!(whole, base);
}

#[test]
fn commit_info_resolves_ids_refs_head_and_tags() {
    let f = fixture();
    let third = &f.commits[2];
    f.git.run(&["tag", "-a", "-m", "release", "v3", third]);
    let last = f.commits.last().expect("commits");
    for rev in ["main", "HEAD", "refs/heads/main", last.as_str()] {
        let info = git_commit_info(&f.git.dir, rev).expect("resolves");
        assert_eq!(info.id.as_str(), last, "{rev}");
        assert_eq!(info.time, "2024-05-05T12:00:00Z", "{rev}");
    }
    let tagged = git_commit_info(&f.git.dir, "v3").expect("annotated tag peels to its commit");
    assert_eq!(tagged.id.as_str(), third);
    assert_eq!(tagged.time, "2024-05-03T06:30:00Z", "committer time in UTC");
}

#[test]
fn commit_info_errors_name_the_revision() {
    let f = fixture();
    match git_commit_info(&f.git.dir, "no-such-branch") {
        Err(e @ PackError::UnknownRevision { .. }) => {
            assert!(e.to_string().contains("no-such-branch"), "{e}");
        }
        other => panic!("expected UnknownRevision, got {other:?}"),
    }
    match git_commit_info(&f.git.dir, "HEAD^{tree}") {
        Err(PackError::NotACommit { kind, .. }) => assert_eq!(kind, "tree"),
        other => panic!("expected NotACommit, got {other:?}"),
    }
    let not_repo = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        git_commit_info(not_repo.path(), "HEAD"),
        Err(PackError::OpenRepo { .. })
    ));
}

#[test]
fn missing_subdir_and_non_folder_subdir_name_commit_and_path() {
    let f = fixture();
    let scratch = tempfile::tempdir().expect("scratch");
    let c = commit_id(&f.commits[0]);
    let meta = meta_for(&f.commits[0]);
    let err = pack_git(
        &f.git.dir,
        &c,
        "deploy/prod",
        &meta,
        scratch.path(),
        &mut |_| {},
    )
    .expect_err("no such folder");
    match &err {
        PackError::SubdirNotFound { commit, subdir } => {
            assert_eq!((commit, subdir.as_str()), (&c, "deploy/prod"));
        }
        other => panic!("expected SubdirNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("deploy/prod") && err.to_string().contains(c.as_str()));
    assert!(matches!(
        pack_git(
            &f.git.dir,
            &c,
            "README.md",
            &meta,
            scratch.path(),
            &mut |_| {}
        ),
        Err(PackError::SubdirNotATree { .. })
    ));
    assert!(matches!(
        pack_git(&f.git.dir, &c, "../k8s", &meta, scratch.path(), &mut |_| {}),
        Err(PackError::InvalidSubdir { .. })
    ));
    let absent = commit_id("1111111111111111111111111111111111111111");
    assert!(matches!(
        pack_git(
            &f.git.dir,
            &absent,
            "k8s",
            &meta,
            scratch.path(),
            &mut |_| {}
        ),
        Err(PackError::CommitNotFound { .. })
    ));
    assert_eq!(
        fs::read_dir(scratch.path()).expect("ls").count(),
        0,
        "no layer left behind"
    );
}

#[test]
fn symlink_leaving_the_subdir_is_refused_but_fine_for_the_whole_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let git = Git::init(&tmp.path().join("repo"));
    write_file(&git.dir, "README.md", b"docs\n", 0o644);
    write_file(&git.dir, "k8s/a.yaml", b"a: 1\n", 0o644);
    symlink(&git.dir, "k8s/docs", "../README.md");
    let c = git.commit_all("escape", "2024-05-01T12:00:00Z");
    let meta = meta_for(&c);
    match pack_git(
        &git.dir,
        &commit_id(&c),
        "k8s",
        &meta,
        tmp.path(),
        &mut |_| {},
    ) {
        Err(PackError::SymlinkRefused { path, .. }) => assert_eq!(path, "docs"),
        other => panic!("symlinks are refused by default, got {other:?}"),
    }
    match pack_git_with(
        &git.dir,
        &commit_id(&c),
        "k8s",
        &meta,
        tmp.path(),
        RESOLVE,
        &mut |_| {},
    ) {
        Err(PackError::Symlink {
            path,
            target,
            problem,
            ..
        }) => {
            assert_eq!((path.as_str(), target.as_str()), ("docs", "../README.md"));
            assert_eq!(problem, mainline_pack::LinkProblem::Outside);
        }
        other => panic!("expected Symlink error, got {other:?}"),
    }
    let whole = pack_git_with(
        &git.dir,
        &commit_id(&c),
        "",
        &meta,
        tmp.path(),
        RESOLVE,
        &mut |_| {},
    )
    .expect("inside the whole tree the link resolves");
    let files: Vec<(String, Vec<u8>)> = common::raw_entries(&layer_bytes(&whole))
        .into_iter()
        .filter(|e| e.kind == '0')
        .map(|e| (e.name, e.contents))
        .collect();
    assert!(
        files.contains(&("k8s/docs".to_owned(), b"docs\n".to_vec())),
        "the link is stored as a copy of its target: {files:?}"
    );
}

#[test]
fn blobless_partial_clone_reports_missing_object() {
    let f = fixture();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clone = tmp.path().join("clone");
    f.git.blobless_clone(&clone);
    let last = f.commits.last().expect("commits");
    let err = pack_git(
        &clone,
        &commit_id(last),
        "k8s",
        &meta_for(last),
        tmp.path(),
        &mut |_| {},
    )
    .expect_err("blobs are not there");
    match &err {
        PackError::MissingObject {
            kind,
            commit,
            object,
            ..
        } => {
            assert_eq!(*kind, "blob");
            assert_eq!(commit.as_str(), last);
            assert_eq!(object.len(), 40);
        }
        other => panic!("expected MissingObject, got {other:?}"),
    }
    assert!(err.to_string().contains("fetch"), "{err}");
    // Trees are present in a blob-less clone, so commit info still resolves.
    assert_eq!(
        git_commit_info(&clone, "origin/main")
            .expect("resolves")
            .id
            .as_str(),
        last
    );
}
