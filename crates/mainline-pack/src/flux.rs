//! The Flux artifact format: media types, annotations, descriptors and the canonical
//! manifest encoding.
//!
//! Invariants: [`manifest_bytes`] is a pure function of its inputs and emits canonical JSON
//! (no whitespace, keys in one fixed order, annotations sorted), so the same artifact always
//! has the same manifest digest. `created` is always RFC 3339 UTC at second precision.
//!
//! Must never: change the byte encoding of a manifest without a deliberate format change (the
//! golden test in `tests/reproducible.rs` pins it), or put credentials into an annotation.

use mainline_core::{Digest, IdError, Revision};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Media type of the (empty) Flux config blob.
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Media type of the single Flux content layer (a gzip-compressed tar).
pub const FLUX_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Media type of an OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Annotation naming where the artifact's source lives (a repository URL).
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// Annotation naming the source revision as flux writes it (`<ref>@sha1:<commit>`).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// Annotation holding the creation time (RFC 3339, UTC).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// The Flux config blob: an empty JSON object, as `flux push artifact` writes it.
pub const FLUX_CONFIG_BYTES: &[u8] = b"{}";

/// Why a manifest or artifact metadata was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the manifest is not a valid OCI image manifest; check that the tag names an artifact, not an index or a docker v2 manifest")]
    ManifestJson(#[source] serde_json::Error),
    #[error("unsupported manifest schemaVersion {found}: only schemaVersion 2 (OCI image manifest) is understood")]
    SchemaVersion { found: u64 },
    #[error("invalid created time {input:?}: expected RFC 3339, e.g. 2024-05-01T12:00:00Z")]
    Created {
        input: String,
        #[source]
        source: time::error::Parse,
    },
    #[error("created time {input:?} is outside the years 0000-9999 that RFC 3339 can express")]
    CreatedRange { input: String },
    #[error("invalid source {shown:?}: {reason}")]
    Source {
        /// The source with any userinfo replaced by `***`.
        shown: String,
        reason: &'static str,
    },
}

/// An OCI content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Descriptor {
    /// The descriptor of `bytes` with the given media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// The annotations of an artifact. Build it with [`ArtifactMeta::new`], which validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactMeta {
    /// Where the source lives, e.g. `https://github.com/org/repo`. Never carries credentials.
    pub source: String,
    pub revision: Revision,
    /// RFC 3339 UTC at second precision, e.g. `2024-05-01T12:00:00Z`.
    pub created: String,
}

impl ArtifactMeta {
    /// Validates `source` (no credentials, no control characters) and `created` (any RFC 3339
    /// time; normalised to UTC `Z` form, fractional seconds dropped).
    pub fn new(
        source: impl Into<String>,
        revision: Revision,
        created: &str,
    ) -> Result<ArtifactMeta, FormatError> {
        let source = source.into();
        check_source(&source)?;
        let time =
            OffsetDateTime::parse(created, &Rfc3339).map_err(|source| FormatError::Created {
                input: created.to_owned(),
                source,
            })?;
        let created = format_utc(time).ok_or_else(|| FormatError::CreatedRange {
            input: created.to_owned(),
        })?;
        Ok(ArtifactMeta {
            source,
            revision,
            created,
        })
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ`, or `None` outside the years RFC 3339 can express.
pub(crate) fn format_utc(time: OffsetDateTime) -> Option<String> {
    let utc = time.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&utc.year()) {
        return None;
    }
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    Some(
        utc.format(&format)
            .expect("a 4-digit-year UTC time always formats"),
    )
}

/// Rejects sources that could leak a secret into a public annotation.
fn check_source(source: &str) -> Result<(), FormatError> {
    let err = |reason| FormatError::Source {
        shown: redact(source),
        reason,
    };
    if source.trim().is_empty() {
        return Err(err(
            "it is empty; pass the repository URL, e.g. https://github.com/org/repo",
        ));
    }
    if source.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            "it contains whitespace or control characters; pass the plain repository URL",
        ));
    }
    if let Some((scheme, rest)) = source.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
            if web || userinfo.contains(':') {
                return Err(err(
                    "it carries credentials; pass the URL without user or token",
                ));
            }
        }
    }
    Ok(())
}

/// The source with the userinfo of a URL replaced, safe to show in messages.
fn redact(source: &str) -> String {
    match source.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => source.to_owned(),
            }
        }
        None => source.to_owned(),
    }
}

/// The descriptor of the Flux config blob ([`FLUX_CONFIG_BYTES`]), the same in every artifact.
pub fn flux_config() -> Descriptor {
    Descriptor::of(FLUX_CONFIG_MEDIA_TYPE, FLUX_CONFIG_BYTES)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOut<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: &'a Descriptor,
    layers: [&'a Descriptor; 1],
    annotations: BTreeMap<&'a str, String>,
}

/// The canonical manifest of a Flux artifact: compact JSON, keys in a fixed order
/// (`schemaVersion`, `mediaType`, `config`, `layers`, `annotations`), annotations sorted.
pub fn manifest_bytes(config: &Descriptor, layer: &Descriptor, meta: &ArtifactMeta) -> Vec<u8> {
    let annotations = BTreeMap::from([
        (ANNOTATION_CREATED, meta.created.clone()),
        (ANNOTATION_REVISION, meta.revision.to_string()),
        (ANNOTATION_SOURCE, meta.source.clone()),
    ]);
    let manifest = ManifestOut {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE,
        config,
        layers: [layer],
        annotations,
    };
    serde_json::to_vec(&manifest).expect("strings, numbers and maps always serialize to JSON")
}

/// A parsed OCI image manifest, as far as mainline reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxManifest {
    /// The manifest's own `mediaType`; optional in the OCI spec.
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

impl FluxManifest {
    /// The source revision annotation: `None` when absent, `Some(Err)` when malformed.
    pub fn revision(&self) -> Option<Result<Revision, IdError>> {
        self.annotations
            .get(ANNOTATION_REVISION)
            .map(|r| r.parse::<Revision>())
    }

    /// Whether this is a Flux artifact: Flux config media type and exactly one Flux layer.
    pub fn is_flux(&self) -> bool {
        let manifest_type_ok = self
            .media_type
            .as_deref()
            .is_none_or(|m| m == OCI_MANIFEST_MEDIA_TYPE);
        manifest_type_ok
            && self.config.media_type == FLUX_CONFIG_MEDIA_TYPE
            && self.layers.len() == 1
            && self.layers[0].media_type == FLUX_LAYER_MEDIA_TYPE
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestIn {
    schema_version: u64,
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Parses an OCI image manifest (schemaVersion 2). Unknown fields are ignored.
pub fn parse_manifest(bytes: &[u8]) -> Result<FluxManifest, FormatError> {
    let raw: ManifestIn = serde_json::from_slice(bytes).map_err(FormatError::ManifestJson)?;
    if raw.schema_version != 2 {
        return Err(FormatError::SchemaVersion {
            found: raw.schema_version,
        });
    }
    Ok(FluxManifest {
        media_type: raw.media_type,
        config: raw.config,
        layers: raw.layers,
        annotations: raw.annotations,
    })
}
