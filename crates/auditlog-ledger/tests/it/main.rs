//! The one integration-test binary of auditlog-ledger: published test vectors (RFC 6962 /
//! transparency-dev/merkle, Go's sumdb/note, C2SP tlog-tiles) and property tests that tie the
//! Merkle tree, the tiles and the proofs together.

mod merkle_vectors;
mod note_vectors;
mod properties;
mod throughput;
mod tile_paths;

use auditlog_ledger::Hash;

/// Decodes a 64-digit hex string from a test vector.
pub fn hex_hash(s: &str) -> Hash {
    assert_eq!(s.len(), 64, "vector {s} is not 32 bytes of hex");
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit");
    }
    out
}

/// Decodes any-length hex (leaf inputs).
pub fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}
