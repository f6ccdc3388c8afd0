//! Turning one client event (already strictly parsed) into what the writer appends: the
//! validated, resolved record in canonical parts, and the fingerprint of the body as sent,
//! which decides whether a replayed idempotency key is the same event or a conflict.

use std::net::IpAddr;

use auditlog_core::event::{CanonicalParts, EventInput, FieldError, Timestamp, fast};
use auditlog_core::json::{JsonError, JsonLimits, Value, parse_batch};
use sha2::{Digest, Sha256};

/// An event ready for the writer. Only the writer adds `seq`, `received_at` and `tenant`.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub id: Option<String>,
    /// For an event with an `id` whose body leaves `time` or `ip` to the server: the first 16
    /// bytes of a SHA-256 fingerprint of the body as sent (see [`prepare_event`]). None when
    /// the body names both (or has no `id`): its canonical parts then identify it.
    pub input_hash: Option<[u8; 16]>,
    pub parts: CanonicalParts,
}

impl PreparedEvent {
    /// Whether `other` is this same body sent again (the idempotency rule of SPEC §2 `id`).
    pub fn same_body(&self, other: &PreparedEvent) -> bool {
        match (&self.input_hash, &other.input_hash) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, None) => self.parts == other.parts,
            // A body always takes the same form, so different forms are different bodies.
            _ => false,
        }
    }

    /// Whether this body is the one a stored event with `stored_hash` (its `idem_hash`
    /// column) and `stored_parts` was made from. Rows written before the change of 2026-11-26 hold a fingerprint
    /// of the record's parts (tag `record`) where newer ones hold none.
    pub fn same_as_stored(
        &self,
        stored_hash: Option<&[u8]>,
        stored_parts: impl FnOnce() -> Option<CanonicalParts>,
    ) -> bool {
        match (stored_hash, &self.input_hash) {
            (Some(stored), Some(mine)) => stored == mine.as_slice(),
            (Some(stored), None) => stored == record_fingerprint(&self.parts).as_slice(),
            (None, None) => stored_parts().is_some_and(|parts| parts == self.parts),
            (None, Some(_)) => false,
        }
    }
}

/// The fingerprint of a self-contained body as rows written before 2026-11-26 hold it.
fn record_fingerprint(parts: &CanonicalParts) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(b"auditlog record v1\n");
    for part in [&parts.head, &parts.middle, &parts.tail] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    first_16(&hasher.finalize())
}

fn first_16(digest: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The fingerprint of a body as sent, from its RFC 8785 form.
fn input_fingerprint(sent_form: &[u8]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(b"auditlog input v1\n");
    hasher.update(sent_form);
    first_16(&hasher.finalize())
}

/// Validate and resolve one event. `now` is the receive time (the default `time`), `peer_ip`
/// the default `ip`.
///
/// Two sends of the same body must be recognised as such, and any change must not. When the
/// body names its own `time` and `ip`, the resolved record is a pure function of the body
/// (the `source` default depends only on `user`), so its canonical parts, computed anyway,
/// identify it and nothing is hashed; otherwise the body's own RFC 8785 form is fingerprinted.
/// A body always takes the same form.
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
    let input_hash = (has_id && !self_contained).then(|| input_fingerprint(&value.to_canonical()));
    let record = EventInput::from_value(value, now)?.resolve(now, peer_ip);
    let parts = record.canonical_parts();
    Ok(PreparedEvent {
        id: record.id.clone(),
        input_hash,
        parts,
    })
}

/// Why the events of a request body were refused: the first problem the strict path finds.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchError {
    /// The body is not well-formed JSON of events, or breaks a size or depth limit.
    Json(JsonError),
    /// More events than a request may carry (the number sent).
    TooManyEvents(usize),
    /// Event `index` has a field that is refused.
    Field { index: usize, error: FieldError },
}

/// Every event of a request body (one object, an array, or with `ndjson` one object per
/// line), validated and in canonical parts; all or nothing.
///
/// Bodies go through [`fast::prepare_batch`] first, straight from the bytes to the parts.
/// When it gives up (nesting deeper than it follows, or anything invalid), the strict path
/// ([`parse_batch`] and [`prepare_event`]) does the work and reports the first problem.
/// Both give the same events for every body the fast path takes.
pub fn prepare_batch(
    body: &[u8],
    ndjson: bool,
    limits: &JsonLimits,
    max_events: usize,
    received: Timestamp,
    peer_ip: IpAddr,
) -> Result<Vec<PreparedEvent>, BatchError> {
    if let Some(events) = fast::prepare_batch(body, ndjson, limits, max_events, received, peer_ip) {
        return Ok(events
            .into_iter()
            .map(|event| PreparedEvent {
                id: event.id,
                input_hash: event.sent_form.as_deref().map(input_fingerprint),
                parts: event.parts,
            })
            .collect());
    }
    prepare_batch_strictly(body, ndjson, limits, max_events, received, peer_ip)
}

