//! Public keys, as the PEM `PUBLIC KEY` documents `cosign generate-key-pair` writes and Flux's
//! `spec.verify` secret holds (SubjectPublicKeyInfo, RFC 5280), and the one operation on them:
//! does this signature over these bytes verify?
//!
//! Supported: ECDSA P-256 (cosign's default; SHA-256, DER signatures), ECDSA P-384, Ed25519
//! and RSA (PKCS#1 v1.5 or PSS, SHA-256). Anything else is refused when the key is loaded, with
//! the file named — never at verification time, where it would read as "not signed".
//!
//! Must never: print key bytes; accept a private key or a certificate where a public key is
//! expected (the error says which document was found).

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::ObjectIdentifier;
use std::path::Path;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A key file that cannot be used. The message names the file and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature key {file}: {why}")]
pub struct KeyError {
    pub file: String,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa,
}

/// One public key and the name it was configured under (its file path).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    algorithm: Algorithm,
    /// The SubjectPublicKeyInfo's key bytes (an EC point, 32 Ed25519 bytes, or a PKCS#1
    /// RSAPublicKey): what ring takes.
    key: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}, {})", self.name, self.algorithm_name())
    }
}

impl PublicKey {
    /// Read a PEM public key from `path`.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| KeyError {
            file: name.clone(),
            why: format!("cannot read it: {e}"),
        })?;
        PublicKey::from_pem(&name, &text)
    }

    /// Parse a PEM `PUBLIC KEY` document; `name` says where it came from, for messages.
    pub fn from_pem(name: &str, text: &[u8]) -> Result<PublicKey, KeyError> {
        let err = |why: String| KeyError {
            file: name.to_string(),
            why,
        };
        let doc = pem::parse(text).map_err(|e| {
            err(format!(
                "not a PEM document ({e}); give the public key file `cosign generate-key-pair` \
                 wrote (cosign.pub)"
            ))
        })?;
        if doc.tag() != "PUBLIC KEY" {
            return Err(err(format!(
                "holds a PEM \"{}\", not a \"PUBLIC KEY\"; give the public half (cosign.pub; \
                 `cosign public-key --key cosign.key` prints it)",
                doc.tag()
            )));
        }
        let info = spki::SubjectPublicKeyInfoRef::try_from(doc.contents())
            .map_err(|e| err(format!("not a SubjectPublicKeyInfo: {e}")))?;
        let oid = info.algorithm.oid;
        let algorithm = if oid == EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(c) if c == P256 => Algorithm::EcdsaP256,
                Some(c) if c == P384 => Algorithm::EcdsaP384,
                other => {
                    return Err(err(format!(
                        "an EC key on curve {}: only P-256 and P-384 are supported",
                        other.map_or("(none given)".to_string(), |c| c.to_string())
                    )))
                }
            }
        } else if oid == ED25519 {
            Algorithm::Ed25519
        } else if oid == RSA {
            Algorithm::Rsa
        } else {
            return Err(err(format!(
                "key algorithm {oid} is not supported (ECDSA P-256/P-384, Ed25519, RSA are)"
            )));
        };
        let key = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| err("the key's bit string is not whole bytes".into()))?
            .to_vec();
        Ok(PublicKey {
            name: name.to_string(),
            algorithm,
            key,
        })
    }

    /// Where the key came from (its file), for messages and the journal.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519` or `rsa`.
    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }

    /// Whether `sig` is this key's signature over `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        let candidates: &[&'static dyn VerificationAlgorithm] = match self.algorithm {
            Algorithm::EcdsaP256 => &[&signature::ECDSA_P256_SHA256_ASN1],
            Algorithm::EcdsaP384 => &[
                &signature::ECDSA_P384_SHA384_ASN1,
                &signature::ECDSA_P384_SHA256_ASN1,
            ],
            Algorithm::Ed25519 => &[&signature::ED25519],
            Algorithm::Rsa => &[
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
            ],
        };
        candidates.iter().any(|alg| {
            UnparsedPublicKey::new(*alg, &self.key)
                .verify(message, sig)
                .is_ok()
        })
    }
}

/// The keys a channel trusts. Empty: no key configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<PublicKey>,
}

impl KeySet {
    /// Load every file; the first unusable one is the error.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<KeySet, KeyError> {
        let keys = paths
            .iter()
            .map(|p| PublicKey::load(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeySet { keys })
    }

    pub fn from_keys(keys: Vec<PublicKey>) -> KeySet {
        KeySet { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The first key under which `sig` verifies over `message`.
    pub fn verifying_key(&self, message: &[u8], sig: &[u8]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.verifies(message, sig))
    }

    /// The configured key files, for messages: `a.pub, b.pub`.
    pub fn names(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
