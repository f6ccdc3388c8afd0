//! Sort columns, sort keys and the keyset cursor.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A column the results can be sorted by (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    Time,
    ReceivedAt,
    Seq,
    User,
    Ip,
    PrimaryKey,
    Action,
    Table,
    Message,
    Source,
}

impl SortField {
    pub const ALL: [SortField; 10] = [
        SortField::Time,
        SortField::ReceivedAt,
        SortField::Seq,
        SortField::User,
        SortField::Ip,
        SortField::PrimaryKey,
        SortField::Action,
        SortField::Table,
        SortField::Message,
        SortField::Source,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortField::Time => "time",
            SortField::ReceivedAt => "received_at",
            SortField::Seq => "seq",
            SortField::User => "user",
            SortField::Ip => "ip",
            SortField::PrimaryKey => "primary_key",
            SortField::Action => "action",
            SortField::Table => "table",
            SortField::Message => "message",
            SortField::Source => "source",
        }
    }

    /// The column a `sort=` name denotes (`pk` is `primary_key`, as in queries).
    pub fn from_name(name: &str) -> Option<SortField> {
        if name == "pk" {
            return Some(SortField::PrimaryKey);
        }
        SortField::ALL
            .into_iter()
            .find(|field| field.name() == name)
    }

    /// The fast column holding the sort values of a text column.
    pub(crate) fn text_column(self) -> Option<&'static str> {
        Some(match self {
            SortField::User => "user_s",
            SortField::PrimaryKey => "primary_key_s",
            SortField::Action => "action_s",
            SortField::Table => "table_s",
            SortField::Message => "message_s",
            SortField::Source => "source_s",
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortOrder {
    Asc,
    Desc,
}

impl SortOrder {
    pub fn name(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }

    pub fn from_name(name: &str) -> Option<SortOrder> {
        match name {
            "asc" => Some(SortOrder::Asc),
            "desc" => Some(SortOrder::Desc),
            _ => None,
        }
    }
}

/// The value an event is sorted by. Events are ordered by `(key, seq)`, both ascending or
/// both descending: equal values are ordered by `seq` in the same direction.
///
/// - `time`, `received_at`: nanoseconds since the epoch; `seq`: the seq;
/// - `ip`: the address as a 128-bit number, IPv4 as its mapped IPv6 address;
/// - text columns: the value's UTF-8 bytes (an absent value sorts as the empty string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SortKey {
    Number(i128),
    Ip(u128),
    Text(String),
}

/// A position in one sort order: the page continues after the event with this key and seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: SortField,
    pub order: SortOrder,
    pub key: SortKey,
    pub seq: u64,
}

/// Why a cursor string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CursorError(pub String);

impl Cursor {
    /// The opaque text of the cursor: base64url of `1|sort|order|kind|key|seq`.
    pub fn encode(&self) -> String {
        let (kind, key) = match &self.key {
            SortKey::Number(n) => ('n', n.to_string()),
            SortKey::Ip(ip) => ('i', ip.to_string()),
            SortKey::Text(text) => ('t', text.clone()),
        };
        let plain = format!(
            "1|{}|{}|{}|{}|{kind}{key}",
            self.sort.name(),
            self.order.name(),
            self.seq,
            key.len()
        );
        URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads a cursor; it must belong to this sort column and order.
    pub fn decode(text: &str, sort: SortField, order: SortOrder) -> Result<Cursor, CursorError> {
        let bad = || CursorError("cursor is not one this server gave out".to_owned());
        if text.len() > 4096 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let plain = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = plain.splitn(6, '|');
        let mut next = || parts.next().ok_or_else(bad);
        if next()? != "1" {
            return Err(bad());
        }
        let cursor_sort = SortField::from_name(next()?).ok_or_else(bad)?;
        let cursor_order = SortOrder::from_name(next()?).ok_or_else(bad)?;
        let seq: u64 = next()?.parse().map_err(|_| bad())?;
        let key_len: usize = next()?.parse().map_err(|_| bad())?;
        let rest = next()?;
        let mut chars = rest.chars();
        let kind = chars.next().ok_or_else(bad)?;
        let key_text = chars.as_str();
        if key_text.len() != key_len {
            return Err(bad());
        }
        if cursor_sort != sort || cursor_order != order {
            return Err(CursorError(format!(
                "cursor belongs to sort={}&order={}, not sort={}&order={}",
                cursor_sort.name(),
                cursor_order.name(),
                sort.name(),
                order.name()
            )));
        }
        let key = match (kind, sort) {
            ('n', SortField::Time | SortField::ReceivedAt | SortField::Seq) => {
                SortKey::Number(key_text.parse().map_err(|_| bad())?)
            }
            ('i', SortField::Ip) => SortKey::Ip(key_text.parse().map_err(|_| bad())?),
            ('t', field) if field.text_column().is_some() => SortKey::Text(key_text.to_owned()),
            _ => return Err(bad()),
        };
        Ok(Cursor {
            sort,
            order,
            key,
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_orders() {
        for (sort, key) in [
            (SortField::Time, SortKey::Number(-5)),
            (SortField::Ip, SortKey::Ip(u128::MAX)),
            (SortField::User, SortKey::Text("a|b|c é".to_owned())),
            (SortField::Message, SortKey::Text(String::new())),
        ] {
            let cursor = Cursor {
                sort,
                order: SortOrder::Asc,
                key,
                seq: 42,
            };
            let text = cursor.encode();
            assert_eq!(Cursor::decode(&text, sort, SortOrder::Asc), Ok(cursor));
            assert!(Cursor::decode(&text, sort, SortOrder::Desc).is_err());
        }
        for junk in ["", "x", "MXx8", "%%%", &"A".repeat(5000)] {
            assert!(Cursor::decode(junk, SortField::Time, SortOrder::Desc).is_err());
        }
    }
}
