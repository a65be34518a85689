//! Packing a deploy tree — a folder ([`pack_dir`]) or a folder of a commit ([`pack_git`]) —
//! into a reproducible Flux artifact.
//!
//! The layer is a gzip tar whose entries are the paths relative to the packed folder, as
//! flux writes them (no leading `./`; folders carry a trailing `/`). Entries are sorted
//! bytewise by that name, which is the same as git's tree order, and a folder comes before
//! its contents. Only folders that hold at least one entry are written (git cannot hold
//! empty folders, and a checkout must pack like its commit). Files are 0644, or 0755 when any
//! executable bit is set; uid/gid 0, no user/group names, mtime 0. `.git` at any level is
//! skipped. The gzip is a series of members, one per 1 MiB of tar stream, compressed in
//! parallel by libdeflate ([`gzip`]); the bytes do not depend on the thread count. From git,
//! blobs are inflated ahead of the walk on a thread of their own ([`prefetch`]), so the
//! walking thread only builds the tar stream; with one thread, everything runs on the caller's.
//!
//! What Flux applies is what was packed. Flux's source-controller unpacks with
//! `tar.Untar(.., WithSkipSymlinks())` and refuses any path with a backslash or `../` in it,
//! so an artifact never holds a symlink or such a name: by default ([`Symlinks::Refuse`]) a
//! symlink fails the pack naming its path; with [`Symlinks::Resolve`] (`--resolve-symlinks`,
//! as `flux push artifact --resolve-symlinks`) it is stored as a copy of what it points to, a
//! file or a whole folder, which must be inside the packed folder. A backslash in a name, or
//! a folder whose name ends in `..`, fails the pack ([`PackError::FluxUnsafeName`]).
//!
//! Must never: produce different bytes for the same tree on another machine, read a whole
//! tree into memory, leave a layer file behind on error, or write a symlink entry or a name
//! that Flux would unpack differently from how it was packed.

mod archive;
mod dir;
mod error;
mod git;
mod gzip;
mod prefetch;

pub use error::{GitSource, PackError};

use crate::flux::{flux_config, manifest_bytes, ArtifactMeta, Descriptor, FLUX_CONFIG_BYTES};
use archive::{ArchiveWriter, Layer};
use mainline_core::{CommitId, Digest};
use std::cmp::Ordering;
use std::num::NonZeroUsize;
use std::path::Path;
use tempfile::TempPath;

/// The version of the packing format: which bytes a given tree packs to (tar entry order,
/// modes and headers, the gzip member size, chunking and level, the compressor). Bump it with
/// any change that makes some tree pack to other layer bytes — the golden tests in
/// `tests/reproducible.rs` and `tests/parallel_gzip.rs` fail on such a change and say so.
/// Whatever remembers "tree → layer" (the store's tree index) records this version and never
/// reuses an entry of another one: the artifact for a commit stays byte-identical whether it
/// is packed or reused.
///
/// Format 1: members of 1 MiB of tar, deflated by zlib-rs at level 6 fed 64 KiB pieces (a
/// layer of at most 1 MiB kept the digest of the single-stream format before it). Format 2:
/// the same members and level, each deflated whole by libdeflate — every layer's digest
/// changed, for 1.5× the deflate speed per core (see [`gzip`]). The tar stream inside is the
/// same in both, which is how a push recognises an artifact packed by an older format.
pub const PACK_FORMAT: u32 = 2;

/// A packed artifact, ready to upload: the layer in a temp file (deleted on drop), the config
/// and manifest bytes, and their descriptors.
#[derive(Debug)]
pub struct Packed {
    /// The gzip tar layer, in the scratch folder.
    pub layer_file: TempPath,
    pub layer: Descriptor,
    pub config: Descriptor,
    pub config_bytes: Vec<u8>,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    /// Tar entries written: files and folders (never symlinks).
    pub entries: u64,
    /// Regular files among `entries`: the one count of files `push`, `pull` and `inspect` show.
    pub files: u64,
    /// Sum of the sizes of the files packed (uncompressed).
    pub content_bytes: u64,
}

impl Packed {
    /// Whether the layer holds no entry at all (no file, folder or symlink).
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Refuse an empty artifact: Flux with `prune: true` deletes everything an empty artifact
    /// does not name. `root` names what was packed, for the message. Callers skip this only
    /// when the user asked for an empty deploy (`--allow-empty`).
    pub fn refuse_empty(&self, root: &str) -> Result<(), PackError> {
        if self.is_empty() {
            return Err(PackError::EmptyTree {
                root: root.to_owned(),
            });
        }
        Ok(())
    }
}

/// A commit and its committer time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: CommitId,
    /// The committer time, RFC 3339 UTC (`2024-05-01T12:00:00Z`): a reproducible `created`.
    pub time: String,
}

/// What packing does with a symlink in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Symlinks {
    /// Fail, naming the link: Flux would silently drop it when it unpacks.
    #[default]
    Refuse,
    /// Store what the link points to (a file's content and executable bit, or a folder's
    /// whole tree) under the link's name. The target must be inside the packed folder, exist,
    /// and not contain the link (no cycles).
    Resolve,
}

/// How to pack. `PackOptions::default()` refuses symlinks and compresses on as many threads
/// as the machine has (at most 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackOptions {
    pub symlinks: Symlinks,
    /// Compression parallelism (up to twice this many blocks are compressed at once, each on
    /// a thread of its own); `None` for the default. Never changes the bytes packed.
    pub threads: Option<NonZeroUsize>,
}

impl PackOptions {
    fn threads(&self) -> NonZeroUsize {
        self.threads.unwrap_or_else(gzip::auto_threads)
    }
}

