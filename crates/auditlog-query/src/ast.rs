//! The query AST and its canonical text.
//!
//! This module owns the shapes a parsed query takes and their `Display`, the one canonical
//! spelling of each AST: `parse(&query.to_string()) == Ok(query)` for every *valid* AST (the
//! invariants are listed on each type; [`crate::parse`] only ever produces valid ones). It does
//! not parse (that is `parse`) and does not decide what matches (that is `eval`, and later the
//! search index).

use std::fmt;
use std::net::IpAddr;

use auditlog_core::event::Timestamp;
use auditlog_core::json::Number;

/// A whole query: its clauses are ANDed; no clauses matches every event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

/// One clause, optionally negated by a leading `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub negated: bool,
    pub kind: ClauseKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClauseKind {
    /// A bare word, prefix or phrase: matched against every text column and every string or
    /// number inside `before`, `after` and `context`.
    Term(Text),
    /// `field:value,value…`: the values are ORed. Invariant: 1 to [`crate::MAX_VALUES`]
    /// values, each of a kind the field takes (see [`Value`]).
    Field { field: Field, values: Vec<Value> },
}

/// The text of a bare term. Invariant: the string is not empty and holds no control
/// characters (any other character is written with a `\` escape or inside quotes).
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// `word`: equality (case-insensitive), word containment in `message`.
    Word(String),
    /// `word*` (the `*` is not part of the string): starts-with, case-insensitive.
    Prefix(String),
    /// `"a phrase"`: consecutive words of `message`, equality elsewhere.
    Phrase(String),
}

/// What a field clause names.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Column(Column),
    /// A key inside the event's data. `side: None` searches `before`, `after` and `context`.
    /// `path` is the key, or several keys that address nested objects (`routing.strategy`);
    /// an empty path (only with a side: `after:x`) matches any value under that side.
    ///
    /// Invariants: every segment is a [`crate::is_data_key`]; with `side: None` the path is
    /// not empty, its first segment is not a side name (`before`, `after`, `context`) and a
    /// single segment is not a column name (`user`, `pk`, …), since those spell other fields.
    Data {
        side: Option<Side>,
        path: Vec<String>,
    },
}

/// A column of the stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    User,
    Ip,
    Time,
    ReceivedAt,
    PrimaryKey,
    Action,
    Table,
    Message,
    Source,
    Seq,
    Id,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::User,
        Column::Ip,
        Column::Time,
        Column::ReceivedAt,
        Column::PrimaryKey,
        Column::Action,
        Column::Table,
        Column::Message,
        Column::Source,
        Column::Seq,
        Column::Id,
    ];

    /// The column's name in the stored event (and its canonical spelling in a query).
    pub fn name(self) -> &'static str {
        match self {
            Column::User => "user",
            Column::Ip => "ip",
            Column::Time => "time",
            Column::ReceivedAt => "received_at",
            Column::PrimaryKey => "primary_key",
            Column::Action => "action",
            Column::Table => "table",
            Column::Message => "message",
            Column::Source => "source",
            Column::Seq => "seq",
            Column::Id => "id",
        }
    }

    /// The column a query field name denotes; `pk` is an alias of `primary_key`. Names are
    /// case-sensitive, like the JSON keys they stand for.
    pub fn from_name(name: &str) -> Option<Column> {
        if name == "pk" {
            return Some(Column::PrimaryKey);
        }
        Column::ALL.into_iter().find(|column| column.name() == name)
    }
}

/// One of the three data objects of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Before,
    After,
    Context,
}

impl Side {
    pub const ALL: [Side; 3] = [Side::Before, Side::After, Side::Context];

    pub fn name(self) -> &'static str {
        match self {
            Side::Before => "before",
            Side::After => "after",
            Side::Context => "context",
        }
    }

    pub fn from_name(name: &str) -> Option<Side> {
        Side::ALL.into_iter().find(|side| side.name() == name)
    }
}

/// One value of a field clause. Which kinds a field takes:
///
/// | field | `Word` | `Prefix` | `Phrase` | `Exact` | `Range`/`Compare` | `Cidr` |
/// |---|---|---|---|---|---|---|
/// | `user` `action` `table` `source` `primary_key` `id` `message` | yes | yes | yes | | | |
/// | `ip` | | yes | | | | yes |
/// | `time` `received_at` (time bounds) | | | | yes | yes | |
/// | `seq` (integer bounds ≥ 1) | | | | yes | yes | |
/// | data keys (number or time bounds) | yes | yes | yes | | yes | |
///
/// Invariants: strings are not empty and hold no control characters; a `Range` has at least
/// one end, and on data keys both ends are of one kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Word(String),
    /// `ali*`: starts-with; the string excludes the `*`.
    Prefix(String),
    Phrase(String),
    /// A bare bound on a typed column: `seq:42`, `time:2026-01-01` (that instant exactly).
    Exact(Bound),
    /// `lo..hi`, both ends inclusive; either end may be absent (`..10`, `2026-01-01..`).
    Range {
        lo: Option<Bound>,
        hi: Option<Bound>,
    },
    /// `>x`, `>=x`, `<x`, `<=x`.
    Compare(Op, Bound),
    /// `ip:10.0.0.0/8`: the address and the prefix length (at most 32 or 128); a plain
    /// address is the full length. Host bits may be set (`10.1.2.3/8` is `10.0.0.0/8`).
    Cidr(IpAddr, u8),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// An end of a range or the operand of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A number; on `seq` an integer from 1 to 2^53−1.
    Number(Number),
    Time(TimeBound),
}

