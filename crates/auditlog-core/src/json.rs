//! Strict JSON: a parser over bytes with duplicate-key, depth, size and exact-number checks,
//! and the RFC 8785 (JCS) canonical serialization.
//!
//! Why a hand-written parser: ingest must reject what generic parsers accept silently
//! (duplicate keys keep the last value, numbers are rounded, lone surrogates become U+FFFD),
//! must report the JSON Pointer of the offending value, and must never recurse on untrusted
//! nesting. It is iterative (an explicit stack of open containers), checks depth before
//! opening a container, and allocates only the output strings and containers.
//!
//! What is accepted (RFC 8259 plus I-JSON, RFC 7493, as RFC 8785 §3.1 requires):
//! - whitespace is space, tab, CR and LF only; no BOM, no comments, no trailing commas;
//! - strings are valid UTF-8 without raw control characters; `\u` escapes must not leave a
//!   surrogate unpaired (RFC 8785 §3.2.2.2 cannot serialize one);
//! - object keys are unique at every depth;
//! - numbers are kept only when nothing is rounded (see [`Number`]).
//!
//! This module does no validation of event fields (that is `event`) and no hashing.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

/// A JSON value as auditlog stores it. Objects keep the order in which keys were sent;
/// the parser guarantees keys are unique.
///
/// The derived `PartialEq` compares objects in key order; compare canonical forms when the
/// order must not matter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// A JSON number that RFC 8785 serializes exactly (checked by the parser).
///
/// The rule, applied by [`parse`] and by [`Number::from_f64`]:
/// 1. the RFC 8785 (ECMAScript) form of the double must denote the same decimal value as
///    written: `0.1`, `4.50`, `1e21` and `-0` pass; `1.00000000000000001`, `1e400`, `1e-400`
///    and `9007199254740993` do not;
/// 2. a number written as an integer, or whose RFC 8785 form is a plain integer (every
///    integral value below 1e21), must lie within ±(2^53−1), so that readers which take
///    integer-looking JSON as integers never see a value that collides with its neighbour
///    (SPEC §2). `1e21` passes because its canonical form is `1e+21`; `1e20` does not,
///    because its canonical form is `100000000000000000000`.
///
/// Together these make `parse(to_canonical(v)) == v` hold for every value.
///
/// Minus zero is accepted and stored as zero: it is the same decimal value, RFC 8785 writes
/// both as `0`, and keeping the sign would make `{"a":-0}` and `{"a":0}` hash alike while
/// comparing and displaying differently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(f64);

/// 2^53 − 1, the largest integer that no neighbouring integer shares a double with.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// From this magnitude on, ECMAScript (and so RFC 8785) writes numbers with an exponent.
const EXPONENT_FORM_FROM: f64 = 1e21;

impl Number {
    /// A number from a double, or `None` for NaN, the infinities and integral values that
    /// break rule 2 of [`Number`] (the parser would refuse their canonical form).
    pub fn from_f64(value: f64) -> Option<Number> {
        if !value.is_finite() {
            return None;
        }
        if value.fract() == 0.0
            && value.abs() > MAX_SAFE_INTEGER as f64
            && value.abs() < EXPONENT_FORM_FROM
        {
            return None;
        }
        // `+ 0.0` turns -0 into +0 and leaves every other value unchanged.
        Some(Number(value + 0.0))
    }

    /// An integer within ±(2^53−1).
    pub fn from_i64(value: i64) -> Option<Number> {
        if value.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
            return None;
        }
        Some(Number(value as f64))
    }

    pub fn as_f64(self) -> f64 {
        self.0
    }

    /// The value as an integer, when it is integral and within ±(2^53−1).
    pub fn as_i64(self) -> Option<i64> {
        if self.0.fract() == 0.0 && self.0.abs() <= MAX_SAFE_INTEGER as f64 {
            Some(self.0 as i64)
        } else {
            None
        }
    }
}

impl From<i32> for Number {
    fn from(value: i32) -> Number {
        Number(f64::from(value))
    }
}

impl From<u32> for Number {
    fn from(value: u32) -> Number {
        Number(f64::from(value))
    }
}

/// The RFC 8785 form.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(24);
        write_number(self.0, &mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Value {
    /// The JSON type name, for error messages ("string", "object", ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// The member `key` of an object; `None` for a missing key or a non-object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Append the RFC 8785 serialization of this value to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => write_number(n.0, out),
            Value::String(s) => write_canonical_str(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (item_idx, item) in items.iter().enumerate() {
                    if item_idx > 0 {
                        out.push(b',');
                    }
                    item.write_canonical(out);
                }
                out.push(b']');
            }
            Value::Object(entries) => {
                out.push(b'{');
                // Stored values are usually canonical already; checking is cheaper than
                // allocating the sort buffer.
                let sorted = entries
                    .windows(2)
                    .all(|pair| cmp_utf16(&pair[0].0, &pair[1].0) == Ordering::Less);
                if sorted {
                    write_members(entries.iter(), out);
                } else {
                    let mut members: Vec<&(String, Value)> = entries.iter().collect();
                    members.sort_unstable_by(|a, b| cmp_utf16(&a.0, &b.0));
                    write_members(members.into_iter(), out);
                }
                out.push(b'}');
            }
        }
    }

    /// The RFC 8785 serialization of this value.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }
}

/// The RFC 8785 form.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out = self.to_canonical();
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

fn write_members<'a>(members: impl Iterator<Item = &'a (String, Value)>, out: &mut Vec<u8>) {
    for (member_idx, (key, value)) in members.enumerate() {
        if member_idx > 0 {
            out.push(b',');
        }
        write_canonical_str(key, out);
        out.push(b':');
        value.write_canonical(out);
    }
}

