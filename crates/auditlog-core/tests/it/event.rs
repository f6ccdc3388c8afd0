//! Event validation (SPEC §2), one test per rule, and the stored-record format.

use std::net::IpAddr;

use auditlog_core::event::{
    CanonicalParts, EventInput, FieldError, MonotonicClock, Record, Timestamp, canonical_event,
    canonical_input,
};
use auditlog_core::json::{JsonErrorKind, Value};

use crate::{canonical_string, json, testdata};

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-25T20:42:28Z").expect("valid")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid address")
}

/// A valid LOGIN event with `extra` members (JSON text, without braces) added.
fn event_with(extra: &str) -> Value {
    let comma = if extra.is_empty() { "" } else { "," };
    json(&format!(
        r#"{{"user":"alice","action":"LOGIN","table":"sessions"{comma}{extra}}}"#
    ))
}

fn accept(extra: &str) -> EventInput {
    EventInput::from_value(event_with(extra), now()).unwrap_or_else(|err| panic!("{extra}: {err}"))
}

fn refuse(extra: &str) -> FieldError {
    match EventInput::from_value(event_with(extra), now()) {
        Ok(event) => panic!("{extra} accepted: {event:?}"),
        Err(err) => err,
    }
}

fn refuse_event(text: &str) -> FieldError {
    EventInput::from_value(json(text), now()).expect_err(text)
}

/// The minimal valid event with `field` set to `value_json` (replacing it if present).
fn event_setting(field: &str, value_json: &str) -> Value {
    let mut members: Vec<(String, String)> = [
        ("user", "\"u\""),
        ("action", "\"LOGIN\""),
        ("table", "\"t\""),
    ]
    .iter()
    .filter(|(name, _)| *name != field)
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    members.push((field.to_owned(), value_json.to_owned()));
    let body: Vec<String> = members.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
    json(&format!("{{{}}}", body.join(",")))
}

fn refuse_setting(field: &str, value_json: &str) -> FieldError {
    EventInput::from_value(event_setting(field, value_json), now())
        .expect_err(&format!("{field}: {value_json}"))
}

fn assert_refused(extra: &str, field: &str, code: &str) {
    let err = refuse(extra);
    assert_eq!(
        (err.field.as_str(), err.code),
        (field, code),
        "{extra}: {err}"
    );
}

#[test]
fn a_minimal_event_needs_only_user_action_and_table() {
    let event = accept("");
    assert_eq!(event.user.as_str(), "alice");
    assert_eq!(event.action.as_str(), "LOGIN");
    assert_eq!(event.table.as_str(), "sessions");
    assert!(event.id.is_none() && event.time.is_none() && event.ip.is_none());
}

