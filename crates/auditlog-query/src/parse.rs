//! The parser: query text to [`Query`], or a [`QueryError`] that points at the problem.
//!
//! A single left-to-right pass over the characters with no recursion (the grammar is flat:
//! clauses of values), so hostile input costs at most linear time and constant stack. Every
//! limit is checked here, before anything is allocated per clause beyond the input's size.
//! This module decides what text means; it does not decide what matches (`eval`).

use std::net::IpAddr;

use auditlog_core::event::Timestamp;
use auditlog_core::json::Number;

use crate::ast::{
    Bound, Clause, ClauseKind, Column, Field, Op, Query, Side, Text, TimeBound, Value,
};

/// The longest query text, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// The most clauses in one query.
pub const MAX_CLAUSES: usize = 64;
/// The most values in one field clause.
pub const MAX_VALUES: usize = 64;
/// Most bytes in one word, prefix or phrase, and in one data path (`after.routing.strategy`).
/// A search index keeps the first bytes of long data values only; needles this short are
/// always answered exactly.
pub const MAX_TEXT_BYTES: usize = 256;

/// The units of relative times, largest first, with their length in seconds.
pub(crate) const RELATIVE_UNITS: [(char, i64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// A query that does not parse: where (a character offset into the input, not a byte
/// offset) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {position}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

impl QueryError {
    fn new(position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            position,
            message: message.into(),
        }
    }

    /// The error, the input on one line (whitespace and control characters shown as spaces,
    /// long input cut to a window around the position) and a `^` under the position:
    ///
    /// ```text
    /// expected a value after ':' at 5
    ///   user:
    ///        ^
    /// ```
    pub fn caret(&self, input: &str) -> String {
        const SHOWN_BEFORE: usize = 60;
        const SHOWN_WIDTH: usize = 100;
        let chars: Vec<char> = input
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let position = self.position.min(chars.len());
        let start = position.saturating_sub(SHOWN_BEFORE);
        let end = (start + SHOWN_WIDTH).min(chars.len());
        let mut line = String::new();
        let mut column = position - start;
        if start > 0 {
            line.push('…');
            column += 1;
        }
        line.extend(&chars[start..end]);
        if end < chars.len() {
            line.push('…');
        }
        format!("{self}\n  {line}\n  {}^", " ".repeat(column))
    }
}

/// Parse query text (SPEC §4; the grammar and every rule are in the crate documentation).
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if input.len() > MAX_INPUT_BYTES {
        let position = input
            .char_indices()
            .take_while(|&(byte_idx, _)| byte_idx < MAX_INPUT_BYTES)
            .count();
        return Err(QueryError::new(
            position,
            format!(
                "query is {} bytes, longer than {MAX_INPUT_BYTES}",
                input.len()
            ),
        ));
    }
    let chars: Vec<char> = input.chars().collect();
    if let Some(position) = chars
        .iter()
        .position(|&c| c.is_control() && !c.is_whitespace())
    {
        return Err(control_character(position, chars[position]));
    }
    let mut parser = Parser { chars, pos: 0 };
    let mut clauses = Vec::new();
    loop {
        parser.skip_whitespace();
        if parser.peek().is_none() {
            break;
        }
        if clauses.len() == MAX_CLAUSES {
            return Err(QueryError::new(
                parser.pos,
                format!("more than {MAX_CLAUSES} clauses"),
            ));
        }
        clauses.push(parser.clause()?);
    }
    Ok(Query { clauses })
}

impl std::str::FromStr for Query {
    type Err = QueryError;

    fn from_str(input: &str) -> Result<Query, QueryError> {
        parse(input)
    }
}

/// Whether `name` may stand before `:` as a field: a column name (or `pk`), a side name, or a
/// dotted path of data keys (see [`is_data_key`]).
pub fn is_field_name(name: &str) -> bool {
    field_from_name(name).is_some()
}

/// Whether `key` may be one segment of a data path in a query: a letter or `_`, then
/// letters, digits, `_` and `-` (Unicode letters and digits included). Keys with other
/// characters cannot be named in a query; bare terms still find their values.
pub fn is_data_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn field_from_name(name: &str) -> Option<Field> {
    if let Some(column) = Column::from_name(name) {
        return Some(Field::Column(column));
    }
    let mut segments = name.split('.');
    let first = segments.next()?;
    let side = Side::from_name(first);
    let mut path: Vec<String> = if side.is_some() {
        Vec::new()
    } else {
        vec![first.to_owned()]
    };
    for segment in segments {
        path.push(segment.to_owned());
    }
    if !path.iter().all(|segment| is_data_key(segment)) || (side.is_none() && !is_data_key(first)) {
        return None;
    }
    Some(Field::Data { side, path })
}

