//! The event as a client sends it (SPEC §2): validated field types, the checks that need
//! "now" (passed in, never read), the defaults the server applies, and the RFC 8785 form of
//! the resulting record, split so the server can splice in its own fields (`received_at`,
//! `seq`, `tenant`) without serializing the event twice.
//!
//! This module owns what a valid event is. It does not assign sequence numbers, read the
//! clock, know peers or proxies, or hash anything: the server passes the receive time and the
//! peer address in, and the ledger hashes the bytes built here.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;

use crate::json::{self, JsonError, JsonErrorKind, JsonLimits, Value, write_canonical_str};
use crate::tenant::TenantId;

pub mod fast;

/// Stable error codes of [`FieldError`], as the API returns them.
pub mod codes {
    pub const MISSING_FIELD: &str = "missing_field";
    pub const WRONG_TYPE: &str = "wrong_type";
    pub const INVALID_VALUE: &str = "invalid_value";
    pub const TOO_LONG: &str = "too_long";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const SERVER_FIELD: &str = "server_field";
    pub const TIME_OUT_OF_RANGE: &str = "time_out_of_range";
}

/// One field of one event refused. The caller adds the event index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The top-level field ("user", "before"); empty when the event itself is wrong.
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, code: &'static str, message: String) -> FieldError {
        // Unknown field names come from the client: keep the field short, like messages.
        let field = match field.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &field[..cut]),
            None => field.to_owned(),
        };
        FieldError {
            field,
            code,
            message,
        }
    }
}

