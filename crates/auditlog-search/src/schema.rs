//! The index schema and the document of one stored event.
//!
//! Every field is derived from the stored canonical event, so the index can be rebuilt from
//! the log at any time. Nothing is stored in tantivy's document store: a page of hits is read
//! back from the log by `seq`.
//!
//! | field | kind | holds |
//! |---|---|---|
//! | `seq`, `time`, `received_at` | u64/i64, indexed + fast | ranges and sort (`time` in ns) |
//! | `user` `action` `table` `source` `primary_key` `id` `ip_text` | one raw term | the [`fold`]ed value: equality and prefix |
//! | `user_s` … `message_s`, `ip_s` | fast text | the value as stored: sort and facets |
//! | `ip` | IP, indexed + fast | networks and sort (IPv4 as mapped IPv6) |
//! | `message` | words with positions | the [`words`] of the message |
//! | `data_before` `data_after` `data_context` | byte terms | [`data_term`] per scalar and path |
//! | `num_before` `num_after` `num_context` | byte terms | [`num_term`] per number or time |

use std::net::{IpAddr, Ipv6Addr};

use auditlog_core::event::Timestamp;
use auditlog_core::json::Value as Json;
use auditlog_query::{Side, fold, is_data_key, parse_number, scalar_text, words};
use tantivy::schema::{
    Field, IndexRecordOption, IpAddrOptions, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{Index, Order, TantivyDocument};

/// Separates the value from the path in a data term, and the path from the bound in a
/// numeric term. Never part of UTF-8.
pub(crate) const SEP: u8 = 0xFF;
/// Joins the keys of a path (keys may hold `.`). Never part of UTF-8.
pub(crate) const KEY_SEP: u8 = 0xFE;
/// Leads the data term of a boolean or null, so word and prefix ranges over string values
/// never reach them. Never part of UTF-8.
pub(crate) const NON_TEXT: u8 = 0xFE;
/// Ends a value cut at [`MAX_VALUE_BYTES`]: such a value equals no query word (at most
/// `MAX_TEXT_BYTES` typed), and a prefix of it is still found.
pub(crate) const CUT: u8 = 0xFD;
/// Data values are indexed by their first bytes only (query words are far shorter).
pub(crate) const MAX_VALUE_BYTES: usize = 1024;
/// Longest path indexed; longer paths cannot be typed (`MAX_TEXT_BYTES`).
const MAX_PATH_BYTES: usize = auditlog_query::MAX_TEXT_BYTES;

/// Kinds of a numeric term.
pub(crate) const KIND_NUMBER: u8 = b'n';
pub(crate) const KIND_TIME: u8 = b't';

/// Version of the schema and term layout; an index written by another version is rebuilt.
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// The fields of the index.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub seq: Field,
    pub time: Field,
    pub received_at: Field,
    pub user: Field,
    pub action: Field,
    pub table: Field,
    pub source: Field,
    pub primary_key: Field,
    pub id: Field,
    pub ip_text: Field,
    pub ip: Field,
    pub message: Field,
    pub user_s: Field,
    pub action_s: Field,
    pub table_s: Field,
    pub source_s: Field,
    pub primary_key_s: Field,
    pub message_s: Field,
    pub ip_s: Field,
    pub data: [Field; 3],
    pub num: [Field; 3],
}

pub(crate) fn side_index(side: Side) -> usize {
    match side {
        Side::Before => 0,
        Side::After => 1,
        Side::Context => 2,
    }
}

/// The tokenizer of the `message` field: [`words`], so the index and the reference evaluator
/// split and fold a message the same way.
const WORDS_TOKENIZER: &str = "auditlog_words";

/// Registers the tokenizers the schema names; every opened or created index needs them.
pub(crate) fn register_tokenizers(index: &Index) {
    index.tokenizers().register(WORDS_TOKENIZER, WordsTokenizer);
}

/// Splits a message into its folded [`words`], at consecutive positions.
#[derive(Clone)]
struct WordsTokenizer;

/// The tokens of one message.
struct WordsStream {
    tokens: Vec<Token>,
    /// One past the current token (0 before the first `advance`).
    next: usize,
}

impl Tokenizer for WordsTokenizer {
    type TokenStream<'a> = WordsStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordsStream {
        let tokens = words(text)
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text,
                position_length: 1,
            })
            .collect();
        WordsStream { tokens, next: 0 }
    }
}