#[test]
fn every_field_is_accepted_with_its_type() {
    let event = EventInput::from_value(
        json(
            r#"{"id":"req-1.a:b_c","time":"2026-11-25T21:00:00+01:00","user":"Bob Smith",
                "source":"api","ip":"2001:db8::1","action":"UPDATE","table":"customers",
                "primary_key":4711,"message":"changed the credit limit\nfrom 100 to 200",
                "before":{"credit_limit":100},"after":{"credit_limit":200},
                "context":{"request_id":"abc"}}"#,
        ),
        now(),
    )
    .expect("valid");
    assert_eq!(event.id.as_ref().map(|id| id.as_str()), Some("req-1.a:b_c"));
    assert_eq!(
        event.time.map(Timestamp::to_rfc3339).as_deref(),
        Some("2026-11-25T20:00:00Z")
    );
    assert_eq!(event.source.as_ref().map(|s| s.as_str()), Some("api"));
    assert_eq!(event.ip, Some(ip("2001:db8::1")));
    assert_eq!(event.primary_key.as_ref().map(|k| k.as_str()), Some("4711"));
    assert_eq!(event.before, Some(json(r#"{"credit_limit":100}"#)));
    assert_eq!(event.context, Some(json(r#"{"request_id":"abc"}"#)));
}

#[test]
fn a_missing_user_is_refused() {
    let err = refuse_event(r#"{"action":"LOGIN","table":"t"}"#);
    assert_eq!((err.field.as_str(), err.code), ("user", "missing_field"));
    assert_eq!(err.message, "missing field \"user\"");
}

#[test]
fn a_missing_action_is_refused() {
    let err = refuse_event(r#"{"user":"u","table":"t"}"#);
    assert_eq!((err.field.as_str(), err.code), ("action", "missing_field"));
}

#[test]
fn a_missing_table_is_refused() {
    let err = refuse_event(r#"{"user":"u","action":"LOGIN"}"#);
    assert_eq!((err.field.as_str(), err.code), ("table", "missing_field"));
}

#[test]
fn a_null_required_field_counts_as_missing() {
    let err = refuse_event(r#"{"user":null,"action":"LOGIN","table":"t"}"#);
    assert_eq!((err.field.as_str(), err.code), ("user", "missing_field"));
}

#[test]
fn create_update_delete_and_put_require_a_primary_key() {
    for action in ["CREATE", "UPDATE", "DELETE", "PUT"] {
        let err = refuse_event(&format!(
            r#"{{"user":"u","action":"{action}","table":"t"}}"#
        ));
        assert_eq!(
            (err.field.as_str(), err.code),
            ("primary_key", "missing_field"),
            "{action}"
        );
        let with_key =
            format!(r#"{{"user":"u","action":"{action}","table":"t","primary_key":"7"}}"#);
        assert!(
            EventInput::from_value(json(&with_key), now()).is_ok(),
            "{action}"
        );
    }
    for action in ["LOGIN", "SEND", "PUBLISH", "GENERATE", "POST", "CREATED"] {
        let text = format!(r#"{{"user":"u","action":"{action}","table":"t"}}"#);
        assert!(
            EventInput::from_value(json(&text), now()).is_ok(),
            "{action}"
        );
    }
}

#[test]
fn an_integer_primary_key_is_stored_as_its_decimal_string() {
    assert_eq!(
        accept(r#""primary_key":-42"#)
            .primary_key
            .map(|k| k.into_string())
            .as_deref(),
        Some("-42")
    );
    assert_eq!(
        accept(r#""primary_key":1e3"#)
            .primary_key
            .map(|k| k.into_string())
            .as_deref(),
        Some("1000")
    );
    assert_eq!(
        accept(r#""primary_key":"0042""#)
            .primary_key
            .map(|k| k.into_string())
            .as_deref(),
        Some("0042")
    );
}

#[test]
fn a_primary_key_that_is_not_a_string_or_an_integer_is_a_wrong_type() {
    for value in ["1.5", "true", "[1]", "{}"] {
        assert_refused(
            &format!(r#""primary_key":{value}"#),
            "primary_key",
            "wrong_type",
        );
    }
}

#[test]
fn a_primary_key_is_limited_to_256_characters() {
    accept(&format!(r#""primary_key":"{}""#, "é".repeat(256)));
    assert_refused(
        &format!(r#""primary_key":"{}""#, "k".repeat(257)),
        "primary_key",
        "too_long",
    );
    assert_refused(r#""primary_key":"""#, "primary_key", "invalid_value");
}

#[test]
fn an_id_is_1_to_128_characters_of_a_safe_alphabet() {
    accept(&format!(r#""id":"{}""#, "a".repeat(128)));
    assert_refused(&format!(r#""id":"{}""#, "a".repeat(129)), "id", "too_long");
    for bad in ["", "a b", "a/b", "é", "a\\u0000", "<x>"] {
        assert_refused(&format!(r#""id":"{bad}""#), "id", "invalid_value");
    }
}

#[test]
fn a_user_is_limited_to_256_characters_counted_as_unicode_scalars() {
    let user = format!("{:?}", "😂".repeat(256));
    assert!(EventInput::from_value(event_setting("user", &user), now()).is_ok());
    let err = refuse_setting("user", &format!("{:?}", "u".repeat(257)));
    assert_eq!((err.field.as_str(), err.code), ("user", "too_long"));
    assert!(err.message.contains("257"), "{}", err.message);
    let err = refuse_setting("user", "\"\"");
    assert_eq!((err.field.as_str(), err.code), ("user", "invalid_value"));
}

#[test]
fn a_source_is_a_lower_case_token() {
    for good in [
        "panel",
        "portal",
        "api",
        "system",
        "a",
        "x1_-",
        &"s".repeat(32),
    ] {
        accept(&format!(r#""source":"{good}""#));
    }
    for bad in ["", "Panel", "1api", "_x", "a b", "pänel", &"s".repeat(33)] {
        assert_refused(&format!(r#""source":"{bad}""#), "source", "invalid_value");
    }
}

#[test]
fn an_action_is_an_upper_case_token() {
    for good in ["A", "UPDATE", "X_1", &"A".repeat(32)] {
        let text = format!(r#"{{"user":"u","action":"{good}","table":"t","primary_key":"1"}}"#);
        assert!(EventInput::from_value(json(&text), now()).is_ok(), "{good}");
    }
    for bad in [
        "",
        "update",
        "1X",
        "_X",
        "UP-DATE",
        "UP DATE",
        &"A".repeat(33),
    ] {
        let err = refuse_event(&format!(r#"{{"user":"u","action":"{bad}","table":"t"}}"#));
        assert_eq!(
            (err.field.as_str(), err.code),
            ("action", "invalid_value"),
            "{bad}"
        );
    }
}

#[test]
fn a_table_is_1_to_128_characters() {
    let text = |table: &str| format!(r#"{{"user":"u","action":"LOGIN","table":"{table}"}}"#);
    assert!(EventInput::from_value(json(&text(&"t".repeat(128))), now()).is_ok());
    let err = refuse_event(&text(&"t".repeat(129)));
    assert_eq!((err.field.as_str(), err.code), ("table", "too_long"));
    let err = refuse_event(&text(""));
    assert_eq!((err.field.as_str(), err.code), ("table", "invalid_value"));
}

#[test]
fn a_message_is_up_to_4096_characters_and_may_hold_line_breaks() {
    accept(r#""message":"""#);
    accept(&format!(r#""message":"{}\t\r\n""#, "m".repeat(4093)));
    assert_refused(
        &format!(r#""message":"{}""#, "m".repeat(4097)),
        "message",
        "too_long",
    );
    for control in ["\\u0000", "\\u0007", "\\u001b", "\\u007f", "\\u0085"] {
        assert_refused(
            &format!(r#""message":"a{control}b""#),
            "message",
            "invalid_value",
        );
    }
}

#[test]
fn control_characters_are_refused_in_every_identifying_field() {
    for control in ["\\u0000", "\\t", "\\n", "\\u007f", "\\u0080", "\\u009f"] {
        for field in ["id", "user", "source", "action", "table", "primary_key"] {
            let text = if field == "action" {
                format!("\"A{control}B\"")
            } else {
                format!("\"a{control}b\"")
            };
            let err = refuse_setting(field, &text);
            assert_eq!(
                (err.field.as_str(), err.code),
                (field, "invalid_value"),
                "{field} {control}"
            );
        }
    }
}

#[test]
fn a_time_up_to_24_hours_ahead_is_accepted_and_one_nanosecond_more_is_not() {
    let event = accept(r#""time":"2026-11-26T20:42:28Z""#);
    assert_eq!(
        event.time.map(Timestamp::unix_nanos),
        Some(now().unix_nanos() + 86_400_000_000_000)
    );
    let err = refuse(r#""time":"2026-11-26T20:42:28.000000001Z""#);
    assert_eq!(
        (err.field.as_str(), err.code),
        ("time", "time_out_of_range")
    );
    assert!(err.message.contains("24 hours"), "{}", err.message);
}

#[test]
fn a_time_before_2000_is_refused() {
    accept(r#""time":"2000-01-01T00:00:00Z""#);
    accept(r#""time":"2000-01-01T01:00:00+01:00""#);
    assert_refused(
        r#""time":"1999-12-31T23:59:59.999999999Z""#,
        "time",
        "time_out_of_range",
    );
    assert_refused(
        r#""time":"2000-01-01T00:30:00+01:00""#,
        "time",
        "time_out_of_range",
    );
    assert_refused(
        r#""time":"1066-10-14T09:00:00Z""#,
        "time",
        "time_out_of_range",
    );
}

#[test]
fn a_time_that_is_not_rfc_3339_is_an_invalid_value() {
    for bad in [
        "yesterday",
        "2026-11-25",
        "2026-11-25T20:42:28",
        "1764103348",
        "2026-11-25 20:42:28Z",
    ] {
        assert_refused(&format!(r#""time":"{bad}""#), "time", "invalid_value");
    }
    assert_refused(r#""time":1764103348"#, "time", "wrong_type");
}

#[test]
fn any_offset_is_normalized_to_utc() {
    let event = accept(r#""time":"2026-11-25T12:00:00.250-08:00""#);
    assert_eq!(
        event.time.map(Timestamp::to_rfc3339).as_deref(),
        Some("2026-11-25T20:00:00.25Z")
    );
}

#[test]
fn fields_set_by_the_server_are_refused() {
    for field in ["tenant", "seq", "received_at", "leaf_hash"] {
        let err = refuse(&format!(r#""{field}":"x""#));
        assert_eq!((err.field.as_str(), err.code), (field, "server_field"));
        assert!(err.message.contains("server"), "{}", err.message);
    }
}

#[test]
fn unknown_fields_are_refused() {
    let err = refuse(r#""User":"x""#);
    assert_eq!((err.field.as_str(), err.code), ("User", "unknown_field"));
    assert!(
        err.message.starts_with("unknown field \"User\""),
        "{}",
        err.message
    );
    let long = "k".repeat(10_000);
    let err = refuse(&format!(r#""{long}":1"#));
    assert!(err.field.len() < 100 && err.message.len() < 400);
}

#[test]
fn fields_of_the_wrong_json_type_are_refused() {
    for (field, value) in [
        ("user", "5"),
        ("action", "true"),
        ("table", "[]"),
        ("ip", "167772161"),
        ("id", "7"),
        ("source", "[\"api\"]"),
        ("message", "{}"),
        ("before", "[]"),
        ("after", "\"{}\""),
        ("context", "1"),
    ] {
        let err = refuse_setting(field, value);
        assert_eq!(
            (err.field.as_str(), err.code),
            (field, "wrong_type"),
            "{field}: {value}"
        );
    }
    let err = EventInput::from_value(json("[]"), now()).expect_err("not an object");
    assert_eq!(err.code, "wrong_type");
}

#[test]
fn null_means_absent_for_optional_fields() {
    let event = accept(
        r#""id":null,"time":null,"source":null,"ip":null,"primary_key":null,"message":null,"before":null,"after":null,"context":null"#,
    );
    assert!(event.before.is_none() && event.after.is_none() && event.context.is_none());
    assert!(event.id.is_none() && event.time.is_none() && event.source.is_none());
}

#[test]
fn an_ip_must_be_an_ipv4_or_ipv6_address() {
    assert_eq!(accept(r#""ip":"10.0.0.1""#).ip, Some(ip("10.0.0.1")));
    assert_eq!(
        accept(r#""ip":"::ffff:10.0.0.1""#).ip,
        Some(ip("::ffff:10.0.0.1"))
    );
    for bad in [
        "",
        "10.0.0",
        "10.0.0.256",
        "010.0.0.1",
        "fe80::1%eth0",
        "localhost",
        "10.0.0.1:80",
    ] {
        assert_refused(&format!(r#""ip":"{bad}""#), "ip", "invalid_value");
    }
}

#[test]
fn resolving_fills_time_source_and_ip_defaults() {
    let received = now();
    let peer = ip("192.0.2.7");
    let record = accept("").resolve(received, peer);
    assert_eq!(
        (record.time, record.ip, record.source.as_str()),
        (received, peer, "panel")
    );

    let portal = EventInput::from_value(
        json(r#"{"user":"Portal","action":"LOGIN","table":"t"}"#),
        now(),
    )
    .expect("valid")
    .resolve(received, peer);
    assert_eq!(portal.source, "portal");

    let explicit = accept(r#""source":"api","ip":"10.1.1.1","time":"2026-01-01T00:00:00Z""#)
        .resolve(received, peer);
    assert_eq!(explicit.source, "api");
    assert_eq!(explicit.ip, ip("10.1.1.1"));
    assert_eq!(explicit.time.to_rfc3339(), "2026-01-01T00:00:00Z");
}

fn sample_record() -> Record {
    EventInput::from_value(
        json(
            r#"{"id":"evt-1","time":"2026-11-25T20:42:28.5Z","user":"Ünïcödé Üser","ip":"2001:DB8:0:0::1",
                "action":"UPDATE","table":"customers","primary_key":4711,
                "message":"credit limit \"raised\"\nby ops","before":{"credit_limit":100,"tags":["a","b"]},
                "after":{"tags":["a"],"credit_limit":2.5e2},"context":{"😂":1,"\uffff":2}}"#,
        ),
        now(),
    )
    .expect("valid")
    .resolve(now(), ip("127.0.0.1"))
}

fn with_server_fields(record: &Record, received_at: Timestamp, seq: u64, tenant: &str) -> Value {
    let Value::Object(mut members) = record.to_value() else {
        panic!("a record is an object");
    };
    members.push((
        "received_at".to_owned(),
        Value::String(received_at.to_rfc3339()),
    ));
    members.push(("seq".to_owned(), json(&seq.to_string())));
    members.push(("tenant".to_owned(), Value::String(tenant.to_owned())));
    Value::Object(members)
}

#[test]
fn the_canonical_event_equals_the_generic_canonical_form() {
    let record = sample_record();
    let parts = record.canonical_parts();
    let received_at = Timestamp::from_unix_nanos(1_764_103_348_123_000_000);
    let mut out = Vec::new();
    canonical_event(&parts, received_at, 42, "acme", &mut out);
    assert_eq!(
        out,
        with_server_fields(&record, received_at, 42, "acme").to_canonical()
    );
}

#[test]
fn the_canonical_event_format_matches_its_golden_file() {
    // A format change must add a new version of this file, never edit it: stored hashes
    // depend on these exact bytes.
    let record = sample_record();
    let mut out = Vec::new();
    canonical_event(
        &record.canonical_parts(),
        Timestamp::from_unix_nanos(1_764_103_348_123_000_000),
        42,
        "acme",
        &mut out,
    );
    let golden = testdata("canonical-event-v1.json");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&golden)
    );
}

#[test]
fn canonical_parts_are_cut_where_the_server_fields_sort_in() {
    let parts = sample_record().canonical_parts();
    let head = String::from_utf8(parts.head).expect("UTF-8");
    let middle = String::from_utf8(parts.middle).expect("UTF-8");
    let tail = String::from_utf8(parts.tail).expect("UTF-8");
    assert!(
        head.starts_with("{\"action\":\"UPDATE\",\"after\":"),
        "{head}"
    );
    assert!(head.ends_with(",\"primary_key\":\"4711\""), "{head}");
    assert_eq!(middle, "\"source\":\"panel\",\"table\":\"customers\"");
    assert_eq!(
        tail,
        "\"time\":\"2026-11-25T20:42:28.5Z\",\"user\":\"Ünïcödé Üser\"}"
    );
    // The ip is in Rust's canonical text form.
    assert!(head.contains("\"ip\":\"2001:db8::1\""), "{head}");
}

#[test]
fn canonical_event_places_commas_right_around_empty_parts() {
    let parts = CanonicalParts {
        head: b"{".to_vec(),
        middle: Vec::new(),
        tail: b"}".to_vec(),
    };
    let mut out = Vec::new();
    canonical_event(&parts, Timestamp::from_unix_nanos(0), 1, "t", &mut out);
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        r#"{"received_at":"1970-01-01T00:00:00Z","seq":1,"tenant":"t"}"#
    );
}

#[test]
fn a_stored_record_reads_back_to_the_same_record() {
    let record = sample_record();
    let mut stored = Vec::new();
    canonical_event(&record.canonical_parts(), now(), 7, "acme", &mut stored);
    let read = Record::from_canonical(&stored).expect("canonical");
    // Objects come back in canonical key order; everything else is identical.
    assert_eq!(
        read.after,
        Some(json(r#"{"credit_limit":250,"tags":["a"]}"#))
    );
    assert_eq!(
        read.to_value().to_canonical(),
        record.to_value().to_canonical()
    );
    assert_eq!(
        (read.id.as_deref(), read.time, read.ip),
        (Some("evt-1"), record.time, record.ip)
    );
    // Without the server fields, too.
    let bare = record.to_value().to_canonical();
    let read = Record::from_canonical(&bare).expect("canonical");
    assert_eq!(read.to_value().to_canonical(), bare);
}

#[test]
fn a_stored_record_that_is_not_exactly_canonical_is_refused() {
    let record = sample_record();
    let mut stored = Vec::new();
    canonical_event(&record.canonical_parts(), now(), 7, "acme", &mut stored);
    let text = String::from_utf8(stored).expect("UTF-8");
    for altered in [
        format!("{text} "),
        text.replacen("{\"action\"", "{ \"action\"", 1),
        text.replacen("\"seq\":7,", "", 1),
        text.replacen("\"seq\":7", "\"seq\":7.0", 1),
        text.replacen("2026-11-25T20:42:28.5Z", "2026-11-25T20:42:28.50Z", 1),
        text.replacen("2001:db8::1", "2001:DB8::1", 1),
        text.replacen(
            "\"tenant\":\"acme\"",
            "\"tenant\":\"acme\",\"leaf_hash\":\"x\"",
            1,
        ),
        text.replacen(
            "\"credit_limit\":100,\"tags\"",
            "\"tags\":[\"a\",\"b\"],\"credit_limit\":100,\"x\"",
            1,
        ),
        text.replacen(
            "\"user\":\"Ünïcödé Üser\"",
            "\"user\":\"\\u00dcn\u{ef}c\u{f6}d\u{e9} \u{dc}ser\"",
            1,
        ),
    ] {
        let err = Record::from_canonical(altered.as_bytes()).expect_err(&altered);
        assert!(
            matches!(
                err.kind,
                JsonErrorKind::InvalidRecord(_) | JsonErrorKind::Syntax(_)
            ),
            "{altered}: {err:?}"
        );
    }
    let err = Record::from_canonical(br#"{"action":"LOGIN"}"#).expect_err("incomplete");
    assert_eq!(err.code(), "invalid_record");
}

#[test]
fn the_idempotency_form_ignores_key_order_and_whitespace() {
    let first = json(r#"{"user":"u","action":"LOGIN","table":"t","after":{"a":1,"b":[1,2]}}"#);
    let retry =
        json(r#"{ "table":"t", "after":{"b":[1, 2],"a":1.0}, "action":"LOGIN", "user":"u" }"#);
    assert_eq!(canonical_input(&first), canonical_input(&retry));
    assert_eq!(canonical_input(&first), first.to_canonical());
    let changed = json(r#"{"user":"u","action":"LOGIN","table":"t","after":{"a":2,"b":[1,2]}}"#);
    assert_ne!(canonical_input(&first), canonical_input(&changed));
}

#[test]
fn received_at_never_decreases_when_the_wall_clock_steps_back() {
    let mut clock = MonotonicClock::default();
    let times = [100, 200, 150, 150, 300, 10];
    let stamped: Vec<i64> = times
        .iter()
        .map(|&t| clock.stamp(Timestamp::from_unix_nanos(t)).unix_nanos())
        .collect();
    assert_eq!(stamped, [100, 200, 200, 200, 300, 300]);
}

#[test]
fn json_errors_map_to_stable_codes() {
    use auditlog_core::json::{JsonLimits, parse_batch};
    let limits = JsonLimits {
        max_depth: 1,
        max_event_bytes: 16,
    };
    for (body, code) in [
        ("{", "malformed_json"),
        (r#"{"a":1,"a":2}"#, "duplicate_key"),
        (r#"{"a":{}}"#, "too_deep"),
        (r#"{"a":"0123456789abcdef"}"#, "event_too_large"),
        (r#"{"a":1e400}"#, "number_not_exact"),
        ("[]", "empty_batch"),
        ("[1]", "not_an_object"),
    ] {
        let err = parse_batch(body.as_bytes(), false, &limits).expect_err(body);
        assert_eq!(err.code(), code, "{body}");
    }
    assert_eq!(canonical_string(&json("[1]")), "[1]");
}