/// A client-supplied string quoted for a message, cut to 80 characters so a hostile value
/// cannot inflate an error body.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 80;
        match self.0.char_indices().nth(MAX_CHARS) {
            Some((cut, _)) => write!(f, "{:?}", format!("{}…", &self.0[..cut])),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// C0 controls, DEL and C1 controls: invisible, and able to forge lines in logs and exports.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Check a text field: length in Unicode scalar values, and no controls except, where
/// `allow_line_breaks`, tab, LF and CR.
fn check_text(
    field: &str,
    text: &str,
    min_chars: usize,
    max_chars: usize,
    allow_line_breaks: bool,
) -> Result<(), FieldError> {
    // A string of at most `max_chars` bytes has at most `max_chars` characters: skip counting.
    if text.len() > max_chars {
        let n_chars = text.chars().count();
        if n_chars > max_chars {
            return Err(FieldError::new(
                field,
                codes::TOO_LONG,
                format!("{field} is {n_chars} characters long; at most {max_chars} are allowed"),
            ));
        }
    }
    if text.len() < min_chars {
        return Err(FieldError::new(
            field,
            codes::INVALID_VALUE,
            format!("{field} must not be empty"),
        ));
    }
    let allowed = |c: char| allow_line_breaks && matches!(c, '\t' | '\n' | '\r');
    if let Some(c) = text.chars().find(|&c| is_control(c) && !allowed(c)) {
        return Err(FieldError::new(
            field,
            codes::INVALID_VALUE,
            format!(
                "{field} {} contains the control character U+{:04X}",
                Shown(text),
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validate `text` (the rule is in the type's documentation).
            pub fn parse(text: &str) -> Result<$name, FieldError> {
                Self::check(text)?;
                Ok($name(text.to_owned()))
            }

            /// Validate `text`, keeping its allocation.
            pub fn from_string(text: String) -> Result<$name, FieldError> {
                Self::check(&text)?;
                Ok($name(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// The sender's idempotency key: 1–128 characters of `[A-Za-z0-9._:-]`.
    EventId
);
text_newtype!(
    /// Who made the change: 1–256 characters, no control characters.
    UserName
);
text_newtype!(
    /// Where the change was made: a lower-case token `[a-z][a-z0-9_-]{0,31}`.
    Source
);
text_newtype!(
    /// What was done: an upper-case token `[A-Z][A-Z0-9_]{0,31}`.
    Action
);
text_newtype!(
    /// The changed table (resource type): 1–128 characters, no control characters.
    TableName
);
text_newtype!(
    /// The changed record's key, always kept as a string: 1–256 characters, no control
    /// characters; a JSON integer is stored as its decimal form.
    PrimaryKey
);
text_newtype!(
    /// What the user did, in words: 0–4096 characters; tab and line breaks allowed, other
    /// control characters not.
    Message
);

impl EventId {
    pub const MAX_CHARS: usize = 128;

    fn check(text: &str) -> Result<(), FieldError> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if valid {
            Ok(())
        } else if text.chars().count() > Self::MAX_CHARS {
            Err(FieldError::new(
                "id",
                codes::TOO_LONG,
                format!("id is longer than {} characters", Self::MAX_CHARS),
            ))
        } else {
            Err(FieldError::new(
                "id",
                codes::INVALID_VALUE,
                format!(
                    "id {} must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
                    Shown(text)
                ),
            ))
        }
    }
}

impl UserName {
    pub const MAX_CHARS: usize = 256;

    fn check(text: &str) -> Result<(), FieldError> {
        check_text("user", text, 1, Self::MAX_CHARS, false)?;
        Ok(())
    }
}

/// A token: one byte from `first`, then up to 31 from `rest`.
fn is_token(text: &str, first: fn(u8) -> bool, rest: fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty() && bytes.len() <= 32 && first(bytes[0]) && bytes[1..].iter().all(|&b| rest(b))
}

impl Source {
    fn check(text: &str) -> Result<(), FieldError> {
        if is_token(
            text,
            |b| b.is_ascii_lowercase(),
            |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-',
        ) {
            Ok(())
        } else {
            Err(FieldError::new(
                "source",
                codes::INVALID_VALUE,
                format!(
                    "source {} must be a lower-case token of 1-32 characters \
                     (a-z first, then a-z, 0-9, '_' or '-'), such as \"panel\" or \"api\"",
                    Shown(text)
                ),
            ))
        }
    }
}

impl Action {
    fn check(text: &str) -> Result<(), FieldError> {
        if is_token(
            text,
            |b| b.is_ascii_uppercase(),
            |b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_',
        ) {
            Ok(())
        } else {
            Err(FieldError::new(
                "action",
                codes::INVALID_VALUE,
                format!(
                    "action {} must be an upper-case token of 1-32 characters \
                     (A-Z first, then A-Z, 0-9 or '_'), such as \"UPDATE\"",
                    Shown(text)
                ),
            ))
        }
    }

    /// Actions that change one identified record, and so must name it (SPEC §2).
    pub fn requires_primary_key(&self) -> bool {
        requires_primary_key(&self.0)
    }
}

fn requires_primary_key(action: &str) -> bool {
    matches!(action, "CREATE" | "UPDATE" | "DELETE" | "PUT")
}

impl TableName {
    pub const MAX_CHARS: usize = 128;

    fn check(text: &str) -> Result<(), FieldError> {
        check_text("table", text, 1, Self::MAX_CHARS, false)?;
        Ok(())
    }
}

impl PrimaryKey {
    pub const MAX_CHARS: usize = 256;

    fn check(text: &str) -> Result<(), FieldError> {
        check_text("primary_key", text, 1, Self::MAX_CHARS, false)?;
        Ok(())
    }

    pub fn from_integer(value: i64) -> PrimaryKey {
        PrimaryKey(value.to_string())
    }
}

impl Message {
    pub const MAX_CHARS: usize = 4096;

    fn check(text: &str) -> Result<(), FieldError> {
        check_text("message", text, 0, Self::MAX_CHARS, true)?;
        Ok(())
    }
}

/// An instant in UTC with nanosecond precision: nanoseconds since the Unix epoch, which
/// covers 1677-09-21 to 2262-04-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("time {0} is not an RFC 3339 timestamp: {1}")]
    Malformed(String, &'static str),
    #[error("time {0} is outside the supported range 1677-09-22 to 2262-04-11")]
    OutOfRange(String),
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

impl Timestamp {
    /// 2000-01-01T00:00:00Z, the earliest `time` an event may carry (SPEC §2).
    pub const EARLIEST_EVENT_TIME: Timestamp = Timestamp(946_684_800 * NANOS_PER_SECOND);
    /// How far after the server's time an event's `time` may lie (SPEC §2): 24 hours.
    pub const MAX_FUTURE_NANOS: i64 = 24 * 3600 * NANOS_PER_SECOND;

    pub const fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 timestamp (§5.6) with any offset, normalized to UTC.
    ///
    /// Strict on purpose: `T` or `t` between date and time (no space), an offset is
    /// required, at most 9 fractional digits carry information (further digits must be
    /// zeros, so nothing is rounded), and leap seconds (`:60`) are refused because a Unix
    /// time cannot hold them.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        let malformed = |why: &'static str| TimestampError::Malformed(Shown(text).to_string(), why);
        let bytes = text.as_bytes();
        let digits = |at: usize, n: usize| -> Option<i64> {
            let field = bytes.get(at..at + n)?;
            field.iter().try_fold(0i64, |acc, &b| {
                b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
            })
        };
        let literal =
            |at: usize, expected: &[u8]| bytes.get(at).is_some_and(|b| expected.contains(b));
        let layout = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)";
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            digits(0, 4),
            digits(5, 2),
            digits(8, 2),
            digits(11, 2),
            digits(14, 2),
            digits(17, 2),
        ) else {
            return Err(malformed(layout));
        };
        if !(literal(4, b"-")
            && literal(7, b"-")
            && literal(10, b"Tt")
            && literal(13, b":")
            && literal(16, b":"))
        {
            return Err(malformed(layout));
        }
        let mut pos = 19;
        let mut fraction_nanos = 0i64;
        if literal(pos, b".") {
            pos += 1;
            let fraction_start = pos;
            while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                let digit = i64::from(bytes[pos] - b'0');
                let place = pos - fraction_start;
                if place < 9 {
                    fraction_nanos += digit * 10i64.pow(8 - place as u32);
                } else if digit != 0 {
                    return Err(malformed("more than nanosecond precision"));
                }
                pos += 1;
            }
            if pos == fraction_start {
                return Err(malformed("expected digits after '.'"));
            }
        }
        let offset_seconds = match bytes.get(pos) {
            Some(b'Z' | b'z') => {
                pos += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                let (Some(offset_hour), Some(offset_minute)) =
                    (digits(pos + 1, 2), digits(pos + 4, 2))
                else {
                    return Err(malformed("expected an offset of the form +HH:MM"));
                };
                if !literal(pos + 3, b":") || offset_hour > 23 || offset_minute > 59 {
                    return Err(malformed("expected an offset of the form +HH:MM"));
                }
                pos += 6;
                let seconds = offset_hour * 3600 + offset_minute * 60;
                if sign == b'-' { -seconds } else { seconds }
            }
            _ => return Err(malformed("expected 'Z' or an offset such as +01:00")),
        };
        if pos != bytes.len() {
            return Err(malformed("unexpected characters after the offset"));
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(malformed("no such date"));
        }
        if second == 60 {
            return Err(malformed("leap seconds are not supported"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(malformed("no such time of day"));
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
        let nanos = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(fraction_nanos);
        i64::try_from(nanos)
            .map(Timestamp)
            .map_err(|_| TimestampError::OutOfRange(Shown(text).to_string()))
    }

    /// RFC 3339 in UTC with `Z`; the fraction only when non-zero, trailing zeros trimmed
    /// (`2026-11-25T20:42:28.5Z`). This exact form is what the canonical record holds.
    pub fn to_rfc3339(self) -> String {
        let mut out = Vec::with_capacity(30);
        self.write_rfc3339(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    fn write_rfc3339(self, out: &mut Vec<u8>) {
        fn two(out: &mut Vec<u8>, value: i64) {
            out.push(b'0' + (value / 10) as u8);
            out.push(b'0' + (value % 10) as u8);
        }
        let seconds = self.0.div_euclid(NANOS_PER_SECOND);
        let nanos = self.0.rem_euclid(NANOS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // i64 nanoseconds span years 1677 to 2262: always four digits.
        two(out, year / 100);
        two(out, year % 100);
        out.push(b'-');
        two(out, month);
        out.push(b'-');
        two(out, day);
        out.push(b'T');
        two(out, second_of_day / 3600);
        out.push(b':');
        two(out, second_of_day / 60 % 60);
        out.push(b':');
        two(out, second_of_day % 60);
        if nanos != 0 {
            out.push(b'.');
            let mut fraction = nanos;
            let mut n_digits = 9;
            while fraction % 10 == 0 {
                fraction /= 10;
                n_digits -= 1;
            }
            let mut digits = [b'0'; 9];
            for place in (0..n_digits).rev() {
                digits[place] = b'0' + (fraction % 10) as u8;
                fraction /= 10;
            }
            out.extend_from_slice(&digits[..n_digits]);
        }
        out.push(b'Z');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, public domain).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An event as the client sent it, every field validated. `before`, `after` and `context`
/// are objects; JSON `null` for any optional field means the same as leaving it out.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    pub id: Option<EventId>,
    pub time: Option<Timestamp>,
    pub user: UserName,
    pub source: Option<Source>,
    pub ip: Option<IpAddr>,
    pub action: Action,
    pub table: TableName,
    pub primary_key: Option<PrimaryKey>,
    pub message: Option<Message>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub context: Option<Value>,
}

/// The top-level fields a client may send, in the order error messages list them.
pub const INPUT_FIELDS: [&str; 12] = [
    "id",
    "time",
    "user",
    "source",
    "ip",
    "action",
    "table",
    "primary_key",
    "message",
    "before",
    "after",
    "context",
];

/// Fields only the server sets (SPEC §2); a client sending one gets 400.
pub const SERVER_FIELDS: [&str; 4] = ["tenant", "seq", "received_at", "leaf_hash"];

fn wrong_type(field: &str, expected: &str, value: &Value) -> FieldError {
    FieldError::new(
        field,
        codes::WRONG_TYPE,
        format!("{field} must be {expected}, not {}", value.kind_name()),
    )
}

/// The string of an optional string field; `None` for null.
fn optional_str<'v>(field: &str, value: &'v Value) -> Result<Option<&'v str>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        other => Err(wrong_type(field, "a string", other)),
    }
}

/// The string of an optional string field, moved out; `None` for null.
fn optional_string(field: &str, value: Value) -> Result<Option<String>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        other => Err(wrong_type(field, "a string", &other)),
    }
}

/// An optional object field; `None` for null.
fn optional_object(field: &str, value: Value) -> Result<Option<Value>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(value)),
        other => Err(wrong_type(field, "an object or null", &other)),
    }
}

fn missing(field: &str) -> FieldError {
    FieldError::new(
        field,
        codes::MISSING_FIELD,
        format!("missing field {field:?}"),
    )
}

fn parse_ip(field: &str, text: &str) -> Result<IpAddr, FieldError> {
    text.parse().map_err(|_| {
        FieldError::new(
            field,
            codes::INVALID_VALUE,
            format!("{field} {} is not an IPv4 or IPv6 address", Shown(text)),
        )
    })
}

fn parse_time(text: &str) -> Result<Timestamp, FieldError> {
    Timestamp::parse_rfc3339(text).map_err(|err| {
        let code = match err {
            TimestampError::Malformed(..) => codes::INVALID_VALUE,
            TimestampError::OutOfRange(_) => codes::TIME_OUT_OF_RANGE,
        };
        FieldError::new("time", code, err.to_string())
    })
}

impl EventInput {
    /// Validate one event object. `now` is the server's time, for the range check of `time`.
    /// Fields are checked in the order sent; the first problem is reported.
    pub fn from_value(value: Value, now: Timestamp) -> Result<EventInput, FieldError> {
        let Value::Object(entries) = value else {
            return Err(wrong_type("", "a JSON object", &value));
        };
        let mut id = None;
        let mut time = None;
        let mut user = None;
        let mut source = None;
        let mut ip = None;
        let mut action = None;
        let mut table = None;
        let mut primary_key = None;
        let mut message = None;
        let mut before = None;
        let mut after = None;
        let mut context = None;
        for (key, value) in entries {
            let field = key.as_str();
            match field {
                "id" => {
                    id = optional_string(field, value)?
                        .map(EventId::from_string)
                        .transpose()?
                }
                "time" => {
                    time = optional_str(field, &value)?.map(parse_time).transpose()?;
                    if let Some(t) = time {
                        check_time_range(t, now)?;
                    }
                }
                "user" => {
                    user = optional_string(field, value)?
                        .map(UserName::from_string)
                        .transpose()?
                }
                "source" => {
                    source = optional_string(field, value)?
                        .map(Source::from_string)
                        .transpose()?
                }
                "ip" => {
                    ip = optional_str(field, &value)?
                        .map(|text| parse_ip(field, text))
                        .transpose()?;
                }
                "action" => {
                    action = optional_string(field, value)?
                        .map(Action::from_string)
                        .transpose()?
                }
                "table" => {
                    table = optional_string(field, value)?
                        .map(TableName::from_string)
                        .transpose()?
                }
                "primary_key" => primary_key = primary_key_of(value)?,
                "message" => {
                    message = optional_string(field, value)?
                        .map(Message::from_string)
                        .transpose()?
                }
                "before" => before = optional_object(field, value)?,
                "after" => after = optional_object(field, value)?,
                "context" => context = optional_object(field, value)?,
                _ if SERVER_FIELDS.contains(&field) => {
                    return Err(FieldError::new(
                        field,
                        codes::SERVER_FIELD,
                        format!("field {field:?} is set by the server and must not be sent"),
                    ));
                }
                _ => {
                    return Err(FieldError::new(
                        field,
                        codes::UNKNOWN_FIELD,
                        format!(
                            "unknown field {}; the fields are {}",
                            Shown(field),
                            INPUT_FIELDS.join(", ")
                        ),
                    ));
                }
            }
        }
        let user = user.ok_or_else(|| missing("user"))?;
        let action = action.ok_or_else(|| missing("action"))?;
        let table = table.ok_or_else(|| missing("table"))?;
        if primary_key.is_none() && action.requires_primary_key() {
            return Err(FieldError::new(
                "primary_key",
                codes::MISSING_FIELD,
                format!(
                    "missing field \"primary_key\": action {action} must name the changed record"
                ),
            ));
        }
        Ok(EventInput {
            id,
            time,
            user,
            source,
            ip,
            action,
            table,
            primary_key,
            message,
            before,
            after,
            context,
        })
    }

    /// Apply the defaults: `time` is the receive time, `ip` the peer's address, `source`
    /// is "portal" for the customer portal's user `Portal` and "panel" otherwise (SPEC §2).
    pub fn resolve(self, received: Timestamp, peer_ip: IpAddr) -> Record {
        let source = match self.source {
            Some(source) => source.into_string(),
            None => default_source(self.user.as_str()).to_owned(),
        };
        Record {
            id: self.id.map(EventId::into_string),
            time: self.time.unwrap_or(received),
            user: self.user.into_string(),
            source,
            ip: self.ip.unwrap_or(peer_ip),
            action: self.action.into_string(),
            table: self.table.into_string(),
            primary_key: self.primary_key.map(PrimaryKey::into_string),
            message: self.message.map(Message::into_string),
            before: self.before,
            after: self.after,
            context: self.context,
        }
    }
}

/// The `source` of an event that names none: "portal" for the customer portal's user
/// `Portal`, "panel" otherwise (SPEC §2).
fn default_source(user: &str) -> &'static str {
    if user == "Portal" { "portal" } else { "panel" }
}

fn check_time_range(time: Timestamp, now: Timestamp) -> Result<(), FieldError> {
    if time < Timestamp::EARLIEST_EVENT_TIME {
        return Err(FieldError::new(
            "time",
            codes::TIME_OUT_OF_RANGE,
            format!("time {time} is before {}", Timestamp::EARLIEST_EVENT_TIME),
        ));
    }
    let latest = now.0.saturating_add(Timestamp::MAX_FUTURE_NANOS);
    if time.0 > latest {
        return Err(FieldError::new(
            "time",
            codes::TIME_OUT_OF_RANGE,
            format!("time {time} is more than 24 hours after the server's time {now}"),
        ));
    }
    Ok(())
}

fn primary_key_of(value: Value) -> Result<Option<PrimaryKey>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => PrimaryKey::from_string(text).map(Some),
        Value::Number(n) => match n.as_i64() {
            Some(integer) => Ok(Some(PrimaryKey::from_integer(integer))),
            None => Err(FieldError::new(
                "primary_key",
                codes::WRONG_TYPE,
                format!("primary_key must be a string or an integer, not the number {n}"),
            )),
        },
        other => Err(wrong_type("primary_key", "a string or an integer", &other)),
    }
}

