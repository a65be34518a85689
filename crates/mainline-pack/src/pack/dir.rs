//! Packs a folder on disk.
//!
//! Invariants: the walk visits children in [`super::entry_order`] (the order of the entry
//! names, folders spelled with a trailing `/`), which is also git's tree order, so a checkout
//! packs exactly like its commit; only names, file contents, the executable bit and symlink
//! targets reach the archive. `.git` at any level is skipped.
//!
//! Must never: follow a symlink (files are opened with `O_NOFOLLOW`), pack anything but
//! files, folders and symlinks, or hold more than one directory listing per level.

use super::archive::ArchiveWriter;
use super::error::PackError;
use super::{entry_order, join};
use crate::symlink::check_link;
use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) struct DirWalker<'a, 'p> {
    pub root: &'a Path,
    pub out: ArchiveWriter<'p>,
}

impl DirWalker<'_, '_> {
    /// Checks that the root is an existing folder.
    pub fn check_root(root: &Path) -> Result<(), PackError> {
        match fs::metadata(root) {
            Ok(md) if md.is_dir() => Ok(()),
            Ok(_) => Err(PackError::NotADirectory {
                dir: root.to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PackError::DirNotFound {
                dir: root.to_owned(),
            }),
            Err(source) => Err(PackError::Read {
                path: root.to_owned(),
                source,
            }),
        }
    }

    /// Writes everything below the folder `rel` ("" for the root).
    pub fn walk(&mut self, rel: &str) -> Result<(), PackError> {
        let abs = self.root.join(rel);
        let read_err = |source| PackError::Read {
            path: abs.clone(),
            source,
        };
        let mut children: Vec<(String, FileType)> = Vec::new();
        for entry in fs::read_dir(&abs).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|name| PackError::NonUtf8Name {
                    path: abs.join(name).to_string_lossy().into_owned(),
                })?;
            if name == ".git" {
                continue;
            }
            let kind = entry.file_type().map_err(|source| PackError::Read {
                path: entry.path(),
                source,
            })?;
            children.push((name, kind));
        }
        children.sort_by(|a, b| entry_order(&a.0, a.1.is_dir(), &b.0, b.1.is_dir()));
        for (name, kind) in children {
            let path = join(rel, &name);
            if kind.is_dir() {
                self.out.enter_dir(&path);
                self.walk(&path)?;
                self.out.leave_dir();
            } else if kind.is_file() {
                self.file(&path)?;
            } else if kind.is_symlink() {
                self.symlink(&path)?;
            } else {
                return Err(PackError::UnsupportedFileType {
                    path: self.root.join(&path),
                    kind: describe(kind),
                    root: self.root.display().to_string(),
                });
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &str) -> Result<(), PackError> {
        let abs = self.root.join(path);
        let read_err = |source| PackError::Read {
            path: abs.clone(),
            source,
        };
        // O_NOFOLLOW: if the file was swapped for a symlink since the listing, fail rather
        // than pack whatever the link points to.
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&abs)
            .map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(PackError::Changed { path: abs });
        }
        // Git's rule (ce_permissions): only the owner's execute bit decides 0755 vs 0644.
        let executable = meta.permissions().mode() & 0o100 != 0;
        self.out
            .file(path, executable, meta.len(), &mut file, &abs)?;
        // A file that grew while it was read would be silently truncated: refuse instead.
        let mut probe = [0u8; 1];
        if file.read(&mut probe).map_err(read_err)? != 0 {
            return Err(PackError::Changed { path: abs });
        }
        Ok(())
    }

    fn symlink(&mut self, path: &str) -> Result<(), PackError> {
        let abs = self.root.join(path);
        let target = read_link_utf8(&abs)?;
        let root = self.root;
        let mut lookup = |rel: &str| -> Result<Option<String>, PackError> {
            let candidate = root.join(rel);
            match fs::symlink_metadata(&candidate) {
                Ok(md) if md.file_type().is_symlink() => read_link_utf8(&candidate).map(Some),
                Ok(_) => Ok(None),
                // Missing, or below something that is not a folder: resolved by spelling.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(None)
                }
                Err(source) => Err(PackError::Read {
                    path: candidate,
                    source,
                }),
            }
        };
        if let Some(problem) = check_link(path, &target, &mut lookup)? {
            return Err(PackError::Symlink {
                path: path.to_owned(),
                target,
                problem,
                root: self.root.display().to_string(),
            });
        }
        self.out.symlink(path, &target)
    }
}

fn read_link_utf8(abs: &Path) -> Result<String, PackError> {
    let target = fs::read_link(abs).map_err(|source| PackError::Read {
        path: abs.to_owned(),
        source,
    })?;
    target
        .into_os_string()
        .into_string()
        .map_err(|_| PackError::NonUtf8Name {
            path: format!("{} (symlink target)", abs.display()),
        })
}

fn describe(kind: FileType) -> &'static str {
    if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}