impl TokenStream for WordsStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// The index sort: newest `time` first inside every segment, so the default order stops
/// after the first hits of each segment.
pub(crate) fn index_sort() -> tantivy::IndexSortByField {
    tantivy::IndexSortByField {
        field: "time".to_owned(),
        order: Order::Desc,
    }
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let raw = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    let fast_text = TextOptions::default().set_fast("raw");
    let message = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS_TOKENIZER)
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let terms = tantivy::schema::BytesOptions::default().set_indexed();
    let number: NumericOptions = NumericOptions::default().set_indexed().set_fast();
    let fields = Fields {
        seq: builder.add_u64_field("seq", number.clone()),
        time: builder.add_i64_field("time", number.clone()),
        received_at: builder.add_i64_field("received_at", number),
        user: builder.add_text_field("user", raw.clone()),
        action: builder.add_text_field("action", raw.clone()),
        table: builder.add_text_field("table", raw.clone()),
        source: builder.add_text_field("source", raw.clone()),
        primary_key: builder.add_text_field("primary_key", raw.clone()),
        id: builder.add_text_field("id", raw.clone()),
        ip_text: builder.add_text_field("ip_text", raw),
        ip: builder.add_ip_addr_field("ip", IpAddrOptions::default().set_indexed().set_fast()),
        message: builder.add_text_field("message", message),
        user_s: builder.add_text_field("user_s", fast_text.clone()),
        action_s: builder.add_text_field("action_s", fast_text.clone()),
        table_s: builder.add_text_field("table_s", fast_text.clone()),
        source_s: builder.add_text_field("source_s", fast_text.clone()),
        primary_key_s: builder.add_text_field("primary_key_s", fast_text.clone()),
        message_s: builder.add_text_field("message_s", fast_text.clone()),
        ip_s: builder.add_text_field("ip_s", fast_text),
        data: [
            builder.add_bytes_field("data_before", terms.clone()),
            builder.add_bytes_field("data_after", terms.clone()),
            builder.add_bytes_field("data_context", terms.clone()),
        ],
        num: [
            builder.add_bytes_field("num_before", terms.clone()),
            builder.add_bytes_field("num_after", terms.clone()),
            builder.add_bytes_field("num_context", terms),
        ],
    };
    (builder.build(), fields)
}

/// An IP address as the index holds it: IPv4 as its mapped IPv6 address.
pub(crate) fn ip_key(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A path as index terms spell it: the keys joined by [`KEY_SEP`].
pub(crate) fn path_bytes<S: AsRef<str>>(path: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key_idx, key) in path.iter().enumerate() {
        if key_idx > 0 {
            out.push(KEY_SEP);
        }
        out.extend_from_slice(key.as_ref().as_bytes());
    }
    out
}

/// The folded value as indexed: cut at [`MAX_VALUE_BYTES`] (on a character boundary) and
/// marked with [`CUT`] when longer.
pub(crate) fn value_bytes(folded: &str) -> Vec<u8> {
    if folded.len() <= MAX_VALUE_BYTES {
        return folded.as_bytes().to_vec();
    }
    let mut end = MAX_VALUE_BYTES;
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = folded.as_bytes()[..end].to_vec();
    out.push(CUT);
    out
}

/// `value ‖ SEP ‖ path` (strings and numbers) or `NON_TEXT ‖ value ‖ SEP ‖ path` (booleans
/// and null), with the value folded: one data term.
pub(crate) fn data_term(value: &[u8], text: bool, path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + path.len() + 2);
    if !text {
        out.push(NON_TEXT);
    }
    out.extend_from_slice(value);
    out.push(SEP);
    out.extend_from_slice(path);
    out
}

/// An `f64` as 8 bytes whose byte order is the numeric order (`-0.0` is `0.0`).
pub(crate) fn sortable_f64(value: f64) -> [u8; 8] {
    let value = if value == 0.0 { 0.0 } else { value };
    let bits = value.to_bits();
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    key.to_be_bytes()
}

/// An instant as 8 bytes whose byte order is the time order.
pub(crate) fn sortable_time(instant: Timestamp) -> [u8; 8] {
    ((instant.unix_nanos() as u64) ^ (1 << 63)).to_be_bytes()
}

/// `path ‖ SEP ‖ kind ‖ 8 sortable bytes`: one numeric term.
pub(crate) fn num_term(path: &[u8], kind: u8, key: [u8; 8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 10);
    out.extend_from_slice(path);
    out.push(SEP);
    out.push(kind);
    out.extend_from_slice(&key);
    out
}