/// Order two keys by their UTF-16 code units (RFC 8785 §3.2.3), not by `str` order.
///
/// UTF-8 byte order equals code point order, which differs from UTF-16 order only where a
/// supplementary character (a surrogate pair, 0xD800–0xDBFF first) meets a BMP character in
/// U+E000–U+FFFF. So only the first differing character needs a closer look.
pub fn cmp_utf16(a: &str, b: &str) -> Ordering {
    let (a_bytes, b_bytes) = (a.as_bytes(), b.as_bytes());
    let Some(first_diff) = a_bytes.iter().zip(b_bytes).position(|(x, y)| x != y) else {
        return a_bytes.len().cmp(&b_bytes.len());
    };
    let (a_byte, b_byte) = (a_bytes[first_diff], b_bytes[first_diff]);
    if a_byte < 0x80 && b_byte < 0x80 {
        return a_byte.cmp(&b_byte);
    }
    // The common prefix is identical, so the character containing the first difference
    // starts at the same offset in both strings.
    let mut char_start = first_diff;
    while char_start > 0 && (a_bytes[char_start] & 0xC0) == 0x80 {
        char_start -= 1;
    }
    let a_char = a.get(char_start..).and_then(|s| s.chars().next());
    let b_char = b.get(char_start..).and_then(|s| s.chars().next());
    match (a_char, b_char) {
        (Some(x), Some(y)) => utf16_first_unit(x)
            .cmp(&utf16_first_unit(y))
            .then(x.cmp(&y)),
        // Unreachable for valid strings; the slow path keeps it correct regardless.
        _ => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

fn utf16_first_unit(c: char) -> u32 {
    let code = c as u32;
    if code >= 0x1_0000 {
        0xD800 + ((code - 0x1_0000) >> 10)
    } else {
        code
    }
}

/// Append `s` as an RFC 8785 string (§3.2.2.2): `\b \t \n \f \r \" \\` as short escapes,
/// other C0 controls as `\u00xx` with lowercase hex, everything else as literal UTF-8.
pub fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut byte_idx = 0;
    loop {
        // The bytes that need escaping are exactly those that end a string scan.
        byte_idx = skip_plain(bytes, byte_idx);
        let Some(&byte) = bytes.get(byte_idx) else {
            break;
        };
        out.extend_from_slice(&bytes[run_start..byte_idx]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xF)]);
            }
        }
        byte_idx += 1;
        run_start = byte_idx;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// The RFC 8785 form of any finite double, including those a [`Number`] refuses to hold
/// (such as 2^53); `None` for NaN and the infinities, which JSON cannot express.
pub fn format_canonical_number(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let mut out = Vec::with_capacity(24);
    write_number(value, &mut out);
    String::from_utf8(out).ok()
}

/// ECMAScript Number::toString (RFC 8785 §3.2.2.3). Safe integers take a shortcut that
/// prints the same digits.
pub(crate) fn write_number(value: f64, out: &mut Vec<u8>) {
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER as f64 {
        let integer = value as i64;
        if integer < 0 {
            out.push(b'-');
        }
        let mut digits = [0u8; 20];
        let mut n = integer.unsigned_abs();
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[start..]);
    } else {
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format(value).as_bytes());
    }
}

/// Limits applied while parsing untrusted input (SPEC §2; configurable by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest nesting of objects and arrays, the event object being depth 1. Values above
    /// [`MAX_DEPTH_CEILING`] act as the ceiling.
    pub max_depth: usize,
    /// Largest single event, in bytes of its JSON text.
    pub max_event_bytes: usize,
}

/// Dropping, comparing, canonicalizing and diffing a `Value` recurse, so the parser never
/// builds one deeper than this, whatever the configuration says.
pub const MAX_DEPTH_CEILING: usize = 1024;

impl Default for JsonLimits {
    fn default() -> JsonLimits {
        JsonLimits {
            max_depth: 32,
            max_event_bytes: 1024 * 1024,
        }
    }
}

/// Why input was refused, with where: the event index in a batch, the byte offset in the
/// whole input, and the JSON Pointer (RFC 6901) of the value, relative to the event, where
/// it is known (empty for the event itself or when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub index: Option<usize>,
    pub offset: usize,
    pub path: String,
    pub kind: JsonErrorKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JsonErrorKind {
    /// Not JSON; the text says what was expected.
    Syntax(String),
    DuplicateKey(String),
    /// Nesting beyond the limit (the limit).
    TooDeep(usize),
    /// One event beyond the size limit (the limit in bytes).
    TooLarge(usize),
    /// A number that would be rounded (the number as written).
    NumberNotExact(String),
    InvalidUtf8,
    /// A raw control character inside a string (the byte).
    ControlCharacter(u8),
    /// A `\u` escape of a surrogate without its other half (the code unit).
    LoneSurrogate(u16),
    NotAnObject,
    EmptyBatch,
    /// Stored bytes that are valid JSON but not a canonical record (what is wrong).
    InvalidRecord(String),
}

impl JsonError {
    fn new(kind: JsonErrorKind, offset: usize, path: String) -> JsonError {
        JsonError {
            index: None,
            offset,
            path,
            kind,
        }
    }

