//! The OCI image-layout store (`oci-layout:PATH`): a directory laid out per the OCI
//! image-layout spec — an `oci-layout` file, `index.json`, and `blobs/sha256/<hex>` — that
//! mainline uses with no server, and that `skopeo` reads as `oci:PATH:TAG`.
//!
//! Tags are `org.opencontainers.image.ref.name` annotations on the entries of `index.json`,
//! one entry per tag; re-tagging replaces that entry and never rewrites the manifest.
//!
//! Invariants:
//! - every file becomes visible complete or not at all (temp file in the same directory,
//!   fsync, rename, fsync the directory);
//! - a blob is verified (size and sha256) before it gets its final name, and on every read;
//! - each read-modify-write of `index.json` holds an exclusive `flock` on `index.json.lock`,
//!   so concurrent writers, in this process or others, never lose each other's tags;
//! - opening never writes into a directory that is neither empty nor already a layout, and
//!   [`LayoutStore::open_existing`] (read-only commands) never creates anything;
//! - files get mode 0666 less the user's umask, like any file the user creates.
//!
//! Must never: expose a partially written blob or index; return bytes whose digest is not the
//! one asked for.

mod error;
mod files;
mod index;
mod open;

pub use error::LayoutError;

use crate::media::declared_media_type;
use crate::{Location, ReferenceTarget, Store, StoreError, StoredManifest};
use files::{copy_hashed, write_atomic, IndexLock};
use index::Index;
use mainline_core::{Digest, Tag};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "1.0.0";
const INDEX_FILE: &str = "index.json";
const LOCK_FILE: &str = "index.json.lock";
/// The distribution spec's limit for a manifest; anything larger is not one.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// An OCI image-layout directory.
#[derive(Debug)]
pub struct LayoutStore {
    location: Location,
    root: PathBuf,
}

