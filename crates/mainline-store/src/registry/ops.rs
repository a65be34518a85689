//! One attempt of each registry operation, on the path the store's [`Mode`] selects. The
//! caller ([`RegistryStore::run`]) retries and switches mode; an attempt only classifies.
//!
//! Must never: accept manifest or blob bytes whose digest differs from the one named, or
//! report a manifest push whose stored digest differs from the bytes sent.

use super::failure::Failure;
use super::{upload, Mode, RegistryStore, TAGS_PAGE};
use crate::media::{declared_media_type, ACCEPTED_MANIFEST_TYPES};
use crate::{ErrorKind, ReferenceTarget, StoredManifest};
use futures_util::StreamExt;
use mainline_core::{Digest, Tag};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

impl RegistryStore {
    pub(super) async fn resolve_once(
        &self,
        mode: Mode,
        tag: &Tag,
    ) -> Result<Option<Digest>, Failure> {
        let found = match mode {
            Mode::Open => self.direct.head_manifest(tag.as_str()).await?,
            Mode::Authenticated => {
                let reference = self.reference_for(tag.as_str());
                match self
                    .client
                    .fetch_manifest_digest(&reference, &self.current_auth())
                    .await
                    .map_err(Failure::from_oci)
                {
                    Ok(digest) => Some(digest),
                    Err(Failure::NotFound) => None,
                    Err(other) => return Err(other),
                }
            }
        };
        found
            .map(|text| {
                text.parse::<Digest>().map_err(|_| Failure::Protocol {
                    detail: format!("the registry reported digest {text:?}, which is not sha256"),
                })
            })
            .transpose()
    }

    pub(super) async fn fetch_manifest_once(
        &self,
        mode: Mode,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, Failure> {
        let (bytes, media_type, header) = match mode {
            Mode::Open => match self.direct.get_manifest(&target.to_string()).await? {
                Some(answer) => (answer.bytes, answer.content_type, answer.digest_header),
                None => return Ok(None),
            },
            Mode::Authenticated => {
                let reference = self.reference_to(target);
                match self
                    .client
                    .pull_manifest_raw(&reference, &self.current_auth(), ACCEPTED_MANIFEST_TYPES)
                    .await
                    .map_err(Failure::from_oci)
                {
                    // oci-client checked the bytes against the header; we check again below.
                    Ok((bytes, digest)) => (bytes, None, Some(digest)),
                    Err(Failure::NotFound) => return Ok(None),
                    Err(other) => return Err(other),
                }
            }
        };
        let digest = Digest::of(&bytes);
        let expected = match target {
            ReferenceTarget::Digest(asked) => Some(asked.to_string()),
            ReferenceTarget::Tag(_) => header,
        };
        if let Some(expected) = expected.filter(|e| e.starts_with("sha256:")) {
            if expected != digest.as_str() {
                return Err(Failure::Integrity {
                    detail: format!("expected {expected}, the bytes hash to {digest}"),
                });
            }
        }
        let media_type = media_type
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| declared_media_type(&bytes));
        Ok(Some(StoredManifest {
            digest,
            media_type,
            bytes: bytes.to_vec(),
        }))
    }

    pub(super) async fn push_blob_once(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &RefCell<&mut dyn FnMut(u64)>,
    ) -> Result<(), Failure> {
        let (body, mut sent, fault) = upload::file_body(path, digest, size)?;
        let reference = self.reference_for("latest");
        let push = self
            .client
            .push_blob_stream(&reference, body, digest.as_str(), Some(size));
        tokio::pin!(push);
        let result = loop {
            tokio::select! {
                result = &mut push => break result,
                Some(n) = sent.recv() => (progress.borrow_mut())(n),
            }
        };
        while let Ok(n) = sent.try_recv() {
            (progress.borrow_mut())(n);
        }
        if let Some(failure) = fault
            .lock()
            .expect("the fault slot is never poisoned")
            .take()
        {
            return Err(failure);
        }
        result.map(|_| ()).map_err(Failure::from_oci)
    }