/// A point in time, resolved against "now" only when a query is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBound {
    /// An RFC 3339 timestamp, or `YYYY-MM-DD` (midnight UTC).
    Absolute(Timestamp),
    /// `now` (0) or `now-30m`, `now-24h`, `now-7d`, `now-2w`… Invariant: not negative, and
    /// `seconds_before_now × 10^9` fits in an `i64`.
    Relative { seconds_before_now: i64 },
}

impl TimeBound {
    /// The instant this bound denotes when the query is evaluated at `now`.
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            TimeBound::Absolute(instant) => instant,
            TimeBound::Relative { seconds_before_now } => Timestamp::from_unix_nanos(
                now.unix_nanos()
                    .saturating_sub(seconds_before_now.saturating_mul(1_000_000_000)),
            ),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (clause_idx, clause) in self.clauses.iter().enumerate() {
            if clause_idx > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("-")?;
        }
        match &self.kind {
            ClauseKind::Term(Text::Word(word)) => write_word(f, word, Context::Term),
            ClauseKind::Term(Text::Prefix(prefix)) => {
                write_word(f, prefix, Context::Term)?;
                f.write_str("*")
            }
            ClauseKind::Term(Text::Phrase(phrase)) => write_phrase(f, phrase),
            ClauseKind::Field { field, values } => {
                write!(f, "{field}:")?;
                for (value_idx, value) in values.iter().enumerate() {
                    if value_idx > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{value}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Column(column) => f.write_str(column.name()),
            Field::Data { side, path } => {
                let mut first = true;
                if let Some(side) = side {
                    f.write_str(side.name())?;
                    first = false;
                }
                for segment in path {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(segment)?;
                    first = false;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Word(word) => write_word(f, word, Context::Value),
            Value::Prefix(prefix) => {
                write_word(f, prefix, Context::Value)?;
                f.write_str("*")
            }
            Value::Phrase(phrase) => write_phrase(f, phrase),
            Value::Exact(bound) => write!(f, "{bound}"),
            Value::Range { lo, hi } => {
                if let Some(lo) = lo {
                    write!(f, "{lo}")?;
                }
                f.write_str("..")?;
                if let Some(hi) = hi {
                    write!(f, "{hi}")?;
                }
                Ok(())
            }
            Value::Compare(op, bound) => write!(f, "{}{bound}", op.symbol()),
            Value::Cidr(addr, prefix) => {
                let full = if addr.is_ipv4() { 32 } else { 128 };
                if *prefix == full {
                    write!(f, "{addr}")
                } else {
                    write!(f, "{addr}/{prefix}")
                }
            }
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Number(number) => write!(f, "{number}"),
            Bound::Time(time) => write!(f, "{time}"),
        }
    }
}

impl fmt::Display for TimeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeBound::Absolute(instant) => f.write_str(&instant.to_rfc3339()),
            TimeBound::Relative {
                seconds_before_now: 0,
            } => f.write_str("now"),
            TimeBound::Relative { seconds_before_now } => {
                // The largest unit that divides evenly, so `now-86400s` is written `now-1d`.
                for (unit, unit_seconds) in crate::parse::RELATIVE_UNITS {
                    if seconds_before_now % unit_seconds == 0 {
                        return write!(f, "now-{}{unit}", seconds_before_now / unit_seconds);
                    }
                }
                write!(f, "now-{seconds_before_now}s")
            }
        }
    }
}

/// Where a bare word is written: which characters would otherwise mean something.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A whole clause: a leading `-` negates, a `field:` head makes it a field clause.
    Term,
    /// After `field:`: `,` separates, `..` makes a range, a leading `>`/`<` compares.
    Value,
}

/// A word with `\` before every character that the parser would read as syntax. Escaping
/// more than needed is harmless (the parser takes any `\x` as a literal `x`), so the rules
/// here are simple rather than minimal.
fn write_word(f: &mut fmt::Formatter<'_>, word: &str, context: Context) -> fmt::Result {
    let chars: Vec<char> = word.chars().collect();
    let colon_to_escape = if context == Context::Term {
        chars.iter().position(|&c| c == ':').filter(|&colon_idx| {
            let head: String = chars[..colon_idx].iter().collect();
            colon_idx == 0 || crate::parse::is_field_name(&head)
        })
    } else {
        None
    };
    let mut out = String::with_capacity(word.len() + 2);
    for (char_idx, &c) in chars.iter().enumerate() {
        let escape = matches!(c, '\\' | '"' | '*' | ',')
            || c.is_whitespace()
            || (c == '.' && chars.get(char_idx + 1) == Some(&'.'))
            // A value starting with `:` after a data key would read as `key::…`, a term.
            || (char_idx == 0 && matches!(c, '-' | '>' | '<' | ':'))
            || colon_to_escape == Some(char_idx);
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    f.write_str(&out)
}

fn write_phrase(f: &mut fmt::Formatter<'_>, phrase: &str) -> fmt::Result {
    let mut out = String::with_capacity(phrase.len() + 2);
    out.push('"');
    for c in phrase.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    f.write_str(&out)
}
