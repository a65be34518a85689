//! Shared fixtures: artifact metadata, tree builders, a git CLI wrapper with fixed identities
//! and dates, and tar readers.
#![allow(dead_code)]

use mainline_core::{CommitId, Revision};
use mainline_pack::{ArtifactMeta, Packed};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn meta() -> ArtifactMeta {
    meta_for(COMMIT)
}

pub fn meta_for(commit: &str) -> ArtifactMeta {
    let commit: CommitId = commit.parse().expect("test commit id is valid");
    ArtifactMeta::new(
        "https://github.com/example/deploy",
        Revision::new(Some("main".to_owned()), commit),
        "2024-05-01T12:00:00Z",
    )
    .expect("test metadata is valid")
}

/// Writes `contents` to `root/rel`, creating parents, with permission bits `mode`.
pub fn write_file(root: &Path, rel: &str, contents: &[u8], mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("file has a parent")).expect("create parents");
    fs::write(&path, contents).expect("write file");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

pub fn symlink(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("link has a parent")).expect("create parents");
    std::os::unix::fs::symlink(target, path).expect("create symlink");
}

/// Sets the mtime of `root/rel` (file or folder, not following symlinks' targets).
pub fn set_mtime(root: &Path, rel: &str, secs: u64) {
    let file = fs::File::open(root.join(rel)).expect("open for mtime");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

/// Packs with symlinks resolved (`--resolve-symlinks`), so trees with links pack.
pub fn pack_dir(dir: &Path, scratch: &Path) -> Packed {
    let options = mainline_pack::PackOptions {
        symlinks: mainline_pack::Symlinks::Resolve,
        threads: None,
    };
    mainline_pack::pack_dir_with(dir, &meta(), scratch, options, &mut |_| {})
        .expect("pack_dir succeeds")
}

pub fn layer_bytes(packed: &Packed) -> Vec<u8> {
    fs::read(&packed.layer_file).expect("read layer file")
}

/// One raw tar entry: (name as written, type byte, mode, uid, gid, mtime, uname, gname,
/// size, link name).
#[derive(Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub name: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: String,
    pub gname: String,
    pub size: u64,
    pub link: Option<String>,
    pub contents: Vec<u8>,
}

/// Reads every entry of a gzip tar, as written (no normalisation).
pub fn raw_entries(layer: &[u8]) -> Vec<RawEntry> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let h = entry.header().clone();
        let name = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 name");
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).expect("utf-8 link"));
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).expect("read entry");
        out.push(RawEntry {
            name,
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().expect("mode"),
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            mtime: h.mtime().expect("mtime"),
            uname: h.username().expect("uname").unwrap_or_default().to_owned(),
            gname: h.groupname().expect("gname").unwrap_or_default().to_owned(),
            size: h.size().expect("size"),
            link,
            contents,
        });
    }
    out
}

/// The `git` CLI with fixed identity and dates, isolated from user and system config.
pub struct Git {
    pub dir: PathBuf,
}

impl Git {
    pub fn init(dir: &Path) -> Git {
        fs::create_dir_all(dir).expect("create repo dir");
        let git = Git {
            dir: dir.to_owned(),
        };
        git.run(&["init", "-q", "-b", "main"]);
        git
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Fixture Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Fixture Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z");
        cmd
    }

    /// Runs git and returns trimmed stdout; panics with stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        self.run_dated(args, "2024-05-01T12:00:00Z")
    }

    pub fn run_dated(&self, args: &[&str], date: &str) -> String {
        let out = self
            .command()
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 git output")
            .trim()
            .to_owned()
    }

    /// Stages everything and commits at `date`; returns the commit id.
    pub fn commit_all(&self, message: &str, date: &str) -> String {
        self.run(&["add", "-A"]);
        self.run_dated(&["commit", "-q", "-m", message], date);
        self.run(&["rev-parse", "HEAD"])
    }

    /// A blob-less partial clone of this repository at `into` (commits and trees, no file
    /// contents): what packing from a cache that never fetched the blobs meets.
    pub fn blobless_clone(&self, into: &Path) {
        self.run(&["config", "uploadpack.allowFilter", "true"]);
        let url = format!("file://{}", self.dir.display());
        let out = self
            .command()
            .args(["clone", "-q", "--no-checkout", "--filter=blob:none", &url])
            .arg(into)
            .output()
            .expect("git clone runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Materialises `commit` into a fresh folder with `git archive | tar -x` and returns
    /// the path of `subdir` in it.
    pub fn checkout(&self, commit: &str, subdir: &str, into: &Path) -> PathBuf {
        fs::create_dir_all(into).expect("create checkout dir");
        let archive = self
            .command()
            .args(["archive", "--format=tar", commit])
            .output()
            .expect("git archive runs");
        assert!(archive.status.success(), "git archive failed");
        let mut tar = Command::new("tar")
            .args(["-x", "-C"])
            .arg(into)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("tar runs");
        use std::io::Write;
        tar.stdin
            .take()
            .expect("tar stdin")
            .write_all(&archive.stdout)
            .expect("feed tar");
        assert!(tar.wait().expect("tar finishes").success(), "tar -x failed");
        into.join(subdir)
    }
}
