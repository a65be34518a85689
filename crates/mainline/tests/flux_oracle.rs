//! Issue 13: Flux's own code is the judge of every artifact mainline ships.
//!
//! Each tree of the corpus is committed to a real git repository, pushed with `mainline push`
//! from the folder and with `--git` (same digest), then pulled by `tests/flux-oracle`, which
//! runs source-controller's own calls (go-containerregistry remote/layout, layer selection by
//! media type, `tar.Untar(.., WithMaxUntarSize(-1), WithSkipSymlinks())`, then its
//! `.sourceignore` and default exclusion rules). What Flux untars must equal what
//! `mainline pull` extracts and what the source held (symlinks resolved as the kernel
//! resolves them); what Flux applies must be that minus exactly the files its ignore rules
//! name. Trees Flux would unpack differently must be refused with the reason (exit 2).
//! Both stores: a registry (Debian's docker-registry) and an OCI image layout.

#[macro_use]
mod support;
#[path = "support/oracle.rs"]
mod oracle;

use oracle::{assert_same_tree, flux_pull, snapshot, Node};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use support::*;

const CREATED: &str = "2024-05-01T12:00:00Z";

struct Case {
    build: fn(&Path),
    /// The tree holds this symlink: refused by default (the message names it), packed with
    /// --resolve-symlinks.
    link: Option<&'static str>,
    /// Refused even with --resolve-symlinks; the message contains this.
    refused: Option<&'static str>,
    /// Files source-controller's ignore rules leave out of what it applies.
    ignored: &'static [&'static str],
}

const PLAIN: Case = Case {
    build: |_| {},
    link: None,
    refused: None,
    ignored: &[],
};

fn file(root: &Path, rel: &str, content: &[u8], mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, content).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn yaml(root: &Path, rel: &str) {
    file(
        root,
        rel,
        format!("# {rel}\nkind: ConfigMap\n").as_bytes(),
        0o644,
    );
}

fn link(root: &Path, rel: &str, target: &str) {
    symlink(target, root.join(rel)).expect("symlink");
}

