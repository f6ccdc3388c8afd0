//! The fast path of ingest: from a request body straight to each event's canonical parts,
//! without building a [`Value`](crate::json::Value) tree.
//!
//! The strict parser and [`EventInput::from_value`](super::EventInput::from_value) stay the
//! definition of what is valid and the only source of error messages. This path takes every
//! valid event nested at most [`MAX_NESTING`] deep; on anything invalid it gives up (`None`)
//! for the whole body, and the caller runs the strict path, which then reports exactly what
//! it always did. So it must never accept what the strict path refuses, and whatever it
//! accepts must come out byte for byte as the strict path writes it: the store's tests
//! (`tests/it/fast_path.rs`) compare the two on generated events, on edge cases and on
//! random mutations of events.
//!
//! Strings without escapes (nearly all) are borrowed from the body and copied as they are:
//! such a string is its own RFC 8785 form. Objects are written member by member into a
//! buffer per nesting level, then copied out in key order. On a server ingesting 1,000,000
//! generated events (CPU per thread from `/proc`), this took the request threads from ~7.3 to
//! ~5.4 µs of CPU per event.
//!
//! Shared with the strict path, so the two cannot drift: the field checks (the newtypes'
//! `check`, `parse_time`, `check_time_range`, `parse_ip`, `default_source`), the number
//! grammar and rule (`scan_number`, `number_value`) and writer (`write_number`), the escape
//! table (`simple_escape`), the key order ([`cmp_utf16`]) and the writer of the parts
//! (`RecordForm`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use super::{
    Action, CanonicalParts, EventId, INPUT_FIELDS, Message, ObjectForm, PrimaryKey, RecordForm,
    Source, TableName, Timestamp, UserName, check_time_range, parse_ip, parse_time,
};
use crate::json::{
    JsonLimits, MAX_DEPTH_CEILING, cmp_utf16, number_value, safe_integer, scan_number,
    simple_escape, skip_plain, write_canonical_str, write_number,
};

/// Deepest nesting this path follows (the event object is 1); deeper events take the strict
/// path, so this path's recursion stays shallow whatever the configured limit.
pub const MAX_NESTING: usize = 32;

/// One event of a body, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastEvent {
    pub id: Option<String>,
    /// The RFC 8785 form of the event object as sent, when the replay check of its `id` needs
    /// it: the body has an `id` member (even `null`) but leaves `time` or `ip` to the server,
    /// so its record is not a pure function of the body. `None` otherwise.
    pub sent_form: Option<Vec<u8>>,
    pub parts: CanonicalParts,
}