fn control_character(position: usize, c: char) -> QueryError {
    QueryError::new(
        position,
        format!("control character U+{:04X} is not allowed", u32::from(c)),
    )
}

/// What a field accepts, see the table on [`Value`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Ip,
    Time,
    Seq,
    Data,
}

fn kind_of(field: &Field) -> Kind {
    match field {
        Field::Column(Column::Ip) => Kind::Ip,
        Field::Column(Column::Time | Column::ReceivedAt) => Kind::Time,
        Field::Column(Column::Seq) => Kind::Seq,
        Field::Column(_) => Kind::Text,
        Field::Data { .. } => Kind::Data,
    }
}

/// One character of a bare word: the character, whether it was `\`-escaped, and where it
/// stood in the input.
#[derive(Clone, Copy)]
struct Piece {
    c: char,
    escaped: bool,
    position: usize,
}

fn text_of(pieces: &[Piece]) -> String {
    pieces.iter().map(|piece| piece.c).collect()
}

fn is_plain(piece: &Piece, c: char) -> bool {
    piece.c == c && !piece.escaped
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, pos: usize) -> Option<char> {
        self.chars.get(pos).copied()
    }

    fn at_clause_end(&self) -> bool {
        self.peek().is_none_or(char::is_whitespace)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn clause(&mut self) -> Result<Clause, QueryError> {
        let start = self.pos;
        let clause = self.clause_unchecked()?;
        check_sizes(&clause.kind, start)?;
        Ok(clause)
    }

    fn clause_unchecked(&mut self) -> Result<Clause, QueryError> {
        let mut negated = false;
        if self.peek() == Some('-') {
            negated = true;
            self.pos += 1;
            if self.at_clause_end() {
                return Err(QueryError::new(
                    self.pos,
                    "expected a term or a field after '-'",
                ));
            }
        }
        if self.peek() == Some('"') {
            let phrase = self.phrase()?;
            if !self.at_clause_end() {
                return Err(QueryError::new(
                    self.pos,
                    "expected a space after the closing quote",
                ));
            }
            return Ok(Clause {
                negated,
                kind: ClauseKind::Term(Text::Phrase(phrase)),
            });
        }
        if self.peek() == Some(':') && self.at(self.pos + 1) != Some(':') {
            return Err(QueryError::new(
                self.pos,
                "expected a field name before ':'",
            ));
        }
        if let Some(field) = self.field_head() {
            let values = self.values(&field)?;
            return Ok(Clause {
                negated,
                kind: ClauseKind::Field { field, values },
            });
        }
        let text = self.term()?;
        Ok(Clause {
            negated,
            kind: ClauseKind::Term(text),
        })
    }

    /// `field:` at the current position, consumed; `None` (nothing consumed) when the text
    /// before the first `:` is not a field name. A data key followed by `::` is not a field
    /// either, so a bare IPv6 address such as `fe80::1` stays a term.
    fn field_head(&mut self) -> Option<Field> {
        let mut end = self.pos;
        while let Some(c) = self.at(end) {
            if c.is_whitespace() || matches!(c, ':' | '"' | '\\') {
                break;
            }
            end += 1;
        }
        if self.at(end) != Some(':') || end == self.pos {
            return None;
        }
        let name: String = self.chars[self.pos..end].iter().collect();
        let field = field_from_name(&name)?;
        if matches!(field, Field::Data { .. }) && self.at(end + 1) == Some(':') {
            return None;
        }
        self.pos = end + 1;
        Some(field)
    }

    /// A quoted phrase starting at the opening quote; `\"` and `\\` are its escapes.
    fn phrase(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        self.pos += 1;
        let mut phrase = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(QueryError::new(open, "unterminated quote"));
                }
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => match self.at(self.pos + 1) {
                    Some(c @ ('"' | '\\')) => {
                        phrase.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        return Err(QueryError::new(
                            self.pos,
                            "only \\\" and \\\\ are escapes inside a phrase",
                        ));
                    }
                },
                Some(c) if c.is_control() => return Err(control_character(self.pos, c)),
                Some(c) => {
                    phrase.push(c);
                    self.pos += 1;
                }
            }
        }
        if phrase.is_empty() {
            return Err(QueryError::new(open, "empty phrase"));
        }
        Ok(phrase)
    }

    /// The characters of a bare word up to whitespace, the end, or (in a value) an unescaped
    /// `,`. `\x` is a literal `x` for any character but a control character.
    fn scan_word(&mut self, stop_at_comma: bool) -> Result<Vec<Piece>, QueryError> {
        let mut pieces = Vec::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || (stop_at_comma && c == ',') {
                break;
            }
            match c {
                '"' => {
                    return Err(QueryError::new(
                        self.pos,
                        "unexpected '\"' inside a word (quote the whole phrase, or write \\\")",
                    ));
                }
                '\\' => {
                    let backslash = self.pos;
                    match self.at(backslash + 1) {
                        None => {
                            return Err(QueryError::new(
                                backslash,
                                "expected a character after '\\'",
                            ));
                        }
                        Some(escaped) if escaped.is_control() => {
                            return Err(control_character(backslash + 1, escaped));
                        }
                        Some(escaped) => {
                            pieces.push(Piece {
                                c: escaped,
                                escaped: true,
                                position: backslash,
                            });
                            self.pos += 2;
                        }
                    }
                }
                _ => {
                    pieces.push(Piece {
                        c,
                        escaped: false,
                        position: self.pos,
                    });
                    self.pos += 1;
                }
            }
        }
        Ok(pieces)
    }

    /// A bare term: a word, or a prefix when it ends in an unescaped `*`.
    fn term(&mut self) -> Result<Text, QueryError> {
        let start = self.pos;
        let pieces = self.scan_word(false)?;
        Ok(match split_prefix(&pieces, start)? {
            Some(prefix) => Text::Prefix(prefix),
            None => Text::Word(text_of(&pieces)),
        })
    }

    fn values(&mut self, field: &Field) -> Result<Vec<Value>, QueryError> {
        let mut values = Vec::new();
        let mut after = "':'";
        loop {
            if values.len() == MAX_VALUES {
                return Err(QueryError::new(
                    self.pos,
                    format!("more than {MAX_VALUES} values for {field}"),
                ));
            }
            if self.at_clause_end() {
                return Err(QueryError::new(
                    self.pos,
                    format!("expected a value after {after}"),
                ));
            }
            if self.peek() == Some(',') {
                return Err(QueryError::new(self.pos, "expected a value before ','"));
            }
            values.push(self.value(field)?);
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    after = "','";
                }
                None => break,
                Some(c) if c.is_whitespace() => break,
                Some(c) => {
                    return Err(QueryError::new(
                        self.pos,
                        format!("expected ',' or a space, found '{c}'"),
                    ));
                }
            }
        }
        Ok(values)
    }

    fn value(&mut self, field: &Field) -> Result<Value, QueryError> {
        let kind = kind_of(field);
        let start = self.pos;
        if self.peek() == Some('"') {
            if !matches!(kind, Kind::Text | Kind::Data) {
                return Err(QueryError::new(
                    start,
                    format!("{field} does not take a phrase"),
                ));
            }
            return Ok(Value::Phrase(self.phrase()?));
        }
        if let Some(first @ ('>' | '<')) = self.peek() {
            if !matches!(kind, Kind::Time | Kind::Seq | Kind::Data) {
                return Err(QueryError::new(
                    start,
                    format!("{field} does not take comparisons"),
                ));
            }
            self.pos += 1;
            let op = match (first, self.peek() == Some('=')) {
                ('>', false) => Op::Gt,
                ('>', true) => Op::Ge,
                ('<', false) => Op::Lt,
                _ => Op::Le,
            };
            if matches!(op, Op::Ge | Op::Le) {
                self.pos += 1;
            }
            let bound_start = self.pos;
            let pieces = self.scan_word(true)?;
            if pieces.is_empty() {
                return Err(QueryError::new(
                    bound_start,
                    format!("expected a value after '{}'", op.symbol()),
                ));
            }
            let bound = parse_bound(kind, field, &text_of(&pieces), bound_start)?;
            return Ok(Value::Compare(op, bound));
        }
        let pieces = self.scan_word(true)?;
        let dots = (0..pieces.len().saturating_sub(1))
            .find(|&idx| is_plain(&pieces[idx], '.') && is_plain(&pieces[idx + 1], '.'));
        if let Some(dots) = dots {
            return range(kind, field, &pieces, dots, start);
        }
        if let Some(prefix) = split_prefix(&pieces, start)? {
            if !matches!(kind, Kind::Text | Kind::Ip | Kind::Data) {
                return Err(QueryError::new(
                    start,
                    format!("{field} does not take a prefix"),
                ));
            }
            return Ok(Value::Prefix(prefix));
        }
        let text = text_of(&pieces);
        match kind {
            Kind::Text | Kind::Data => Ok(Value::Word(text)),
            Kind::Ip => parse_cidr(&text, &pieces, start),
            Kind::Time | Kind::Seq => Ok(Value::Exact(parse_bound(kind, field, &text, start)?)),
        }
    }
}

