//! Integration tests of auditlog-query through its public API: one test per grammar rule and
//! per error, the caret rendering, limits, hostile input, the canonical text round trip as a
//! property, and the reference evaluator on seed-style ConnexCS events.

mod errors;
mod evaluate;
mod grammar;
mod hostile;
mod round_trip;

use auditlog_core::event::Timestamp;
use auditlog_core::json::{JsonLimits, Value as Json};
use auditlog_query::{Query, QueryError, parse};

pub fn query(text: &str) -> Query {
    parse(text).unwrap_or_else(|err| panic!("{text}: {}", err.caret(text)))
}

pub fn error(text: &str) -> QueryError {
    match parse(text) {
        Ok(parsed) => panic!("{text} parsed as {parsed:?}"),
        Err(err) => err,
    }
}

/// Asserts that `text` fails at `position` with a message containing `needle`.
pub fn assert_error(text: &str, position: usize, needle: &str) {
    let err = error(text);
    assert_eq!(err.position, position, "{text}: {}", err.caret(text));
    assert!(
        err.message.contains(needle),
        "{text}: message {:?} does not contain {needle:?}",
        err.message
    );
}

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

pub fn json(text: &str) -> Json {
    auditlog_core::json::parse(text.as_bytes(), &JsonLimits::default())
        .unwrap_or_else(|err| panic!("{text}: {err}"))
}