/// Every event of `body` (one object, an array of objects, or with `ndjson` one object per
/// non-empty line), or `None` when any of them needs the strict path, the body holds no
/// event or more than `max_events`.
pub fn prepare_batch(
    body: &[u8],
    ndjson: bool,
    limits: &JsonLimits,
    max_events: usize,
    received: Timestamp,
    peer_ip: IpAddr,
) -> Option<Vec<FastEvent>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader {
        input: body,
        text,
        pos: 0,
        newline_is_space: !ndjson,
        max_open: limits.max_depth.min(MAX_DEPTH_CEILING).min(MAX_NESTING + 1),
        values: Vec::new(),
        members: Vec::new(),
        objects: Default::default(),
    };
    let mut events = Vec::new();
    let take = |reader: &mut Reader<'_>, events: &mut Vec<FastEvent>| -> Option<()> {
        if events.len() == max_events {
            return None;
        }
        let start = reader.pos;
        let event = reader.event(received, peer_ip)?;
        if reader.pos - start > limits.max_event_bytes {
            return None;
        }
        events.push(event);
        Some(())
    };
    if ndjson {
        loop {
            reader.skip_any_space();
            if reader.pos == body.len() {
                break;
            }
            take(&mut reader, &mut events)?;
            // The rest of the line is blank.
            reader.skip_space();
            match reader.peek() {
                None => break,
                Some(b'\n') => reader.pos += 1,
                Some(_) => return None,
            }
        }
    } else {
        reader.skip_any_space();
        match reader.peek()? {
            b'{' => take(&mut reader, &mut events)?,
            b'[' => {
                reader.pos += 1;
                reader.skip_any_space();
                loop {
                    take(&mut reader, &mut events)?;
                    reader.skip_any_space();
                    match reader.peek()? {
                        b',' => {
                            reader.pos += 1;
                            reader.skip_any_space();
                        }
                        b']' => {
                            reader.pos += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
        reader.skip_any_space();
        if reader.pos != body.len() {
            return None;
        }
    }
    (!events.is_empty()).then_some(events)
}

/// A string field's value, if it passes its type's check (`None` when it does not).
fn checked<'a>(
    value: Option<Cow<'a, str>>,
    check: fn(&str) -> Result<(), super::FieldError>,
) -> Option<Option<Cow<'a, str>>> {
    match value {
        Some(text) => check(&text).ok().map(|()| Some(text)),
        None => Some(None),
    }
}

/// `"key":` in RFC 8785 form. A key borrowed from the input (`plain`) has no escapes and
/// is its own form between quotes.
fn write_key(key: &str, plain: bool, out: &mut Vec<u8>) {
    if plain {
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.push(b'"');
    } else {
        write_canonical_str(key, out);
    }
    out.push(b':');
}

struct Reader<'a> {
    input: &'a [u8],
    /// `input` as text (it is valid UTF-8): strings are slices of it.
    text: &'a str,
    pos: usize,
    /// In NDJSON a line break ends an event, so it is no space inside one.
    newline_is_space: bool,
    /// A container may be opened while fewer than this many are open.
    max_open: usize,
    /// Per nesting level, reused across events: the members' canonical values, and each
    /// member's key with the range of its value there.
    values: Vec<Vec<u8>>,
    members: Vec<Vec<(Cow<'a, str>, usize, usize)>>,
    /// The canonical forms of `after`, `before` and `context`.
    objects: [Vec<u8>; 3],
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Spaces, tabs and carriage returns, and line breaks where they are space.
    fn skip_space(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' if self.newline_is_space => self.pos += 1,
                _ => break,
            }
        }
    }

    /// All JSON whitespace (between the events of a body).
    fn skip_any_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// A string; `pos` is at its opening quote. One without escapes is borrowed, and is its
    /// own RFC 8785 form between its quotes; escapes are decoded as the strict parser does
    /// (a lone surrogate: `None`). A raw control character or the end of input: `None`.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let input = self.input;
        let start = self.pos + 1;
        let mut end = skip_plain(input, start);
        if *input.get(end)? == b'"' {
            self.pos = end + 1;
            // Both ends are ASCII, so they are character boundaries.
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        let mut out = String::with_capacity(end - start + 16);
        let mut chunk = start;
        loop {
            end = skip_plain(input, end);
            out.push_str(self.text.get(chunk..end)?);
            match *input.get(end)? {
                b'"' => {
                    self.pos = end + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let (c, len) = self.escape(end)?;
                    out.push(c);
                    end += len;
                    chunk = end;
                }
                _ => return None,
            }
        }
    }

    /// The escape at `at` (a backslash): its character and length in bytes.
    fn escape(&self, at: usize) -> Option<(char, usize)> {
        let kind = *self.input.get(at + 1)?;
        if let Some(simple) = simple_escape(kind) {
            return Some((simple, 2));
        }
        if kind != b'u' {
            return None;
        }
        let unit = self.hex4(at + 2)?;
        match unit {
            0xD800..=0xDBFF => {
                if self.input.get(at + 6..at + 8)? != b"\\u" {
                    return None;
                }
                let low = self.hex4(at + 8)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                let code =
                    0x1_0000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                char::from_u32(code).map(|c| (c, 12))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(u32::from(unit)).map(|c| (c, 6)),
        }
    }

    fn hex4(&self, at: usize) -> Option<u16> {
        self.input
            .get(at..at + 4)?
            .iter()
            .try_fold(0u16, |unit, &byte| {
                let nibble = (byte as char).to_digit(16)?;
                Some((unit << 4) | nibble as u16)
            })
    }

    /// A string or `null`.
    fn optional_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => self.string().map(Some),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.input.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A number's text per the RFC 8259 grammar, and whether it is written as an integer.
    fn number_text(&mut self) -> Option<(&'a [u8], bool)> {
        let start = self.pos;
        let (end, is_integer) = scan_number(self.input, start).ok()?;
        self.pos = end;
        Some((&self.input[start..end], is_integer))
    }

    /// Write the RFC 8785 form of the value at `pos` to `out`; `open` containers hold it.
    fn value(&mut self, out: &mut Vec<u8>, open: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let start = self.pos;
                match self.string()? {
                    Cow::Borrowed(_) => out.extend_from_slice(&self.input[start..self.pos]),
                    Cow::Owned(text) => write_canonical_str(&text, out),
                }
            }
            b'{' => self.object(out, open)?,
            b'[' => self.array(out, open)?,
            b't' => {
                self.literal(b"true")?;
                out.extend_from_slice(b"true");
            }
            b'f' => {
                self.literal(b"false")?;
                out.extend_from_slice(b"false");
            }
            b'n' => {
                self.literal(b"null")?;
                out.extend_from_slice(b"null");
            }
            b'-' | b'0'..=b'9' => {
                let (text, is_integer) = self.number_text()?;
                write_number(number_value(text, is_integer)?.as_f64(), out);
            }
            _ => return None,
        }
        Some(())
    }

    fn array(&mut self, out: &mut Vec<u8>, open: usize) -> Option<()> {
        if open >= self.max_open {
            return None;
        }
        self.pos += 1;
        out.push(b'[');
        self.skip_space();
        if self.peek()? == b']' {
            self.pos += 1;
            out.push(b']');
            return Some(());
        }
        loop {
            self.skip_space();
            self.value(out, open + 1)?;
            self.skip_space();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    out.push(b',');
                }
                b']' => {
                    self.pos += 1;
                    out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// After an object's member: `,` (another follows: `false`) or `}` (it ends: `true`).
    fn object_ends(&mut self) -> Option<bool> {
        self.skip_space();
        let ends = match self.peek()? {
            b',' => false,
            b'}' => true,
            _ => return None,
        };
        self.pos += 1;
        Some(ends)
    }

    /// An object, its members written in RFC 8785 order (a key sent twice: `None`).
    fn object(&mut self, out: &mut Vec<u8>, open: usize) -> Option<()> {
        if open >= self.max_open {
            return None;
        }
        self.pos += 1;
        self.skip_space();
        if self.peek()? == b'}' {
            self.pos += 1;
            out.extend_from_slice(b"{}");
            return Some(());
        }
        if self.values.len() <= open {
            self.values.resize_with(open + 1, Vec::new);
            self.members.resize_with(open + 1, Vec::new);
        }
        let mut values = std::mem::take(&mut self.values[open]);
        let mut members = std::mem::take(&mut self.members[open]);
        values.clear();
        members.clear();
        loop {
            self.skip_space();
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_space();
            let start = values.len();
            self.value(&mut values, open + 1)?;
            members.push((key, start, values.len()));
            if self.object_ends()? {
                break;
            }
        }
        let ordered = members
            .windows(2)
            .all(|pair| cmp_utf16(&pair[0].0, &pair[1].0) == Ordering::Less);
        if !ordered {
            members.sort_unstable_by(|a, b| cmp_utf16(&a.0, &b.0));
            if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return None;
            }
        }
        out.push(b'{');
        for (index, (key, start, end)) in members.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_key(key, matches!(key, Cow::Borrowed(_)), out);
            out.extend_from_slice(&values[*start..*end]);
        }
        out.push(b'}');
        self.values[open] = values;
        self.members[open] = members;
        Some(())
    }

    /// One event object; `pos` is at its `{`.
    fn event(&mut self, received: Timestamp, peer_ip: IpAddr) -> Option<FastEvent> {
        if self.peek()? != b'{' || self.max_open == 0 {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        let mut seen = 0u16;
        let (mut id, mut time, mut user, mut source, mut ip) = (None, None, None, None, None);
        let (mut action, mut table, mut primary_key, mut message) = (None, None, None, None);
        let mut integer_key = None;
        let mut has_object = [false; 3];
        let mut sent_id = false;
        loop {
            self.skip_space();
            let key = self.string()?;
            // One bit per field, to find a field sent twice.
            let field = INPUT_FIELDS.iter().position(|name| *name == key)?;
            if seen & (1 << field) != 0 {
                return None;
            }
            seen |= 1 << field;
            self.expect(b':')?;
            self.skip_space();
            match &*key {
                "id" => {
                    sent_id = true;
                    id = checked(self.optional_str()?, EventId::check)?;
                }
                "time" => {
                    if let Some(text) = self.optional_str()? {
                        let parsed = parse_time(&text).ok()?;
                        check_time_range(parsed, received).ok()?;
                        time = Some(parsed);
                    }
                }
                "user" => user = checked(self.optional_str()?, UserName::check)?,
                "source" => source = checked(self.optional_str()?, Source::check)?,
                "ip" => {
                    if let Some(text) = self.optional_str()? {
                        ip = Some(parse_ip("ip", &text).ok()?);
                    }
                }
                "action" => action = checked(self.optional_str()?, Action::check)?,
                "table" => table = checked(self.optional_str()?, TableName::check)?,
                "primary_key" => match self.peek()? {
                    b'-' | b'0'..=b'9' => {
                        let (text, is_integer) = self.number_text()?;
                        if !is_integer {
                            return None;
                        }
                        integer_key = Some(PrimaryKey::from_integer(safe_integer(text)?));
                    }
                    _ => primary_key = checked(self.optional_str()?, PrimaryKey::check)?,
                },
                "message" => message = checked(self.optional_str()?, Message::check)?,
                _ => {
                    // before, after, context: an object or null.
                    let slot = match &*key {
                        "after" => 0,
                        "before" => 1,
                        _ => 2,
                    };
                    if self.peek()? == b'n' {
                        self.literal(b"null")?;
                    } else {
                        if self.peek()? != b'{' {
                            return None;
                        }
                        let mut out = std::mem::take(&mut self.objects[slot]);
                        out.clear();
                        self.object(&mut out, 1)?;
                        self.objects[slot] = out;
                        has_object[slot] = true;
                    }
                }
            }
            if self.object_ends()? {
                break;
            }
        }
        let (user, action, table) = (user?, action?, table?);
        let primary_key = primary_key
            .as_deref()
            .or(integer_key.as_ref().map(PrimaryKey::as_str));
        if primary_key.is_none() && super::requires_primary_key(&action) {
            return None;
        }
        let source = source
            .as_deref()
            .unwrap_or_else(|| super::default_source(&user));
        let object =
            |slot: usize| has_object[slot].then(|| ObjectForm::Canonical(&self.objects[slot]));
        let parts = RecordForm {
            action: &action,
            after: object(0),
            before: object(1),
            context: object(2),
            id: id.as_deref(),
            ip: ip.unwrap_or(peer_ip),
            message: message.as_deref(),
            primary_key,
            source,
            table: &table,
            time: time.unwrap_or(received),
            user: &user,
        }
        .canonical_parts();
        let sent_form = if sent_id && (time.is_none() || ip.is_none()) {
            // Read the event again as a plain object (level 0 is free: its members sit at 1).
            let end = self.pos;
            self.pos = start;
            let mut form = Vec::with_capacity(end - start);
            self.object(&mut form, 0)?;
            debug_assert_eq!(self.pos, end);
            Some(form)
        } else {
            None
        };
        Some(FastEvent {
            id: id.map(Cow::into_owned),
            sent_form,
            parts,
        })
    }
}
