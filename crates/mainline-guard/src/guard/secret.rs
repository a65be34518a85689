//! Secrets the guard holds (the webhook secret, the action token): a wrapper whose `Debug`
//! never shows the value and which has no `Display`, and a constant-time comparison for
//! bearer tokens.
//!
//! Must never: be logged, formatted into an error, or compared with `==` on the raw bytes (a
//! short-circuiting compare leaks how much of a guess matched).

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A secret string.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (HMAC key, comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time independent of where they differ: both
    /// are hashed first (so lengths leak nothing either), then every byte is compared.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(candidate.as_bytes());
        let diff = a
            .iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
