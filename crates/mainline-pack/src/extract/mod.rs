//! Safe listing and extraction of a Flux content layer (gzip tar).
//!
//! Invariants: [`list`] and [`extract`] accept exactly the same archives (one
//! [`validate::Validator`]). Extraction happens in a fresh private folder beside the
//! destination (same filesystem); entries are moved into the destination only after the
//! whole archive — including the gzip checksum and every symlink — validated. On any error
//! the private folder is removed and the destination is untouched. Without `overwrite`, a
//! non-empty destination is refused before anything is read or written. With `overwrite`,
//! each top-level entry of the archive replaces the same-named entry of the destination
//! (other entries of the destination are kept). Extraction stops, writing nothing into the
//! destination, once the archive declares more content or entries than its [`Limits`].
//!
//! Must never: write outside the destination, follow a symlink while writing, create device
//! or fifo nodes, or leave a half-extracted tree visible in the destination.

mod error;
mod validate;

pub use error::ExtractError;

use flate2::read::MultiGzDecoder;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use validate::{Checked, Validator};

/// What an archive entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link to an earlier file of the archive.
    Hardlink,
}

/// One entry of a layer, as [`list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Normalised relative path (`a/b`, no leading `./`, no trailing `/`).
    pub path: String,
    pub kind: EntryKind,
    /// Size in bytes as recorded in the header (0 for folders and links).
    pub size: u64,
    /// Permission bits as recorded in the header.
    pub mode: u32,
    /// Symlink target, or the archive path a hard link points to.
    pub target: Option<String>,
}

/// What [`extract`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractSummary {
    /// Regular files, hard links included.
    pub files: u64,
    /// Folders, including those implied by the paths of other entries.
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// How much one extraction may write: a small gzip layer can inflate to gigabytes, or hold
/// hundreds of thousands of entries. Checked against each tar header before the entry is
/// written, so a layer over a limit writes nothing to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file content, summed over the archive (as the headers declare them).
    pub max_bytes: u64,
    /// Entries of any kind (files, folders, links).
    pub max_entries: u64,
}

