//! What the real kube-apiserver refuses in a `coordination.k8s.io/v1` Lease body, so the fake
//! refuses the same instead of storing anything: a field of the wrong JSON type or a
//! `MicroTime` not in its one wire format is a decoding error (400 `BadRequest`, "… cannot be
//! handled as a Lease"), and a value the Lease validation rejects is 422 `Invalid`. Each rule
//! is compared with the real server in `tests/fake_vs_real.rs`.
//!
//! Must never: accept a body the real server would refuse (a test that passes against the
//! fake must not fail against a cluster for a shape reason).

use serde_json::Value;

/// Why a Lease body is refused: the HTTP status (400 or 422) and the message.
pub(crate) struct Refusal {
    pub code: u16,
    pub message: String,
}

const INT32: &[&str] = &["leaseDurationSeconds", "leaseTransitions"];
const STRINGS: &[&str] = &["holderIdentity", "strategy", "preferredHolder"];
const MICRO_TIMES: &[&str] = &["acquireTime", "renewTime"];

/// Check `obj` (a Lease as sent in a create or update).
pub(crate) fn check_lease(obj: &Value) -> Result<(), Refusal> {
    let decode = |message: String| Refusal {
        code: 400,
        message: format!("Lease in version \"v1\" cannot be handled as a Lease: {message}"),
    };
    let Some(spec) = obj.get("spec").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    let Some(spec) = spec.as_object() else {
        return Err(decode(
            "json: cannot unmarshal into Go struct field Lease.spec of type v1.LeaseSpec"
                .to_owned(),
        ));
    };
    for (field, value) in spec {
        if value.is_null() {
            continue;
        }
        let f = field.as_str();
        if INT32.contains(&f) {
            let fits = value.as_i64().is_some_and(|n| i32::try_from(n).is_ok());
            if !fits {
                return Err(decode(format!(
                    "json: cannot unmarshal {} into Go struct field LeaseSpec.spec.{f} of type int32",
                    json_kind(value)
                )));
            }
        } else if STRINGS.contains(&f) {
            if !value.is_string() {
                return Err(decode(format!(
                    "json: cannot unmarshal {} into Go struct field LeaseSpec.spec.{f} of type string",
                    json_kind(value)
                )));
            }
        } else if MICRO_TIMES.contains(&f) {
            match value.as_str() {
                Some(t) if is_micro_time(t) => {}
                Some(t) => {
                    return Err(decode(format!(
                        "parsing time \"{t}\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse"
                    )))
                }
                None => {
                    return Err(decode(format!(
                        "json: cannot unmarshal {} into Go struct field LeaseSpec.spec.{f} of type string",
                        json_kind(value)
                    )))
                }
            }
        }
    }
    let int = |f: &str| spec.get(f).and_then(Value::as_i64);
    if let Some(d) = int("leaseDurationSeconds").filter(|d| *d <= 0) {
        return Err(Refusal {
            code: 422,
            message: format!(
                "spec.leaseDurationSeconds: Invalid value: {d}: must be greater than 0"
            ),
        });
    }
    if let Some(t) = int("leaseTransitions").filter(|t| *t < 0) {
        return Err(Refusal {
            code: 422,
            message: format!(
                "spec.leaseTransitions: Invalid value: {t}: must be greater than or equal to 0"
            ),
        });
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `metav1.MicroTime`'s wire format, RFC 3339 with exactly six fractional digits
/// (`2006-01-02T15:04:05.000000Z07:00`, Go's layout): `2025-06-14T11:00:00.123456Z` or
/// `…+02:00`.
pub(crate) fn is_micro_time(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let head = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19)
        && at(19, b'.')
        && digits(20..26);
    if !head {
        return false;
    }
    match &b[26..] {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            (*sign == b'+' || *sign == b'-') && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}
