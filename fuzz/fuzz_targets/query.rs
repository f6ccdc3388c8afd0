//! Fuzz the query language: `cargo +nightly fuzz run query fuzz/corpus/query fuzz/seeds/query`
//! (from the repository root; `cargo install cargo-fuzz` first).
//! The property is `auditlog_query::fuzz_check`: no panic, errors within the input, canonical
//! text round-trips, evaluation does not panic. The same property runs on stable in the
//! query crate's tests (`tests/it/hostile.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_query::fuzz_check(data);
});