impl Limits {
    /// 100 MiB, as Flux's own untar (`fluxcd/pkg/tar` `DefaultMaxUntarSize`) allows.
    pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
    /// No limit (listing only reads).
    pub const NONE: Limits = Limits {
        max_bytes: u64::MAX,
        max_entries: u64::MAX,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: Limits::DEFAULT_MAX_BYTES,
            max_entries: Limits::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// The entries of a gzip tar layer, sorted by path. Fails on anything [`extract`] would
/// refuse.
pub fn list(layer: impl Read) -> Result<Vec<EntryInfo>, ExtractError> {
    let mut entries = Vec::new();
    walk(layer, Limits::NONE, |checked, _| {
        entries.push(EntryInfo {
            path: checked.path.clone(),
            kind: checked.kind,
            size: checked.size,
            mode: checked.mode,
            target: checked.target.clone(),
        });
        Ok(())
    })?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Extracts a gzip tar layer into `dest` (created if missing), all or nothing, within the
/// default [`Limits`].
pub fn extract(
    layer: impl Read,
    dest: &Path,
    overwrite: bool,
) -> Result<ExtractSummary, ExtractError> {
    extract_within(layer, dest, overwrite, Limits::default())
}

/// [`extract`] with explicit limits; a layer over one is refused and nothing is installed.
pub fn extract_within(
    layer: impl Read,
    dest: &Path,
    overwrite: bool,
    limits: Limits,
) -> Result<ExtractSummary, ExtractError> {
    let target = Destination::prepare(dest, overwrite)?;
    let staging = tempfile::Builder::new()
        .prefix(".mainline-extract-")
        .tempdir_in(&target.parent)
        .map_err(|source| ExtractError::Dest {
            dest: dest.to_owned(),
            source,
        })?;
    let root = staging.path().to_owned();
    let mut summary = ExtractSummary::default();
    let dirs = walk(layer, limits, |checked, data| {
        write_entry(&root, checked, data, &mut summary).map_err(|e| match e {
            CopyError::Read(source) => ExtractError::Read(source),
            CopyError::Write(source) => ExtractError::Write {
                entry: checked.path.clone(),
                dest: dest.to_owned(),
                source,
            },
        })
    })?;
    summary.dirs = dirs;
    target.install(staging)?;
    Ok(summary)
}

/// Validates every entry, hands it to `each`, then checks symlinks and the gzip trailer.
/// Returns the number of folders seen or implied.
fn walk(
    layer: impl Read,
    limits: Limits,
    mut each: impl FnMut(&Checked, &mut dyn Read) -> Result<(), ExtractError>,
) -> Result<u64, ExtractError> {
    let mut archive = tar::Archive::new(MultiGzDecoder::new(layer));
    let mut validator = Validator::default();
    let (mut count, mut bytes) = (0u64, 0u64);
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        if let Some(checked) = validator.check(&entry)? {
            count += 1;
            bytes = bytes.saturating_add(checked.size);
            if count > limits.max_entries {
                return Err(ExtractError::TooManyEntries {
                    limit: limits.max_entries,
                });
            }
            if bytes > limits.max_bytes {
                return Err(ExtractError::TooLarge {
                    limit: limits.max_bytes,
                    entry: checked.path.clone(),
                });
            }
            each(&checked, &mut entry)?;
        }
    }
    validator.finish()?;
    // Read to the end so the gzip CRC and length are verified, not just the tar part.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(ExtractError::Read)?;
    Ok(validator.dirs())
}

/// Writes one validated entry below the staging folder `root`.
fn write_entry(
    root: &Path,
    checked: &Checked,
    data: &mut dyn Read,
    summary: &mut ExtractSummary,
) -> Result<(), CopyError> {
    let path = root.join(&checked.path);
    if let Some(parent) = path.parent() {
        // Safe: the validator guarantees no ancestor is a symlink or a file of the archive.
        fs::create_dir_all(parent)?;
    }
    match checked.kind {
        EntryKind::Dir => {
            fs::create_dir_all(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
        EntryKind::File => {
            let mode = if checked.mode & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let mut file = File::options()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)?;
            let copied = copy(data, &mut file)?;
            // The umask may have narrowed the mode given at creation.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            summary.files += 1;
            summary.bytes += copied;
        }
        EntryKind::Symlink => {
            let target = checked.target.as_deref().unwrap_or_default();
            std::os::unix::fs::symlink(target, &path)?;
            summary.symlinks += 1;
        }
        EntryKind::Hardlink => {
            let target = checked.target.as_deref().unwrap_or_default();
            fs::hard_link(root.join(target), &path)?;
            summary.files += 1;
        }
    }
    Ok(())
}

/// A failure while writing an entry: reading the layer, or writing the staging folder.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl From<io::Error> for CopyError {
    /// Filesystem calls on the staging folder are write-side failures.
    fn from(e: io::Error) -> CopyError {
        CopyError::Write(e)
    }
}

/// `io::copy`, telling a corrupt layer (read side) from a full disk (write side).
fn copy(from: &mut dyn Read, to: &mut File) -> Result<u64, CopyError> {
    use io::Write as _;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Where extracted entries go, checked before anything is written.
struct Destination {
    dest: PathBuf,
    /// The folder that holds the staging folder: the destination's parent.
    parent: PathBuf,
    exists: bool,
}

impl Destination {
    fn prepare(dest: &Path, overwrite: bool) -> Result<Destination, ExtractError> {
        let dest_err = |source| ExtractError::Dest {
            dest: dest.to_owned(),
            source,
        };
        let (dest_path, exists) = match fs::metadata(dest) {
            Ok(md) if md.is_dir() => {
                let empty = fs::read_dir(dest).map_err(dest_err)?.next().is_none();
                if !empty && !overwrite {
                    return Err(ExtractError::DestNotEmpty {
                        dest: dest.to_owned(),
                    });
                }
                // Resolve a symlinked destination so staging lands on its filesystem.
                (fs::canonicalize(dest).map_err(dest_err)?, true)
            }
            Ok(_) => {
                return Err(ExtractError::DestNotDir {
                    dest: dest.to_owned(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (dest.to_owned(), false),
            Err(source) => return Err(dest_err(source)),
        };
        let parent = match dest_path.parent() {
            Some(p) if p.as_os_str().is_empty() => PathBuf::from("."),
            Some(p) => p.to_owned(),
            None => {
                return Err(dest_err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the filesystem root cannot be a destination",
                )))
            }
        };
        if !exists {
            fs::create_dir_all(&parent).map_err(dest_err)?;
        }
        Ok(Destination {
            dest: dest_path,
            parent,
            exists,
        })
    }

    /// Moves the validated staging tree into place.
    fn install(self, staging: tempfile::TempDir) -> Result<(), ExtractError> {
        if !self.exists {
            let staged = staging.path().to_owned();
            // Staging folders are created private (0700); the destination is an ordinary one.
            fs::set_permissions(&staged, fs::Permissions::from_mode(0o755)).map_err(|source| {
                ExtractError::Move {
                    path: staged.clone(),
                    source,
                }
            })?;
            fs::rename(&staged, &self.dest).map_err(|source| ExtractError::Move {
                path: self.dest.clone(),
                source,
            })?;
            // The staging folder now *is* the destination: it must not be cleaned up.
            let _ = staging.keep();
            return Ok(());
        }
        let entries = fs::read_dir(staging.path()).map_err(|source| ExtractError::Move {
            path: self.dest.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| ExtractError::Move {
                path: self.dest.clone(),
                source,
            })?;
            let to = self.dest.join(entry.file_name());
            let move_err = |source| ExtractError::Move {
                path: to.clone(),
                source,
            };
            match fs::symlink_metadata(&to) {
                Ok(md) if md.is_dir() => fs::remove_dir_all(&to).map_err(move_err)?,
                Ok(_) => fs::remove_file(&to).map_err(move_err)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(move_err(source)),
            }
            fs::rename(entry.path(), &to).map_err(move_err)?;
        }
        Ok(())
    }
}
