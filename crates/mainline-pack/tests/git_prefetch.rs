//! Packing from git reads blobs ahead of the walk on another thread (with more than one
//! thread). The layer must not notice: the same bytes with 1 thread (no read-ahead) and with
//! 16, the same as a checkout packs, with shared blobs, a blob larger than the read-ahead
//! budget and symlinks resolved to a file and a folder (blobs the walker reads itself); and a
//! blob missing from a partial clone is still reported by the walker, naming its path.

mod common;

use common::{layer_bytes, meta_for, write_file, Git};
use mainline_core::CommitId;
use mainline_pack::{pack_dir_with, pack_git_with, PackError, PackOptions, Packed, Symlinks};
use std::num::NonZeroUsize;
use std::path::Path;

fn options(threads: usize) -> PackOptions {
    PackOptions {
        symlinks: Symlinks::Resolve,
        threads: NonZeroUsize::new(threads),
    }
}

fn from_git(
    repo: &Path,
    commit: &str,
    scratch: &Path,
    threads: usize,
) -> Result<Packed, PackError> {
    let id: CommitId = commit.parse().expect("commit id");
    pack_git_with(
        repo,
        &id,
        "",
        &meta_for(commit),
        scratch,
        options(threads),
        &mut |_| {},
    )
}

fn repository(root: &Path) -> (Git, String) {
    let git = Git::init(root);
    for i in 0..240 {
        // Every third file has the content of another folder's: one blob, several paths.
        let body = format!(
            "kind: ConfigMap\nname: cm-{}\n",
            if i % 3 == 0 { 0 } else { i }
        );
        write_file(
            root,
            &format!("ns-{}/cm-{i:03}.yaml", i % 4),
            body.as_bytes(),
            0o644,
        );
    }
    let big: Vec<u8> = (0..9 * 1024 * 1024_u32)
        .map(|i| b"abcdefgh\n"[(i % 9) as usize])
        .collect();
    write_file(root, "ns-1/big.yaml", &big, 0o755);
    std::os::unix::fs::symlink("ns-2", root.join("linked-folder")).expect("symlink");
    std::os::unix::fs::symlink("ns-3/cm-003.yaml", root.join("linked-file.yaml")).expect("symlink");
    let commit = git.commit_all("tree", "2024-05-01T12:00:00Z");
    (git, commit)
}

#[test]
fn read_ahead_never_changes_the_layer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (git, commit) = repository(&tmp.path().join("repo"));
    let one = from_git(&git.dir, &commit, tmp.path(), 1).expect("1 thread");
    let sixteen = from_git(&git.dir, &commit, tmp.path(), 16).expect("16 threads");
    assert_eq!(
        layer_bytes(&sixteen),
        layer_bytes(&one),
        "read ahead vs not"
    );
    assert_eq!(
        one.files,
        240 + 1 + 60 + 1,
        "files, with the linked folder's and file"
    );
    let checkout = git.checkout(&commit, "", &tmp.path().join("checkout"));
    let dir = pack_dir_with(
        &checkout,
        &meta_for(&commit),
        tmp.path(),
        options(16),
        &mut |_| {},
    )
    .expect("pack the checkout");
    assert_eq!(layer_bytes(&dir), layer_bytes(&one), "checkout vs git");
}

#[test]
fn a_missing_blob_is_reported_by_the_walker_with_read_ahead() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (git, commit) = repository(&tmp.path().join("repo"));
    let clone = tmp.path().join("clone");
    git.blobless_clone(&clone);
    match from_git(&clone, &commit, tmp.path(), 16) {
        Err(PackError::MissingObject { kind, path, .. }) => {
            assert_eq!(kind, "blob");
            assert_eq!(path, "linked-file.yaml", "the first blob in archive order");
        }
        other => panic!("expected MissingObject, got {other:?}"),
    }
}
