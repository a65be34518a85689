//! The real adapters behind the executor's ports: the git remote (git CLI transport, gix
//! object reads) and the artifact builder that packs from git objects. The store adapter is
//! `mainline_store` itself.

pub mod git;
pub mod github;
#[cfg(feature = "kubernetes")]
pub mod kube;