    /// The stable snake_case code of the API error body.
    pub fn code(&self) -> &'static str {
        match self.kind {
            JsonErrorKind::Syntax(_)
            | JsonErrorKind::InvalidUtf8
            | JsonErrorKind::ControlCharacter(_)
            | JsonErrorKind::LoneSurrogate(_) => "malformed_json",
            JsonErrorKind::DuplicateKey(_) => "duplicate_key",
            JsonErrorKind::TooDeep(_) => "too_deep",
            JsonErrorKind::TooLarge(_) => "event_too_large",
            JsonErrorKind::NumberNotExact(_) => "number_not_exact",
            JsonErrorKind::NotAnObject => "not_an_object",
            JsonErrorKind::EmptyBatch => "empty_batch",
            JsonErrorKind::InvalidRecord(_) => "invalid_record",
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(index) = self.index {
            write!(f, "event {index}: ")?;
        }
        let at = ShowPath(&self.path);
        let offset = self.offset;
        match &self.kind {
            JsonErrorKind::Syntax(expected) => {
                write!(f, "invalid JSON at byte {offset}: {expected}")
            }
            JsonErrorKind::DuplicateKey(key) => {
                write!(f, "duplicate key {:?} at {at}", Shorten(key))
            }
            JsonErrorKind::TooDeep(max) => write!(f, "nesting deeper than {max} at {at}"),
            JsonErrorKind::TooLarge(max) => {
                write!(f, "event larger than {max} bytes (at byte {offset})")
            }
            JsonErrorKind::NumberNotExact(text) => write!(
                f,
                "number {} at {at} cannot be stored exactly (integers must lie within \
                 ±9007199254740991, other numbers must not be rounded); send it as a string",
                Shorten(text)
            ),
            JsonErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8 at byte {offset}"),
            JsonErrorKind::ControlCharacter(byte) => write!(
                f,
                "unescaped control character U+{byte:04X} in a string at byte {offset}"
            ),
            JsonErrorKind::LoneSurrogate(unit) => write!(
                f,
                "unpaired surrogate \\u{unit:04x} at byte {offset}: strings must be valid Unicode"
            ),
            JsonErrorKind::NotAnObject => write!(f, "an event must be a JSON object"),
            JsonErrorKind::EmptyBatch => write!(f, "the request body contains no events"),
            JsonErrorKind::InvalidRecord(problem) => {
                write!(f, "stored record is invalid: {problem}")
            }
        }
    }
}

impl std::error::Error for JsonError {}

/// Renders a JSON Pointer for messages: the root has no pointer text, and a hostile key
/// must not turn one message into a megabyte.
struct ShowPath<'a>(&'a str);

impl fmt::Display for ShowPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the top level")
        } else {
            write!(f, "{}", Shorten(self.0))
        }
    }
}

/// A string cut to 200 characters with an ellipsis, for messages.
struct Shorten<'a>(&'a str);

impl Shorten<'_> {
    const MAX_CHARS: usize = 200;

    fn cut(&self) -> (&str, bool) {
        match self.0.char_indices().nth(Self::MAX_CHARS) {
            Some((byte_idx, _)) => (&self.0[..byte_idx], true),
            None => (self.0, false),
        }
    }
}

impl fmt::Display for Shorten<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, cut) = self.cut();
        f.write_str(head)?;
        if cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Shorten<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, cut) = self.cut();
        if cut {
            write!(f, "{:?}", format!("{head}…"))
        } else {
            write!(f, "{head:?}")
        }
    }
}

/// Append `key` to a JSON Pointer with RFC 6901 escaping (`~` → `~0`, `/` → `~1`).
pub fn push_pointer_token(pointer: &mut String, key: &str) {
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            _ => pointer.push(c),
        }
    }
}

/// Parse exactly one JSON value (whitespace around it allowed) under `limits`.
pub fn parse(input: &[u8], limits: &JsonLimits) -> Result<Value, JsonError> {
    let (start, end) = trim_whitespace(input, 0, input.len());
    if end - start > limits.max_event_bytes {
        return Err(JsonError::new(
            JsonErrorKind::TooLarge(limits.max_event_bytes),
            start,
            String::new(),
        ));
    }
    let text = std::str::from_utf8(&input[..end]).ok();
    let mut parser = Parser::new(&input[..end], start, limits.max_depth, false, text);
    let value = parser.parse_value(&mut Scratch::default())?;
    parser.expect_end()?;
    Ok(value)
}

/// Parse an ingest body: one object, an array of objects, or (`ndjson`) one object per
/// non-empty line. Each event is checked against `max_event_bytes` on its own, and depth is
/// counted from the event object (the wrapping array does not use up a level). Errors
/// inside an event carry its index.
pub fn parse_batch(
    body: &[u8],
    ndjson: bool,
    limits: &JsonLimits,
) -> Result<Vec<Value>, JsonError> {
    let events = if ndjson {
        parse_ndjson(body, limits)?
    } else {
        let (start, _) = trim_whitespace(body, 0, body.len());
        match body.get(start) {
            Some(b'[') => parse_array_batch(body, start, limits)?,
            Some(b'{') => vec![parse_event_object(body, limits, 0)?],
            Some(_) => {
                return Err(JsonError::new(
                    JsonErrorKind::NotAnObject,
                    start,
                    String::new(),
                ));
            }
            None => Vec::new(),
        }
    };
    if events.is_empty() {
        return Err(JsonError::new(JsonErrorKind::EmptyBatch, 0, String::new()));
    }
    Ok(events)
}

fn parse_event_object(input: &[u8], limits: &JsonLimits, index: usize) -> Result<Value, JsonError> {
    let with_index = |mut err: JsonError| {
        err.index = Some(index);
        err
    };
    let (start, _) = trim_whitespace(input, 0, input.len());
    if input.get(start) != Some(&b'{') {
        return Err(with_index(JsonError::new(
            JsonErrorKind::NotAnObject,
            start,
            String::new(),
        )));
    }
    parse(input, limits).map_err(with_index)
}

fn parse_ndjson(body: &[u8], limits: &JsonLimits) -> Result<Vec<Value>, JsonError> {
    let text = std::str::from_utf8(body).ok();
    let mut events = Vec::new();
    let mut scratch = Scratch::default();
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = body[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |n| line_start + n);
        let (start, end) = trim_whitespace(body, line_start, line_end);
        if start < end {
            let index = events.len();
            let with_index = |mut err: JsonError| {
                err.index = Some(index);
                err
            };
            if end - start > limits.max_event_bytes {
                return Err(with_index(JsonError::new(
                    JsonErrorKind::TooLarge(limits.max_event_bytes),
                    start,
                    String::new(),
                )));
            }
            if body[start] != b'{' {
                return Err(with_index(JsonError::new(
                    JsonErrorKind::NotAnObject,
                    start,
                    String::new(),
                )));
            }
            let mut parser = Parser::new(&body[..end], start, limits.max_depth, false, text);
            let value = parser.parse_value(&mut scratch).map_err(with_index)?;
            parser.expect_end().map_err(with_index)?;
            events.push(value);
        }
        line_start = line_end + 1;
    }
    Ok(events)
}

