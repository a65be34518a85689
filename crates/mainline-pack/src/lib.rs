//! Reproducible Flux OCI artifacts: pack a deploy tree into the layer, config and manifest
//! bytes that Flux's `OCIRepository` consumes, and extract such a layer safely.
//!
//! Invariants:
//! - **Reproducible.** The same tree gives byte-identical layer, config and manifest bytes —
//!   and so the same manifest digest — on any machine, whatever the mtimes, owners, umask or
//!   directory listing order. Packing a commit's tree straight from git objects
//!   ([`pack_git`]) gives the same digest as packing a checkout of it ([`pack_dir`]).
//! - **Streamed.** Packing reads and compresses file by file into a temporary file; memory
//!   does not grow with the size of the tree (one directory listing per level, and at most
//!   one git blob, are held at a time).
//! - **Nothing half-written.** [`extract()`] validates the whole archive in a private
//!   directory beside the destination and only then moves entries into place.
//!
//! - **Flux applies what was packed.** An artifact never holds a symlink (Flux's
//!   source-controller drops them when it unpacks) or a path Flux refuses (a backslash, a
//!   `../`): packing refuses them, or stores a symlink's target with [`Symlinks::Resolve`].
//!   `tests/flux-oracle` (Flux's own Go code) checks this in `crates/mainline/tests`.
//!
//! Must never: follow a symlink out of the packed or extracted tree, write outside the
//! destination, embed anything machine-specific (time of packing, user, host) in an artifact,
//! or run the `git` CLI (objects are read in-process with gix).

pub mod extract;
pub mod flux;
pub mod older;
pub mod pack;
mod symlink;

pub use extract::{
    extract, extract_within, list, EntryInfo, EntryKind, ExtractError, ExtractSummary, Limits,
};
pub use flux::{
    flux_config, manifest_bytes, parse_manifest, ArtifactMeta, Descriptor, FluxManifest,
    FormatError, ANNOTATION_CREATED, ANNOTATION_REVISION, ANNOTATION_SOURCE, FLUX_CONFIG_BYTES,
    FLUX_CONFIG_MEDIA_TYPE, FLUX_LAYER_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
};
pub use older::{other_gzip_of, tar_stream_digest, TarStreamHasher};
pub use pack::{
    git_commit_info, git_tree_id, pack_dir, pack_dir_with, pack_git, pack_git_with, CommitInfo,
    PackError, PackOptions, Packed, Symlinks, PACK_FORMAT,
};
pub use symlink::LinkProblem;