/// Push `case` from a folder and from git objects, pull it with Flux's code and ours, and
/// compare every tree.
fn check(store: &str, tmp: &Path, case: Case) {
    let repo = tmp.join("repo");
    fs::create_dir_all(&repo).expect("mkdir repo");
    yaml(&repo, "kustomization.yaml");
    (case.build)(&repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "corpus"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let revision = format!("main@sha1:{commit}");
    let tag = format!("sha-{commit}");
    let repo_s = repo.to_str().expect("utf-8 path");
    let push = |git: bool, resolve: bool| {
        let mut args = vec!["push"];
        args.extend(if git {
            vec!["--git", repo_s, "--path", "."]
        } else {
            vec![repo_s]
        });
        args.extend(["--to", store, "--revision", &revision, "--created", CREATED]);
        args.extend(["-o", "json"]);
        if resolve {
            args.push("--resolve-symlinks");
        }
        mainline(&args)
    };

    if let Some(path) = case.link {
        for git in [false, true] {
            let r = push(git, false);
            assert_eq!(r.code, 2, "a symlink is refused by default: {}", r.stderr);
            assert!(
                r.stderr.contains(path) && r.stderr.contains("--resolve-symlinks"),
                "names the link and the way out: {}",
                r.stderr
            );
        }
    }
    if let Some(reason) = case.refused {
        for git in [false, true] {
            let r = push(git, case.link.is_some());
            assert_eq!(r.code, 2, "refused: {}", r.stderr);
            assert!(r.stderr.contains(reason), "says why: {}", r.stderr);
        }
        let r = mainline(&["inspect", &format!("{store}:{tag}")]);
        assert_ne!(r.code, 0, "nothing was pushed: {}", r.stdout);
        return;
    }
    let resolve = case.link.is_some();
    let from_dir = push(false, resolve).ok().json();
    let from_git = push(true, resolve).ok().json();
    assert_eq!(
        from_dir["digest"], from_git["digest"],
        "a folder and its commit pack alike"
    );

    // Flux's metadata reader (oci.MetadataFromAnnotations) sees what mainline recorded.
    let seen = oracle::run_oracle(&["inspect", &oracle::oracle_ref(store, &tag)]);
    assert_eq!(seen["metadata"]["source_revision"], revision.as_str());
    assert_eq!(seen["metadata"]["created"], CREATED);
    assert_eq!(
        seen["manifest"]["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );

    let flux_raw = tmp.join("flux-untar");
    let report = flux_pull(store, &tag, &flux_raw, true);
    assert_eq!(
        report["annotations"]["org.opencontainers.image.revision"],
        revision
    );
    let flux_applied = tmp.join("flux-applied");
    let report = flux_pull(store, &tag, &flux_applied, false);
    let ours = tmp.join("mainline-pull");
    let ours_s = ours.to_str().expect("utf-8 path");
    mainline(&["pull", &format!("{store}:{tag}"), "--output-dir", ours_s]).ok();

    let source = snapshot(&repo, resolve);
    let untarred = snapshot(&flux_raw, false);
    let pulled = snapshot(&ours, false);
    assert!(
        untarred.values().all(|n| *n != Node::Symlink),
        "no symlink reaches Flux"
    );
    assert_same_tree(&untarred, &pulled, "Flux's untar vs mainline pull");
    assert_same_tree(&pulled, &source, "mainline pull vs the source tree");
    let mut applied_want = source.clone();
    for path in case.ignored {
        assert!(
            applied_want.remove(*path).is_some(),
            "{path} is in the tree"
        );
    }
    assert_same_tree(
        &snapshot(&flux_applied, false),
        &applied_want,
        "what Flux applies vs the source minus its ignore rules",
    );
    let ignored: Vec<&str> = report["ignored"]
        .as_array()
        .expect("ignored list")
        .iter()
        .map(|v| v.as_str().expect("path"))
        .collect();
    assert_eq!(ignored, case.ignored, "the files Flux's ignore rules drop");
}

fn plain_tree(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "apps/web.yaml");
                yaml(r, "apps/db/db.yaml");
            },
            ..PLAIN
        },
    );
}
on_both_stores!(plain_tree);

fn symlinks_in_tree(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "apps/web.yaml");
                link(r, "apps/current.yaml", "web.yaml");
                link(r, "base.yaml", "apps/web.yaml");
            },
            link: Some("apps/current.yaml"),
            ..PLAIN
        },
    );
}
on_both_stores!(symlinks_in_tree);

fn symlinked_folder(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "apps/web.yaml");
                file(r, "apps/hooks/pre.sh", b"#!/bin/sh\nexit 0\n", 0o755);
                link(r, "prod", "apps");
            },
            link: Some("prod"),
            ..PLAIN
        },
    );
}
on_both_stores!(symlinked_folder);

fn dangling_symlink(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "apps/web.yaml");
                link(r, "apps/gone.yaml", "missing.yaml");
            },
            link: Some("apps/gone.yaml"),
            refused: Some("dangling"),
            ..PLAIN
        },
    );
}
on_both_stores!(dangling_symlink);

fn empty_folders(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "apps/web.yaml");
                fs::create_dir_all(r.join("empty")).expect("mkdir");
                fs::create_dir_all(r.join("apps/empty/nested")).expect("mkdir");
            },
            ..PLAIN
        },
    );
}
on_both_stores!(empty_folders);

fn exec_bits_kept(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                file(r, "bin/run.sh", b"#!/bin/sh\necho run\n", 0o755);
                file(r, "bin/private.sh", b"#!/bin/sh\necho private\n", 0o700);
                file(r, "conf/secret.yaml", b"kind: Secret\n", 0o600);
                file(r, "conf/plain.yaml", b"kind: ConfigMap\n", 0o644);
            },
            ..PLAIN
        },
    );
}
on_both_stores!(exec_bits_kept);

