//! Decides whether a symlink stays inside the tree it belongs to, and where it really leads,
//! the same way for a folder, a git tree and a tar archive.
//!
//! A target is resolved component by component from the link's directory, replacing every
//! component that is itself a symlink of the tree by its target (as the kernel does), so a
//! chain like `a -> b/../..` with `b -> ../x` is judged by where it really leads, not by its
//! spelling. A component that does not exist ends the lookups (nothing below it can be a
//! symlink); the rest is resolved by spelling.
//!
//! Must never: touch the filesystem itself (lookups come from the caller), or accept an
//! absolute target or one that climbs above the tree's root at any step.

/// How many symlinks one resolution may pass through, as Linux's `ELOOP` limit.
const MAX_HOPS: usize = 40;

/// Why a symlink target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    #[error("is empty")]
    Empty,
    #[error("contains a NUL byte")]
    Nul,
    #[error("is absolute")]
    Absolute,
    #[error("resolves outside the tree")]
    Outside,
    #[error("passes through more than 40 symlinks")]
    TooManyHops,
    #[error("points to nothing (dangling)")]
    Dangling,
    #[error("leads back into a folder that contains it (a cycle)")]
    Cycle,
}

/// Resolves `target` of the symlink at `link` (a `/`-separated path relative to the root).
/// `lookup(path)` answers the target of the symlink at `path`, or `None` when `path` is not a
/// symlink (or does not exist). Returns `Ok(None)` when the link stays inside.
pub(crate) fn check_link<E>(
    link: &str,
    target: &str,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<LinkProblem>, E> {
    Ok(resolve_link(link, target, lookup)?.err())
}

/// Like [`check_link`], but answers where the link leads: the `/`-separated path relative to
/// the root (`""` for the root itself) of something that is not a symlink, or does not exist.
pub(crate) fn resolve_link<E>(
    link: &str,
    target: &str,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Result<String, LinkProblem>, E> {
    if target.is_empty() {
        return Ok(Err(LinkProblem::Empty));
    }
    if target.contains('\0') {
        return Ok(Err(LinkProblem::Nul));
    }
    if target.starts_with('/') {
        return Ok(Err(LinkProblem::Absolute));
    }
    let mut current: Vec<String> = link.split('/').map(str::to_owned).collect();
    current.pop();
    let mut pending: Vec<String> = components_reversed(target);
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            if current.pop().is_none() {
                return Ok(Err(LinkProblem::Outside));
            }
            continue;
        }
        current.push(component);
        if let Some(next) = lookup(&current.join("/"))? {
            hops += 1;
            if hops > MAX_HOPS {
                return Ok(Err(LinkProblem::TooManyHops));
            }
            if next.starts_with('/') {
                return Ok(Err(LinkProblem::Absolute));
            }
            current.pop();
            pending.extend(components_reversed(&next));
        }
    }
    Ok(Ok(current.join("/")))
}

/// Path components to process, last first (so `pop` yields them in order); `.` and empty
/// components (`a//b`) are dropped as the kernel ignores them.
fn components_reversed(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .rev()
        .map(str::to_owned)
        .collect()
}