impl LayoutStore {
    /// Whether the blob is present with exactly the content its digest names (read and
    /// hashed in full): a missing or corrupt blob answers `false`.
    fn blob_intact(&self, digest: &Digest) -> Result<bool, LayoutError> {
        let path = self.blob_path(digest);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(LayoutError::io("read", path, e)),
        };
        let copied = copy_hashed(&mut file, &mut io::sink(), u64::MAX, &mut |_| {})
            .map_err(|e| LayoutError::io("read", &path, e))?;
        Ok(&Digest::from_sha256(copied.sha256) == digest)
    }

    /// Refuse a manifest that names a config or layer blob the layout lacks, as a registry
    /// does (MANIFEST_BLOB_UNKNOWN): a tag never names an artifact that cannot be pulled, and
    /// a writer that trusts a remembered descriptor (the tree index) learns it is stale. Bytes
    /// that are not an image manifest are not checked here (readers refuse them).
    fn check_referenced_blobs(&self, tag: &Tag, bytes: &[u8]) -> Result<(), LayoutError> {
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Ok(());
        };
        let config = manifest.get("config").into_iter();
        let layers = manifest
            .get("layers")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten();
        for descriptor in config.chain(layers) {
            let Some(digest) = descriptor
                .get("digest")
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.parse::<Digest>().ok())
            else {
                continue;
            };
            let present = fs::metadata(self.blob_path(&digest)).is_ok_and(|m| m.is_file());
            if !present {
                return Err(LayoutError::ManifestBlobMissing {
                    layout: self.root.clone(),
                    tag: tag.to_string(),
                    digest,
                });
            }
        }
        Ok(())
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<IndexLock, LayoutError> {
        let path = self.root.join(LOCK_FILE);
        IndexLock::acquire(&path).map_err(|e| LayoutError::io("lock", path, e))
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    fn read_index(&self) -> Result<Index, LayoutError> {
        let path = self.root.join(INDEX_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Index::empty()),
            Err(e) => return Err(LayoutError::io("read", path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| LayoutError::Malformed {
            path,
            what: "OCI image index",
            error: e.to_string(),
        })
    }

    /// Read-modify-write of `index.json` under the layout's lock.
    fn update_index(&self, change: impl FnOnce(&mut Index)) -> Result<(), LayoutError> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        change(&mut index);
        write_atomic(&self.root, INDEX_FILE, &index.to_bytes())
            .map_err(|e| LayoutError::io("write", self.root.join(INDEX_FILE), e))
    }

    fn sha256_digest(&self, name: &str, digest: &str) -> Result<Digest, LayoutError> {
        digest.parse().map_err(|_| LayoutError::ForeignDigest {
            layout: self.root.clone(),
            name: name.to_owned(),
            digest: digest.to_owned(),
        })
    }

    /// The verified bytes of a blob small enough to be a manifest, or `None` if absent.
    fn read_manifest_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, LayoutError> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LayoutError::io("read", path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| LayoutError::io("read", &path, e))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                path,
                digest: digest.clone(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    fn push_blob_file(
        &self,
        digest: &Digest,
        size: u64,
        source: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), LayoutError> {
        let dir = self.blob_dir();
        let mut from = File::open(source).map_err(|e| LayoutError::io("read", source, e))?;
        let mut temp = files::temp_file_in(&dir)
            .map_err(|e| LayoutError::io("create a temporary file in", &dir, e))?;
        let copied = copy_hashed(&mut from, temp.as_file_mut(), size, progress)
            .map_err(|e| LayoutError::io("copy into the layout", source, e))?;
        let actual = Digest::from_sha256(copied.sha256);
        if copied.size != size || &actual != digest {
            return Err(LayoutError::SourceMismatch {
                path: source.to_owned(),
                digest: digest.clone(),
                size,
                actual,
                actual_size: copied.size,
            });
        }
        let target = self.blob_path(digest);
        temp.as_file()
            .sync_all()
            .map_err(|e| LayoutError::io("write", &target, e))?;
        temp.persist(&target)
            .map_err(|e| LayoutError::io("write", &target, e.error))?;
        files::sync_dir(&dir).map_err(|e| LayoutError::io("sync", &dir, e))
    }

    fn fetch_blob_into(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, LayoutError> {
        let path = self.blob_path(digest);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::BlobMissing {
                    layout: self.root.clone(),
                    digest: digest.clone(),
                })
            }
            Err(e) => return Err(LayoutError::io("read", path, e)),
        };
        let copied = copy_hashed(&mut file, out, u64::MAX, &mut |_| {})
            .map_err(|e| LayoutError::io("read", &path, e))?;
        let actual = Digest::from_sha256(copied.sha256);
        if &actual != digest {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                path,
                digest: digest.clone(),
                actual,
            });
        }
        Ok(copied.size)
    }

    fn fetch_manifest_at(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, LayoutError> {
        let index = self.read_index()?;
        let (digest, media_type) = match target {
            ReferenceTarget::Tag(tag) => match index.find_tag(tag.as_str()) {
                Some(entry) => (
                    self.sha256_digest(tag.as_str(), &entry.digest)?,
                    Some(entry.media_type.clone()),
                ),
                None => return Ok(None),
            },
            ReferenceTarget::Digest(digest) => (
                digest.clone(),
                index
                    .find_digest(digest.as_str())
                    .map(|e| e.media_type.clone()),
            ),
        };
        let Some(bytes) = self.read_manifest_blob(&digest)? else {
            return match target {
                ReferenceTarget::Tag(tag) => Err(LayoutError::Malformed {
                    path: self.root.join(INDEX_FILE),
                    what: "layout index",
                    error: format!("tag {tag} names {digest}, which is not in blobs/sha256"),
                }),
                ReferenceTarget::Digest(_) => Ok(None),
            };
        };
        let media_type = media_type.unwrap_or_else(|| declared_media_type(&bytes));
        Ok(Some(StoredManifest {
            digest,
            media_type,
            bytes,
        }))
    }
}

impl Store for LayoutStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(LayoutError::io("inspect", path, e).into()),
        }
    }

    fn blob_intact(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(LayoutStore::blob_intact(self, digest)?)
    }

    fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        Ok(self.push_blob_file(digest, size, path, progress)?)
    }

    fn fetch_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, StoreError> {
        Ok(self.fetch_blob_into(digest, out)?)
    }

    fn resolve(&self, tag: &Tag) -> Result<Option<Digest>, StoreError> {
        let index = self.read_index()?;
        match index.find_tag(tag.as_str()) {
            Some(entry) => Ok(Some(self.sha256_digest(tag.as_str(), &entry.digest)?)),
            None => Ok(None),
        }
    }

    fn fetch_manifest(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, StoreError> {
        Ok(self.fetch_manifest_at(target)?)
    }

    fn put_manifest(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        self.check_referenced_blobs(tag, bytes)?;
        let dir = self.blob_dir();
        write_atomic(&dir, digest.hex(), bytes)
            .map_err(|e| LayoutError::io("write", self.blob_path(&digest), e))?;
        self.update_index(|index| {
            index.set_tag(
                tag.as_str(),
                media_type,
                digest.as_str(),
                bytes.len() as u64,
            )
        })?;
        Ok(digest)
    }

    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn crate::WriteFence,
    ) -> Result<Digest, StoreError> {
        // One local write with no retries: one admission covers it.
        crate::admit_once(fence, || self.put_manifest(tag, media_type, bytes))
    }

    fn list_tags(&self) -> Result<Vec<Tag>, StoreError> {
        let index = self.read_index()?;
        let mut tags: Vec<Tag> = index
            .manifests
            .iter()
            .filter_map(|e| e.ref_name()?.parse().ok())
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}