/// Why an event could not be indexed (the log holds it, so this is a bug or corruption).
#[derive(Debug, thiserror::Error)]
#[error("event {seq}: {problem}")]
pub(crate) struct DocumentError {
    pub seq: u64,
    pub problem: String,
}

/// The index document of one stored event (the parsed canonical event).
pub(crate) fn document(fields: &Fields, event: &Json) -> Result<TantivyDocument, DocumentError> {
    let seq = event
        .get("seq")
        .and_then(|seq| match seq {
            Json::Number(n) => n.as_i64().and_then(|n| u64::try_from(n).ok()),
            _ => None,
        })
        .ok_or_else(|| DocumentError {
            seq: 0,
            problem: "no seq".to_owned(),
        })?;
    let problem = |problem: &str| DocumentError {
        seq,
        problem: problem.to_owned(),
    };
    let instant = |name: &str| {
        event
            .get(name)
            .and_then(Json::as_str)
            .and_then(|text| Timestamp::parse_rfc3339(text).ok())
            .ok_or_else(|| problem(&format!("no valid {name}")))
    };
    let mut doc = TantivyDocument::new();
    doc.add_u64(fields.seq, seq);
    doc.add_i64(fields.time, instant("time")?.unix_nanos());
    doc.add_i64(fields.received_at, instant("received_at")?.unix_nanos());
    let text_columns = [
        ("user", fields.user, Some(fields.user_s)),
        ("action", fields.action, Some(fields.action_s)),
        ("table", fields.table, Some(fields.table_s)),
        ("source", fields.source, Some(fields.source_s)),
        (
            "primary_key",
            fields.primary_key,
            Some(fields.primary_key_s),
        ),
        ("id", fields.id, None),
        ("ip", fields.ip_text, Some(fields.ip_s)),
    ];
    for (name, folded_field, sort_field) in text_columns {
        if let Some(value) = event.get(name).and_then(Json::as_str) {
            doc.add_text(folded_field, fold(value));
            if let Some(sort_field) = sort_field {
                doc.add_text(sort_field, value);
            }
        }
    }
    let ip: IpAddr = event
        .get("ip")
        .and_then(Json::as_str)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| problem("no valid ip"))?;
    doc.add_ip_addr(fields.ip, ip_key(ip));
    if let Some(message) = event.get("message").and_then(Json::as_str) {
        doc.add_text(fields.message_s, message);
        doc.add_text(fields.message, message);
    }
    for side in Side::ALL {
        if let Some(root) = event.get(side.name()) {
            let at = side_index(side);
            add_data(&mut doc, fields.data[at], fields.num[at], root);
        }
    }
    Ok(doc)
}

/// One scalar found under a side: the keys on the way to it (arrays are transparent) and how
/// many arrays lie between the last key and the scalar.
struct Found<'a> {
    value: &'a Json,
    keys: Vec<&'a str>,
    arrays_after_key: usize,
}

/// The data and numeric terms of every scalar under `root`.
///
/// A query path `k1.k2` matches a scalar whose key chain ends with `k1, k2` (paths start at
/// any object, arrays of objects are followed) when at most one array lies between the last
/// key and the scalar (an array value compares its elements). So a scalar gets one term per
/// suffix of its key chain that a query can spell; a scalar no path reaches (the side itself,
/// or inside nested arrays) gets one term with an empty path, for side-wide queries.
fn add_data(doc: &mut TantivyDocument, data_field: Field, num_field: Field, root: &Json) {
    let mut stack = vec![Found {
        value: root,
        keys: Vec::new(),
        arrays_after_key: 0,
    }];
    while let Some(found) = stack.pop() {
        match found.value {
            Json::Object(members) => {
                for (key, value) in members {
                    let mut keys = found.keys.clone();
                    keys.push(key.as_str());
                    stack.push(Found {
                        value,
                        keys,
                        arrays_after_key: 0,
                    });
                }
            }
            Json::Array(elements) => {
                for value in elements {
                    stack.push(Found {
                        value,
                        keys: found.keys.clone(),
                        arrays_after_key: found.arrays_after_key + 1,
                    });
                }
            }
            scalar => add_scalar(doc, data_field, num_field, &found, scalar),
        }
    }
}