/// Words, prefixes, phrases and data paths of at most [`MAX_TEXT_BYTES`].
fn check_sizes(kind: &ClauseKind, start: usize) -> Result<(), QueryError> {
    let too_long = |what: &str, len: usize| {
        QueryError::new(
            start,
            format!("{what} is {len} bytes, longer than {MAX_TEXT_BYTES}"),
        )
    };
    match kind {
        ClauseKind::Term(Text::Word(text) | Text::Prefix(text) | Text::Phrase(text)) => {
            if text.len() > MAX_TEXT_BYTES {
                return Err(too_long("a term", text.len()));
            }
        }
        ClauseKind::Field { field, values } => {
            if let Field::Data { path, .. } = field {
                let len = path.iter().map(|key| key.len() + 1).sum::<usize>();
                if len > MAX_TEXT_BYTES + 1 {
                    return Err(too_long("a data path", len - 1));
                }
            }
            for value in values {
                if let Value::Word(text) | Value::Prefix(text) | Value::Phrase(text) = value
                    && text.len() > MAX_TEXT_BYTES
                {
                    return Err(too_long("a value", text.len()));
                }
            }
        }
    }
    Ok(())
}

/// `lo..hi` with the first unescaped `..` at `dots`.
fn range(
    kind: Kind,
    field: &Field,
    pieces: &[Piece],
    dots: usize,
    start: usize,
) -> Result<Value, QueryError> {
    if !matches!(kind, Kind::Time | Kind::Seq | Kind::Data) {
        return Err(QueryError::new(
            start,
            format!("{field} does not take ranges"),
        ));
    }
    let (lo_pieces, hi_pieces) = (&pieces[..dots], &pieces[dots + 2..]);
    if let Some(second) = (0..hi_pieces.len().saturating_sub(1))
        .find(|&idx| is_plain(&hi_pieces[idx], '.') && is_plain(&hi_pieces[idx + 1], '.'))
    {
        return Err(QueryError::new(
            hi_pieces[second].position,
            "a range has one '..'",
        ));
    }
    if lo_pieces.is_empty() && hi_pieces.is_empty() {
        return Err(QueryError::new(start, "a range needs at least one end"));
    }
    let end = |end_pieces: &[Piece]| -> Result<Option<Bound>, QueryError> {
        match end_pieces.first() {
            None => Ok(None),
            Some(first) => parse_bound(kind, field, &text_of(end_pieces), first.position).map(Some),
        }
    };
    let lo = end(lo_pieces)?;
    let hi = end(hi_pieces)?;
    // A `match` rather than a let chain: the workspace's rust-version is 1.85.
    match (lo, hi) {
        (Some(lo), Some(hi)) if std::mem::discriminant(&lo) != std::mem::discriminant(&hi) => {
            return Err(QueryError::new(
                start,
                "both ends of a range must be numbers, or both times",
            ));
        }
        _ => {}
    }
    Ok(Value::Range { lo, hi })
}

