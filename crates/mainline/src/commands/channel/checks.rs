//! Outcomes of a channel run that are not verdicts but failures of the input, turned into the
//! error every channel command renders: an artifact tag whose manifest names another commit
//! (integrity, exit 8) and a deploy path that is not on mainline (invalid input, exit 2, with
//! the folders that do exist there as the hint).
//!
//! Must never: hide either behind a verdict exit code — CI scripts that retry on "needs
//! action" would retry a typo forever, and an integrity failure must stop a pipeline.

use super::open::Opened;
use crate::channel::exec::Report;
use crate::error::{CliError, Kind};
use mainline_core::RefuseReason;

/// The error this run's outcome amounts to, if any.
pub(super) fn input_failure(o: &Opened, report: &Report) -> Option<CliError> {
    if let Some(first) = o.store.mismatches().first() {
        return Some(
            CliError::new(Kind::Integrity, first.message()).with_hint(format!(
                "find out who moved {tag}; then delete it and push commit {commit}'s artifact \
                 again (mainline push --git REPO --commit {commit} --path {path} --to {store})",
                tag = first.tag,
                commit = first.claimed,
                path = o.config.path,
                store = o.config.store,
            )),
        );
    }
    let refusal = report.refusal.as_ref()?;
    if refusal.reason != RefuseReason::DeployPathMissing {
        return None;
    }
    let m = report
        .facts
        .as_ref()
        .and_then(|f| f.mainline.known().cloned())?;
    let path = &o.config.path;
    let message = format!(
        "--path {path:?} does not exist at {} {} on {}: nothing to deploy",
        o.config.branch,
        m.short(),
        o.config.git_display
    );
    let hint = match o.repo.nearest_folders(&m, path) {
        Ok((parent, folders)) if folders.is_empty() => {
            format!("{} holds no folders; check --path", shown(&parent))
        }
        Ok((parent, folders)) => format!(
            "folders in {} on {}: {}",
            shown(&parent),
            o.config.branch,
            folders.join(", ")
        ),
        Err(e) => format!("check --path ({e})"),
    };
    Some(CliError::invalid(message).with_hint(hint))
}

fn shown(folder: &str) -> String {
    if folder.is_empty() {
        "the repository root".to_owned()
    } else {
        format!("{folder}/")
    }
}