fn sourceignore_files(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                file(
                    r,
                    ".sourceignore",
                    b"# not deployed\nsecret.yaml\ndocs/\n",
                    0o644,
                );
                file(r, ".gitignore", b"*.log\n", 0o644);
                yaml(r, "secret.yaml");
                yaml(r, "docs/readme.yaml");
                file(r, "apps/.sourceignore", b"*.tmp.yaml\n", 0o644);
                yaml(r, "apps/a.yaml");
                yaml(r, "apps/b.tmp.yaml");
                // With a .sourceignore present, Flux's default extension rules do not apply.
                file(r, "apps/logo.png", b"\x89PNG\r\n", 0o644);
            },
            ignored: &[
                ".gitignore",
                "apps/b.tmp.yaml",
                "docs/readme.yaml",
                "secret.yaml",
            ],
            ..PLAIN
        },
    );
}
on_both_stores!(sourceignore_files);

fn default_flux_ignores(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "app.yaml");
                yaml(r, "keep/notes.yaml");
                for f in [
                    "logo.png",
                    "img/photo.jpeg",
                    "bundle.zip",
                    "chart.tar.gz",
                    ".github/workflows/ci.yml",
                    ".gitlab-ci.yml",
                    ".gitignore",
                    ".gitattributes",
                    "secrets/.sops.yaml",
                    "x/.flux.yaml",
                    "cloudbuild.yaml",
                ] {
                    file(r, f, b"ignored by flux\n", 0o644);
                }
            },
            ignored: &[
                ".gitattributes",
                ".github/workflows/ci.yml",
                ".gitignore",
                ".gitlab-ci.yml",
                "bundle.zip",
                "chart.tar.gz",
                "cloudbuild.yaml",
                "img/photo.jpeg",
                "logo.png",
                "secrets/.sops.yaml",
                "x/.flux.yaml",
            ],
            ..PLAIN
        },
    );
}
on_both_stores!(default_flux_ignores);

fn unicode_and_long_names(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                yaml(r, "ünïcødé/日本語.yaml");
                yaml(r, "emoji-🚀 and spaces.yaml");
                yaml(r, &format!("{}.yaml", "n".repeat(200)));
                let deep: Vec<String> = (0..5).map(|i| format!("{i}{}", "d".repeat(60))).collect();
                yaml(r, &format!("{}/leaf.yaml", deep.join("/")));
            },
            ..PLAIN
        },
    );
}
on_both_stores!(unicode_and_long_names);

fn backslash_in_a_name(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| yaml(r, "apps/windows\\path.yaml"),
            refused: Some("backslash"),
            ..PLAIN
        },
    );
}
on_both_stores!(backslash_in_a_name);

fn folder_ending_in_dot_dot(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| yaml(r, "v1../app.yaml"),
            refused: Some("`../`"),
            ..PLAIN
        },
    );
}
on_both_stores!(folder_ending_in_dot_dot);

fn a_50_mib_file(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                // Incompressible (xorshift) bytes: the layer is really ~50 MiB.
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                let mut data = Vec::with_capacity(50 << 20);
                while data.len() < 50 << 20 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    data.extend_from_slice(&x.to_le_bytes());
                }
                file(r, "big/blob.bin", &data, 0o644);
            },
            ..PLAIN
        },
    );
}
on_both_stores!(a_50_mib_file);

fn ten_thousand_files(store: &str, tmp: &Path) {
    check(
        store,
        tmp,
        Case {
            build: |r| {
                for i in 0..10_000 {
                    let rel = format!("d{:03}/f{i:05}.yaml", i / 100);
                    file(r, &rel, format!("n: {i}\n").as_bytes(), 0o644);
                }
            },
            ..PLAIN
        },
    );
}
on_both_stores!(ten_thousand_files);
