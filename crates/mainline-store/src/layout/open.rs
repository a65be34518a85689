//! Opening an image layout: creating one where the path is missing or an empty directory,
//! finishing one a crash left half made, and refusing anything else — a file, a non-empty
//! directory that is not a layout, a layout of another version. [`LayoutStore::open_existing`]
//! is the read-only commands' open: it creates nothing.
//!
//! Must never: write into a directory that is neither empty nor already a layout, or create
//! anything from `open_existing` (a mistyped path must stay a mistake, not become a store).

use super::files::{write_atomic, TEMP_PREFIX};
use super::index::Index;
use super::{LayoutError, LayoutStore, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, LOCK_FILE};
use crate::{Location, StoreError};
use std::fs;
use std::io;
use std::path::Path;

impl LayoutStore {
    /// Opens the layout at `location`, creating it when the path does not exist or is an empty
    /// directory. A non-empty directory without an `oci-layout` file is refused untouched.
    pub fn open(location: Location) -> Result<LayoutStore, StoreError> {
        let Location::Layout { path } = &location else {
            return Err(StoreError::new(
                crate::ErrorKind::Internal,
                format!("{location} is not an oci-layout: location; open it as a registry"),
            ));
        };
        let store = LayoutStore {
            root: path.clone(),
            location: location.clone(),
        };
        store.prepare()?;
        Ok(store)
    }

    /// Opens the layout at `location` only if it already is one: for read-only commands,
    /// which must never create a layout at a mistyped path (nothing is written at all).
    pub fn open_existing(location: Location) -> Result<LayoutStore, StoreError> {
        let Location::Layout { path } = &location else {
            return Err(StoreError::new(
                crate::ErrorKind::Internal,
                format!("{location} is not an oci-layout: location; open it as a registry"),
            ));
        };
        let layout_file = path.join(LAYOUT_FILE);
        match fs::metadata(path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(LayoutError::NotADirectory { path: path.clone() }.into())
            }
            Ok(_) if layout_file.is_file() => {}
            Ok(_) | Err(_) => return Err(LayoutError::NoLayout { path: path.clone() }.into()),
        }
        let store = LayoutStore {
            root: path.clone(),
            location: location.clone(),
        };
        store.check_version(&layout_file)?;
        Ok(store)
    }

    fn prepare(&self) -> Result<(), LayoutError> {
        let root = &self.root;
        match fs::metadata(root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(|e| LayoutError::io("create", root, e))?;
            }
            Err(e) => return Err(LayoutError::io("inspect", root, e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(LayoutError::NotADirectory { path: root.clone() })
            }
            Ok(_) => {
                if !root.join(LAYOUT_FILE).exists() && !self.is_empty_dir()? {
                    return Err(LayoutError::NotALayout { path: root.clone() });
                }
            }
        }
        // Initialise (or finish initialising) under the lock, so two processes opening the
        // same new directory agree. `oci-layout` goes first: a crash after it leaves a
        // directory that the next open recognises and completes.
        let _lock = self.lock()?;
        let layout_file = root.join(LAYOUT_FILE);
        if layout_file.exists() {
            self.check_version(&layout_file)?;
        } else {
            if !self.is_empty_dir()? {
                return Err(LayoutError::NotALayout { path: root.clone() });
            }
            let marker = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
            write_atomic(root, LAYOUT_FILE, marker.as_bytes())
                .map_err(|e| LayoutError::io("write", &layout_file, e))?;
        }
        let blobs = self.blob_dir();
        fs::create_dir_all(&blobs).map_err(|e| LayoutError::io("create", &blobs, e))?;
        if !root.join(INDEX_FILE).exists() {
            write_atomic(root, INDEX_FILE, &Index::empty().to_bytes())
                .map_err(|e| LayoutError::io("write", root.join(INDEX_FILE), e))?;
        }
        Ok(())
    }

    /// Empty, ignoring the lock file and unfinished temporary files (ours, from a racing open).
    fn is_empty_dir(&self) -> Result<bool, LayoutError> {
        let entries =
            fs::read_dir(&self.root).map_err(|e| LayoutError::io("list", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LayoutError::io("list", &self.root, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name != LOCK_FILE && !name.starts_with(TEMP_PREFIX) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check_version(&self, layout_file: &Path) -> Result<(), LayoutError> {
        let bytes = fs::read(layout_file).map_err(|e| LayoutError::io("read", layout_file, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| LayoutError::Malformed {
                path: layout_file.to_owned(),
                what: "oci-layout file",
                error: e.to_string(),
            })?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(LAYOUT_VERSION) => Ok(()),
            other => Err(LayoutError::Version {
                path: self.root.clone(),
                found: other.unwrap_or("(none)").to_owned(),
            }),
        }
    }
}
