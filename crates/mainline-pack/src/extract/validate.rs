//! Entry-by-entry validation of a tar archive, shared by [`super::list`] and
//! [`super::extract`] so both accept exactly the same archives.
//!
//! Invariants: an accepted path is relative, `/`-separated, free of `.`/`..`/empty
//! components; no entry lies below a symlink or a file of the archive; a hard link names an
//! earlier regular file; after [`Validator::finish`], every symlink resolves inside the
//! archive, judged with the archive's own symlinks (so a later link cannot redirect an
//! earlier one out).
//!
//! Must never: accept an entry that could make extraction write outside its destination.

use super::error::ExtractError;
use super::EntryKind;
use crate::symlink::check_link;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use tar::EntryType;

/// An entry that passed validation.
pub(crate) struct Checked {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    /// Symlink target, or hard link target (a normalised archive path).
    pub target: Option<String>,
}

enum Seen {
    Dir,
    File,
    Symlink(String),
}

#[derive(Default)]
pub(crate) struct Validator {
    seen: HashMap<String, Seen>,
}

impl Validator {
    /// Validates one entry; `None` for entries that carry no content (pax global headers,
    /// the archive root `./`).
    pub fn check<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
    ) -> Result<Option<Checked>, ExtractError> {
        let header = entry.header();
        let raw_path = entry.path_bytes();
        let entry_name = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = match header.entry_type() {
            EntryType::Regular | EntryType::Continuous => EntryKind::File,
            EntryType::Directory => EntryKind::Dir,
            EntryType::Symlink => EntryKind::Symlink,
            EntryType::Link => EntryKind::Hardlink,
            EntryType::XGlobalHeader => return Ok(None),
            other => {
                return Err(ExtractError::Unsupported {
                    entry: entry_name,
                    kind: describe(other),
                })
            }
        };
        let path = normalise(&raw_path, &entry_name)?;
        if path.is_empty() {
            return match kind {
                EntryKind::Dir => Ok(None),
                _ => Err(ExtractError::EmptyPath { entry: entry_name }),
            };
        }
        let target = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => {
                let raw = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target = String::from_utf8(raw).map_err(|_| ExtractError::NonUtf8 {
                    entry: entry_name.clone(),
                })?;
                Some(target)
            }
            _ => None,
        };
        self.check_parents(&path, &entry_name)?;
        let target = match (kind, target) {
            (EntryKind::Hardlink, Some(t)) => Some(self.check_hardlink(&entry_name, &t)?),
            (_, t) => t,
        };
        let seen = match (kind, &target) {
            (EntryKind::Dir, _) => Seen::Dir,
            (EntryKind::Symlink, Some(t)) => Seen::Symlink(t.clone()),
            _ => Seen::File,
        };
        match (self.seen.get(&path), &seen) {
            (None, _) => {
                self.seen.insert(path.clone(), seen);
            }
            (Some(Seen::Dir), Seen::Dir) => {}
            (Some(_), _) => return Err(ExtractError::Duplicate { entry: entry_name }),
        }
        Ok(Some(Checked {
            path,
            kind,
            size: header.entry_size().map_err(ExtractError::Read)?,
            mode: header.mode().map_err(ExtractError::Read)? & 0o7777,
            target,
        }))
    }

    /// Every ancestor must be a folder (seen or implied); implied folders are recorded.
    fn check_parents(&mut self, path: &str, entry_name: &str) -> Result<(), ExtractError> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let parent = &path[..end];
            match self.seen.get(parent) {
                None => {
                    self.seen.insert(parent.to_owned(), Seen::Dir);
                }
                Some(Seen::Dir) => {}
                Some(Seen::Symlink(_)) => {
                    return Err(ExtractError::ThroughSymlink {
                        entry: entry_name.to_owned(),
                        link: parent.to_owned(),
                    })
                }
                Some(Seen::File) => {
                    return Err(ExtractError::ParentNotDir {
                        entry: entry_name.to_owned(),
                        parent: parent.to_owned(),
                    })
                }
            }
            end += 1;
        }
        Ok(())
    }

    /// A hard link must name an earlier regular file (by archive path); returns its path.
    fn check_hardlink(&self, entry_name: &str, target: &str) -> Result<String, ExtractError> {
        let outside = || ExtractError::HardlinkOutside {
            entry: entry_name.to_owned(),
            target: target.to_owned(),
        };
        let normalised = normalise(target.as_bytes(), target).map_err(|_| outside())?;
        match self.seen.get(&normalised) {
            Some(Seen::File) => Ok(normalised),
            _ => Err(ExtractError::HardlinkUnknown {
                entry: entry_name.to_owned(),
                target: target.to_owned(),
            }),
        }
    }

    /// Checks that every symlink resolves inside the archive, now that all are known.
    pub fn finish(&self) -> Result<(), ExtractError> {
        let mut lookup = |rel: &str| -> Result<Option<String>, Infallible> {
            Ok(match self.seen.get(rel) {
                Some(Seen::Symlink(t)) => Some(t.clone()),
                _ => None,
            })
        };
        let mut links: Vec<(&String, &String)> = self
            .seen
            .iter()
            .filter_map(|(p, s)| match s {
                Seen::Symlink(t) => Some((p, t)),
                _ => None,
            })
            .collect();
        // Report the first offender by path, not by hash order.
        links.sort();
        for (path, target) in links {
            let verdict = match check_link(path, target, &mut lookup) {
                Ok(v) => v,
                Err(never) => match never {},
            };
            if let Some(problem) = verdict {
                return Err(ExtractError::Symlink {
                    entry: path.clone(),
                    target: target.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }

    /// Folders seen or implied so far.
    pub fn dirs(&self) -> u64 {
        self.seen
            .values()
            .filter(|s| matches!(s, Seen::Dir))
            .count() as u64
    }
}

/// `./a//b/` → `a/b`; refuses non-UTF-8, absolute paths and `..`.
fn normalise(raw: &[u8], entry_name: &str) -> Result<String, ExtractError> {
    let path = std::str::from_utf8(raw).map_err(|_| ExtractError::NonUtf8 {
        entry: entry_name.to_owned(),
    })?;
    if path.starts_with('/') {
        return Err(ExtractError::Absolute {
            entry: entry_name.to_owned(),
        });
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ExtractError::ParentDir {
                    entry: entry_name.to_owned(),
                })
            }
            _ => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn describe(kind: EntryType) -> String {
    match kind {
        EntryType::Char => "character device".to_owned(),
        EntryType::Block => "block device".to_owned(),
        EntryType::Fifo => "fifo".to_owned(),
        EntryType::GNUSparse => "sparse file".to_owned(),
        other => format!("entry of type {:?}", other.as_byte() as char),
    }
}
