//! File-system primitives for the image layout: atomic replacement, the cross-process lock,
//! and hashed copying.
//!
//! Invariants: a file written with [`write_atomic`] is either absent, or complete and durable
//! (written to a temporary file in the same directory, fsynced, renamed over the target, then
//! the directory fsynced), so a reader or a crash never sees half a file. [`IndexLock`] is an
//! exclusive `flock(2)` held until dropped; it excludes other processes and other open file
//! descriptions in this process alike.
//!
//! Must never: leave a temporary file visible under a final name; hold a lock past its guard.

use rustix::fs::{flock, FlockOperation};
use sha2::{Digest as _, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Prefix of the temporary files we create; anything with it is an unfinished write.
pub(crate) const TEMP_PREFIX: &str = ".mainline-tmp-";

/// The bytes we read or write at a time when streaming a blob; memory use is bounded by it.
pub(crate) const CHUNK: usize = 256 * 1024;

/// A temporary file in `dir` created with mode 0666 less the user's umask — the mode any
/// ordinary file gets — not tempfile's private 0600: a layout is shared with skopeo, Flux
/// tooling and other users the way the user's umask says.
pub(crate) fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Replaces `dir/name` with `bytes`, atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut temp = temp_file_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Makes a rename or a creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on a file, released when dropped (closing the descriptor releases it).
pub(crate) struct IndexLock {
    _file: File,
}

impl IndexLock {
    /// Blocks until this process holds the exclusive lock on `path` (created if missing).
    pub(crate) fn acquire(path: &Path) -> io::Result<IndexLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        flock(&file, FlockOperation::LockExclusive)?;
        Ok(IndexLock { _file: file })
    }
}

/// What [`copy_hashed`] read: the byte count and the sha256 of those bytes.
pub(crate) struct Copied {
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
}

/// Copies `from` into `to` in [`CHUNK`]-sized pieces, hashing as it goes and calling
/// `progress` with the running byte count. Stops reading once more than `limit` bytes came
/// (reporting a `size` above `limit`), so a file larger than announced cannot fill the disk.
pub(crate) fn copy_hashed(
    from: &mut dyn Read,
    to: &mut dyn Write,
    limit: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Copied> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        if size > limit {
            // Over the announced size: stop here; the caller sees `size > limit`.
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        progress(size);
    }
    Ok(Copied {
        size,
        sha256: hasher.finalize().into(),
    })
}