/// An event with the defaults applied: what is stored, apart from the server's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Option<String>,
    pub time: Timestamp,
    pub user: String,
    pub source: String,
    pub ip: IpAddr,
    pub action: String,
    pub table: String,
    pub primary_key: Option<String>,
    pub message: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub context: Option<Value>,
}

/// The RFC 8785 form of a [`Record`] in three pieces, cut where the server's fields sort in:
/// `received_at` and `seq` between `primary_key` and `source`, `tenant` between `table`
/// and `time`. Each piece holds its members joined by commas, without a leading or trailing
/// comma; [`canonical_event`] adds the commas around the spliced fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalParts {
    /// `{` and the members `action` … `primary_key` present (at least `{`).
    pub head: Vec<u8>,
    /// The members `source` and `table` present (possibly empty).
    pub middle: Vec<u8>,
    /// The members `time` and `user` present, and the closing `}`.
    pub tail: Vec<u8>,
}

/// Writes `"key":` with the comma before it when the piece already has a member. Keys here
/// are fixed ASCII names that RFC 8785 writes without escapes.
fn member_key(out: &mut Vec<u8>, has_member: &mut bool, key: &str) {
    if *has_member {
        out.push(b',');
    }
    *has_member = true;
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// An object member of a record: a parsed value, or its RFC 8785 form already written
/// (the fast path of [`fast`] writes it straight from the request body).
pub(crate) enum ObjectForm<'r> {
    Value(&'r Value),
    Canonical(&'r [u8]),
}

/// A record's fields, borrowed: what [`Record::canonical_parts`] and the fast path both
/// write their canonical parts from, so the two cannot differ.
pub(crate) struct RecordForm<'r> {
    pub(crate) action: &'r str,
    pub(crate) after: Option<ObjectForm<'r>>,
    pub(crate) before: Option<ObjectForm<'r>>,
    pub(crate) context: Option<ObjectForm<'r>>,
    pub(crate) id: Option<&'r str>,
    pub(crate) ip: IpAddr,
    pub(crate) message: Option<&'r str>,
    pub(crate) primary_key: Option<&'r str>,
    pub(crate) source: &'r str,
    pub(crate) table: &'r str,
    pub(crate) time: Timestamp,
    pub(crate) user: &'r str,
}

impl RecordForm<'_> {
    pub(crate) fn canonical_parts(&self) -> CanonicalParts {
        let mut head = Vec::with_capacity(512);
        head.push(b'{');
        let mut has_member = false;
        member_key(&mut head, &mut has_member, "action");
        write_canonical_str(self.action, &mut head);
        let objects = [
            ("after", &self.after),
            ("before", &self.before),
            ("context", &self.context),
        ];
        for (key, value) in objects {
            match value {
                Some(ObjectForm::Value(value)) => {
                    member_key(&mut head, &mut has_member, key);
                    value.write_canonical(&mut head);
                }
                Some(ObjectForm::Canonical(bytes)) => {
                    member_key(&mut head, &mut has_member, key);
                    head.extend_from_slice(bytes);
                }
                None => {}
            }
        }
        if let Some(id) = self.id {
            member_key(&mut head, &mut has_member, "id");
            write_canonical_str(id, &mut head);
        }
        member_key(&mut head, &mut has_member, "ip");
        // An address's text never needs escaping; writing it in place saves an allocation.
        head.push(b'"');
        let _ = write!(head, "{}", self.ip);
        head.push(b'"');
        if let Some(message) = self.message {
            member_key(&mut head, &mut has_member, "message");
            write_canonical_str(message, &mut head);
        }
        if let Some(primary_key) = self.primary_key {
            member_key(&mut head, &mut has_member, "primary_key");
            write_canonical_str(primary_key, &mut head);
        }

        let mut middle = Vec::with_capacity(64);
        let mut has_member = false;
        member_key(&mut middle, &mut has_member, "source");
        write_canonical_str(self.source, &mut middle);
        member_key(&mut middle, &mut has_member, "table");
        write_canonical_str(self.table, &mut middle);

        let mut tail = Vec::with_capacity(64);
        let mut has_member = false;
        member_key(&mut tail, &mut has_member, "time");
        tail.push(b'"');
        self.time.write_rfc3339(&mut tail);
        tail.push(b'"');
        member_key(&mut tail, &mut has_member, "user");
        write_canonical_str(self.user, &mut tail);
        tail.push(b'}');

        CanonicalParts { head, middle, tail }
    }
}

