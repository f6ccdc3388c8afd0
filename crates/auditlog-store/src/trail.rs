//! The trail of the trail: what auditlog records about its own use (sign-ins, tokens, people,
//! searches, exports, verifications), as ordinary events in the tenant's trail log
//! (`TenantId::trail`, a second signed log per tenant).
//!
//! Administrative changes made through the store (tokens, people) write their record into the
//! `outbox` table in the same transaction as the change, so no change exists without its
//! record; the writer moves outbox rows into the trail log. Records never carry secrets: no token,
//! password, hash or session secret is ever put into one.

use std::net::IpAddr;

use auditlog_core::event::Timestamp;
use auditlog_core::json::{Number, Value};

/// Who acted: a person or token name, where from, and through what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The person or token name (the event's `user`).
    pub name: String,
    pub ip: IpAddr,
    /// The event's `source`: `panel` (a signed-in person), `api` (a token).
    pub source: String,
    /// Whether what this actor does goes into the trail. Everything done through the server
    /// (by a person or a token) is; the local operator's commands are not (see
    /// [`Actor::operator`]).
    pub recorded: bool,
}

impl Actor {
    /// A person or token acting through the server: recorded.
    pub fn new(name: impl Into<String>, ip: IpAddr, source: &str) -> Actor {
        Actor {
            name: name.into(),
            ip,
            source: source.to_owned(),
            recorded: true,
        }
    }

    /// The signed-in person acting (source `panel`), if it is one: what a token they
    /// create records as its creator, so that disabling them revokes it.
    pub fn person_name(&self) -> Option<&str> {
        (self.recorded && self.source == "panel").then_some(self.name.as_str())
    }

    /// The operator of the data directory: `auditlog` commands run on it (and the first
    /// start of `serve`). They work on the storage itself, with the rights of its owner, who
    /// could as well edit the files; they are not recorded in the tenants' logs, which hold
    /// what people and tokens do through the server.
    pub fn operator() -> Actor {
        Actor {
            name: "operator".to_owned(),
            ip: IpAddr::from([127, 0, 0, 1]),
            source: "cli".to_owned(),
            recorded: false,
        }
    }
}

/// One record of the trail of the trail.
#[derive(Debug, Clone)]
pub struct TrailEvent {
    pub actor: Actor,
    /// `LOGIN`, `LOGIN_FAILED`, `LOGOUT`, `CREATE`, `UPDATE`, `DELETE`, `SEARCH`, `EXPORT`,
    /// `VERIFY`.
    pub action: &'static str,
    /// `auditlog.session`, `auditlog.token`, `auditlog.user`, `auditlog.search`, …
    pub table: &'static str,
    pub primary_key: Option<String>,
    pub message: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Details (the query of a search, the format of an export…), never secrets.
    pub context: Vec<(String, Value)>,
}

impl TrailEvent {
    pub fn new(actor: &Actor, action: &'static str, table: &'static str) -> TrailEvent {
        TrailEvent {
            actor: actor.clone(),
            action,
            table,
            primary_key: None,
            message: String::new(),
            before: None,
            after: None,
            context: Vec::new(),
        }
    }

    pub fn key(mut self, key: impl Into<String>) -> TrailEvent {
        self.primary_key = Some(key.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> TrailEvent {
        self.message = message.into();
        self
    }

    pub fn before(mut self, before: Value) -> TrailEvent {
        self.before = Some(before);
        self
    }

    pub fn after(mut self, after: Value) -> TrailEvent {
        self.after = Some(after);
        self
    }

    pub fn context(mut self, key: &str, value: Value) -> TrailEvent {
        self.context.push((key.to_owned(), value));
        self
    }

    /// The event as a client would send it, with `time` = when it happened.
    pub fn to_value(&self, time: Timestamp) -> Value {
        let mut fields = vec![
            ("time".to_owned(), Value::String(time.to_rfc3339())),
            ("user".to_owned(), Value::String(self.actor.name.clone())),
            ("ip".to_owned(), Value::String(self.actor.ip.to_string())),
            (
                "source".to_owned(),
                Value::String(self.actor.source.clone()),
            ),
            ("action".to_owned(), Value::String(self.action.to_owned())),
            ("table".to_owned(), Value::String(self.table.to_owned())),
        ];
        if let Some(key) = &self.primary_key {
            fields.push(("primary_key".to_owned(), Value::String(key.clone())));
        }
        if !self.message.is_empty() {
            fields.push(("message".to_owned(), Value::String(self.message.clone())));
        }
        if let Some(before) = &self.before {
            fields.push(("before".to_owned(), before.clone()));
        }
        if let Some(after) = &self.after {
            fields.push(("after".to_owned(), after.clone()));
        }
        if !self.context.is_empty() {
            fields.push(("context".to_owned(), Value::Object(self.context.clone())));
        }
        Value::Object(fields)
    }
}

/// A JSON object from pairs, for `before`/`after`/`context` values.
pub fn object(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

pub fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

/// A JSON integer (values beyond ±2^53 are written as strings, as SPEC §2 asks of clients).
pub fn integer(value: i64) -> Value {
    match Number::from_i64(value) {
        Some(number) => Value::Number(number),
        None => Value::String(value.to_string()),
    }
}

/// Unix seconds as an RFC 3339 string.
pub fn time_value(unix_secs: i64) -> Value {
    Value::String(Timestamp::from_unix_nanos(unix_secs.saturating_mul(1_000_000_000)).to_rfc3339())
}
