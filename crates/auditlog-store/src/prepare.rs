//! Turning one client event (already strictly parsed) into what the writer appends: the
//! validated, resolved record in canonical parts, and the fingerprint of the body as sent,
//! which decides whether a replayed idempotency key is the same event or a conflict.

use std::net::IpAddr;

use auditlog_core::event::{CanonicalParts, EventInput, FieldError, Timestamp};
use auditlog_core::json::Value;
use sha2::{Digest, Sha256};

/// An event ready for the writer. Only the writer adds `seq`, `received_at` and `tenant`.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub id: Option<String>,
    /// First 16 bytes of a SHA-256 fingerprint of the event as sent (see [`prepare_event`]).
    pub input_hash: [u8; 16],
    pub parts: CanonicalParts,
}

/// Validate and resolve one event. `now` is the receive time (the default `time`), `peer_ip`
/// the default `ip`.
///
/// The fingerprint must be equal for two sends of the same body and differ otherwise. When
/// the body names its own `time` and `ip`, the resolved record is a pure function of the body
/// (the `source` default depends only on `user`), so its canonical parts, already computed, are
/// the fingerprint; otherwise the body's own RFC 8785 form is hashed. A tag keeps the two
/// forms apart, and a body always takes the same form.
pub fn prepare_event(
    value: Value,
    now: Timestamp,
    peer_ip: IpAddr,
) -> Result<PreparedEvent, FieldError> {
    let self_contained = match &value {
        Value::Object(fields) => ["time", "ip"].iter().all(|name| {
            fields
                .iter()
                .any(|(key, v)| key == name && !matches!(v, Value::Null))
        }),
        _ => false,
    };
    let has_id = matches!(&value, Value::Object(fields) if fields.iter().any(|(k, _)| k == "id"));
    let mut hasher = Sha256::new();
    if has_id && !self_contained {
        hasher.update(b"auditlog input v1\n");
        hasher.update(value.to_canonical());
    }
    let record = EventInput::from_value(value, now)?.resolve(now, peer_ip);
    let parts = record.canonical_parts();
    if has_id && self_contained {
        hasher.update(b"auditlog record v1\n");
        for part in [&parts.head, &parts.middle, &parts.tail] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    let digest = hasher.finalize();
    let mut input_hash = [0u8; 16];
    input_hash.copy_from_slice(&digest[..16]);
    Ok(PreparedEvent {
        id: record.id.clone(),
        input_hash,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::json::{JsonLimits, parse};

    fn prepared(text: &str, now_secs: i64, peer: [u8; 4]) -> PreparedEvent {
        let value = parse(text.as_bytes(), &JsonLimits::default()).expect("json");
        prepare_event(
            value,
            Timestamp::from_unix_nanos(now_secs * 1_000_000_000),
            IpAddr::from(peer),
        )
        .expect("valid")
    }

    const FULL: &str = r#"{"id":"a","time":"2026-01-01T00:00:00Z","ip":"192.0.2.1","user":"u","action":"LOGIN","table":"t"}"#;
    const BARE: &str = r#"{"id":"a","user":"u","action":"LOGIN","table":"t"}"#;

    #[test]
    fn the_same_body_has_the_same_fingerprint_whenever_and_wherever_it_is_sent() {
        let now = 1_780_000_000;
        assert_eq!(
            prepared(FULL, now, [1, 1, 1, 1]).input_hash,
            prepared(FULL, now + 60, [2, 2, 2, 2]).input_hash
        );
        assert_eq!(
            prepared(BARE, now, [1, 1, 1, 1]).input_hash,
            prepared(BARE, now + 60, [2, 2, 2, 2]).input_hash
        );
        let reordered = r#"{"table":"t","action":"LOGIN","user":"u","ip":"192.0.2.1","time":"2026-01-01T00:00:00Z","id":"a"}"#;
        assert_eq!(
            prepared(FULL, now, [1, 1, 1, 1]).input_hash,
            prepared(reordered, now, [1, 1, 1, 1]).input_hash
        );
    }

    #[test]
    fn a_changed_body_has_another_fingerprint() {
        let now = 1_780_000_000;
        let base = prepared(FULL, now, [1, 1, 1, 1]).input_hash;
        for changed in [
            FULL.replace("LOGIN", "LOGOUT"),
            FULL.replace("192.0.2.1", "192.0.2.2"),
            FULL.replace("00:00:00Z", "00:00:01Z"),
            BARE.to_owned(),
            BARE.replace("\"user\":\"u\"", "\"user\":\"u\",\"ip\":\"192.0.2.1\""),
        ] {
            assert_ne!(
                base,
                prepared(&changed, now, [1, 1, 1, 1]).input_hash,
                "{changed}"
            );
        }
    }
}
