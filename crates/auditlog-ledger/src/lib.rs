//! The integrity layer of auditlog: the RFC 9162 Merkle tree over each tenant's events, its
//! C2SP tlog-tiles storage layout, inclusion and consistency proofs, and signed-note checkpoints.
//!
//! Architecture invariant: this crate is pure (no IO, no clock, no randomness; keys come in as
//! seeds) and it is the only place that computes hashes of the log. Storage hands it bytes
//! (tiles) and takes bytes back; what it cannot trust, it checks and reports as a `LedgerError`,
//! never as a panic.

pub mod error;
pub mod merkle;
pub mod note;
pub mod tiles;

pub use error::LedgerError;
pub use merkle::{Hash, leaf_hash, node_hash};
