//! Search benchmark (issue 3): `cargo bench -p auditlog-cli --bench search`.
//! (Being written: for now it drives the SQLite baseline only.)

#[path = "support/sqlite_baseline.rs"]
mod sqlite_baseline;

fn main() {
    sqlite_baseline::self_check();
}