    pub(super) async fn fetch_blob_once(
        &self,
        digest: &Digest,
        out: &RefCell<&mut dyn Write>,
        written: &RefCell<u64>,
    ) -> Result<u64, Failure> {
        use sha2::Digest as _;
        let reference = self.reference_for("latest");
        let mut stream = match self
            .client
            .pull_blob_stream(&reference, digest.as_str())
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                return Err(match Failure::from_oci(e) {
                    Failure::NotFound => Failure::Local {
                        kind: ErrorKind::InvalidInput,
                        message: format!(
                            "blob {digest} is not in {} on registry {}; push it first",
                            self.repository, self.registry
                        ),
                    },
                    other => other,
                })
            }
        };
        let length = stream.content_length;
        let mut hasher = sha2::Sha256::new();
        let mut count = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let ours = Digest::from_sha256(hasher.clone().finalize().into());
                    // All bytes arrived (or they already hash right): the verifier objected.
                    if length == Some(count) || &ours == digest {
                        return Err(Failure::Integrity {
                            detail: e.to_string(),
                        });
                    }
                    let failure = Failure::Transport {
                        detail: format!("the download broke off: {e}"),
                    };
                    return Err(interrupted(failure, *written.borrow()));
                }
            };
            hasher.update(&chunk);
            if let Err(e) = out.borrow_mut().write_all(&chunk) {
                return Err(Failure::Local {
                    kind: ErrorKind::Internal,
                    message: format!("cannot write blob {digest} to its destination ({e}); check free space and permissions"),
                });
            }
            count += chunk.len() as u64;
            *written.borrow_mut() = count;
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
        if &actual != digest {
            return Err(Failure::Integrity {
                detail: format!("expected {digest}, the bytes hash to {actual}"),
            });
        }
        Ok(count)
    }

    pub(super) async fn put_manifest_once(
        &self,
        tag: &Tag,
        media_type: &reqwest::header::HeaderValue,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<(), Failure> {
        let reference = self.reference_for(tag.as_str());
        let location = self
            .client
            .push_manifest_raw(&reference, bytes.to_vec(), media_type.clone())
            .await
            .map_err(Failure::from_oci)?;
        // The Location names the stored manifest by digest: it must be ours.
        if let Some((_, reported)) = location.rsplit_once("/manifests/") {
            let reported = reported.split(['?', '#']).next().unwrap_or_default();
            if reported.starts_with("sha256:") && reported != digest.as_str() {
                return Err(Failure::Integrity {
                    detail: format!("we sent {digest}, the registry stored {reported}"),
                });
            }
        }
        Ok(())
    }

    pub(super) async fn list_tags_once(&self, mode: Mode) -> Result<Vec<String>, Failure> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let last = all.last().cloned();
            let page = match mode {
                Mode::Open => self.direct.tags_page(TAGS_PAGE, last.as_deref()).await?,
                Mode::Authenticated => {
                    let reference = self.reference_for("latest");
                    match self
                        .client
                        .list_tags(
                            &reference,
                            &self.current_auth(),
                            Some(TAGS_PAGE),
                            last.as_deref(),
                        )
                        .await
                        .map_err(Failure::from_oci)
                    {
                        Ok(response) => response.tags,
                        Err(Failure::NotFound) => Vec::new(),
                        Err(other) => return Err(other),
                    }
                }
            };
            let full = page.len() >= TAGS_PAGE;
            let before = all.len();
            all.extend(
                page.into_iter()
                    .filter(|t| last.as_deref().is_none_or(|l| t.as_str() > l)),
            );
            // Stop on a short page, or on a registry that ignores `last` (no progress).
            if !full || all.len() == before {
                return Ok(all);
            }
        }
    }
}

fn interrupted(failure: Failure, written: u64) -> Failure {
    match (failure, written) {
        (failure, 0) => failure,
        (Failure::Transport { detail }, written) => Failure::Interrupted { written, detail },
        (failure, _) => failure,
    }
}
