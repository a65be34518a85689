//! Media-type helpers shared by both stores.

use crate::OCI_MANIFEST_MEDIA_TYPE;

/// The media type a manifest declares in its `mediaType` field, or the OCI image manifest
/// type when it declares none (the OCI spec makes the field optional).
pub(crate) fn declared_media_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| OCI_MANIFEST_MEDIA_TYPE.to_owned())
}

/// The manifest media types we ask a registry for (`Accept`): the OCI and Docker manifest and
/// index types, so a registry never refuses or converts what it holds.
pub(crate) const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_MANIFEST_MEDIA_TYPE,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
