//! The auditlog query language (SPEC §4): the text people type into the UI search box, pass
//! as `q=` to `GET /api/v1/events`, facets, histogram, stream and export, and give to
//! `auditlog search`. This crate parses it into an AST ([`parse`]), writes an AST back as
//! canonical text (`Display`), and evaluates an AST against one stored event in memory
//! ([`matches()`]), which is the reference semantics a search index is tested against.
//!
//! Architecture invariant: pure. No IO and no clock (`now` is a parameter of [`matches()`];
//! relative times stay relative in the AST). Grammar apart from execution (tantivy,
//! quickwit): a search index translates the AST; it never parses text.
//!
//! # Grammar
//!
//! ```text
//! q        = clause *( WS clause )              ; clauses are ANDed; empty q = match all
//! clause   = [ "-" ] ( field ":" values | term | phrase )
//! values   = value *( "," value )               ; comma = OR within one field
//! value    = word | phrase | range | comparison
//! range    = bound ".." bound                   ; either end may be empty, not both
//! compare  = ( ">" | ">=" | "<" | "<=" ) bound
//! ```
//!
//! - **Whitespace** (any Unicode white space) separates clauses. Other control characters are
//!   an error anywhere, also inside phrases and after `\`.
//! - **Fields** are the columns `user`, `ip`, `time`, `received_at`, `primary_key` (alias
//!   `pk`), `action`, `table`, `message`, `source`, `seq`, `id`, or a data path: keys joined by
//!   `.`, optionally starting with a side (`before`, `after`, `context`): `account_id`,
//!   `after.status`, `after.routing.strategy`, `context`. A key is a letter or `_` followed by
//!   letters, digits, `_`, `-` ([`is_data_key`]). Field names are case-sensitive.
//! - **Field or term.** A clause is a field clause when the text before its first `:` is a
//!   field name; values after that `:` may hold more colons (`ip:2001:db8::/32`). Otherwise
//!   the clause is a bare term, so `12:30` and `2001:db8::1` (keys cannot start with a digit)
//!   are terms. A data key directly followed by `::` is not a field either (`fe80::1` is a
//!   term). A clause starting with a single `:` is an error.
//! - **Words** run to whitespace (or, in values, to an unescaped `,`). `\x` is a literal `x`
//!   for any non-control character, which is how [`Display`](std::fmt::Display) writes
//!   words that hold syntax characters. A `"` inside a word is an error.
//!   - a final unescaped `*` makes a prefix (`user:ali*`, bare `ingr*`); `*` elsewhere is an
//!     error (write `\*`), and a lone `*` is an error;
//!   - in a value, an unescaped `..` makes a range; a second `..` is an error (`a..b..c`);
//!   - in a value, a leading `>`, `>=`, `<`, `<=` makes a comparison;
//!   - at the start of a clause, `-` negates (`-action:LOGIN`); `--x` is the negated term `-x`.
//! - **Phrases** are in double quotes with the escapes `\"` and `\\` only; an empty phrase
//!   and an unterminated quote are errors. A phrase must end its clause or value.
//! - **Typed values**, checked while parsing (see the table on [`Value`]):
//!   - `ip`: an address (exact match) or `address/prefix` (network; prefix ≤ 32 or 128), or a
//!     textual prefix `ip:10.0.*`; no phrases, ranges or comparisons;
//!   - `time`, `received_at`: `YYYY-MM-DD` (midnight UTC), an RFC 3339 timestamp (any offset),
//!     `now`, or `now-<n><unit>` with unit `s`, `m`, `h`, `d`, `w`; a bare time is that
//!     exact instant ([`Value::Exact`]), so a day is `time:2026-01-01..2026-01-02` or
//!     `time:>=2026-01-01 time:<2026-01-02`;
//!   - `seq`: integers from 1 to 2^53−1 (`seq:0`, `seq:abc` are errors);
//!   - data keys: a word, prefix or phrase; range and comparison ends are numbers in JSON
//!     syntax, else times as above (`credit_limit:>1000`, `after.expires:<now`). Both ends of
//!     one range must be of one kind;
//!   - the other columns take words, prefixes and phrases only.
//! - **Limits**: at most [`MAX_INPUT_BYTES`] bytes, [`MAX_CLAUSES`] clauses, [`MAX_VALUES`]
//!   values per field, [`MAX_TEXT_BYTES`] bytes per word, phrase or data path. The parser does not recurse.
//!
//! Errors are a [`QueryError`] with a character offset; [`QueryError::caret`] renders it.
//!
//! # Canonical text
//!
//! `Display` of a [`Query`] writes clauses separated by one space, `pk` as `primary_key`,
//! plain addresses without `/32` or `/128`, times in UTC RFC 3339 (`2026-01-01T00:00:00Z`),
//! relative times in their largest whole unit (`now-1d`), numbers in RFC 8785 form, phrases
//! quoted and syntax characters in words `\`-escaped. `parse(&query.to_string()) == Ok(query)`
//! for every valid AST (the invariants are documented on the AST types).
//!
//! # Matching ([`matches()`])
//!
//! The event is the stored canonical event object. All text comparisons are case-insensitive
//! (both sides lowercased character by character with Unicode rules, [`fold`]); the AST keeps
//! the text as typed.
//!
//! - Clauses are ANDed, the values of one field ORed, `-` negates a clause. An empty query
//!   matches every event. A clause on an absent column or key does not match (and so its
//!   negation does).
//! - `user`, `action`, `table`, `source`, `primary_key`, `id`: a word or phrase equals the
//!   whole value; a prefix starts it.
//! - `message` is tokenized into words (runs of alphanumeric characters). A word matches when
//!   its own words appear consecutively (`message:credit_limit` finds "set credit limit"); a
//!   prefix likewise, with the last word a prefix; a phrase likewise (`"credit limit"` finds
//!   "Raised credit-limit" but not "credit limited": whole words, in order, as a word index
//!   answers it). A word without any alphanumeric character matches no message.
//! - `ip`: the event's address is in the network (an IPv4-mapped IPv6 address counts as its
//!   IPv4 address, and an IPv4 address as its mapped IPv6 address); a prefix compares text.
//! - `time`, `received_at`: compared as instants; relative bounds resolve against `now`.
//!   `seq` and numeric data values compare numerically. Ranges include both ends.
//! - **Data keys** look in `before`, `after` and `context`, or in the named side only. A path
//!   matches wherever it starts at any object at any depth under the side (`status:x` finds
//!   `after.status` and `after.billing.status`; `routing.strategy:x` finds that nested key at
//!   any depth), following arrays of objects on the way. The value found matches when it is a
//!   scalar that matches, or an array with a scalar element that matches. A side without a
//!   path (`after:suspended`) looks at every scalar under that side.
//!   Words and phrases equal the scalar's text: strings as they are, numbers in RFC 8785 form
//!   (`account_id:4711` matches `4711` and `"4711"`, not `4711.0`), `true`, `false`, `null`.
//!   Number bounds compare numbers and strings in JSON number syntax; time bounds compare
//!   strings holding RFC 3339 timestamps; anything else does not match a bound.
//! - **Bare terms** (word, prefix or phrase) match when any of these matches: the text
//!   columns `user`, `ip`, `primary_key`, `action`, `table`, `source`, `id` (equality or
//!   prefix); `message` (as `message:` does); any string or number at any depth in `before`,
//!   `after`, `context` (equality or prefix on its text). Not `time`, `received_at`, `seq`
//!   or `tenant`: a typed account id should not also find the event with that `seq`; and not
//!   booleans or nulls, so `true` does not find every event with a flag.