impl Record {
    /// The record as a JSON object (members in canonical order, absent optionals left out,
    /// `ip` in Rust's canonical text form, `time` via [`Timestamp::to_rfc3339`]).
    pub fn to_value(&self) -> Value {
        let string = |text: &str| Value::String(text.to_owned());
        let mut members = vec![("action".to_owned(), string(&self.action))];
        let optional = [
            ("after", self.after.clone()),
            ("before", self.before.clone()),
            ("context", self.context.clone()),
            ("id", self.id.as_deref().map(string)),
            ("ip", Some(Value::String(self.ip.to_string()))),
            ("message", self.message.as_deref().map(string)),
            ("primary_key", self.primary_key.as_deref().map(string)),
            ("source", Some(string(&self.source))),
            ("table", Some(string(&self.table))),
            ("time", Some(Value::String(self.time.to_rfc3339()))),
            ("user", Some(string(&self.user))),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                members.push((key.to_owned(), value));
            }
        }
        Value::Object(members)
    }

    /// The record's RFC 8785 form, split for the server's fields (see [`CanonicalParts`]).
    pub fn canonical_parts(&self) -> CanonicalParts {
        fn object(value: &Option<Value>) -> Option<ObjectForm<'_>> {
            value.as_ref().map(ObjectForm::Value)
        }
        RecordForm {
            action: &self.action,
            after: object(&self.after),
            before: object(&self.before),
            context: object(&self.context),
            id: self.id.as_deref(),
            ip: self.ip,
            message: self.message.as_deref(),
            primary_key: self.primary_key.as_deref(),
            source: &self.source,
            table: &self.table,
            time: self.time,
            user: &self.user,
        }
        .canonical_parts()
    }

    /// Read a stored record back: `bytes` must be exactly what [`canonical_event`] (or the
    /// concatenated [`CanonicalParts`], without server fields) produced. Nothing is repaired:
    /// any difference from the canonical form is an error, since the bytes are what was hashed.
    pub fn from_canonical(bytes: &[u8]) -> Result<Record, JsonError> {
        let limits = JsonLimits {
            max_depth: json::MAX_DEPTH_CEILING,
            max_event_bytes: usize::MAX,
        };
        let value = json::parse(bytes, &limits)?;
        let invalid = |path: &str, problem: String| JsonError {
            index: None,
            offset: 0,
            path: path.to_owned(),
            kind: JsonErrorKind::InvalidRecord(problem),
        };
        let Value::Object(entries) = value else {
            return Err(invalid("", "not a JSON object".to_owned()));
        };
        let mut record = Record {
            id: None,
            time: Timestamp(0),
            user: String::new(),
            source: String::new(),
            ip: IpAddr::from([0, 0, 0, 0]),
            action: String::new(),
            table: String::new(),
            primary_key: None,
            message: None,
            before: None,
            after: None,
            context: None,
        };
        let mut seen_required = [false; 5];
        let mut received_at = None;
        let mut seq = None;
        let mut tenant = None;
        for (key, value) in entries {
            let path = format!("/{key}");
            let field_problem = |err: FieldError| invalid(&path, err.message);
            let text = match (&value, key.as_str()) {
                (Value::String(text), _) => Some(text.as_str()),
                (Value::Object(_), "after" | "before" | "context") | (Value::Number(_), "seq") => {
                    None
                }
                _ => {
                    return Err(invalid(
                        &path,
                        format!("unexpected {} for {key:?}", value.kind_name()),
                    ));
                }
            };
            let text = || text.unwrap_or_default();
            match key.as_str() {
                "action" => {
                    record.action = Action::parse(text()).map_err(field_problem)?.into_string();
                    seen_required[0] = true;
                }
                "after" => record.after = Some(value),
                "before" => record.before = Some(value),
                "context" => record.context = Some(value),
                "id" => {
                    record.id = Some(EventId::parse(text()).map_err(field_problem)?.into_string())
                }
                "ip" => record.ip = parse_ip("ip", text()).map_err(field_problem)?,
                "message" => {
                    record.message =
                        Some(Message::parse(text()).map_err(field_problem)?.into_string());
                }
                "primary_key" => {
                    record.primary_key = Some(
                        PrimaryKey::parse(text())
                            .map_err(field_problem)?
                            .into_string(),
                    );
                }
                "received_at" => received_at = Some(parse_time(text()).map_err(field_problem)?),
                "seq" => {
                    let number = match value {
                        Value::Number(n) => n.as_i64().and_then(|n| u64::try_from(n).ok()),
                        _ => None,
                    };
                    seq = Some(number.ok_or_else(|| {
                        invalid(&path, "seq is not a sequence number".to_owned())
                    })?);
                }
                "source" => {
                    record.source = Source::parse(text()).map_err(field_problem)?.into_string();
                    seen_required[1] = true;
                }
                "table" => {
                    record.table = TableName::parse(text())
                        .map_err(field_problem)?
                        .into_string();
                    seen_required[2] = true;
                }
                "tenant" => {
                    let id =
                        TenantId::parse(text()).map_err(|err| invalid(&path, err.to_string()))?;
                    tenant = Some(id);
                }
                "time" => {
                    record.time = parse_time(text()).map_err(field_problem)?;
                    seen_required[3] = true;
                }
                "user" => {
                    record.user = UserName::parse(text())
                        .map_err(field_problem)?
                        .into_string();
                    seen_required[4] = true;
                }
                _ => return Err(invalid(&path, format!("unexpected field {}", Shown(&key)))),
            }
        }
        let required = ["action", "source", "table", "time", "user"];
        if let Some(absent) = seen_required.iter().position(|seen| !seen) {
            return Err(invalid("", format!("missing field {:?}", required[absent])));
        }
        // Re-serializing and comparing proves every member is in its canonical form (key
        // order, number and string spelling, time and ip text) without checking each rule.
        let parts = record.canonical_parts();
        let mut expected = Vec::with_capacity(bytes.len());
        match (received_at, seq, tenant) {
            (Some(received_at), Some(seq), Some(tenant)) => {
                canonical_event(&parts, received_at, seq, tenant.as_str(), &mut expected);
            }
            (None, None, None) => {
                expected.extend_from_slice(&parts.head);
                if parts.head.len() > 1 {
                    expected.push(b',');
                }
                expected.extend_from_slice(&parts.middle);
                if !parts.middle.is_empty() && parts.tail.len() > 1 {
                    expected.push(b',');
                }
                expected.extend_from_slice(&parts.tail);
            }
            _ => {
                return Err(invalid(
                    "",
                    "received_at, seq and tenant must be present together".to_owned(),
                ));
            }
        }
        if expected != bytes {
            let offset = expected
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(bytes.len()));
            return Err(JsonError {
                offset,
                ..invalid("", "not in RFC 8785 canonical form".to_owned())
            });
        }
        Ok(record)
    }
}

