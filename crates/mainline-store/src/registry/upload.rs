//! A file as a blob-upload body: read in fixed-size chunks (memory use does not grow with the
//! file), hashed as it goes, with the running byte count published for progress reports.
//!
//! Invariant: the final chunk is only released after the whole file was checked against the
//! announced size and digest; on a mismatch the stream fails instead, so the registry never
//! receives a complete body for a blob we did not mean to send. The reason is left in the
//! [`Fault`] slot for the caller (the HTTP layer only sees "body failed").

use super::failure::Failure;
use crate::ErrorKind;
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use mainline_core::Digest;
use oci_client::errors::OciDistributionError;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Bytes read per chunk.
const CHUNK: u64 = 256 * 1024;

/// Why the body stream stopped, if it was our doing.
pub(crate) type Fault = Arc<Mutex<Option<Failure>>>;

/// A body stream for `path`, a receiver of the running byte count (one message per chunk, so
/// at most size / CHUNK of them), and the fault slot.
pub(crate) type Body = (
    std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, OciDistributionError>> + Send>>,
    mpsc::UnboundedReceiver<u64>,
    Fault,
);

struct State {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    sent: u64,
    size: u64,
    digest: Digest,
    progress: mpsc::UnboundedSender<u64>,
    fault: Fault,
    finished: bool,
}

/// Opens `path` as an upload body announced as `size` bytes with `digest`.
pub(crate) fn file_body(path: &Path, digest: &Digest, size: u64) -> Result<Body, Failure> {
    let file = File::open(path).map_err(|e| read_failure(path, &e))?;
    let (progress, receiver) = mpsc::unbounded_channel();
    let fault: Fault = Arc::new(Mutex::new(None));
    let state = State {
        path: path.to_owned(),
        file,
        hasher: Sha256::new(),
        sent: 0,
        size,
        digest: digest.clone(),
        progress,
        fault: fault.clone(),
        finished: false,
    };
    // Reads are blocking; they are short (one chunk of a local file) and the runtime is ours
    // alone, so they do not starve anything.
    let body = stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        match next_chunk(&mut st) {
            Ok(Some(chunk)) => Some((Ok(chunk), st)),
            Ok(None) => None,
            Err(failure) => {
                st.finished = true;
                *st.fault.lock().expect("the fault slot is never poisoned") = Some(failure);
                let error = io::Error::other("upload source rejected");
                Some((Err(OciDistributionError::IoError(error)), st))
            }
        }
    });
    Ok((Box::pin(body), receiver, fault))
}

fn next_chunk(st: &mut State) -> Result<Option<Bytes>, Failure> {
    if st.sent == st.size {
        // Only an empty blob gets here before its last chunk: check it, then end.
        st.finished = true;
        verify_end(st)?;
        return Ok(None);
    }
    let want = CHUNK.min(st.size - st.sent);
    let mut buf = Vec::with_capacity(want as usize);
    (&mut st.file)
        .take(want)
        .read_to_end(&mut buf)
        .map_err(|e| read_failure(&st.path, &e))?;
    if buf.is_empty() {
        return Err(mismatch(st, format!("only {} bytes", st.sent)));
    }
    st.hasher.update(&buf);
    st.sent += buf.len() as u64;
    if st.sent == st.size {
        st.finished = true;
        verify_end(st)?;
    }
    // The receiver may be gone (nobody reports progress); that is fine.
    let _ = st.progress.send(st.sent);
    Ok(Some(Bytes::from(buf)))
}

/// At the announced size: the file must end here and hash to the announced digest.
fn verify_end(st: &mut State) -> Result<(), Failure> {
    let mut probe = [0u8; 1];
    let extra = st
        .file
        .read(&mut probe)
        .map_err(|e| read_failure(&st.path, &e))?;
    if extra > 0 {
        return Err(mismatch(st, format!("more than {} bytes", st.size)));
    }
    let actual = Digest::from_sha256(st.hasher.clone().finalize().into());
    if actual != st.digest {
        return Err(mismatch(
            st,
            format!("{} bytes with digest {actual}", st.size),
        ));
    }
    Ok(())
}

fn mismatch(st: &State, found: String) -> Failure {
    Failure::Local {
        kind: ErrorKind::Integrity,
        message: format!(
            "the file {} has {found}, not the announced {} bytes with digest {}; it changed after it was built: build it again",
            st.path.display(),
            st.size,
            st.digest
        ),
    }
}

fn read_failure(path: &Path, error: &io::Error) -> Failure {
    Failure::Local {
        kind: ErrorKind::Internal,
        message: format!(
            "cannot read {} ({error}); check that it exists and is readable",
            path.display()
        ),
    }
}