/// Packs folder `dir` with the default options (symlinks refused). The layer is written to a
/// temp file in `scratch`; `progress` is called after each file with the number of content
/// bytes packed so far.
pub fn pack_dir(
    dir: &Path,
    meta: &ArtifactMeta,
    scratch: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Packed, PackError> {
    pack_dir_with(dir, meta, scratch, PackOptions::default(), progress)
}

/// [`pack_dir`] with explicit [`PackOptions`].
pub fn pack_dir_with(
    dir: &Path,
    meta: &ArtifactMeta,
    scratch: &Path,
    options: PackOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Packed, PackError> {
    dir::DirWalker::check_root(dir)?;
    let mut walker = dir::DirWalker {
        root: dir,
        symlinks: options.symlinks,
        walking: Vec::new(),
        out: ArchiveWriter::create(scratch, options.threads(), progress)?,
    };
    walker.walk("", "")?;
    Ok(assemble(walker.out.finish()?, meta))
}

/// Packs folder `subdir` (`""` or `"."` for the whole tree) of `commit` in the git repository
/// at `repo`, reading objects directly. Gives the same bytes as [`pack_dir`] on a checkout of
/// that folder. A blob or tree missing from the object database (a blob-less partial clone)
/// gives [`PackError::MissingObject`]; fetch it and retry. Symlinks are refused.
pub fn pack_git(
    repo: &Path,
    commit: &CommitId,
    subdir: &str,
    meta: &ArtifactMeta,
    scratch: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Packed, PackError> {
    let options = PackOptions::default();
    pack_git_with(repo, commit, subdir, meta, scratch, options, progress)
}

/// [`pack_git`] with explicit [`PackOptions`]; gives the same bytes as [`pack_dir_with`] with
/// the same options on a checkout.
pub fn pack_git_with(
    repo: &Path,
    commit: &CommitId,
    subdir: &str,
    meta: &ArtifactMeta,
    scratch: &Path,
    options: PackOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Packed, PackError> {
    let subdir = normalise_subdir(subdir)?;
    let repository = git::open(repo)?;
    let root = git::GitWalker::subdir_tree(&repository, repo, commit, &subdir)?;
    let mut walker = git::GitWalker {
        repo: &repository,
        repo_path: repo,
        commit,
        root_name: git::root_name(commit, &subdir),
        root,
        symlinks: options.symlinks,
        walking: Vec::new(),
        prefetch: (options.threads().get() > 1)
            .then(|| prefetch::Prefetch::start(repo.to_owned(), commit.clone(), root)),
        out: ArchiveWriter::create(scratch, options.threads(), progress)?,
    };
    walker.walk(root, "", "")?;
    Ok(assemble(walker.out.finish()?, meta))
}

/// The git tree id of folder `subdir` (`""` or `"."` for the whole tree) of `commit`: the
/// tree [`pack_git`] would walk, found the same way (the same normalisation of `subdir`). Reads
/// only the commit and trees, so a blob-less clone answers it.
pub fn git_tree_id(repo: &Path, commit: &CommitId, subdir: &str) -> Result<String, PackError> {
    let subdir = normalise_subdir(subdir)?;
    let repository = git::open(repo)?;
    let tree = git::GitWalker::subdir_tree(&repository, repo, commit, &subdir)?;
    Ok(tree.to_hex().to_string())
}

/// Resolves `rev` — a commit id, a branch (`main`, `refs/heads/x`), `HEAD` or a tag — in
/// the repository at `repo` to its commit id and committer time.
pub fn git_commit_info(repo: &Path, rev: &str) -> Result<CommitInfo, PackError> {
    git::commit_info(repo, rev)
}

fn assemble(layer: Layer, meta: &ArtifactMeta) -> Packed {
    let config = flux_config();
    let manifest = manifest_bytes(&config, &layer.descriptor, meta);
    Packed {
        layer_file: layer.file,
        layer: layer.descriptor,
        config,
        config_bytes: FLUX_CONFIG_BYTES.to_vec(),
        manifest_digest: Digest::of(&manifest),
        manifest_bytes: manifest,
        entries: layer.entries,
        files: layer.files,
        content_bytes: layer.content_bytes,
    }
}

/// `""`, `"."`, `"./"` → `""`; `"./k8s/"` → `"k8s"`. Absolute paths and `..` are refused.
fn normalise_subdir(subdir: &str) -> Result<String, PackError> {
    let parts: Vec<&str> = subdir
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if subdir.starts_with('/') || parts.contains(&"..") {
        return Err(PackError::InvalidSubdir {
            subdir: subdir.to_owned(),
        });
    }
    Ok(parts.join("/"))
}

/// Archive order of two siblings: by name, a folder's name followed by `/`. This is git's
/// tree order, and makes a depth-first walk emit entries sorted bytewise by full name.
pub(crate) fn entry_order(a: &str, a_dir: bool, b: &str, b_dir: bool) -> Ordering {
    let a_key = a.bytes().chain(a_dir.then_some(b'/'));
    let b_key = b.bytes().chain(b_dir.then_some(b'/'));
    a_key.cmp(b_key)
}

/// Why Flux's source-controller would unpack an entry named `name` (a folder when `dir`)
/// differently from how it was packed — it refuses the whole artifact — or `None`.
pub(crate) fn flux_unsafe_name(name: &str, dir: bool) -> Option<&'static str> {
    if name.contains('\\') {
        Some("its name contains a backslash")
    } else if dir && name.ends_with("..") {
        Some("it is a folder whose name ends in `..`, so its paths contain `../`")
    } else {
        None
    }
}

/// `rel/name`, or `name` at the root.
pub(crate) fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}
