//! The in-memory evaluator: whether one stored event matches a query.
//!
//! This is the reference semantics of the language (every rule is in the crate
//! documentation); a search index must return exactly the events this function accepts. It is
//! written for clarity, not speed: it scans the whole event for every clause. It walks nested
//! data with an explicit stack, so no event shape can exhaust the call stack.

use std::net::IpAddr;

use auditlog_core::event::Timestamp;
use auditlog_core::json::Value as Json;

use crate::ast::{Bound, ClauseKind, Column, Field, Op, Query, Side, Text, Value};
use crate::parse::parse_number;

/// The columns a bare term is compared with (besides the words of `message`).
const TERM_COLUMNS: [Column; 7] = [
    Column::User,
    Column::Ip,
    Column::PrimaryKey,
    Column::Action,
    Column::Table,
    Column::Source,
    Column::Id,
];

/// Whether `event` (a stored canonical event object: the columns, `seq`, `received_at`,
/// `tenant`, and `before`/`after`/`context`) matches `query` when evaluated at `now`.
pub fn matches(query: &Query, event: &Json, now: Timestamp) -> bool {
    query.clauses.iter().all(|clause| {
        let hit = match &clause.kind {
            ClauseKind::Term(text) => term_matches(text, event),
            ClauseKind::Field { field, values } => values
                .iter()
                .any(|value| field_matches(field, value, event, now)),
        };
        hit != clause.negated
    })
}

/// A lowercased needle: what every text comparison compares against.
struct Needle {
    lower: String,
    prefix: bool,
}

impl Needle {
    fn equals_or_starts(&self, haystack: &str) -> bool {
        let haystack = fold(haystack);
        if self.prefix {
            haystack.starts_with(&self.lower)
        } else {
            haystack == self.lower
        }
    }
}

fn term_matches(text: &Text, event: &Json) -> bool {
    let (needle_text, prefix) = match text {
        Text::Word(word) | Text::Phrase(word) => (word, false),
        Text::Prefix(prefix) => (prefix, true),
    };
    let needle = Needle {
        lower: fold(needle_text),
        prefix,
    };
    let column_hit = TERM_COLUMNS.iter().any(|column| {
        event
            .get(column.name())
            .and_then(Json::as_str)
            .is_some_and(|value| needle.equals_or_starts(value))
    });
    column_hit
        || message_matches(text, event)
        || Side::ALL.into_iter().any(|side| {
            event.get(side.name()).is_some_and(|root| {
                scalars_under(root).any(|scalar| {
                    // Bare terms look at strings and numbers only: typing `true` or `null`
                    // should not find every event that has some flag.
                    matches!(scalar, Json::String(_) | Json::Number(_))
                        && scalar_text(scalar).is_some_and(|t| needle.equals_or_starts(&t))
                })
            })
        })
}

fn message_matches(text: &Text, event: &Json) -> bool {
    let Some(message) = event.get("message").and_then(Json::as_str) else {
        return false;
    };
    match text {
        Text::Word(word) | Text::Phrase(word) => contains_words(message, word, false),
        Text::Prefix(prefix) => contains_words(message, prefix, true),
    }
}

/// The case folding of every text comparison: each character lowercased on its own
/// (`char::to_lowercase`), so a search index can fold term by term and agree exactly.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().flat_map(char::to_lowercase).collect()
}

/// The folded alphanumeric runs of `text`: the word tokenizer of `message`.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(fold)
        .collect()
}

/// Whether the words of `needle` occur in `message` as consecutive words; with `prefix`, the
/// last needle word need only start a message word. A needle without any word matches nothing.
fn contains_words(message: &str, needle: &str, prefix: bool) -> bool {
    let needle_words = words(needle);
    let message_words = words(message);
    let Some((last, leading)) = needle_words.split_last() else {
        return false;
    };
    message_words.windows(needle_words.len()).any(|window| {
        let Some((window_last, window_leading)) = window.split_last() else {
            return false;
        };
        window_leading == leading
            && if prefix {
                window_last.starts_with(last.as_str())
            } else {
                window_last == last
            }
    })
}

fn field_matches(field: &Field, value: &Value, event: &Json, now: Timestamp) -> bool {
    match field {
        Field::Column(Column::Message) => match value {
            Value::Word(word) => message_matches(&Text::Word(word.clone()), event),
            Value::Prefix(prefix) => message_matches(&Text::Prefix(prefix.clone()), event),
            Value::Phrase(phrase) => message_matches(&Text::Phrase(phrase.clone()), event),
            _ => false,
        },
        Field::Column(Column::Ip) => {
            let Some(ip_text) = event.get("ip").and_then(Json::as_str) else {
                return false;
            };
            match value {
                Value::Cidr(network, prefix_len) => ip_text
                    .parse::<IpAddr>()
                    .is_ok_and(|addr| in_network(addr, *network, *prefix_len)),
                Value::Prefix(prefix) => fold(ip_text).starts_with(&fold(prefix)),
                _ => false,
            }
        }
        Field::Column(column) => event
            .get(column.name())
            .is_some_and(|column_value| scalar_matches(column_value, value, now)),
        Field::Data { side, path } => {
            let sides: &[Side] = match side {
                Some(side) => std::slice::from_ref(side),
                None => &Side::ALL,
            };
            sides.iter().any(|side| {
                let Some(root) = event.get(side.name()) else {
                    return false;
                };
                if path.is_empty() {
                    return scalars_under(root).any(|scalar| scalar_matches(scalar, value, now));
                }
                values_at_path(root, path)
                    .into_iter()
                    .any(|found| match found {
                        Json::Array(elements) => elements
                            .iter()
                            .any(|element| scalar_matches(element, value, now)),
                        other => scalar_matches(other, value, now),
                    })
            })
        }
    }
}