mod ast;
mod eval;
mod parse;

pub use ast::{Bound, Clause, ClauseKind, Column, Field, Op, Query, Side, Text, TimeBound, Value};
pub use eval::{fold, in_network, matches, scalar_text, words};
pub use parse::{
    MAX_CLAUSES, MAX_INPUT_BYTES, MAX_TEXT_BYTES, MAX_VALUES, QueryError, is_data_key,
    is_field_name, parse, parse_number,
};

/// Tables whose names start with this are auditlog's records of its own use (the trail of
/// the trail: `auditlog.session`, `auditlog.search`, …), kept in each tenant's trail log.
pub const TRAIL_TABLE_PREFIX: &str = "auditlog.";

/// Whether the query asks for auditlog's records of its own use: a positive `table:` clause
/// whose every value names them (`table:auditlog.*`, `table:auditlog.session`). Such a
/// query reads the tenant's trail log instead of its events. A value that merely could match
/// them (`table:a*`, `table:auditlog*`) or a mix (`table:alert,auditlog.search`) reads the
/// events: a prefix typed to find the tenant's own tables must find those.
pub fn asks_for_trail(query: &Query) -> bool {
    let names_trail = |value: &Value| match value {
        Value::Word(text) | Value::Phrase(text) => fold(text).starts_with(TRAIL_TABLE_PREFIX),
        Value::Prefix(prefix) => {
            let prefix = fold(prefix);
            prefix.starts_with(TRAIL_TABLE_PREFIX)
        }
        _ => false,
    };
    query.clauses.iter().any(|clause| match &clause.kind {
        ClauseKind::Field {
            field: Field::Column(Column::Table),
            values,
        } if !clause.negated => !values.is_empty() && values.iter().all(names_trail),
        _ => false,
    })
}

