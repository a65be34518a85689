//! The `index.json` of an image layout: the list of manifests, each tagged with an
//! `org.opencontainers.image.ref.name` annotation.
//!
//! Invariants: fields and entries we do not understand (written by skopeo, oras, …) are kept
//! byte-for-byte in meaning across our rewrites; after [`Index::set_tag`] exactly one entry
//! carries that tag.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The annotation that names a tag in an image layout.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A descriptor in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub(crate) media_type: String,
    /// Kept as text: other tools may write algorithms we do not read.
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub(crate) other: Map<String, Value>,
}

impl Entry {
    pub(crate) fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
    }
}

/// The whole `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub(crate) schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Vec<Entry>,
    #[serde(flatten)]
    pub(crate) other: Map<String, Value>,
}

impl Index {
    pub(crate) fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_owned()),
            manifests: Vec::new(),
            other: Map::new(),
        }
    }

    /// The entry a tag names (the last one, should another tool have written duplicates).
    pub(crate) fn find_tag(&self, tag: &str) -> Option<&Entry> {
        self.manifests
            .iter()
            .rev()
            .find(|e| e.ref_name() == Some(tag))
    }

    /// The first entry for a digest, tagged or not.
    pub(crate) fn find_digest(&self, digest: &str) -> Option<&Entry> {
        self.manifests.iter().find(|e| e.digest == digest)
    }

    /// Points `tag` at a manifest: every entry carrying the tag is dropped and one new entry
    /// is appended.
    pub(crate) fn set_tag(&mut self, tag: &str, media_type: &str, digest: &str, size: u64) {
        self.manifests.retain(|e| e.ref_name() != Some(tag));
        self.manifests.push(Entry {
            media_type: media_type.to_owned(),
            digest: digest.to_owned(),
            size,
            annotations: Some(BTreeMap::from([(REF_NAME.to_owned(), tag.to_owned())])),
            other: Map::new(),
        });
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec(self).expect("an index of strings and numbers always serialises");
        bytes.push(b'\n');
        bytes
    }
}