/// Whether one scalar (a column value or a data value) satisfies one query value. Objects and
/// arrays never match here.
fn scalar_matches(scalar: &Json, value: &Value, now: Timestamp) -> bool {
    match value {
        Value::Word(word) | Value::Phrase(word) => {
            scalar_text(scalar).is_some_and(|text| fold(&text) == fold(word))
        }
        Value::Prefix(prefix) => {
            scalar_text(scalar).is_some_and(|text| fold(&text).starts_with(&fold(prefix)))
        }
        Value::Exact(bound) => compare(scalar, *bound, now).is_some_and(|order| order.is_eq()),
        Value::Compare(op, bound) => compare(scalar, *bound, now).is_some_and(|order| match op {
            Op::Gt => order.is_gt(),
            Op::Ge => order.is_ge(),
            Op::Lt => order.is_lt(),
            Op::Le => order.is_le(),
        }),
        Value::Range { lo, hi } => {
            lo.is_none_or(|lo| compare(scalar, lo, now).is_some_and(|order| order.is_ge()))
                && hi.is_none_or(|hi| compare(scalar, hi, now).is_some_and(|order| order.is_le()))
        }
        Value::Cidr(network, prefix_len) => scalar
            .as_str()
            .and_then(|text| text.parse::<IpAddr>().ok())
            .is_some_and(|addr| in_network(addr, *network, *prefix_len)),
    }
}

/// The text a scalar is compared by: strings as they are, numbers in their RFC 8785 form
/// (so `4711` and `"4711"` both match the word 4711), booleans and null as `true`, `false`,
/// `null`.
pub fn scalar_text(scalar: &Json) -> Option<String> {
    match scalar {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        Json::Null => Some("null".to_owned()),
        Json::Array(_) | Json::Object(_) => None,
    }
}

/// How `scalar` orders against `bound`: a number bound compares numbers and strings in JSON
/// number syntax; a time bound compares strings holding RFC 3339 timestamps. Anything else
/// is incomparable (`None`) and so matches no comparison.
fn compare(scalar: &Json, bound: Bound, now: Timestamp) -> Option<std::cmp::Ordering> {
    match bound {
        Bound::Number(number) => {
            let own = match scalar {
                Json::Number(own) => *own,
                Json::String(text) => parse_number(text)?,
                _ => return None,
            };
            own.as_f64().partial_cmp(&number.as_f64())
        }
        Bound::Time(time) => {
            let own = Timestamp::parse_rfc3339(scalar.as_str()?).ok()?;
            Some(own.cmp(&time.resolve(now)))
        }
    }
}

pub fn in_network(addr: IpAddr, network: IpAddr, prefix_len: u8) -> bool {
    match (addr, network) {
        (IpAddr::V4(addr), IpAddr::V4(network)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            u32::from(addr) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(addr), IpAddr::V6(network)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            u128::from(addr) & mask == u128::from(network) & mask
        }
        // An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is in the IPv4 networks.
        (IpAddr::V6(addr), IpAddr::V4(_)) => addr
            .to_ipv4_mapped()
            .is_some_and(|mapped| in_network(IpAddr::V4(mapped), network, prefix_len)),
        // And an IPv4 address is its mapped IPv6 address in IPv6 networks (`::ffff:0:0/96`).
        (IpAddr::V4(addr), IpAddr::V6(_)) => {
            in_network(IpAddr::V6(addr.to_ipv6_mapped()), network, prefix_len)
        }
    }
}

/// Every string, number, boolean and null at any depth under `root` (inside objects and
/// arrays), `root` included.
fn scalars_under(root: &Json) -> impl Iterator<Item = &Json> {
    let mut stack = vec![root];
    std::iter::from_fn(move || {
        while let Some(value) = stack.pop() {
            match value {
                Json::Object(members) => stack.extend(members.iter().rev().map(|(_, v)| v)),
                Json::Array(elements) => stack.extend(elements.iter().rev()),
                scalar => return Some(scalar),
            }
        }
        None
    })
}

/// The values found by following `path` (keys, through arrays of objects) from every object
/// at any depth under `root`.
fn values_at_path<'a>(root: &'a Json, path: &[String]) -> Vec<&'a Json> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(value) = stack.pop() {
        match value {
            Json::Object(members) => {
                found.extend(follow(value, path));
                stack.extend(members.iter().map(|(_, v)| v));
            }
            Json::Array(elements) => stack.extend(elements.iter()),
            _ => {}
        }
    }
    found
}

/// The values at `path` starting at the object `start`, fanning out over arrays met on the way.
fn follow<'a>(start: &'a Json, path: &[String]) -> Vec<&'a Json> {
    let mut current = vec![start];
    for key in path {
        let mut next = Vec::new();
        for value in current {
            let mut pending = vec![value];
            while let Some(candidate) = pending.pop() {
                match candidate {
                    Json::Object(_) => next.extend(candidate.get(key)),
                    Json::Array(elements) => pending.extend(elements.iter()),
                    _ => {}
                }
            }
        }
        current = next;
    }
    current
}