/// The text before a final unescaped `*`, or `None` when there is no such `*`. An unescaped
/// `*` anywhere else is an error: only prefix matching is supported.
fn split_prefix(pieces: &[Piece], start: usize) -> Result<Option<String>, QueryError> {
    let stars: Vec<usize> = (0..pieces.len())
        .filter(|&idx| is_plain(&pieces[idx], '*'))
        .collect();
    let Some(&last_star) = stars.last() else {
        return Ok(None);
    };
    if let Some(&misplaced) = stars.iter().find(|&&idx| idx + 1 != pieces.len()) {
        return Err(QueryError::new(
            pieces[misplaced].position,
            "'*' is only allowed at the end of a word (write \\* for a literal star)",
        ));
    }
    if last_star == 0 {
        return Err(QueryError::new(start, "expected text before '*'"));
    }
    Ok(Some(text_of(&pieces[..last_star])))
}

fn parse_cidr(text: &str, pieces: &[Piece], start: usize) -> Result<Value, QueryError> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((addr_text, prefix_text)) => (addr_text, Some(prefix_text)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| QueryError::new(start, format!("{addr_text} is not an IP address")))?;
    let full: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let Some(prefix_text) = prefix_text else {
        return Ok(Value::Cidr(addr, full));
    };
    let prefix_position = pieces
        .iter()
        .position(|piece| piece.c == '/')
        .map_or(start, |idx| {
            pieces
                .get(idx + 1)
                .map_or(pieces[idx].position + 1, |p| p.position)
        });
    let prefix = (!prefix_text.is_empty() && prefix_text.len() <= 3)
        .then(|| prefix_text.parse::<u8>().ok())
        .flatten()
        .filter(|_| prefix_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            QueryError::new(
                prefix_position,
                format!("network prefix {prefix_text} is not a number"),
            )
        })?;
    if prefix > full {
        return Err(QueryError::new(
            prefix_position,
            format!("network prefix /{prefix} is longer than {full} bits"),
        ));
    }
    Ok(Value::Cidr(addr, prefix))
}