fn add_scalar(
    doc: &mut TantivyDocument,
    data_field: Field,
    num_field: Field,
    found: &Found<'_>,
    scalar: &Json,
) {
    let Some(text) = scalar_text(scalar) else {
        return;
    };
    let is_text = matches!(scalar, Json::String(_) | Json::Number(_));
    let value = value_bytes(&fold(&text));
    let mut numeric: Vec<(u8, [u8; 8])> = Vec::new();
    match scalar {
        Json::Number(number) => numeric.push((KIND_NUMBER, sortable_f64(number.as_f64()))),
        Json::String(string) => {
            if let Some(number) = parse_number(string) {
                numeric.push((KIND_NUMBER, sortable_f64(number.as_f64())));
            }
            if let Ok(instant) = Timestamp::parse_rfc3339(string) {
                numeric.push((KIND_TIME, sortable_time(instant)));
            }
        }
        _ => {}
    }
    let mut paths: Vec<Vec<u8>> = Vec::new();
    if found.arrays_after_key <= 1 {
        for start in 0..found.keys.len() {
            let suffix = &found.keys[start..];
            let spelled_len = suffix.iter().map(|key| key.len() + 1).sum::<usize>() - 1;
            if spelled_len <= MAX_PATH_BYTES && suffix.iter().all(|key| is_data_key(key)) {
                paths.push(path_bytes(suffix));
            }
        }
    }
    if paths.is_empty() {
        paths.push(Vec::new());
    }
    for path in &paths {
        doc.add_bytes(data_field, &data_term(&value, is_text, path));
        for &(kind, key) in &numeric {
            doc.add_bytes(num_field, &num_term(path, kind, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_encodings_keep_the_order() {
        let numbers = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-9, 1.0, 2.5, 4711.0, 1e300];
        for pair in numbers.windows(2) {
            assert!(sortable_f64(pair[0]) <= sortable_f64(pair[1]), "{pair:?}");
        }
        assert_eq!(sortable_f64(-0.0), sortable_f64(0.0));
        let times = [i64::MIN, -1, 0, 1, i64::MAX];
        for pair in times.windows(2) {
            assert!(
                sortable_time(Timestamp::from_unix_nanos(pair[0]))
                    < sortable_time(Timestamp::from_unix_nanos(pair[1]))
            );
        }
    }

    #[test]
    fn the_message_tokenizer_gives_the_words_of_the_reference_evaluator() {
        let message = "Created DID +336399800708 for Customer-2442 (ÉTÉ) ";
        let mut tokenizer = WordsTokenizer;
        let mut stream = tokenizer.token_stream(message);
        let mut seen = Vec::new();
        while stream.advance() {
            let token = stream.token();
            seen.push((token.position, token.text.clone()));
        }
        let expected: Vec<(usize, String)> = words(message).into_iter().enumerate().collect();
        assert_eq!(seen, expected);
        assert_eq!(seen[2].1, "336399800708");
        assert!(!tokenizer.token_stream("  -- ").advance());
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary_and_marked() {
        let long = "é".repeat(600);
        let cut = value_bytes(&long);
        assert_eq!(cut.len(), MAX_VALUE_BYTES + 1);
        assert_eq!(cut.last(), Some(&CUT));
        assert!(std::str::from_utf8(&cut[..cut.len() - 1]).is_ok());
        assert_eq!(value_bytes("short"), b"short".to_vec());
    }
}

#[cfg(test)]
mod term_counts {
    use super::*;

    #[test]
    #[ignore = "a measurement: cargo test -p auditlog-search term_counts -- --ignored --nocapture"]
    fn terms_per_generated_event() {
        let (_, fields) = schema();
        let mut generator = auditlog_core::generate::Generator::new(Default::default());
        let limits = auditlog_core::json::JsonLimits::default();
        let (mut data, mut num, mut all) = (0usize, 0usize, 0usize);
        let n = 2000;
        for seq in 1..=n {
            let line = generator.next().expect("event");
            let mut text = line.strip_suffix('}').expect("object").to_owned();
            text.push_str(&format!(
                ",\"seq\":{seq},\"received_at\":\"2026-01-01T00:00:00Z\"}}"
            ));
            let value = auditlog_core::json::parse(text.as_bytes(), &limits).expect("parse");
            let doc = document(&fields, &value).expect("doc");
            for (field, _) in doc.field_values() {
                all += 1;
                if fields.data.contains(&field) {
                    data += 1;
                }
                if fields.num.contains(&field) {
                    num += 1;
                }
            }
        }
        println!(
            "per event: {} values, {} data terms, {} numeric terms",
            all / n,
            data / n,
            num / n
        );
    }
}