/// Assemble the stored event: the record's parts with the server's fields spliced in at
/// their sorted places. Equals `Value::to_canonical` of the record object with
/// `received_at` (RFC 3339 string), `seq` (number) and `tenant` (string) added, for every
/// `seq` up to 2^53−1 (beyond that a JSON number cannot hold it exactly).
pub fn canonical_event(
    parts: &CanonicalParts,
    received_at: Timestamp,
    seq: u64,
    tenant: &str,
    out: &mut Vec<u8>,
) {
    splice_event(
        &parts.head,
        &parts.middle,
        &parts.tail,
        received_at,
        seq,
        tenant,
        out,
    );
}

/// [`canonical_event`] over borrowed pieces (the stored frame holds them contiguously).
pub fn splice_event(
    head: &[u8],
    middle: &[u8],
    tail: &[u8],
    received_at: Timestamp,
    seq: u64,
    tenant: &str,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(head);
    if head.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"received_at\":\"");
    received_at.write_rfc3339(out);
    out.extend_from_slice(b"\",\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    if !middle.is_empty() {
        out.push(b',');
        out.extend_from_slice(middle);
    }
    out.extend_from_slice(b",\"tenant\":");
    write_canonical_str(tenant, out);
    if tail.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(tail);
}

/// The event exactly as the client sent it, in RFC 8785 form: two submissions with the same
/// `id` are the same event when these bytes are equal.
pub fn canonical_input(value: &Value) -> Vec<u8> {
    value.to_canonical()
}

