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
    /// First 16 bytes of SHA-256 over the RFC 8785 form of the event as sent.
    pub input_hash: [u8; 16],
    pub parts: CanonicalParts,
}

/// Validate and resolve one event. `now` is the receive time (the default `time`), `peer_ip`
/// the default `ip`.
pub fn prepare_event(
    value: Value,
    now: Timestamp,
    peer_ip: IpAddr,
) -> Result<PreparedEvent, FieldError> {
    let digest = Sha256::digest(value.to_canonical());
    let mut input_hash = [0u8; 16];
    input_hash.copy_from_slice(&digest[..16]);
    let record = EventInput::from_value(value, now)?.resolve(now, peer_ip);
    Ok(PreparedEvent {
        id: record.id.clone(),
        input_hash,
        parts: record.canonical_parts(),
    })
}
