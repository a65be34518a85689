//! Extraction refuses hostile archives without touching the destination, and round-trips
//! what packing produces.

mod common;

use common::{layer_bytes, meta, symlink, write_file};
use mainline_pack::{extract, list, EntryKind, ExtractError, LinkProblem};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A raw tar entry, written byte for byte (no safety checks by the tar crate's setters).
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    Fifo(&'a str),
}

fn craft(entries: &[Raw<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for raw in entries {
        let mut h = tar::Header::new_gnu();
        let (name, link, kind, data): (&str, &str, tar::EntryType, &[u8]) = match raw {
            Raw::File(n, d) => (n, "", tar::EntryType::Regular, d),
            Raw::Dir(n) => (n, "", tar::EntryType::Directory, b""),
            Raw::Symlink(n, t) => (n, t, tar::EntryType::Symlink, b""),
            Raw::Hardlink(n, t) => (n, t, tar::EntryType::Link, b""),
            Raw::Char(n) => (n, "", tar::EntryType::Char, b""),
            Raw::Fifo(n) => (n, "", tar::EntryType::Fifo, b""),
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).expect("append raw entry");
    }
    builder
        .into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gzip")
}

/// A destination holding one sentinel file, and a snapshot of its parent.
struct Dest {
    _tmp: tempfile::TempDir,
    path: PathBuf,
    outside: PathBuf,
}

impl Dest {
    fn new() -> Dest {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("dest");
        write_file(&path, "keep.txt", b"sentinel\n", 0o644);
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("outside dir");
        Dest {
            _tmp: tmp,
            path,
            outside,
        }
    }

    /// Everything below the destination's parent, for before/after comparison.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.path.parent().expect("parent"), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("ls") {
        let path = entry.expect("entry").path();
        out.push(path.display().to_string());
        if fs::symlink_metadata(&path).expect("lstat").is_dir() {
            walk(&path, out);
        }
    }
}

/// Extracting `layer` must fail and leave the destination and its parent untouched.
fn refused(layer: &[u8]) -> ExtractError {
    refused_in(Dest::new(), layer)
}

fn refused_in(dest: Dest, layer: &[u8]) -> ExtractError {
    let before = dest.snapshot();
    let err = extract(layer, &dest.path, true).expect_err("hostile layer must be refused");
    assert_eq!(dest.snapshot(), before, "destination changed after: {err}");
    assert_eq!(
        fs::read(dest.path.join("keep.txt")).expect("sentinel"),
        b"sentinel\n"
    );
    assert_eq!(
        fs::read_dir(&dest.outside).expect("ls").count(),
        0,
        "wrote outside: {err}"
    );
    // `list` refuses the same archives.
    assert!(
        list(layer).is_err(),
        "list accepted what extract refused: {err}"
    );
    err
}

#[test]
fn absolute_path_is_refused() {
    let err = refused(&craft(&[
        Raw::File("ok.yaml", b"a"),
        Raw::File("/tmp/evil", b"x"),
    ]));
    assert!(
        matches!(&err, ExtractError::Absolute { entry } if entry == "/tmp/evil"),
        "{err:?}"
    );
    assert!(err.to_string().contains("/tmp/evil"));
}

#[test]
fn parent_dir_component_is_refused() {
    for name in ["../x", "a/../../x", "a/.."] {
        let err = refused(&craft(&[Raw::Dir("a/"), Raw::File(name, b"x")]));
        assert!(
            matches!(&err, ExtractError::ParentDir { entry } if entry == name),
            "{err:?}"
        );
    }
}

#[test]
fn symlink_to_absolute_or_outside_target_is_refused() {
    let err = refused(&craft(&[Raw::Symlink("etc", "/etc")]));
    assert!(
        matches!(&err, ExtractError::Symlink { entry, target, problem: LinkProblem::Absolute } if entry == "etc" && target == "/etc"),
        "{err:?}"
    );
    let err = refused(&craft(&[Raw::Dir("a/"), Raw::Symlink("a/up", "../../x")]));
    assert!(
        matches!(
            err,
            ExtractError::Symlink {
                problem: LinkProblem::Outside,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_later_symlink_cannot_redirect_an_earlier_one_outside() {
    // Alone, d/a -> b/../../x stays inside by spelling; once d/b -> ../e arrives, d/a really
    // resolves to e/../../x, above the root.
    let err = refused(&craft(&[
        Raw::Dir("d/"),
        Raw::Symlink("d/a", "b/../../x"),
        Raw::Dir("e/"),
        Raw::Symlink("d/b", "../e"),
    ]));
    assert!(
        matches!(&err, ExtractError::Symlink { entry, problem: LinkProblem::Outside, .. } if entry == "d/a"),
        "{err:?}"
    );
}

#[test]
fn file_written_through_a_symlink_is_refused() {
    let dest = Dest::new();
    let outside = dest.outside.display().to_string();
    let layer = craft(&[
        Raw::Symlink("link", &outside),
        Raw::File("link/pwned", b"gotcha"),
    ]);
    let err = refused_in(dest, &layer);
    assert!(
        matches!(&err, ExtractError::ThroughSymlink { entry, link } if entry == "link/pwned" && link == "link"),
        "{err:?}"
    );
    // Even a symlink that points inside may not be written through.
    let err = refused(&craft(&[
        Raw::Dir("a/"),
        Raw::Symlink("here", "a"),
        Raw::File("here/x", b"x"),
    ]));
    assert!(
        matches!(err, ExtractError::ThroughSymlink { .. }),
        "{err:?}"
    );
}

#[test]
fn hardlinks_must_name_an_earlier_file_inside() {
    let err = refused(&craft(&[Raw::Hardlink("passwd", "/etc/passwd")]));
    assert!(
        matches!(&err, ExtractError::HardlinkOutside { target, .. } if target == "/etc/passwd"),
        "{err:?}"
    );
    let err = refused(&craft(&[Raw::File("a", b"a"), Raw::Hardlink("h", "../a")]));
    assert!(
        matches!(err, ExtractError::HardlinkOutside { .. }),
        "{err:?}"
    );
    let err = refused(&craft(&[
        Raw::Hardlink("h", "later"),
        Raw::File("later", b"x"),
    ]));
    assert!(
        matches!(err, ExtractError::HardlinkUnknown { .. }),
        "{err:?}"
    );
    let err = refused(&craft(&[
        Raw::Symlink("s", "a"),
        Raw::File("a", b"a"),
        Raw::Hardlink("h", "s"),
    ]));
    assert!(
        matches!(err, ExtractError::HardlinkUnknown { .. }),
        "a hard link to a symlink: {err:?}"
    );
}

#[test]
fn device_and_fifo_entries_are_refused() {
    let err = refused(&craft(&[Raw::File("ok", b"x"), Raw::Char("dev/null")]));
    assert!(
        matches!(&err, ExtractError::Unsupported { entry, kind } if entry == "dev/null" && kind == "character device"),
        "{err:?}"
    );
    let err = refused(&craft(&[Raw::Fifo("pipe")]));
    assert!(
        matches!(&err, ExtractError::Unsupported { kind, .. } if kind == "fifo"),
        "{err:?}"
    );
}

#[test]
fn duplicates_and_files_below_files_are_refused() {
    let err = refused(&craft(&[Raw::File("a", b"1"), Raw::File("a", b"2")]));
    assert!(matches!(err, ExtractError::Duplicate { .. }), "{err:?}");
    let err = refused(&craft(&[Raw::File("a", b"1"), Raw::File("a/b", b"2")]));
    assert!(matches!(err, ExtractError::ParentNotDir { .. }), "{err:?}");
    let err = refused(&craft(&[Raw::File("a/b", b"1"), Raw::Symlink("a", ".")]));
    assert!(
        matches!(err, ExtractError::Duplicate { .. }),
        "a symlink replacing a folder: {err:?}"
    );
}

#[test]
fn corrupt_or_truncated_layers_are_read_errors() {
    let good = craft(&[Raw::File("a.yaml", &[b'a'; 10_000])]);
    assert!(matches!(
        refused(&good[..good.len() / 2]),
        ExtractError::Read(_)
    ));
    let mut flipped = good.clone();
    let last = flipped.len() - 6;
    flipped[last] ^= 0xff; // inside the gzip CRC32 trailer
    assert!(matches!(refused(&flipped), ExtractError::Read(_)));
    assert!(matches!(
        refused(b"not a gzip stream at all"),
        ExtractError::Read(_)
    ));
}

#[test]
fn non_empty_dest_needs_overwrite_and_nothing_is_written_without_it() {
    let dest = Dest::new();
    let before = dest.snapshot();
    let layer = craft(&[Raw::File("a.yaml", b"a")]);
    let err = extract(&layer[..], &dest.path, false).expect_err("non-empty dest");
    assert!(
        matches!(&err, ExtractError::DestNotEmpty { dest: d } if d == &dest.path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not empty; pass --force to overwrite",
            dest.path.display()
        )
    );
    assert_eq!(dest.snapshot(), before);

    let file_dest = dest.path.join("keep.txt");
    assert!(matches!(
        extract(&layer[..], &file_dest, true),
        Err(ExtractError::DestNotDir { .. })
    ));
}

#[test]
fn overwrite_replaces_same_named_top_level_entries_and_keeps_others() {
    let dest = Dest::new();
    write_file(&dest.path, "apps/stale.yaml", b"old\n", 0o644);
    write_file(&dest.path, "a.yaml", b"old\n", 0o644);
    let layer = craft(&[
        Raw::Dir("apps/"),
        Raw::File("apps/new.yaml", b"new\n"),
        Raw::File("a.yaml", b"new\n"),
    ]);
    let summary = extract(&layer[..], &dest.path, true).expect("overwrite");
    assert_eq!(
        (summary.files, summary.dirs, summary.symlinks, summary.bytes),
        (2, 1, 0, 8)
    );
    assert_eq!(fs::read(dest.path.join("a.yaml")).expect("a"), b"new\n");
    assert_eq!(
        fs::read(dest.path.join("apps/new.yaml")).expect("new"),
        b"new\n"
    );
    assert!(
        !dest.path.join("apps/stale.yaml").exists(),
        "apps/ was replaced as a whole"
    );
    assert_eq!(
        fs::read(dest.path.join("keep.txt")).expect("kept"),
        b"sentinel\n"
    );
    let leftovers: Vec<_> = fs::read_dir(dest.path.parent().expect("parent"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".mainline-extract-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging folder left behind: {leftovers:?}"
    );
}

/// A tree with every kind of entry packing produces, and symlinks that packing resolves
/// (see [`pack`]).
fn sample_tree(root: &Path) {
    write_file(root, "kustomization.yaml", b"resources:\n- apps\n", 0o644);
    write_file(root, "apps/web/deploy.yaml", b"kind: Deployment\n", 0o600);
    write_file(root, "apps/web/hooks/pre.sh", b"#!/bin/sh\nexit 0\n", 0o700);
    symlink(root, "apps/web/current.yaml", "deploy.yaml");
    symlink(root, "web", "apps/web");
    write_file(
        root,
        &format!("{}/long.yaml", "n".repeat(140)),
        b"long: 1\n",
        0o644,
    );
}

/// Packs with symlinks resolved (`--resolve-symlinks`): artifacts never hold symlinks.
fn pack(src: &Path, scratch: &Path) -> mainline_pack::Packed {
    let options = mainline_pack::PackOptions {
        symlinks: mainline_pack::Symlinks::Resolve,
        threads: None,
    };
    mainline_pack::pack_dir_with(src, &meta(), scratch, options, &mut |_| {}).expect("pack")
}

#[test]
fn round_trip_reproduces_files_modes_and_resolved_symlinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    sample_tree(&src);
    let packed = pack(&src, tmp.path());
    let out = tmp.path().join("out/nested/dest");
    let summary =
        extract(&layer_bytes(&packed)[..], &out, false).expect("extract into a missing dest");
    assert_eq!((summary.files, summary.symlinks), (8, 0));
    assert_eq!(
        summary.dirs, 6,
        "apps, apps/web, apps/web/hooks, nnn…, web, web/hooks"
    );
    assert_eq!(
        fs::read(out.join("apps/web/deploy.yaml")).expect("file"),
        b"kind: Deployment\n"
    );
    let mode = |p: &str| {
        fs::metadata(out.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("apps/web/hooks/pre.sh"), 0o755);
    assert_eq!(mode("apps/web/deploy.yaml"), 0o644);
    assert_eq!(mode("."), 0o755);
    assert_eq!(mode("web/hooks/pre.sh"), 0o755);
    for copy in [
        "apps/web/current.yaml",
        "web/current.yaml",
        "web/deploy.yaml",
    ] {
        assert!(!fs::symlink_metadata(out.join(copy))
            .expect("stat")
            .is_symlink());
        assert_eq!(fs::read(out.join(copy)).expect(copy), b"kind: Deployment\n");
    }
    // The extracted tree (no symlinks left) packs to the very same artifact.
    let again = mainline_pack::pack_dir(&out, &meta(), tmp.path(), &mut |_| {}).expect("repack");
    assert_eq!(again.manifest_digest, packed.manifest_digest);
    assert_eq!(layer_bytes(&again), layer_bytes(&packed));
}

#[test]
fn list_returns_sorted_entries_with_kinds_sizes_and_modes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    sample_tree(&src);
    let packed = pack(&src, tmp.path());
    let entries = list(&layer_bytes(&packed)[..]).expect("list");
    let long_dir = "n".repeat(140);
    let expected = [
        ("apps", EntryKind::Dir, 0, 0o755, None),
        ("apps/web", EntryKind::Dir, 0, 0o755, None),
        ("apps/web/current.yaml", EntryKind::File, 17, 0o644, None),
        ("apps/web/deploy.yaml", EntryKind::File, 17, 0o644, None),
        ("apps/web/hooks", EntryKind::Dir, 0, 0o755, None),
        ("apps/web/hooks/pre.sh", EntryKind::File, 17, 0o755, None),
        ("kustomization.yaml", EntryKind::File, 18, 0o644, None),
        (long_dir.as_str(), EntryKind::Dir, 0, 0o755, None),
        (
            &format!("{long_dir}/long.yaml"),
            EntryKind::File,
            8,
            0o644,
            None,
        ),
        ("web", EntryKind::Dir, 0, 0o755, None),
        ("web/current.yaml", EntryKind::File, 17, 0o644, None),
        ("web/deploy.yaml", EntryKind::File, 17, 0o644, None),
        ("web/hooks", EntryKind::Dir, 0, 0o755, None),
        ("web/hooks/pre.sh", EntryKind::File, 17, 0o755, None),
    ];
    let got: Vec<_> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.size, e.mode, e.target.as_deref()))
        .collect();
    assert_eq!(got, expected);
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(got, sorted);
}

#[test]
fn tolerant_of_dot_slash_names_and_hardlinks_to_earlier_files() {
    let layer = craft(&[
        Raw::Dir("./"),
        Raw::Dir("./a/"),
        Raw::File("./a/x.yaml", b"x: 1\n"),
        Raw::Hardlink("./a/y.yaml", "./a/x.yaml"),
        Raw::File("b//c.yaml", b"c\n"),
    ]);
    let names: Vec<String> = list(&layer[..])
        .expect("list")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["a", "a/x.yaml", "a/y.yaml", "b/c.yaml"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("d");
    fs::create_dir(&dest).expect("empty dest");
    let summary = extract(&layer[..], &dest, false).expect("an empty dest needs no --force");
    assert_eq!((summary.files, summary.dirs), (3, 2));
    assert_eq!(
        fs::read(dest.join("a/y.yaml")).expect("hard link"),
        b"x: 1\n"
    );
}