/// Hands out receive times that never decrease, even when the wall clock steps back; `now`
/// is read by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonotonicClock {
    last: Timestamp,
}

impl MonotonicClock {
    pub fn new() -> MonotonicClock {
        MonotonicClock::starting_at(Timestamp(i64::MIN))
    }

    /// A clock that continues from `last`, e.g. the newest stored `received_at` after a
    /// restart.
    pub fn starting_at(last: Timestamp) -> MonotonicClock {
        MonotonicClock { last }
    }

    /// `now`, or the last time handed out if that is later.
    pub fn stamp(&mut self, now: Timestamp) -> Timestamp {
        self.last = self.last.max(now);
        self.last
    }

    pub fn last(&self) -> Timestamp {
        self.last
    }
}

impl Default for MonotonicClock {
    fn default() -> MonotonicClock {
        MonotonicClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("valid timestamp")
    }

    #[test]
    fn timestamps_agree_with_the_time_crate() {
        use time::format_description::well_known::Rfc3339;
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999999999Z",
            "2026-11-25T20:42:28.5+01:00",
            "1969-12-31T23:59:59.1-00:30",
            "2262-04-11T23:47:16.854775807Z",
            "1677-09-21T00:12:43.145224192Z",
            "2100-03-01T00:00:00Z",
        ] {
            let expected = time::OffsetDateTime::parse(text, &Rfc3339).expect("time parses");
            let ours = at(text);
            assert_eq!(
                i128::from(ours.unix_nanos()),
                expected.unix_timestamp_nanos(),
                "{text}"
            );
        }
    }

    #[test]
    fn timestamps_print_in_utc_with_a_trimmed_fraction() {
        assert_eq!(
            at("2026-11-25T21:42:28.500+01:00").to_rfc3339(),
            "2026-11-25T20:42:28.5Z"
        );
        assert_eq!(
            at("2026-11-25T20:42:28Z").to_rfc3339(),
            "2026-11-25T20:42:28Z"
        );
        assert_eq!(
            at("2026-11-25T20:42:28.000000001Z").to_rfc3339(),
            "2026-11-25T20:42:28.000000001Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            Timestamp::EARLIEST_EVENT_TIME.to_rfc3339(),
            "2000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for text in [
            "",
            "2026-11-25",
            "2026-11-25 20:42:28Z",
            "2026-11-25T20:42:28",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-11-25T20:42:28.Z",
            "2026-11-25T20:42:28.1234567891Z",
            "2026-11-25T20:42:28+1:00",
            "2026-11-25T20:42:28+24:00",
            "2026-11-25T20:42:28Zjunk",
            "+2026-11-25T20:42:28Z",
        ] {
            assert!(
                matches!(
                    Timestamp::parse_rfc3339(text),
                    Err(TimestampError::Malformed(..))
                ),
                "{text}"
            );
        }
        assert_eq!(
            at("2026-11-25T20:42:28.1234567890000Z"),
            at("2026-11-25T20:42:28.123456789Z")
        );
        assert!(matches!(
            Timestamp::parse_rfc3339("9999-01-01T00:00:00Z"),
            Err(TimestampError::OutOfRange(_))
        ));
    }

    #[test]
    fn civil_dates_round_trip_over_the_whole_range() {
        let mut days = -106_751;
        while days < 106_751 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            days += 13;
        }
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut clock = MonotonicClock::new();
        let t1 = Timestamp::from_unix_nanos(100);
        assert_eq!(clock.stamp(t1), t1);
        assert_eq!(clock.stamp(Timestamp::from_unix_nanos(50)), t1);
        assert_eq!(
            clock.stamp(Timestamp::from_unix_nanos(150)),
            Timestamp::from_unix_nanos(150)
        );
        let mut resumed = MonotonicClock::starting_at(Timestamp::from_unix_nanos(500));
        assert_eq!(resumed.stamp(t1), Timestamp::from_unix_nanos(500));
    }
}