fn parse_array_batch(
    body: &[u8],
    open: usize,
    limits: &JsonLimits,
) -> Result<Vec<Value>, JsonError> {
    let text = std::str::from_utf8(body).ok();
    let mut events = Vec::new();
    let mut scratch = Scratch::default();
    let mut pos = skip_whitespace(body, open + 1);
    if body.get(pos) == Some(&b']') {
        return expect_batch_end(body, pos + 1).map(|()| events);
    }
    loop {
        let index = events.len();
        let with_index = |mut err: JsonError| {
            err.index = Some(index);
            err
        };
        match body.get(pos) {
            Some(b'{') => {}
            Some(_) => {
                return Err(with_index(JsonError::new(
                    JsonErrorKind::NotAnObject,
                    pos,
                    String::new(),
                )));
            }
            None => return Err(syntax_error(body, pos, "expected an event object")),
        }
        // The event sees only `max_event_bytes` of input: running out inside that window
        // means the event is too large, and a 2 MiB string is refused before it is copied.
        let window_end = body.len().min(pos.saturating_add(limits.max_event_bytes));
        let truncated = window_end < body.len();
        let mut parser = Parser::new(&body[..window_end], pos, limits.max_depth, truncated, text);
        let event = parser.parse_value(&mut scratch).map_err(|err| {
            let mut err = with_index(err);
            if let JsonErrorKind::TooLarge(_) = err.kind {
                err.kind = JsonErrorKind::TooLarge(limits.max_event_bytes);
            }
            err
        })?;
        events.push(event);
        pos = skip_whitespace(body, parser.pos);
        match body.get(pos) {
            Some(b',') => pos = skip_whitespace(body, pos + 1),
            Some(b']') => {
                expect_batch_end(body, pos + 1)?;
                return Ok(events);
            }
            _ => {
                return Err(syntax_error(
                    body,
                    pos,
                    "expected ',' or ']' after an event",
                ));
            }
        }
    }
}

fn expect_batch_end(body: &[u8], after: usize) -> Result<(), JsonError> {
    let pos = skip_whitespace(body, after);
    if pos == body.len() {
        Ok(())
    } else {
        Err(syntax_error(
            body,
            pos,
            "expected the end of the body after ']'",
        ))
    }
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_whitespace(input: &[u8], mut pos: usize) -> usize {
    while pos < input.len() && is_json_whitespace(input[pos]) {
        pos += 1;
    }
    pos
}

fn trim_whitespace(input: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && is_json_whitespace(input[start]) {
        start += 1;
    }
    while end > start && is_json_whitespace(input[end - 1]) {
        end -= 1;
    }
    (start, end)
}

fn describe_byte(input: &[u8], pos: usize) -> String {
    match input.get(pos) {
        None => "end of input".to_owned(),
        Some(&b) if b.is_ascii_graphic() => format!("'{}'", b as char),
        Some(&b) => format!("byte 0x{b:02x}"),
    }
}

fn syntax_error(input: &[u8], pos: usize, expected: &str) -> JsonError {
    JsonError::new(
        JsonErrorKind::Syntax(format!("{expected}, found {}", describe_byte(input, pos))),
        pos,
        String::new(),
    )
}

/// Bytes that end the fast scan of a string: the closing quote, an escape, a raw control.
const STRING_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The first index from `from` on whose byte is in [`STRING_SPECIAL`], or `bytes.len()`.
/// Eight bytes at a time: strings are most of an event, and most of their bytes are plain.
pub(crate) fn skip_plain(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte's high bit is set in each mask where the byte is below 0x20, is '"', is
        // '\\'. A borrow can also flag bytes after a true hit, never before one, so the
        // lowest flagged byte is the first special one.
        let control = word.wrapping_sub(0x20 * ONES) & !word;
        let quote = (word ^ (u64::from(b'"') * ONES)).wrapping_sub(ONES)
            & !(word ^ (u64::from(b'"') * ONES));
        let backslash = (word ^ (u64::from(b'\\') * ONES)).wrapping_sub(ONES)
            & !(word ^ (u64::from(b'\\') * ONES));
        let hits = (control | quote | backslash) & HIGH;
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && !STRING_SPECIAL[usize::from(bytes[at])] {
        at += 1;
    }
    at
}

/// An open container: the explicit stack that replaces recursion. Its elements or members
/// so far are the last `count` entries of [`Scratch::items`] or [`Scratch::members`].
enum Frame {
    Array {
        count: usize,
    },
    Object {
        count: usize,
        /// The key whose value is being parsed.
        key: String,
        /// Hashes of the keys so far, once the object is large enough that a linear
        /// duplicate scan would be quadratic on hostile input.
        seen: Option<HashSet<u64>>,
    },
}

/// Buffers shared by all open containers and reused across the events of a batch: each
/// container then costs one allocation of its exact size when it closes, instead of a
/// growing `Vec` per container (allocation dominated the parse profile).
#[derive(Default)]
struct Scratch {
    frames: Vec<Frame>,
    items: Vec<Value>,
    members: Vec<(String, Value)>,
}

/// Objects up to this many keys find duplicates by a linear scan.
const LINEAR_KEY_SCAN: usize = 16;

/// The JSON Pointer of the value being parsed under `frames`.
fn pointer(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Array { count } => {
                path.push('/');
                path.push_str(&count.to_string());
            }
            Frame::Object { key, .. } => push_pointer_token(&mut path, key),
        }
    }
    path
}

