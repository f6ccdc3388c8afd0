//! Integration tests of auditlog-store through its public API: the backend conformance suite
//! of the `Store` trait (`conformance`), instantiated for `SqliteStore`. A new backend is done
//! when it passes the same suite. `fast_path` holds the fast path of ingest to the strict one.

mod conformance;
mod fast_path;
