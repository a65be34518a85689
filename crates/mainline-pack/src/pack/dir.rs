//! Packs a folder on disk.
//!
//! Invariants: the walk visits children in [`super::entry_order`] (the order of the entry
//! names, folders spelled with a trailing `/`), which is also git's tree order, so a checkout
//! packs exactly like its commit; only names, file contents and the executable bit reach the
//! archive. `.git` at any level is skipped. A symlink is refused, or with
//! [`Symlinks::Resolve`] resolved inside the tree (by [`crate::symlink::resolve_link`], never
//! by the kernel) and what it leads to is packed under the link's name.
//!
//! Must never: follow a symlink out of the tree (files are opened with `O_NOFOLLOW`, at their
//! resolved path), write a symlink entry, pack anything but files and folders, or hold more
//! than one directory listing per level.

use super::archive::ArchiveWriter;
use super::error::PackError;
use super::{entry_order, flux_unsafe_name, join, Symlinks};
use crate::symlink::{resolve_link, LinkProblem};
use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) struct DirWalker<'a, 'p> {
    pub root: &'a Path,
    pub symlinks: Symlinks,
    /// The source folders being walked, outermost first: a link into one of them is a cycle.
    pub walking: Vec<String>,
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

    /// Writes everything below the folder `src` ("" for the root) as the folder `rel` of the
    /// archive (they differ below a resolved symlink to a folder).
    pub fn walk(&mut self, src: &str, rel: &str) -> Result<(), PackError> {
        let abs = self.root.join(src);
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
        self.walking.push(src.to_owned());
        for (name, kind) in children {
            let path = join(rel, &name);
            let from = join(src, &name);
            if let Some(reason) = flux_unsafe_name(&name, false) {
                return Err(self.unsafe_name(path, reason));
            }
            if kind.is_dir() {
                self.dir(&from, &path)?;
            } else if kind.is_file() {
                self.file(&from, &path)?;
            } else if kind.is_symlink() {
                self.symlink(&from, &path)?;
            } else {
                return Err(PackError::UnsupportedFileType {
                    path: self.root.join(&from),
                    kind: describe(kind),
                    root: self.root.display().to_string(),
                });
            }
        }
        self.walking.pop();
        Ok(())
    }

    fn unsafe_name(&self, path: String, reason: &'static str) -> PackError {
        PackError::FluxUnsafeName {
            path,
            root: self.root.display().to_string(),
            reason,
        }
    }

    fn dir(&mut self, src: &str, path: &str) -> Result<(), PackError> {
        let name = path.rsplit('/').next().unwrap_or(path);
        if let Some(reason) = flux_unsafe_name(name, true) {
            return Err(self.unsafe_name(path.to_owned(), reason));
        }
        self.out.enter_dir(path);
        self.walk(src, path)?;
        self.out.leave_dir();
        Ok(())
    }

    /// Packs the file at `src` as `path`.
    fn file(&mut self, src: &str, path: &str) -> Result<(), PackError> {
        let abs = self.root.join(src);
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

    /// The symlink at `src`, to be packed as `path`: refused, or what it leads to is packed.
    fn symlink(&mut self, src: &str, path: &str) -> Result<(), PackError> {
        let abs = self.root.join(src);
        let target = read_link_utf8(&abs)?;
        if self.symlinks == Symlinks::Refuse {
            return Err(PackError::SymlinkRefused {
                path: path.to_owned(),
                target,
                root: self.root.display().to_string(),
            });
        }
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
        let problem = |problem| PackError::Symlink {
            path: path.to_owned(),
            target: target.clone(),
            problem,
            root: root.display().to_string(),
        };
        let resolved = resolve_link(src, &target, &mut lookup)?.map_err(problem)?;
        let at = root.join(&resolved);
        match fs::symlink_metadata(&at) {
            Ok(md) if md.is_dir() => {
                // The root is always on the stack, so a link to it is a cycle too.
                let holds_link =
                    |w: &String| *w == resolved || w.starts_with(&format!("{resolved}/"));
                if self.walking.iter().any(holds_link) {
                    return Err(problem(LinkProblem::Cycle));
                }
                self.dir(&resolved, path)
            }
            Ok(md) if md.is_file() => self.file(&resolved, path),
            Ok(md) => Err(PackError::UnsupportedFileType {
                path: at,
                kind: describe(md.file_type()),
                root: root.display().to_string(),
            }),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Err(problem(LinkProblem::Dangling))
            }
            Err(source) => Err(PackError::Read { path: at, source }),
        }
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