struct Parser<'a> {
    /// The input up to the end of the window this parse may look at.
    input: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// The window ends before the real input does: running out of bytes means "too large".
    truncated: bool,
    key_hasher: Option<RandomState>,
    /// `input` as text when the whole body is valid UTF-8 (checked once, which is far cheaper
    /// than checking every string); otherwise each string is checked on its own, so the
    /// error names the string that holds the bad bytes.
    text: Option<&'a str>,
}

impl<'a> Parser<'a> {
    /// `text`, when given, is the whole body as text; `input` is a prefix of it.
    fn new(
        input: &'a [u8],
        pos: usize,
        max_depth: usize,
        truncated: bool,
        text: Option<&'a str>,
    ) -> Parser<'a> {
        let text = text.and_then(|text| text.get(..input.len()));
        Parser {
            input,
            pos,
            max_depth: max_depth.min(MAX_DEPTH_CEILING),
            truncated,
            key_hasher: None,
            text,
        }
    }

    fn skip_whitespace(&mut self) {
        self.pos = skip_whitespace(self.input, self.pos);
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn end_of_input(&self, frames: &[Frame]) -> JsonError {
        if self.truncated {
            JsonError::new(JsonErrorKind::TooLarge(0), self.input.len(), String::new())
        } else {
            JsonError::new(
                JsonErrorKind::Syntax("unexpected end of input".to_owned()),
                self.input.len(),
                pointer(frames),
            )
        }
    }

    fn unexpected(&self, frames: &[Frame], expected: &str) -> JsonError {
        if self.pos >= self.input.len() {
            return self.end_of_input(frames);
        }
        let mut err = syntax_error(self.input, self.pos, expected);
        err.path = pointer(frames);
        err
    }

    fn expect_end(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        match self.peek() {
            None => Ok(()),
            Some(b'{' | b'[') => Err(syntax_error(
                self.input,
                self.pos,
                "expected the end of the value (send several events as an array or as NDJSON)",
            )),
            Some(_) => Err(syntax_error(
                self.input,
                self.pos,
                "expected the end of the value",
            )),
        }
    }

    /// Parse one value. Iterative: open containers live on `scratch.frames`, so hostile
    /// nesting costs heap (bounded by `max_depth`), never stack.
    fn parse_value(&mut self, scratch: &mut Scratch) -> Result<Value, JsonError> {
        let Scratch {
            frames,
            items,
            members,
        } = scratch;
        // Left over from a failed parse of an earlier event.
        frames.clear();
        items.clear();
        members.clear();
        'value: loop {
            self.skip_whitespace();
            let Some(byte) = self.peek() else {
                return Err(self.end_of_input(frames));
            };
            let mut value = match byte {
                b'{' | b'[' => {
                    if frames.len() >= self.max_depth {
                        return Err(JsonError::new(
                            JsonErrorKind::TooDeep(self.max_depth),
                            self.pos,
                            pointer(frames),
                        ));
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    if byte == b'[' {
                        if self.peek() == Some(b']') {
                            self.pos += 1;
                            Value::Array(Vec::new())
                        } else {
                            frames.push(Frame::Array { count: 0 });
                            continue 'value;
                        }
                    } else if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Vec::new())
                    } else {
                        let key = self.parse_key(frames)?;
                        frames.push(Frame::Object {
                            count: 0,
                            key,
                            seen: None,
                        });
                        continue 'value;
                    }
                }
                b'"' => Value::String(self.parse_string(frames)?),
                b'-' | b'0'..=b'9' => Value::Number(self.parse_number(frames)?),
                b't' => self.parse_literal(frames, b"true", Value::Bool(true))?,
                b'f' => self.parse_literal(frames, b"false", Value::Bool(false))?,
                b'n' => self.parse_literal(frames, b"null", Value::Null)?,
                _ => return Err(self.unexpected(frames, "expected a value")),
            };
            // A value is complete: hand it to its container, closing containers as they end.
            loop {
                let Some(depth) = frames.len().checked_sub(1) else {
                    return Ok(value);
                };
                self.skip_whitespace();
                match &mut frames[depth] {
                    Frame::Array { count } => {
                        items.push(value);
                        *count += 1;
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let start = items.len() - *count;
                                value = Value::Array(items.drain(start..).collect());
                                frames.pop();
                            }
                            _ => {
                                return Err(
                                    self.unexpected(&frames[..depth], "expected ',' or ']'")
                                );
                            }
                        }
                    }
                    Frame::Object { count, key, .. } => {
                        members.push((std::mem::take(key), value));
                        *count += 1;
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_whitespace();
                                let key_offset = self.pos;
                                let new_key = self.parse_key(&frames[..depth])?;
                                self.check_unique(frames, members, new_key, key_offset)?;
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let start = members.len() - *count;
                                value = Value::Object(members.drain(start..).collect());
                                frames.pop();
                            }
                            _ => {
                                return Err(
                                    self.unexpected(&frames[..depth], "expected ',' or '}'")
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reject `new_key` if the innermost object already has it, else make it the key whose
    /// value comes next.
    fn check_unique(
        &mut self,
        frames: &mut [Frame],
        members: &[(String, Value)],
        new_key: String,
        key_offset: usize,
    ) -> Result<(), JsonError> {
        let depth = frames.len() - 1;
        let Some(Frame::Object { count, seen, .. }) = frames.last_mut() else {
            return Ok(());
        };
        let entries = &members[members.len() - *count..];
        let duplicate = if entries.len() < LINEAR_KEY_SCAN {
            entries.iter().any(|(k, _)| *k == new_key)
        } else {
            // The hasher is randomly keyed, so crafted keys cannot force collisions; a
            // collision only costs a confirming scan.
            let hasher = self.key_hasher.get_or_insert_with(RandomState::new);
            let seen = seen.get_or_insert_with(|| {
                entries
                    .iter()
                    .map(|(k, _)| hasher.hash_one(k.as_str()))
                    .collect()
            });
            let hash = hasher.hash_one(new_key.as_str());
            !seen.insert(hash) && entries.iter().any(|(k, _)| *k == new_key)
        };
        if duplicate {
            return Err(JsonError::new(
                JsonErrorKind::DuplicateKey(new_key),
                key_offset,
                pointer(&frames[..depth]),
            ));
        }
        if let Some(Frame::Object { key, .. }) = frames.last_mut() {
            *key = new_key;
        }
        Ok(())
    }

    /// An object key and the ':' after it. `frames` are those of the object itself.
    fn parse_key(&mut self, frames: &[Frame]) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected(frames, "expected '\"' to start a key"));
        }
        let key = self.parse_string(frames)?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.unexpected(frames, "expected ':'"));
        }
        self.pos += 1;
        Ok(key)
    }

    fn parse_literal(
        &mut self,
        frames: &[Frame],
        word: &[u8],
        value: Value,
    ) -> Result<Value, JsonError> {
        let end = self.pos + word.len();
        match self.input.get(self.pos..end) {
            Some(text) if text == word => {
                self.pos = end;
                Ok(value)
            }
            None if self.input[self.pos..] == word[..self.input.len() - self.pos] => {
                Err(self.end_of_input(frames))
            }
            _ => Err(self.unexpected(frames, "expected a value")),
        }
    }

    fn utf8_chunk(&self, frames: &[Frame], start: usize, end: usize) -> Result<&'a str, JsonError> {
        // Chunks end at ASCII bytes, so in valid text they fall on character boundaries.
        if let Some(chunk) = self.text.and_then(|text| text.get(start..end)) {
            return Ok(chunk);
        }
        let input: &'a [u8] = self.input;
        std::str::from_utf8(&input[start..end]).map_err(|err| {
            JsonError::new(
                JsonErrorKind::InvalidUtf8,
                start + err.valid_up_to(),
                pointer(frames),
            )
        })
    }

    /// A string; `self.pos` is at the opening quote. Unescaped strings are validated and
    /// copied once; escapes switch to an owned buffer.
    fn parse_string(&mut self, frames: &[Frame]) -> Result<String, JsonError> {
        let input = self.input;
        let start = self.pos + 1;
        let mut scan = skip_plain(input, start);
        if scan < input.len() && input[scan] == b'"' {
            let text = self.utf8_chunk(frames, start, scan)?;
            self.pos = scan + 1;
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(scan - start + 16);
        let mut chunk_start = start;
        loop {
            scan = skip_plain(input, scan);
            let Some(&byte) = input.get(scan) else {
                self.pos = scan;
                return Err(self.end_of_input(frames));
            };
            // A multi-byte UTF-8 sequence never contains these ASCII bytes, so each chunk
            // between them must be valid on its own.
            out.push_str(self.utf8_chunk(frames, chunk_start, scan)?);
            match byte {
                b'"' => {
                    self.pos = scan + 1;
                    return Ok(out);
                }
                b'\\' => {
                    let (c, len) = self.parse_escape(frames, scan)?;
                    out.push(c);
                    scan += len;
                    chunk_start = scan;
                }
                _ => {
                    return Err(JsonError::new(
                        JsonErrorKind::ControlCharacter(byte),
                        scan,
                        pointer(frames),
                    ));
                }
            }
        }
    }

    /// The escape at `at` (a backslash): the character and the escape's length in bytes.
    fn parse_escape(&mut self, frames: &[Frame], at: usize) -> Result<(char, usize), JsonError> {
        let Some(&kind) = self.input.get(at + 1) else {
            self.pos = self.input.len();
            return Err(self.end_of_input(frames));
        };
        let simple = match simple_escape(kind) {
            Some(c) => c,
            None if kind == b'u' => return self.parse_unicode_escape(frames, at),
            None => {
                self.pos = at;
                let mut err = syntax_error(self.input, at + 1, "invalid escape in a string");
                err.offset = at;
                err.path = pointer(frames);
                return Err(err);
            }
        };
        Ok((simple, 2))
    }

    fn hex4(&mut self, frames: &[Frame], at: usize) -> Result<u16, JsonError> {
        let mut unit: u16 = 0;
        for digit_idx in 0..4 {
            let Some(&byte) = self.input.get(at + digit_idx) else {
                self.pos = self.input.len();
                return Err(self.end_of_input(frames));
            };
            let nibble = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                b'A'..=b'F' => byte - b'A' + 10,
                _ => {
                    let mut err = syntax_error(
                        self.input,
                        at + digit_idx,
                        "expected a hex digit in \\u escape",
                    );
                    err.path = pointer(frames);
                    return Err(err);
                }
            };
            unit = (unit << 4) | u16::from(nibble);
        }
        Ok(unit)
    }

    fn parse_unicode_escape(
        &mut self,
        frames: &[Frame],
        at: usize,
    ) -> Result<(char, usize), JsonError> {
        let lone =
            |unit: u16| JsonError::new(JsonErrorKind::LoneSurrogate(unit), at, pointer(frames));
        let unit = self.hex4(frames, at + 2)?;
        match unit {
            0xD800..=0xDBFF => {
                let low_at = at + 6;
                match (self.input.get(low_at), self.input.get(low_at + 1)) {
                    (Some(b'\\'), Some(b'u')) => {}
                    (None, _) | (Some(b'\\'), None) => {
                        self.pos = self.input.len();
                        return Err(self.end_of_input(frames));
                    }
                    _ => return Err(lone(unit)),
                }
                let low = self.hex4(frames, low_at + 2)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(lone(unit));
                }
                let code =
                    0x1_0000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                char::from_u32(code)
                    .map(|c| (c, 12))
                    .ok_or_else(|| lone(unit))
            }
            0xDC00..=0xDFFF => Err(lone(unit)),
            _ => char::from_u32(u32::from(unit))
                .map(|c| (c, 6))
                .ok_or_else(|| lone(unit)),
        }
    }

    /// A number per the RFC 8259 grammar, kept only if exact (see [`Number`]).
    fn parse_number(&mut self, frames: &[Frame]) -> Result<Number, JsonError> {
        let start = self.pos;
        let (end, is_integer) = match scan_number(self.input, start) {
            Ok(found) => found,
            Err((pos, expected)) => {
                self.pos = pos;
                return Err(self.unexpected(frames, expected));
            }
        };
        self.pos = end;
        let text = &self.input[start..end];
        number_value(text, is_integer).ok_or_else(|| {
            JsonError::new(
                JsonErrorKind::NumberNotExact(String::from_utf8_lossy(text).into_owned()),
                start,
                pointer(frames),
            )
        })
    }
}

