//! The event model of auditlog: strict JSON input, validated event fields, limits, the
//! before/after diff and the deterministic sample generator.
//!
//! Architecture invariant: this crate does no IO and reads no clock; "now" is always a
//! parameter. It computes no hashes (that is `auditlog-ledger`).

pub mod diff;
pub mod event;
pub mod generate;
pub mod json;
pub mod tenant;