/// [`prepare_batch`] by the strict path alone: parse every event into a tree, then validate.
pub fn prepare_batch_strictly(
    body: &[u8],
    ndjson: bool,
    limits: &JsonLimits,
    max_events: usize,
    received: Timestamp,
    peer_ip: IpAddr,
) -> Result<Vec<PreparedEvent>, BatchError> {
    let values = parse_batch(body, ndjson, limits).map_err(BatchError::Json)?;
    if values.len() > max_events {
        return Err(BatchError::TooManyEvents(values.len()));
    }
    // Sized once: growing it touched fresh memory batch after batch.
    let mut prepared = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        prepared.push(
            prepare_event(value, received, peer_ip)
                .map_err(|error| BatchError::Field { index, error })?,
        );
    }
    Ok(prepared)
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
        assert!(prepared(FULL, now, [1, 1, 1, 1]).same_body(&prepared(
            FULL,
            now + 60,
            [2, 2, 2, 2]
        )));
        assert!(prepared(BARE, now, [1, 1, 1, 1]).same_body(&prepared(
            BARE,
            now + 60,
            [2, 2, 2, 2]
        )));
        let reordered = r#"{"table":"t","action":"LOGIN","user":"u","ip":"192.0.2.1","time":"2026-01-01T00:00:00Z","id":"a"}"#;
        assert!(prepared(FULL, now, [1, 1, 1, 1]).same_body(&prepared(
            reordered,
            now,
            [1, 1, 1, 1]
        )));
    }

    #[test]
    fn a_changed_body_has_another_fingerprint() {
        let now = 1_780_000_000;
        let base = prepared(FULL, now, [1, 1, 1, 1]);
        for changed in [
            FULL.replace("LOGIN", "LOGOUT"),
            FULL.replace("192.0.2.1", "192.0.2.2"),
            FULL.replace("00:00:00Z", "00:00:01Z"),
            BARE.to_owned(),
            BARE.replace("\"user\":\"u\"", "\"user\":\"u\",\"ip\":\"192.0.2.1\""),
        ] {
            let other = prepared(&changed, now, [1, 1, 1, 1]);
            assert!(!base.same_body(&other), "{changed}");
            assert!(!other.same_body(&base), "{changed}");
        }
    }

    #[test]
    fn a_changed_body_without_time_or_ip_has_another_fingerprint() {
        let now = 1_780_000_000;
        let base = prepared(BARE, now, [1, 1, 1, 1]);
        for changed in [
            BARE.replace("LOGIN", "LOGOUT"),
            BARE.replace("\"user\":\"u\"", "\"user\":\"v\""),
            BARE.replace("\"user\":\"u\"", "\"user\":\"u\",\"ip\":null"),
        ] {
            let other = prepared(&changed, now, [1, 1, 1, 1]);
            assert!(!base.same_body(&other), "{changed}");
        }
    }

    #[test]
    fn rows_of_earlier_versions_keep_matching_their_replays() {
        let now = 1_780_000_000;
        let full = prepared(FULL, now, [1, 1, 1, 1]);
        assert_eq!(full.input_hash, None, "a self-contained body is not hashed");
        let changed = prepared(&FULL.replace("LOGIN", "LOGOUT"), now, [1, 1, 1, 1]);
        let bare = prepared(BARE, now, [1, 1, 1, 1]);
        // Earlier, a self-contained body's row held the fingerprint of its parts.
        let old_hash = record_fingerprint(&full.parts);
        assert!(full.same_as_stored(Some(&old_hash), || None));
        assert!(!changed.same_as_stored(Some(&old_hash), || None));
        assert!(!bare.same_as_stored(Some(&old_hash), || None));
        let bare_hash = bare
            .input_hash
            .expect("a body without time or ip is hashed");
        assert!(bare.same_as_stored(Some(&bare_hash), || None));
        assert!(!full.same_as_stored(Some(&bare_hash), || None));
        // Now it holds none, and the stored parts are compared.
        assert!(full.same_as_stored(None, || Some(full.parts.clone())));
        assert!(!changed.same_as_stored(None, || Some(full.parts.clone())));
        assert!(!bare.same_as_stored(None, || Some(bare.parts.clone())));
        assert!(
            !full.same_as_stored(None, || None),
            "an unreadable row is no replay"
        );
    }
}
