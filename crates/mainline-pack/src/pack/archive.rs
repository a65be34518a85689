//! The reproducible layer writer: tar entries → gzip members of fixed-size blocks, compressed
//! in parallel ([`super::gzip`]) → sha256 → temp file.
//!
//! Invariants: every header is normalised (uid/gid 0, no user or group names, mtime 0, mode
//! 0755 for folders and executables, 0644 for other files); paths longer
//! than a header holds use GNU long-name entries; the gzip header has mtime 0 and no file
//! name; the compressed bytes are a function of the tar stream alone (fixed blocks, each
//! deflated whole), so they depend neither on how sources happened to be read nor on how
//! many threads compressed them. A folder entry is
//! written lazily, just before its first descendant, so empty folders never appear.
//!
//! Must never: write a symlink or hard-link entry (Flux drops them when it unpacks), end a
//! member anywhere but at a block boundary, buffer more than the compression threads' blocks,
//! or keep a partly written layer (the temp file is deleted on drop).

use super::error::PackError;
use super::gzip::ParallelGz;
use crate::flux::{Descriptor, FLUX_LAYER_MEDIA_TYPE};
use mainline_core::Digest;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};
use tempfile::TempPath;

/// The finished layer: its temp file, descriptor and counts.
pub(crate) struct Layer {
    pub file: TempPath,
    pub descriptor: Descriptor,
    pub entries: u64,
    /// Regular files among `entries` (what `pull` counts as files too).
    pub files: u64,
    pub content_bytes: u64,
}

pub(crate) struct ArchiveWriter<'p> {
    tar: tar::Builder<ParallelGz<HashingWriter>>,
    file: TempPath,
    scratch: PathBuf,
    /// Folders entered but not yet written (no descendant seen yet), outermost first.
    pending_dirs: Vec<String>,
    entries: u64,
    files: u64,
    content_bytes: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<'p> ArchiveWriter<'p> {
    /// Opens a fresh temp file in `scratch`; compresses on up to `threads` threads.
    pub fn create(
        scratch: &Path,
        threads: NonZeroUsize,
        progress: &'p mut dyn FnMut(u64),
    ) -> Result<Self, PackError> {
        let named = tempfile::Builder::new()
            .prefix(".mainline-layer-")
            .suffix(".tar.gz")
            .tempfile_in(scratch)
            .map_err(|source| PackError::Scratch {
                scratch: scratch.to_owned(),
                source,
            })?;
        let (file, path) = named.into_parts();
        let hashing = HashingWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
        };
        Ok(ArchiveWriter {
            tar: tar::Builder::new(ParallelGz::new(hashing, threads)),
            file: path,
            scratch: scratch.to_owned(),
            pending_dirs: Vec::new(),
            entries: 0,
            files: 0,
            content_bytes: 0,
            progress,
        })
    }

    /// Starts folder `path` (relative, no trailing `/`); it is written only if something
    /// is written inside it before [`Self::leave_dir`].
    pub fn enter_dir(&mut self, path: &str) {
        self.pending_dirs.push(format!("{path}/"));
    }

    /// Ends the innermost folder started with [`Self::enter_dir`].
    pub fn leave_dir(&mut self) {
        // Anything still pending here is the innermost folder: deeper ones were either
        // written (which clears the whole stack) or popped when they ended.
        self.pending_dirs.pop();
    }

    /// Writes a regular file of exactly `size` bytes read from `data`. `origin` names the
    /// source in errors.
    pub fn file(
        &mut self,
        path: &str,
        executable: bool,
        size: u64,
        data: &mut dyn Read,
        origin: &Path,
    ) -> Result<(), PackError> {
        self.write_pending_dirs()?;
        let mut header =
            normalised_header(EntryType::Regular, if executable { 0o755 } else { 0o644 });
        header.set_size(size);
        let mut source = ExactReader {
            inner: data,
            remaining: size,
            error: None,
            short: false,
        };
        let result = self.tar.append_data(&mut header, path, &mut source);
        if let Some(source) = source.error {
            return Err(PackError::Read {
                path: origin.to_owned(),
                source,
            });
        }
        if source.short {
            return Err(PackError::Changed {
                path: origin.to_owned(),
            });
        }
        result.map_err(|e| self.scratch_error(e))?;
        self.entries += 1;
        self.files += 1;
        self.content_bytes += size;
        (self.progress)(self.content_bytes);
        Ok(())
    }

    fn write_pending_dirs(&mut self) -> Result<(), PackError> {
        for dir in std::mem::take(&mut self.pending_dirs) {
            let mut header = normalised_header(EntryType::Directory, 0o755);
            self.tar
                .append_data(&mut header, &dir, io::empty())
                .map_err(|e| self.scratch_error(e))?;
            self.entries += 1;
        }
        Ok(())
    }

    fn scratch_error(&self, source: io::Error) -> PackError {
        PackError::Scratch {
            scratch: self.scratch.clone(),
            source,
        }
    }

    /// Ends the archive, the compressed stream and the file, and returns the layer.
    pub fn finish(self) -> Result<Layer, PackError> {
        let scratch_err = |source| PackError::Scratch {
            scratch: self.scratch.clone(),
            source,
        };
        let gz = self.tar.into_inner().map_err(scratch_err)?;
        let mut hashing = gz.finish().map_err(scratch_err)?;
        hashing.file.flush().map_err(scratch_err)?;
        let digest = Digest::from_sha256(hashing.hasher.finalize().into());
        Ok(Layer {
            file: self.file,
            descriptor: Descriptor {
                media_type: FLUX_LAYER_MEDIA_TYPE.to_owned(),
                digest,
                size: hashing.written,
            },
            entries: self.entries,
            files: self.files,
            content_bytes: self.content_bytes,
        })
    }
}

fn normalised_header(kind: EntryType, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// Reads exactly `remaining` bytes, recording a source error or an early end so the caller
/// can tell a bad source from a bad scratch disk.
struct ExactReader<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
    error: Option<io::Error>,
    short: bool,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                self.short = true;
                Err(io::Error::other("source ended before its recorded size"))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.error = Some(e);
                Err(io::Error::other("reading the source failed"))
            }
        }
    }
}

/// Writes to the temp file while hashing and counting what was written.
struct HashingWriter {
    file: File,
    hasher: Sha256,
    written: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.hasher.update(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