fn parse_bound(
    kind: Kind,
    field: &Field,
    text: &str,
    position: usize,
) -> Result<Bound, QueryError> {
    let error = |message: String| QueryError::new(position, message);
    match kind {
        Kind::Seq => parse_seq(text).map(Bound::Number).map_err(error),
        Kind::Time => parse_time(text).map(Bound::Time).map_err(error),
        _ => {
            if is_number_syntax(text) {
                return parse_number(text)
                    .map(Bound::Number)
                    .ok_or_else(|| error(format!("number {text} is out of range")));
            }
            parse_time(text).map(Bound::Time).map_err(|_| {
                error(format!(
                    "{field} compares numbers or times; {text} is neither"
                ))
            })
        }
    }
}

fn parse_seq(text: &str) -> Result<Number, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("seq {text} is not a number"));
    }
    text.parse::<i64>()
        .ok()
        .filter(|&seq| seq >= 1)
        .and_then(Number::from_i64)
        .ok_or_else(|| format!("seq {text} is out of range (1 to 2^53-1)"))
}

/// `now`, `now-<n><unit>`, `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp.
pub(crate) fn parse_time(text: &str) -> Result<TimeBound, String> {
    if text == "now" {
        return Ok(TimeBound::Relative {
            seconds_before_now: 0,
        });
    }
    if let Some(amount) = text.strip_prefix("now-") {
        let malformed =
            || format!("{text} is not a relative time such as now-24h (units s m h d w)");
        let unit = amount.chars().last().ok_or_else(malformed)?;
        let digits = &amount[..amount.len() - unit.len_utf8()];
        let (_, unit_seconds) = RELATIVE_UNITS
            .into_iter()
            .find(|&(name, _)| name == unit)
            .ok_or_else(malformed)?;
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let count: i64 = digits.parse().map_err(|_| malformed())?;
        return count
            .checked_mul(unit_seconds)
            .filter(|seconds| seconds.checked_mul(1_000_000_000).is_some())
            .map(|seconds_before_now| TimeBound::Relative { seconds_before_now })
            .ok_or_else(|| format!("{text} is too far back"));
    }
    let bytes = text.as_bytes();
    let date_shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(idx, b)| {
            if idx == 4 || idx == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if date_shaped {
        return Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
            .map(TimeBound::Absolute)
            .map_err(|_| format!("{text} is not a date"));
    }
    Timestamp::parse_rfc3339(text)
        .map(TimeBound::Absolute)
        .map_err(|err| err.to_string())
}

/// JSON number syntax (RFC 8259 §6): `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`. Used for
/// query bounds and for deciding whether a data string counts as a number.
pub(crate) fn is_number_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut idx = 0;
    let digits = |idx: &mut usize| {
        let start = *idx;
        while bytes.get(*idx).is_some_and(u8::is_ascii_digit) {
            *idx += 1;
        }
        *idx - start
    };
    if bytes.get(idx) == Some(&b'-') {
        idx += 1;
    }
    let int_start = idx;
    let n_int = digits(&mut idx);
    if n_int == 0 || (n_int > 1 && bytes[int_start] == b'0') {
        return false;
    }
    if bytes.get(idx) == Some(&b'.') {
        idx += 1;
        if digits(&mut idx) == 0 {
            return false;
        }
    }
    if matches!(bytes.get(idx), Some(b'e' | b'E')) {
        idx += 1;
        if matches!(bytes.get(idx), Some(b'+' | b'-')) {
            idx += 1;
        }
        if digits(&mut idx) == 0 {
            return false;
        }
    }
    idx == bytes.len()
}

/// A number in JSON syntax that a [`Number`] holds exactly enough (finite, and integral values
/// within ±(2^53−1) or at least 1e21).
pub fn parse_number(text: &str) -> Option<Number> {
    if !is_number_syntax(text) {
        return None;
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}
