//! Why listing or extracting a layer failed. Entry errors name the entry as written in the
//! archive; destination errors name the destination.

use crate::symlink::LinkProblem;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the layer is not a readable gzip tar (truncated or corrupt?); fetch the blob again, and check that it is a Flux content layer")]
    Read(#[source] std::io::Error),
    #[error("unsafe layer: entry {entry:?} has a name that is not UTF-8 (shown lossily); refusing to extract it")]
    NonUtf8 { entry: String },
    #[error("unsafe layer: entry {entry:?} has an absolute path; refusing to extract it")]
    Absolute { entry: String },
    #[error("unsafe layer: entry {entry:?} has a `..` component; refusing to extract it")]
    ParentDir { entry: String },
    #[error("invalid layer: entry {entry:?} has an empty path")]
    EmptyPath { entry: String },
    #[error(
        "unsafe layer: entry {entry:?} is a {kind}; only files, folders and links are extracted"
    )]
    Unsupported { entry: String, kind: String },
    #[error("unsafe layer: symlink {entry:?} -> {target:?} {problem}; refusing to extract it")]
    Symlink {
        entry: String,
        target: String,
        problem: LinkProblem,
    },
    #[error("unsafe layer: hard link {entry:?} -> {target:?} points outside the archive; refusing to extract it")]
    HardlinkOutside { entry: String, target: String },
    #[error("invalid layer: hard link {entry:?} -> {target:?} does not name an earlier file of the archive")]
    HardlinkUnknown { entry: String, target: String },
    #[error("unsafe layer: entry {entry:?} would be written through symlink {link:?}; refusing to extract it")]
    ThroughSymlink { entry: String, link: String },
    #[error("invalid layer: entry {entry:?} lies below {parent:?}, which is not a folder")]
    ParentNotDir { entry: String, parent: String },
    #[error("invalid layer: entry {entry:?} appears twice")]
    Duplicate { entry: String },
    #[error("the layer holds more than {limit} entries; refusing to extract it (raise --max-files if the artifact really is that large)")]
    TooManyEntries { limit: u64 },
    #[error("the layer holds more than {limit} bytes of file content (reached at entry {entry:?}); refusing to extract it (raise --max-size if the artifact really is that large)")]
    TooLarge { limit: u64, entry: String },
    #[error("{dest} is not empty; pass --force to overwrite")]
    DestNotEmpty { dest: PathBuf },
    #[error("{dest} exists and is not a folder; pass a folder to extract into")]
    DestNotDir { dest: PathBuf },
    #[error("cannot prepare destination {dest}; check that it (or its parent) is writable")]
    Dest {
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write entry {entry:?} while extracting into {dest}; check free space and permissions (the destination was left unchanged)")]
    Write {
        entry: String,
        dest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot move {path} into place; the destination may hold part of the layer, extract again"
    )]
    Move {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
