//! Integration tests of auditlog-core through its public API: the strict JSON parser and its
//! limits, RFC 8785 golden files, event validation, the stored-record format, the diff, and
//! property tests of the invariants that hashing relies on.

mod canonical;
mod diff;
mod event;
mod hostile;
mod json_rules;
mod props;

use auditlog_core::json::{JsonError, JsonLimits, Value, parse};

/// A fixture under `tests/it/testdata/`.
pub fn testdata(relative: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/it/testdata/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

pub fn parse_str(text: &str) -> Result<Value, JsonError> {
    parse(text.as_bytes(), &JsonLimits::default())
}

pub fn json(text: &str) -> Value {
    parse_str(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

pub fn canonical_string(value: &Value) -> String {
    String::from_utf8(value.to_canonical()).expect("canonical JSON is UTF-8")
}
