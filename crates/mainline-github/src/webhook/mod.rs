//! GitHub webhook deliveries, without an HTTP server: verify the `X-Hub-Signature-256` HMAC,
//! recognise replayed `X-GitHub-Delivery` ids, and parse the few events mainline reacts to
//! (`merge_group`, `push`, `ping`) into our own types.
//!
//! Invariants: a body is trusted only after [`verify_signature`] accepted it, and the
//! comparison is constant-time (`hmac`'s `verify_slice`); only verified deliveries are
//! recorded in a [`ReplayGuard`], so an unauthenticated sender cannot pre-claim delivery ids;
//! an unknown event or action is [`Event::Ignored`], never an error (GitHub adds events).
//! Must never: perform I/O or read a clock, log or echo the webhook secret, or accept a body
//! larger than [`MAX_BODY_BYTES`].
//!
//! Shapes follow docs.github.com/en/webhooks/webhook-events-and-payloads; see
//! `fixtures/README.md` for the page behind each payload.

mod event;

pub use event::{group_id_for_head_ref, parse_event, DestroyReason, Event};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};

/// The largest body we accept. GitHub caps payloads at 25 MB, but the events we read are
/// small: a `merge_group` payload is about 2 KiB and a `push` lists at most 20 commits. 1 MiB
/// leaves a wide margin while bounding what an unauthenticated sender can make us buffer and
/// hash. A delivery we refuse is not lost: the scheduled reconcile still runs.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The header carrying the signature, as GitHub names it.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header naming the event.
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header carrying the delivery's GUID.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a delivery was refused. None of these carry the secret or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "the webhook secret is empty: set a high-entropy secret both in mainline and on the \
         GitHub webhook (Settings → Webhooks → Secret)"
    )]
    EmptySecret,
    #[error(
        "webhook delivery has no {SIGNATURE_HEADER} header: set a secret on the GitHub webhook \
         (the same one mainline is configured with) and redeliver"
    )]
    MissingSignature,
    #[error(
        "webhook {SIGNATURE_HEADER} header is malformed ({reason}); expected \
         `sha256=<64 hex digits>` as GitHub sends it: check that the sender is GitHub"
    )]
    MalformedSignature { reason: &'static str },
    #[error(
        "webhook signature does not match the body: the secret mainline has differs from the \
         one on the GitHub webhook, or the body was altered in transit; the delivery is refused"
    )]
    SignatureMismatch,
    #[error(
        "webhook body is {len} bytes, over mainline's limit of {max} bytes; the delivery is \
         refused (the scheduled reconcile still covers it)"
    )]
    TooLarge { len: usize, max: usize },
    #[error(
        "webhook delivery {delivery:?} ({event}) is malformed: `{field}` {reason}; check that \
         the webhook's content type is application/json and that the sender is GitHub"
    )]
    Malformed {
        event: String,
        delivery: String,
        field: String,
        reason: String,
    },
    #[error(
        "webhook delivery id {delivery:?} is not a usable {DELIVERY_HEADER} value (expected a \
         GUID of at most 128 visible ASCII characters): check that the sender is GitHub"
    )]
    BadDeliveryId { delivery: String },
    #[error(
        "webhook delivery {delivery:?} was already received: acknowledging the replay without \
         acting on it again"
    )]
    Replayed { delivery: String },
}

type HmacSha256 = Hmac<Sha256>;

/// The `X-Hub-Signature-256` value GitHub would send for `body` under `secret`:
/// `sha256=<lowercase hex HMAC-SHA256>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Check `header` (the `X-Hub-Signature-256` value, if any) against the HMAC-SHA256 of `body`
/// under `secret`. Missing, malformed and mismatched signatures are distinct errors; the
/// comparison of the digests is constant-time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge {
            len: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let header = header.ok_or(WebhookError::MissingSignature)?.trim();
    let hex_part =
        header
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(WebhookError::MalformedSignature {
                reason: "it does not start with `sha256=`",
            })?;
    if hex_part.len() != 64 {
        return Err(WebhookError::MalformedSignature {
            reason: "the digest is not 64 hex digits",
        });
    }
    let expected = hex::decode(hex_part).map_err(|_| WebhookError::MalformedSignature {
        reason: "the digest is not hexadecimal",
    })?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    // `verify_slice` compares in constant time (it uses `subtle`).
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::SignatureMismatch)
}

/// The most recently seen delivery ids, bounded: recognises a replayed `X-GitHub-Delivery`
/// among the last `capacity` verified deliveries. The oldest id is forgotten first.
///
/// Record a delivery only after its signature verified; otherwise anyone could claim the id
/// of a delivery GitHub has yet to send.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl ReplayGuard {
    /// How many ids a guard remembers by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A guard remembering the last `capacity` ids (at least one).
    pub fn new(capacity: usize) -> ReplayGuard {
        let capacity = capacity.max(1);
        ReplayGuard {
            capacity,
            seen: HashSet::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
            order: VecDeque::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
        }
    }

    /// Record `delivery`; `Err(Replayed)` if it is among the remembered ids.
    pub fn check_and_record(&mut self, delivery: &str) -> Result<(), WebhookError> {
        let usable = !delivery.is_empty()
            && delivery.len() <= 128
            && delivery.bytes().all(|b| b.is_ascii_graphic());
        if !usable {
            return Err(WebhookError::BadDeliveryId {
                delivery: delivery.chars().take(64).collect(),
            });
        }
        if self.seen.contains(delivery) {
            return Err(WebhookError::Replayed {
                delivery: delivery.to_owned(),
            });
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(delivery.to_owned());
        self.order.push_back(delivery.to_owned());
        Ok(())
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Default for ReplayGuard {
    fn default() -> ReplayGuard {
        ReplayGuard::new(Self::DEFAULT_CAPACITY)
    }
}