/// The character of a two-byte escape `\x` (`x` given), or `None` (`\u` or invalid).
pub(crate) fn simple_escape(kind: u8) -> Option<char> {
    Some(match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

/// Where the number starting at `start` ends by the RFC 8259 grammar, and whether it is
/// written as an integer (no fraction, no exponent); or where the grammar breaks and what it
/// expected there. Shared by the strict parser and the fast path (`event::fast`).
pub(crate) fn scan_number(
    input: &[u8],
    start: usize,
) -> Result<(usize, bool), (usize, &'static str)> {
    let digits_from = |mut pos: usize| {
        while matches!(input.get(pos), Some(b'0'..=b'9')) {
            pos += 1;
        }
        pos
    };
    let mut pos = start;
    if input.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match input.get(pos) {
        Some(b'0') => {
            pos += 1;
            if matches!(input.get(pos), Some(b'0'..=b'9')) {
                return Err((pos, "invalid number: leading zeros are not allowed"));
            }
        }
        Some(b'1'..=b'9') => pos = digits_from(pos),
        _ => return Err((pos, "invalid number: expected a digit")),
    }
    let mut is_integer = true;
    if input.get(pos) == Some(&b'.') {
        is_integer = false;
        let end = digits_from(pos + 1);
        if end == pos + 1 {
            return Err((end, "invalid number: expected a digit after '.'"));
        }
        pos = end;
    }
    if matches!(input.get(pos), Some(b'e' | b'E')) {
        is_integer = false;
        pos += 1;
        if matches!(input.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        let end = digits_from(pos);
        if end == pos {
            return Err((end, "invalid number: expected a digit in the exponent"));
        }
        pos = end;
    }
    Ok((pos, is_integer))
}

/// The number `text` (valid by [`scan_number`], which also says whether it `is_integer`)
/// stands for, if the rule of [`Number`] keeps it. Shared by the strict parser and the fast
/// path.
pub(crate) fn number_value(text: &[u8], is_integer: bool) -> Option<Number> {
    if is_integer {
        // An `i64` has no minus zero: `-0` is kept as zero.
        safe_integer(text).map(|integer| Number(integer as f64))
    } else {
        exact_number(text)
    }
}

/// The value of `text`, an integer by the JSON grammar, if it lies within ±(2^53−1) (rule 2
/// of [`Number`]).
pub(crate) fn safe_integer(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    // 16 digits always fit an i64; 17 or more are beyond 2^53 (no leading zeros).
    if digits.len() > 16 {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    if magnitude > MAX_SAFE_INTEGER {
        return None;
    }
    Some(if digits.len() < text.len() {
        -magnitude
    } else {
        magnitude
    })
}

/// The double written as `text` (valid JSON number syntax with a fraction or exponent), if
/// the rule of [`Number`] keeps it.
fn exact_number(text: &[u8]) -> Option<Number> {
    let value: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let written = decimal_shape(text);
    if value == 0.0 {
        // Underflow (1e-400) reads as zero but was not written as zero.
        return (written == DecimalShape::Zero).then_some(Number(0.0));
    }
    let mut buffer = ryu_js::Buffer::new();
    let canonical = buffer.format_finite(value);
    if decimal_shape(canonical.as_bytes()) != written {
        return None;
    }
    Number::from_f64(value)
}

/// A decimal number reduced to its significant digits and the exponent `e` with
/// value = 0.DIGITS × 10^e, so that numbers written differently compare by value.
#[derive(Debug, PartialEq, Eq)]
enum DecimalShape {
    Zero,
    /// More significant digits than any double's shortest form has.
    TooLong,
    Digits {
        digits: [u8; 20],
        len: usize,
        exponent: i64,
    },
}

fn decimal_shape(text: &[u8]) -> DecimalShape {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut pending_zeros = 0usize;
    let mut leading_zeros = 0i64;
    let mut int_digits = 0i64;
    let mut seen_point = false;
    let mut pos = 0;
    if text.first() == Some(&b'-') {
        pos += 1;
    }
    while pos < text.len() {
        let byte = text[pos];
        match byte {
            b'.' => seen_point = true,
            b'0'..=b'9' => {
                if !seen_point {
                    int_digits += 1;
                }
                if byte == b'0' {
                    if len == 0 {
                        leading_zeros += 1;
                    } else {
                        pending_zeros += 1;
                    }
                } else {
                    if len + pending_zeros >= digits.len() {
                        return DecimalShape::TooLong;
                    }
                    len += pending_zeros;
                    pending_zeros = 0;
                    digits[len] = byte;
                    len += 1;
                }
            }
            _ => break,
        }
        pos += 1;
    }
    if len == 0 {
        return DecimalShape::Zero;
    }
    let mut exponent: i64 = 0;
    if matches!(text.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let negative = text.get(pos) == Some(&b'-');
        if matches!(text.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        // Clamped far beyond any double's range; the digits before cannot offset it.
        for &d in &text[pos..] {
            exponent = (exponent * 10 + i64::from(d - b'0')).min(1_000_000_000_000_000);
        }
        if negative {
            exponent = -exponent;
        }
    }
    DecimalShape::Digits {
        digits,
        len,
        exponent: int_digits - leading_zeros + exponent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time scan finds the first special byte exactly where a byte-by-byte
    /// scan does, whatever the bytes around it (every byte value, every offset in a word).
    #[test]
    fn skip_plain_stops_at_the_first_special_byte() {
        let naive = |bytes: &[u8], from: usize| {
            (from..bytes.len())
                .find(|&i| STRING_SPECIAL[usize::from(bytes[i])])
                .unwrap_or(bytes.len())
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 8 {
                    // Mostly plain bytes, with the specials and their neighbours mixed in.
                    0 => [b'"', b'\\', 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x00][(next() % 8) as usize],
                    1 => (next() % 256) as u8,
                    2 => 0x80 | (next() % 128) as u8,
                    _ => b'a' + (next() % 26) as u8,
                })
                .collect();
            let from = if len == 0 {
                0
            } else {
                (next() as usize) % (len + 1)
            };
            assert_eq!(
                skip_plain(&bytes, from),
                naive(&bytes, from),
                "case {case}: {bytes:?} from {from}"
            );
        }
        for byte in 0..=255u8 {
            for at in 0..16 {
                let mut bytes = vec![b'x'; 16];
                bytes[at] = byte;
                assert_eq!(
                    skip_plain(&bytes, 0),
                    naive(&bytes, 0),
                    "byte {byte:#x} at {at}"
                );
            }
        }
    }

    fn parse_default(text: &str) -> Result<Value, JsonError> {
        parse(text.as_bytes(), &JsonLimits::default())
    }

    fn canonical(text: &str) -> String {
        let value = parse_default(text).expect("valid JSON");
        String::from_utf8(value.to_canonical()).expect("UTF-8")
    }

    #[test]
    fn keys_sort_by_utf16_code_units_not_by_code_points() {
        // U+1F600 is a surrogate pair starting 0xD83D, which sorts before U+FB33.
        assert_eq!(cmp_utf16("\u{1F600}", "\u{FB33}"), Ordering::Less);
        assert_eq!("\u{1F600}".cmp("\u{FB33}"), Ordering::Greater);
        assert_eq!(cmp_utf16("a", "ab"), Ordering::Less);
        assert_eq!(cmp_utf16("", "a"), Ordering::Less);
        assert_eq!(cmp_utf16("\u{80}", "\u{7F}"), Ordering::Greater);
        assert_eq!(cmp_utf16("x\u{10000}", "x\u{10001}"), Ordering::Less);
    }

    #[test]
    fn decimal_shape_compares_numbers_by_value() {
        assert_eq!(decimal_shape(b"4.50"), decimal_shape(b"4.5"));
        assert_eq!(decimal_shape(b"1E30"), decimal_shape(b"1e+30"));
        assert_eq!(decimal_shape(b"0.002"), decimal_shape(b"2e-3"));
        assert_eq!(decimal_shape(b"100"), decimal_shape(b"1e2"));
        assert_ne!(decimal_shape(b"1.00000000000000001"), decimal_shape(b"1"));
        assert_eq!(decimal_shape(b"0.000"), DecimalShape::Zero);
        assert_eq!(decimal_shape(b"0.0e5"), DecimalShape::Zero);
    }

    #[test]
    fn canonical_strings_escape_only_what_rfc_8785_lists() {
        let mut out = Vec::new();
        write_canonical_str(
            "a\"\\\u{8}\t\n\u{c}\r\u{1}\u{1f}\u{7f}é</script>\u{2028}",
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "\"a\\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u{7f}é</script>\u{2028}\""
        );
    }

    #[test]
    fn numbers_are_written_in_ecmascript_form() {
        assert_eq!(
            canonical("[1.5e3, -0, 0.1, 1e21, 1e-7, 123456789012345]"),
            "[1500,0,0.1,1e+21,1e-7,123456789012345]"
        );
        assert_eq!(canonical("-9007199254740991"), "-9007199254740991");
    }

    #[test]
    fn minus_zero_is_stored_as_zero() {
        for text in ["-0", "-0.0", "-0e3"] {
            let Value::Number(n) = parse_default(text).expect("valid") else {
                panic!("not a number");
            };
            assert!(n.as_f64().is_sign_positive(), "{text}");
        }
        assert_eq!(
            Number::from_f64(-0.0).map(|n| n.as_f64().is_sign_positive()),
            Some(true)
        );
    }

    #[test]
    fn number_constructors_refuse_what_the_parser_refuses() {
        assert!(Number::from_f64(f64::NAN).is_none());
        assert!(Number::from_f64(f64::INFINITY).is_none());
        assert!(Number::from_f64(1e20).is_none());
        assert!(Number::from_f64(1e21).is_some());
        assert!(Number::from_i64(MAX_SAFE_INTEGER).is_some());
        assert!(Number::from_i64(-MAX_SAFE_INTEGER - 1).is_none());
        assert_eq!(Number::from(7).as_i64(), Some(7));
        assert_eq!(Number::from_f64(0.5).and_then(Number::as_i64), None);
    }

    #[test]
    fn error_paths_escape_tilde_and_slash() {
        let err = parse_default(r#"{"a/b":{"c~d":1e400}}"#).expect_err("inexact");
        assert_eq!(err.path, "/a~1b/c~0d");
    }

    #[test]
    fn large_objects_still_find_duplicates() {
        let mut text = String::from("{");
        for key_idx in 0..100 {
            text.push_str(&format!("\"k{key_idx}\":{key_idx},"));
        }
        text.push_str("\"k57\":0}");
        let err = parse_default(&text).expect_err("duplicate");
        assert_eq!(err.kind, JsonErrorKind::DuplicateKey("k57".to_owned()));
        text.replace_range(text.len() - 8.., "\"k100\":0}");
        assert!(parse_default(&text).is_ok());
    }

    #[test]
    fn long_keys_are_shortened_in_messages() {
        let key = "x".repeat(10_000);
        let text = format!("{{\"{key}\":1,\"{key}\":2}}");
        let err = parse_default(&text).expect_err("duplicate");
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
    }
}