/// The property the fuzz target (`fuzz/fuzz_targets/query.rs`) and the hostile-input tests
/// check on arbitrary bytes: parsing never panics; an error's position lies within the input
/// and its caret renders; a parsed query's canonical text parses back to the same query; and
/// evaluating it on a sample event does not panic.
#[doc(hidden)]
pub fn fuzz_check(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match parse(text) {
        Err(error) => {
            assert!(error.position <= text.chars().count(), "{error:?}");
            let _ = error.caret(text);
        }
        Ok(query) => {
            let canonical = query.to_string();
            assert_eq!(parse(&canonical).as_ref(), Ok(&query), "{canonical}");
            let event = auditlog_core::json::parse(
                br#"{"action":"UPDATE","after":{"account_id":4711,"routing":{"strategy":"cost"},"codecs":["G729"],"flag":true,"expires":"2026-02-01T00:00:00Z"},"before":null,"context":{"request_id":"req_1"},"ip":"10.1.2.3","message":"Changed credit limit of customer 4711","primary_key":"4711","received_at":"2026-01-01T00:00:01Z","seq":7,"source":"panel","table":"customer","tenant":"default","time":"2026-01-01T00:00:00Z","user":"alice"}"#,
                &auditlog_core::json::JsonLimits::default(),
            );
            if let Ok(event) = event {
                let now = auditlog_core::event::Timestamp::parse_rfc3339("2026-06-01T00:00:00Z");
                if let Ok(now) = now {
                    let _ = matches(&query, &event, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod trail_tests {
    use super::*;

    #[test]
    fn a_table_clause_that_names_only_auditlog_tables_asks_for_the_trail() {
        for (text, asks) in [
            ("", false),
            ("user:alice", false),
            ("auditlog", false),
            ("table:customer", false),
            ("-table:auditlog.*", false),
            ("table:auditlog.*", true),
            ("table:AuditLog.Session", true),
            ("table:auditlog.search,auditlog.export", true),
            ("table:auditlog.s* user:bob", true),
            ("table:\"auditlog.session\"", true),
            // Could match, but does not name them: the tenant's own tables are meant.
            ("table:customer,auditlog.search", false),
            ("table:audit*", false),
            ("table:a*", false),
            ("table:auditlogs", false),
            ("table:auditlog*", false),
        ] {
            let query = parse(text).expect("valid");
            assert_eq!(asks_for_trail(&query), asks, "{text}");
        }
    }
}
