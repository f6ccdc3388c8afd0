//! The input rules of SPEC §2 and the error contract of §3, one rule per test, through the
//! real binary and a real socket: every refused request gets its status and stable error
//! code, names the event index and field where it can, and stores nothing.
//!
//! The strict JSON parser and the event model have their own unit tests in `auditlog-core`;
//! these tests check that the server applies them end to end. Proof hashes are verified by
//! the ledger crate's tests; here only their number and shape are checked.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{Client, Reply, Server, tempdir};

const MIB: usize = 1024 * 1024;
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// A valid UPDATE event; tests change one field at a time.
fn base_event() -> Map<String, Value> {
    let event = json!({
        "user": "alice",
        "ip": "203.0.113.7",
        "action": "UPDATE",
        "table": "customer",
        "primary_key": "4711",
        "message": "Updated credit limit",
        "before": {"credit_limit": 100},
        "after": {"credit_limit": 250}
    });
    match event {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The base event with `field` set to `value` (a JSON `null` is sent as `null`).
fn event_with(field: &str, value: Value) -> String {
    let mut event = base_event();
    event.insert(field.to_owned(), value);
    Value::Object(event).to_string()
}

/// The base event without `field`.
fn event_without(field: &str) -> String {
    let mut event = base_event();
    event.remove(field);
    Value::Object(event).to_string()
}

/// The base event without `removed`, as JSON text with `members` (raw JSON text, no leading
/// comma) appended inside the object: for input serde_json cannot produce (duplicate keys,
/// exotic numbers).
fn raw_event(removed: &[&str], members: &str) -> String {
    let mut event = base_event();
    for field in removed {
        event.remove(*field);
    }
    let text = Value::Object(event).to_string();
    format!("{},{members}}}", &text[..text.len() - 1])
}

/// One server on a fresh data directory, and how many events the test expects it to hold.
struct Fixture {
    server: Server,
    client: Client,
    n_stored: u64,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempdir();
        let server = Server::start(&dir.path().join("data"));
        let client = server.client();
        Fixture {
            server,
            client,
            n_stored: 0,
            _dir: dir,
        }
    }

    /// POST a JSON body that must be stored as exactly one new event; returns it as read back.
    #[track_caller]
    fn accept(&mut self, body: &str) -> Value {
        let reply = self.client.post_json(body);
        self.accepted(&reply, 1);
        self.event(self.n_stored)
    }

    /// Check a 201 that stored `n_new` new events, and the receipts' shape.
    #[track_caller]
    fn accepted(&mut self, reply: &Reply, n_new: u64) -> Value {
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_json_content_type(reply);
        let receipt = reply.json();
        let receipts = receipt["events"].as_array().expect("receipts");
        for (event_idx, one) in receipts.iter().enumerate() {
            let hash = one["leaf_hash"].as_str().expect("leaf_hash");
            assert_eq!(decoded_len(hash), 32, "receipt {event_idx}: {}", reply.text);
        }
        self.n_stored += n_new;
        assert_eq!(receipt["checkpoint_size"], self.n_stored, "{}", reply.text);
        self.assert_nothing_more_stored();
        receipt
    }

    /// GET one stored event; it must exist.
    #[track_caller]
    fn event(&self, seq: u64) -> Value {
        let reply = self.client.get(&format!("/api/v1/events/{seq}"));
        assert_eq!(reply.status, 200, "GET event {seq}: {}", reply.text);
        assert_json_content_type(&reply);
        reply.json()
    }

    /// POST `body` as JSON; it must be refused with `status` and `code` and store nothing.
    /// Returns the `error` object.
    #[track_caller]
    fn reject(&self, body: &str, status: u16, code: &str) -> Value {
        self.reject_as(body.as_bytes(), "application/json", status, code)
    }

    #[track_caller]
    fn reject_as(&self, body: &[u8], content_type: &str, status: u16, code: &str) -> Value {
        // A refusal may be sent before the body is read, and then hyper closes the connection
        // without `Connection: close`: a connection of its own keeps the shared pool clean.
        let reply = Client::new(&self.server.addr, Some(&self.server.token)).post(
            "/api/v1/events",
            content_type,
            body,
        );
        let error = assert_error(&reply, status, code);
        self.assert_nothing_more_stored();
        error
    }

    /// A single event refused for one top-level field: 400, `code`, index 0 and the field
    /// named in `field` and in the message.
    #[track_caller]
    fn reject_field(&self, body: &str, field: &str, code: &str) -> Value {
        let error = self.reject(body, 400, code);
        assert_eq!(error["index"], 0, "{error}");
        assert_eq!(error["field"], field, "{error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("event 0: "), "{error}");
        assert!(message.contains(field), "{error}");
        error
    }

    /// The newest stored event is `n_stored` and there is none after it.
    #[track_caller]
    fn assert_nothing_more_stored(&self) {
        if self.n_stored > 0 {
            let last = self
                .client
                .get(&format!("/api/v1/events/{}", self.n_stored));
            assert_eq!(last.status, 200, "event {}: {}", self.n_stored, last.text);
        }
        let next = self
            .client
            .get(&format!("/api/v1/events/{}", self.n_stored + 1));
        assert_eq!(
            next.status,
            404,
            "event {} exists: {}",
            self.n_stored + 1,
            next.text
        );
        assert_eq!(next.code(), "not_found");
    }
}

#[track_caller]
fn assert_json_content_type(reply: &Reply) {
    assert!(
        reply.content_type.starts_with("application/json"),
        "content type {:?} of {}",
        reply.content_type,
        reply.text
    );
}

/// Status, JSON content type, the `{"error": {"code", "message", …}}` shape and the code.
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_json_content_type(reply);
    let body = reply.json();
    let error = &body["error"];
    assert_eq!(error["code"], code, "{}", reply.text);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    error.clone()
}

fn decoded_len(base64_text: &str) -> usize {
    base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .map(|bytes| bytes.len())
        .unwrap_or(0)
}

fn parse_time(text: &Value) -> OffsetDateTime {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {text}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format time")
}

/// `{"a": {"a": … {}}}` with `depth` levels of objects (`{}` is depth 1).
fn nested_objects(depth: usize) -> String {
    format!(
        "{}{{}}{}",
        "{\"a\":".repeat(depth - 1),
        "}".repeat(depth - 1)
    )
}

// ---------------------------------------------------------------------------------------
// §2 fields
// ---------------------------------------------------------------------------------------

#[test]
fn an_id_is_1_to_128_characters_of_letters_digits_and_dot_underscore_colon_dash() {
    let mut fixture = Fixture::start();
    for id in [
        "a".to_owned(),
        "Az09._:-".to_owned(),
        "urn:order:2024-11-25.7_b".to_owned(),
        "x".repeat(128),
    ] {
        let event = fixture.accept(&event_with("id", json!(id)));
        assert_eq!(event["id"], id.as_str());
    }
    for id in [
        "",
        "a b",
        "a/b",
        "caf\u{e9}",
        "<id>",
        "a\nb",
        "a+b",
        "\u{ff21}",
    ] {
        fixture.reject_field(&event_with("id", json!(id)), "id", "invalid_value");
    }
    fixture.reject_field(&event_with("id", json!("x".repeat(129))), "id", "too_long");
    fixture.reject_field(&event_with("id", json!(17)), "id", "wrong_type");
    fixture.reject_field(&event_with("id", json!(["a"])), "id", "wrong_type");
}

#[test]
fn a_time_with_an_offset_is_stored_as_the_same_instant_in_utc() {
    let mut fixture = Fixture::start();
    for (sent, utc) in [
        ("2024-03-01T10:00:00+02:00", "2024-03-01T08:00:00Z"),
        ("2024-02-29T23:30:00-05:00", "2024-03-01T04:30:00Z"),
        ("2024-03-01T08:00:00.25+00:30", "2024-03-01T07:30:00.25Z"),
        ("2024-03-01t08:00:00z", "2024-03-01T08:00:00Z"),
    ] {
        let event = fixture.accept(&event_with("time", json!(sent)));
        let stored = event["time"].as_str().expect("time");
        assert!(stored.ends_with('Z'), "{sent} stored as {stored}");
        assert_eq!(
            parse_time(&event["time"]),
            OffsetDateTime::parse(utc, &Rfc3339).expect("utc"),
            "{sent} stored as {stored}"
        );
    }
}

#[test]
fn a_time_that_is_not_an_rfc3339_timestamp_is_invalid() {
    let fixture = Fixture::start();
    for time in [
        "",
        "yesterday",
        "2024-03-01",
        "2024-03-01 10:00:00Z",
        "2024-03-01T10:00:00",
        "2024-02-30T10:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T10:00:00+2:00",
        "Fri, 01 Mar 2024 10:00:00 GMT",
    ] {
        fixture.reject_field(&event_with("time", json!(time)), "time", "invalid_value");
    }
    fixture.reject_field(
        &event_with("time", json!(1_709_287_200)),
        "time",
        "wrong_type",
    );
}

#[test]
fn a_time_more_than_24_hours_ahead_or_before_2000_is_out_of_range() {
    let mut fixture = Fixture::start();
    let now = OffsetDateTime::now_utc();
    let too_late = rfc3339(now + time::Duration::hours(25));
    let error = fixture.reject_field(
        &event_with("time", json!(too_late)),
        "time",
        "time_out_of_range",
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("24 hours"),
        "{error}"
    );
    for too_early in [
        "1999-12-31T23:59:59.999999999Z",
        "1970-01-01T00:00:00Z",
        // 1999-12-31T23:30:00Z: the range applies to the instant, not the local digits.
        "2000-01-01T00:30:00+01:00",
    ] {
        fixture.reject_field(
            &event_with("time", json!(too_early)),
            "time",
            "time_out_of_range",
        );
    }
    for fine in [
        "2000-01-01T00:00:00Z".to_owned(),
        rfc3339(now + time::Duration::hours(23)),
        rfc3339(now - time::Duration::days(3650)),
    ] {
        let event = fixture.accept(&event_with("time", json!(fine)));
        assert_eq!(
            parse_time(&event["time"]),
            OffsetDateTime::parse(&fine, &Rfc3339).expect("time")
        );
    }
}

#[test]
fn an_event_without_time_gets_the_receive_time() {
    let mut fixture = Fixture::start();
    for body in [event_without("time"), event_with("time", Value::Null)] {
        let before = OffsetDateTime::now_utc() - time::Duration::seconds(2);
        let event = fixture.accept(&body);
        let after = OffsetDateTime::now_utc() + time::Duration::seconds(2);
        let time = parse_time(&event["time"]);
        assert!(before <= time && time <= after, "{event}");
        let received_at = parse_time(&event["received_at"]);
        assert!(
            (received_at - time).abs() < time::Duration::seconds(2),
            "{event}"
        );
    }
}

#[test]
fn user_is_required_and_holds_1_to_256_characters_without_controls() {
    let mut fixture = Fixture::start();
    for user in [
        "x".to_owned(),
        "\u{fc}".repeat(256),
        "Jos\u{e9} \u{1f600}".to_owned(),
    ] {
        assert_eq!(
            fixture.accept(&event_with("user", json!(user)))["user"],
            user
        );
    }
    fixture.reject_field(&event_without("user"), "user", "missing_field");
    fixture.reject_field(&event_with("user", Value::Null), "user", "missing_field");
    fixture.reject_field(&event_with("user", json!("")), "user", "invalid_value");
    fixture.reject_field(
        &event_with("user", json!("\u{fc}".repeat(257))),
        "user",
        "too_long",
    );
    fixture.reject_field(&event_with("user", json!(42)), "user", "wrong_type");
    fixture.reject_field(
        &event_with("user", json!({"name": "alice"})),
        "user",
        "wrong_type",
    );
}

#[test]
fn source_defaults_to_portal_for_the_user_portal_and_to_panel_otherwise() {
    let mut fixture = Fixture::start();
    let mut portal = base_event();
    portal.insert("user".into(), json!("Portal"));
    assert_eq!(
        fixture.accept(&Value::Object(portal.clone()).to_string())["source"],
        "portal"
    );
    portal.insert("source".into(), json!("api"));
    assert_eq!(
        fixture.accept(&Value::Object(portal).to_string())["source"],
        "api"
    );
    assert_eq!(fixture.accept(&event_without("source"))["source"], "panel");
    assert_eq!(
        fixture.accept(&event_with("source", Value::Null))["source"],
        "panel"
    );
    assert_eq!(
        fixture.accept(&event_with("user", json!("portal")))["source"],
        "panel"
    );
}

#[test]
fn source_is_a_lower_case_token() {
    let mut fixture = Fixture::start();
    for source in ["panel", "portal", "api", "system", "billing-sync_2", "a"] {
        assert_eq!(
            fixture.accept(&event_with("source", json!(source)))["source"],
            source
        );
    }
    fixture.accept(&event_with("source", json!("s".repeat(32))));
    for source in [
        "",
        "Panel",
        "API",
        "web ui",
        "2fa",
        "-x",
        "panel\n",
        "s".repeat(33).as_str(),
    ] {
        fixture.reject_field(
            &event_with("source", json!(source)),
            "source",
            "invalid_value",
        );
    }
    fixture.reject_field(&event_with("source", json!(1)), "source", "wrong_type");
}

#[test]
fn ip_is_an_ipv4_or_ipv6_address() {
    let mut fixture = Fixture::start();
    for ip in [
        "192.0.2.1",
        "0.0.0.0",
        "2001:db8::1",
        "::1",
        "fe80::1:2:3:4",
    ] {
        assert_eq!(fixture.accept(&event_with("ip", json!(ip)))["ip"], ip);
    }
    for ip in [
        "",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "example.com",
        " 192.0.2.1",
        "192.0.2.1/24",
        "192.0.2.1:80",
        "2001:db8::g",
        "fe80::1%eth0",
        "<script>",
    ] {
        fixture.reject_field(&event_with("ip", json!(ip)), "ip", "invalid_value");
    }
    fixture.reject_field(
        &event_with("ip", json!(3_221_225_985_u32)),
        "ip",
        "wrong_type",
    );
}

#[test]
fn an_event_without_ip_gets_the_connecting_peer_address() {
    let mut fixture = Fixture::start();
    assert_eq!(fixture.accept(&event_without("ip"))["ip"], "127.0.0.1");
    assert_eq!(
        fixture.accept(&event_with("ip", Value::Null))["ip"],
        "127.0.0.1"
    );
}

#[test]
fn action_is_an_upper_case_token_of_1_to_32_characters() {
    let mut fixture = Fixture::start();
    for action in [
        "CREATE",
        "DELETE",
        "GENERATE",
        "LOGIN",
        "POST",
        "PUBLISH",
        "PUT",
        "SEND",
        "UPDATE",
        "RESET_PASSWORD2",
        "X",
    ] {
        assert_eq!(
            fixture.accept(&event_with("action", json!(action)))["action"],
            action
        );
    }
    fixture.accept(&event_with("action", json!("A".repeat(32))));
    for action in [
        "update",
        "Update",
        "",
        "UP DATE",
        "2FA",
        "_X",
        "UP-DATE",
        "\u{c4}NDERN",
    ] {
        fixture.reject_field(
            &event_with("action", json!(action)),
            "action",
            "invalid_value",
        );
    }
    fixture.reject_field(
        &event_with("action", json!("A".repeat(33))),
        "action",
        "invalid_value",
    );
    fixture.reject_field(&event_without("action"), "action", "missing_field");
    fixture.reject_field(&event_with("action", json!(true)), "action", "wrong_type");
}

#[test]
fn table_is_required_and_holds_1_to_128_characters_without_controls() {
    let mut fixture = Fixture::start();
    for table in [
        "t".to_owned(),
        "sip_trunk.routes".to_owned(),
        "\u{e9}".repeat(128),
    ] {
        assert_eq!(
            fixture.accept(&event_with("table", json!(table)))["table"],
            table
        );
    }
    fixture.reject_field(
        &event_with("table", json!("t".repeat(129))),
        "table",
        "too_long",
    );
    fixture.reject_field(&event_with("table", json!("")), "table", "invalid_value");
    fixture.reject_field(&event_without("table"), "table", "missing_field");
    fixture.reject_field(
        &event_with("table", json!(["customer"])),
        "table",
        "wrong_type",
    );
}

#[test]
fn primary_key_is_a_string_or_an_integer_and_is_stored_as_a_string() {
    let mut fixture = Fixture::start();
    for (sent, stored) in [
        (json!(4711), "4711"),
        (json!(-5), "-5"),
        (json!(0), "0"),
        (json!(MAX_SAFE_INTEGER), "9007199254740991"),
        (json!("SIP-0042"), "SIP-0042"),
        (json!("k".repeat(256)), "k".repeat(256).as_str()),
    ] {
        let event = fixture.accept(&event_with("primary_key", sent.clone()));
        assert_eq!(event["primary_key"], stored, "{sent}");
    }
    fixture.reject_field(
        &event_with("primary_key", json!("")),
        "primary_key",
        "invalid_value",
    );
    fixture.reject_field(
        &event_with("primary_key", json!("k".repeat(257))),
        "primary_key",
        "too_long",
    );
    for wrong in [json!(1.5), json!(true), json!({"id": 1}), json!([1])] {
        fixture.reject_field(
            &event_with("primary_key", wrong),
            "primary_key",
            "wrong_type",
        );
    }
    let body = raw_event(&["primary_key"], r#""primary_key":9007199254740992"#);
    let error = fixture.reject(&body, 400, "number_not_exact");
    assert_eq!(error["index"], 0, "{error}");
    assert_eq!(error["field"], "/primary_key", "{error}");
}

#[test]
fn primary_key_is_required_for_create_update_delete_and_put_but_not_for_login() {
    let mut fixture = Fixture::start();
    for action in ["CREATE", "UPDATE", "DELETE", "PUT"] {
        let mut event = base_event();
        event.insert("action".into(), json!(action));
        event.remove("primary_key");
        let body = Value::Object(event.clone()).to_string();
        let error = fixture.reject_field(&body, "primary_key", "missing_field");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(action),
            "{error}"
        );
        event.insert("primary_key".into(), Value::Null);
        fixture.reject_field(
            &Value::Object(event).to_string(),
            "primary_key",
            "missing_field",
        );
    }
    for action in ["LOGIN", "SEND", "GENERATE"] {
        let mut event = base_event();
        event.insert("action".into(), json!(action));
        event.remove("primary_key");
        let stored = fixture.accept(&Value::Object(event).to_string());
        assert!(
            stored.get("primary_key").is_none_or(Value::is_null),
            "{stored}"
        );
    }
}

#[test]
fn message_holds_0_to_4096_characters() {
    let mut fixture = Fixture::start();
    for message in [
        String::new(),
        "\u{e4}".repeat(4096),
        "line 1\nline 2\r\n\tindented".to_owned(),
    ] {
        assert_eq!(
            fixture.accept(&event_with("message", json!(message)))["message"],
            message
        );
    }
    fixture.accept(&event_without("message"));
    fixture.reject_field(
        &event_with("message", json!("\u{e4}".repeat(4097))),
        "message",
        "too_long",
    );
    fixture.reject_field(&event_with("message", json!(12)), "message", "wrong_type");
}

#[test]
fn before_after_and_context_are_objects_or_null() {
    let mut fixture = Fixture::start();
    for field in ["before", "after", "context"] {
        let object = json!({"nested": {"list": [1, "two", null, true]}, "n": 0.5});
        assert_eq!(
            fixture.accept(&event_with(field, object.clone()))[field],
            object
        );
        assert_eq!(
            fixture.accept(&event_with(field, json!({})))[field],
            json!({})
        );
        let stored = fixture.accept(&event_with(field, Value::Null));
        assert!(stored.get(field).is_none_or(Value::is_null), "{stored}");
        for wrong in [
            json!([]),
            json!([{"a": 1}]),
            json!("{}"),
            json!(1),
            json!(false),
        ] {
            fixture.reject_field(&event_with(field, wrong), field, "wrong_type");
        }
    }
}

#[test]
fn unknown_top_level_fields_are_refused() {
    let fixture = Fixture::start();
    for field in ["User", "extra", "diff", "timestamp", "primaryKey", ""] {
        let error = fixture.reject(&event_with(field, json!("x")), 400, "unknown_field");
        assert_eq!(error["index"], 0, "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
}

#[test]
fn fields_the_server_sets_are_refused_when_a_client_sends_them() {
    let fixture = Fixture::start();
    for (field, value) in [
        ("tenant", json!("other")),
        ("seq", json!(1)),
        ("received_at", json!("2024-03-01T10:00:00Z")),
        ("leaf_hash", json!("AAAA")),
        ("tenant", Value::Null),
    ] {
        let error = fixture.reject(&event_with(field, value), 400, "server_field");
        assert_eq!(error["index"], 0, "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
}

// ---------------------------------------------------------------------------------------
// §2 limits
// ---------------------------------------------------------------------------------------

/// What came back on a raw connection.
struct RawReply {
    status: u16,
    head: String,
    body: String,
}

/// Send `head` and then `body` on a fresh connection (from a second thread, so a server
/// that answers early cannot block us) and read one response.
fn raw_request(addr: &str, head: String, body: Vec<u8>) -> RawReply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || {
        // The server may close early (that is the point of some tests): ignore write errors.
        if writer.write_all(head.as_bytes()).is_ok() {
            for chunk in body.chunks(256 * 1024) {
                if writer.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    });
    let mut received = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    let (head_end, content_length) = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (at + 4, length);
        }
        match stream.read(&mut buffer) {
            Ok(0) => panic!("connection closed before a response: {received:?}"),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("read failed before a response: {e}"),
        }
    };
    while received.len() < head_end + content_length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    drop(stream);
    let _ = sender.join();
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawReply {
        status,
        head,
        body: String::from_utf8_lossy(&received[head_end..]).into_owned(),
    }
}

fn raw_error(reply: &RawReply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}{}", reply.head, reply.body);
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        reply.head
    );
    let body: Value =
        serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body));
    assert_eq!(body["error"]["code"], code, "{}", reply.body);
}

/// One small valid event padded with trailing whitespace to exactly `n_bytes`.
fn padded_body(n_bytes: usize) -> Vec<u8> {
    let mut body = Value::Object(base_event()).to_string().into_bytes();
    body.resize(n_bytes, b' ');
    body
}

#[test]
fn a_body_of_10_mib_is_read_and_a_larger_one_is_refused_with_413() {
    let mut fixture = Fixture::start();
    let limit = 10 * MIB;
    let reply = fixture
        .client
        .post("/api/v1/events", "application/json", &padded_body(limit));
    fixture.accepted(&reply, 1);

    let addr = fixture.server.addr.clone();
    let token = fixture.server.token.clone();
    // Declared too large: refused from the header alone, before any body byte is sent.
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        limit + 1
    );
    raw_error(&raw_request(&addr, head, Vec::new()), 413, "body_too_large");
    fixture.assert_nothing_more_stored();

    // Chunked, so the size is known only once the body has been read past the limit.
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let payload = padded_body(limit + 1);
    let mut chunked = Vec::with_capacity(payload.len() + 1024);
    for chunk in payload.chunks(MIB) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    raw_error(&raw_request(&addr, head, chunked), 413, "body_too_large");
    fixture.assert_nothing_more_stored();
}

/// A compact event of exactly `n_bytes` of JSON text, and the length of the string in
/// `context.blob` that pads it.
fn event_of_size(n_bytes: usize) -> (String, usize) {
    let mut event = base_event();
    event.insert("context".into(), json!({"blob": ""}));
    let blob_len = n_bytes - Value::Object(event.clone()).to_string().len();
    event.insert("context".into(), json!({"blob": "x".repeat(blob_len)}));
    let text = Value::Object(event).to_string();
    assert_eq!(text.len(), n_bytes);
    (text, blob_len)
}

#[test]
fn an_event_of_1_mib_is_accepted_and_one_byte_more_is_refused_with_its_index() {
    let mut fixture = Fixture::start();
    // Exactly 1 MiB of input, 1,000 bytes of it whitespace (so its stored form is smaller).
    let (compact, blob_len) = event_of_size(MIB - 1000);
    let spaced = format!("{}{}}}", &compact[..compact.len() - 1], " ".repeat(1000));
    assert_eq!(spaced.len(), MIB);
    let stored = fixture.accept(&spaced);
    assert_eq!(
        stored["context"]["blob"].as_str().map(str::len),
        Some(blob_len)
    );
    let reply = fixture.client.post_json(&format!("[{spaced},{spaced}]"));
    fixture.accepted(&reply, 2);

    let small = Value::Object(base_event()).to_string();
    let (large, _) = event_of_size(MIB + 1);
    let error = fixture.reject(&large, 400, "event_too_large");
    assert_eq!(error["index"], 0, "{error}");
    let error = fixture.reject(
        &format!("[{small},{large},{small}]"),
        400,
        "event_too_large",
    );
    assert_eq!(error["index"], 1, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("event 1"),
        "{error}"
    );
    let ndjson = format!("{small}\n{small}\n{large}\n");
    let error = fixture.reject_as(
        ndjson.as_bytes(),
        "application/x-ndjson",
        400,
        "event_too_large",
    );
    assert_eq!(error["index"], 2, "{error}");
}

#[test]
fn an_event_of_exactly_1_mib_is_stored_and_can_be_read_back() {
    let mut fixture = Fixture::start();
    let (event, blob_len) = event_of_size(MIB);
    let reply = fixture.client.post_json(&event);
    assert_eq!(reply.status, 201, "{}", reply.text);
    fixture.n_stored += 1;
    let stored = fixture.event(1);
    assert_eq!(
        stored["context"]["blob"].as_str().map(str::len),
        Some(blob_len)
    );
}

#[test]
fn the_event_size_and_depth_limits_are_configurable() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut server = Server::start_with_env(
        &data,
        &["--max-depth", "4"],
        &[("AUDITLOG_MAX_EVENT_BYTES", "2000")],
    );
    let client = server.client();
    // The event object is level 1, `context` level 2.
    let deepest = raw_event(&[], &format!("\"context\":{}", nested_objects(3)));
    let reply = client.post_json(&deepest);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let too_deep = raw_event(&[], &format!("\"context\":{}", nested_objects(4)));
    let reply = client.post_json(&too_deep);
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.code(), "too_deep", "{}", reply.text);
    let large = raw_event(
        &[],
        &format!("\"context\":{{\"blob\":\"{}\"}}", "m".repeat(2000)),
    );
    let reply = client.post_json(&format!("[{deepest},{large}]"));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.code(), "event_too_large", "{}", reply.text);
    assert_eq!(reply.json()["error"]["index"], 1, "{}", reply.text);
    server.stop();

    // Out of range: the server does not start.
    for (flag, value) in [
        ("--max-depth", "0"),
        ("--max-depth", "65"),
        ("--max-event-bytes", "1"),
    ] {
        let out = std::process::Command::new(crate::support::bin())
            .arg("--data")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0", flag, value])
            .output()
            .expect("serve");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
    }
}

#[test]
fn json_nested_32_deep_is_accepted_and_33_deep_is_too_deep() {
    let mut fixture = Fixture::start();
    // The event object is level 1 and `context` level 2.
    let deepest = raw_event(&[], &format!("\"context\":{}", nested_objects(31)));
    let stored = fixture.accept(&deepest);
    assert!(stored["context"].is_object());
    let reply = fixture.client.post_json(&format!("[{deepest}]"));
    fixture.accepted(&reply, 1);

    let too_deep = raw_event(&[], &format!("\"context\":{}", nested_objects(32)));
    let error = fixture.reject(&too_deep, 400, "too_deep");
    assert_eq!(error["index"], 0, "{error}");
    let field = error["field"].as_str().unwrap_or_default();
    assert!(field.starts_with("/context/a/a"), "{error}");
    let error = fixture.reject(&format!("[{deepest},{too_deep}]"), 400, "too_deep");
    assert_eq!(error["index"], 1, "{error}");
    let arrays = raw_event(
        &[],
        &format!("\"context\":{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31)),
    );
    let error = fixture.reject(&arrays, 400, "too_deep");
    assert!(
        error["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/context/a/0"),
        "{error}"
    );
    let ndjson = format!("{too_deep}\n");
    fixture.reject_as(ndjson.as_bytes(), "application/x-ndjson", 400, "too_deep");
}

#[test]
fn an_event_that_grows_when_made_canonical_can_still_be_read_back() {
    let mut fixture = Fixture::start();
    // `1e15` (4 bytes) is written `1000000000000000` (16 bytes) in RFC 8785 form: an event
    // within the 1 MiB input limit whose stored form is larger than 1 MiB.
    let n_numbers = (MIB - 1024) / 5;
    let numbers = vec!["1e15"; n_numbers].join(",");
    let body = raw_event(&[], &format!("\"context\":{{\"n\":[{numbers}]}}"));
    assert!(body.len() <= MIB);
    let reply = fixture.client.post_json(&body);
    assert_eq!(reply.status, 201, "{}", reply.text);
    fixture.n_stored += 1;
    let stored = fixture.event(1);
    assert_eq!(
        stored["context"]["n"].as_array().map(Vec::len),
        Some(n_numbers)
    );
    assert_eq!(stored["context"]["n"][0], 1_000_000_000_000_000_i64);
}

#[test]
fn duplicate_keys_are_refused_naming_their_path() {
    let fixture = Fixture::start();
    let top = raw_event(&[], r#""user":"mallory""#);
    let error = fixture.reject(&top, 400, "duplicate_key");
    assert_eq!(error["index"], 0, "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("event 0") && message.contains("\"user\""),
        "{error}"
    );

    // An escape that spells the same key is the same key.
    let escaped = raw_event(&[], r#""\u0075ser":"mallory""#);
    fixture.reject(&escaped, 400, "duplicate_key");

    // The field is the repeated member's JSON Pointer; the message names its object.
    for (members, object, field) in [
        (r#""context":{"x":1,"y":2,"x":3}"#, "/context", "/context/x"),
        (
            r#""context":{"a":{"b":{"k":1,"k":1}}}"#,
            "/context/a/b",
            "/context/a/b/k",
        ),
        (
            r#""context":{"list":[{"k":1},{"k":1,"k":2}]}"#,
            "/context/list/1",
            "/context/list/1/k",
        ),
        (
            r#""context":{"a/b~":1,"a/b~":2}"#,
            "/context",
            "/context/a~1b~0",
        ),
    ] {
        let error = fixture.reject(&raw_event(&[], members), 400, "duplicate_key");
        assert_eq!(error["index"], 0, "{error}");
        assert_eq!(error["field"], field, "{error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(object),
            "{error}"
        );
    }
    let batch = format!(
        "[{},{}]",
        Value::Object(base_event()),
        raw_event(
            &["before"],
            r#""before":{"credit_limit":1,"credit_limit":2}"#
        )
    );
    let error = fixture.reject(&batch, 400, "duplicate_key");
    assert_eq!(error["index"], 1, "{error}");
    assert_eq!(error["field"], "/before/credit_limit", "{error}");
}

/// SPEC §3: "400 names the event index and field". A duplicated top-level key is a field.
#[test]
fn a_duplicate_top_level_key_is_named_in_the_field_of_the_error() {
    let fixture = Fixture::start();
    let error = fixture.reject(&raw_event(&[], r#""user":"mallory""#), 400, "duplicate_key");
    let field = error["field"].as_str().unwrap_or_default();
    assert!(field == "user" || field == "/user", "{error}");
}

#[test]
fn integers_beyond_2_pow_53_minus_1_are_refused_with_their_path() {
    let mut fixture = Fixture::start();
    let body = raw_event(
        &[],
        &format!(
            "\"context\":{{\"max\":{MAX_SAFE_INTEGER},\"min\":-{MAX_SAFE_INTEGER},\"half\":0.5,\"tenth\":0.1}}"
        ),
    );
    let stored = fixture.accept(&body);
    assert_eq!(stored["context"]["max"], MAX_SAFE_INTEGER);
    assert_eq!(stored["context"]["min"], -MAX_SAFE_INTEGER);
    assert_eq!(stored["context"]["half"], 0.5);
    assert_eq!(stored["context"]["tenth"], 0.1);
    for (members, path) in [
        (r#""context":{"n":9007199254740992}"#, "/context/n"),
        (r#""context":{"n":-9007199254740992}"#, "/context/n"),
        (r#""context":{"n":18446744073709551616}"#, "/context/n"),
        (
            r#""context":{"list":[1,2,9007199254740993]}"#,
            "/context/list/2",
        ),
        (
            r#""context":{"a/b":{"c~d":12345678901234567890}}"#,
            "/context/a~1b/c~0d",
        ),
        (r#""context":{"n":1e20}"#, "/context/n"),
    ] {
        let error = fixture.reject(&raw_event(&[], members), 400, "number_not_exact");
        assert_eq!(error["index"], 0, "{error}");
        assert_eq!(error["field"], path, "{error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("event 0") && message.contains(path),
            "{error}"
        );
    }
    let body = raw_event(&["after"], r#""after":{"credit_limit":9007199254740992}"#);
    let batch = format!("[{},{body}]", Value::Object(base_event()));
    let error = fixture.reject(&batch, 400, "number_not_exact");
    assert_eq!(error["index"], 1, "{error}");
    assert_eq!(error["field"], "/after/credit_limit", "{error}");
}

#[test]
fn numbers_that_cannot_be_stored_exactly_are_refused() {
    let fixture = Fixture::start();
    for number in [
        "1e400",
        "-1e400",
        "1e-400",
        "0.1000000000000000055511151231257827",
    ] {
        let body = raw_event(&[], &format!("\"context\":{{\"x\":{number}}}"));
        let error = fixture.reject(&body, 400, "number_not_exact");
        assert_eq!(error["field"], "/context/x", "{number}: {error}");
    }
}

#[test]
fn strings_that_are_not_valid_utf8_are_refused() {
    let fixture = Fixture::start();
    let text = raw_event(&["message"], r#""message":"MARK""#);
    for bad in [&b"\xff"[..], b"\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82"] {
        let mut body = Vec::new();
        let (head, tail) = text.split_once("MARK").expect("marker");
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(bad);
        body.extend_from_slice(tail.as_bytes());
        let error = fixture.reject_as(&body, "application/json", 400, "malformed_json");
        assert_eq!(error["index"], 0, "{bad:?}: {error}");
    }
    let mut key = br#"{"user":"a","#.to_vec();
    key.extend_from_slice(b"\"\xfe\":1}");
    fixture.reject_as(&key, "application/json", 400, "malformed_json");
}

#[test]
fn a_lone_surrogate_escape_is_refused_and_a_pair_is_one_character() {
    let mut fixture = Fixture::start();
    for escape in [
        r"\ud800",
        r"\udc00",
        r"x\ud83dy",
        r"\ud83d\u0041",
        r"\ude00\ud83d",
    ] {
        let body = raw_event(&["message"], &format!("\"message\":\"{escape}\""));
        let error = fixture.reject(&body, 400, "malformed_json");
        assert_eq!(error["index"], 0, "{escape}: {error}");
    }
    let body = raw_event(&["message"], r#""message":"\ud83d\ude00""#);
    assert_eq!(fixture.accept(&body)["message"], "\u{1f600}");
}

#[test]
fn an_empty_body_or_an_empty_batch_is_refused() {
    let fixture = Fixture::start();
    for body in ["", "   \n ", "[]", "[ \n ]"] {
        fixture.reject(body, 400, "empty_batch");
    }
    for body in ["", "\n\n", " \r\n \n"] {
        fixture.reject_as(body.as_bytes(), "application/x-ndjson", 400, "empty_batch");
    }
}

#[test]
fn a_body_that_is_not_an_object_or_an_array_of_objects_is_refused() {
    let fixture = Fixture::start();
    let event = Value::Object(base_event()).to_string();
    for body in ["\"an event\"", "42", "null", "true"] {
        fixture.reject(body, 400, "not_an_object");
    }
    for (body, index) in [
        ("[1,2]".to_owned(), 0),
        ("[\"a\"]".to_owned(), 0),
        ("[null]".to_owned(), 0),
        (format!("[[{event}]]"), 0),
        (format!("[{event},{event},\"x\"]"), 2),
    ] {
        let error = fixture.reject(&body, 400, "not_an_object");
        assert_eq!(error["index"], index, "{body}: {error}");
    }
    for body in [
        format!("{event}{event}"),
        format!("[{event}] x"),
        format!("[{event}"),
        "{".to_owned(),
    ] {
        fixture.reject(&body, 400, "malformed_json");
    }
    // A trailing comma: whichever code, a 400 that stores nothing.
    let reply = fixture.client.post_json(&format!("[{event},]"));
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        ["malformed_json", "not_an_object"].contains(&reply.code().as_str()),
        "{}",
        reply.text
    );
    fixture.assert_nothing_more_stored();
}

#[test]
fn ndjson_with_one_bad_line_names_its_index_and_stores_nothing() {
    let fixture = Fixture::start();
    let good = Value::Object(base_event()).to_string();
    let bad_action = event_with("action", json!("update"));
    let body = format!("{good}\n{good}\n{bad_action}\n{good}\n");
    let error = fixture.reject_as(
        body.as_bytes(),
        "application/x-ndjson",
        400,
        "invalid_value",
    );
    assert_eq!(error["index"], 2, "{error}");
    assert_eq!(error["field"], "action", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("event 2: "),
        "{error}"
    );

    for (line, code) in [
        (r#"{"user":"#, "malformed_json"),
        ("[1]", "not_an_object"),
        (r#""text""#, "not_an_object"),
    ] {
        let body = format!("{good}\n{line}\n{good}\n");
        let error = fixture.reject_as(body.as_bytes(), "application/x-ndjson", 400, code);
        assert_eq!(error["index"], 1, "{line}: {error}");
    }
}

#[test]
fn a_body_that_is_not_json_or_ndjson_is_refused_with_415() {
    let mut fixture = Fixture::start();
    let event = Value::Object(base_event()).to_string();
    for content_type in [
        "text/plain",
        "text/html",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/csv",
    ] {
        fixture.reject_as(
            event.as_bytes(),
            content_type,
            415,
            "unsupported_media_type",
        );
    }
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let reply = fixture
            .client
            .post("/api/v1/events", content_type, event.as_bytes());
        fixture.accepted(&reply, 1);
    }
}

#[test]
fn a_400_names_the_event_index_and_field_in_code_message_index_and_field() {
    let fixture = Fixture::start();
    let good = Value::Object(base_event()).to_string();
    let batch = format!("[{good},{good},{}]", event_with("user", json!(5)));
    let reply = fixture.client.post_json(&batch);
    let error = assert_error(&reply, 400, "wrong_type");
    let body = reply.json();
    assert_eq!(
        body.as_object().map(Map::len),
        Some(1),
        "only `error`: {body}"
    );
    let code = error["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{code}"
    );
    assert_eq!(error["index"], 2, "{error}");
    assert_eq!(error["field"], "user", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("event 2") && message.contains("user"),
        "{message}"
    );
    fixture.assert_nothing_more_stored();
}

// ---------------------------------------------------------------------------------------
// hostile input
// ---------------------------------------------------------------------------------------

#[test]
fn html_and_script_are_stored_verbatim_and_served_only_as_json() {
    let mut fixture = Fixture::start();
    let script = "<script>alert(1)</script>";
    let mut event = base_event();
    event.insert("user".into(), json!(script));
    event.insert(
        "message".into(),
        json!("<img src=x onerror=alert(1)> & \"quoted\" </textarea>"),
    );
    event.insert("table".into(), json!("<b>customer</b>"));
    event.insert("primary_key".into(), json!("\"><svg onload=alert(1)>"));
    event.insert(
        "before".into(),
        json!({"name": script, "<i>key</i>": "</script><script>x()</script>"}),
    );
    event.insert(
        "context".into(),
        json!({"user_agent": "Mozilla/5.0 <script src=//evil></script>"}),
    );
    let reply = fixture
        .client
        .post_json(&Value::Object(event.clone()).to_string());
    fixture.accepted(&reply, 1);
    let stored = fixture.event(1);
    for field in [
        "user",
        "message",
        "table",
        "primary_key",
        "before",
        "context",
    ] {
        assert_eq!(stored[field], event[field], "{field}");
    }
    let reply = fixture.client.get("/api/v1/events/1");
    assert!(
        !reply.content_type.contains("html"),
        "{}",
        reply.content_type
    );
    assert_json_content_type(&reply);
    // Errors echo client text only inside JSON strings, never as markup.
    let reply = fixture
        .client
        .post_json(&event_with("action", json!(script)));
    let error = assert_error(&reply, 400, "invalid_value");
    assert!(
        !reply.content_type.contains("html"),
        "{}",
        reply.content_type
    );
    assert_eq!(error["field"], "action");
    fixture.assert_nothing_more_stored();
}

#[test]
fn csv_formula_strings_are_stored_verbatim() {
    let mut fixture = Fixture::start();
    let formulas = [
        "=cmd|' /C calc'!A0",
        "+1",
        "@SUM(1)",
        "-2+3",
        "=HYPERLINK(\"http://x\")",
    ];
    for formula in formulas {
        for field in ["user", "message", "table", "primary_key"] {
            let stored = fixture.accept(&event_with(field, json!(formula)));
            assert_eq!(stored[field], formula, "{field}");
        }
        let stored = fixture.accept(&event_with("after", json!({"note": formula})));
        assert_eq!(stored["after"]["note"], formula);
    }
}

#[test]
fn control_characters_are_refused_in_user_table_and_primary_key_but_tab_and_newlines_are_kept_in_message()
 {
    let mut fixture = Fixture::start();
    let controls = [
        "a\u{0}b",
        "a\nb",
        "a\rb",
        "a\tb",
        "\u{1b}[31mred",
        "a\u{7f}",
        "a\u{85}b",
        "a\u{9b}b",
    ];
    for field in ["user", "table", "primary_key"] {
        for text in controls {
            let error =
                fixture.reject_field(&event_with(field, json!(text)), field, "invalid_value");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("control"),
                "{error}"
            );
        }
    }
    let message = "line one\nline two\r\n\tindented";
    assert_eq!(
        fixture.accept(&event_with("message", json!(message)))["message"],
        message
    );
    for text in ["a\u{0}b", "\u{1b}[2J", "a\u{7f}", "a\u{85}b", "bell\u{7}"] {
        fixture.reject_field(
            &event_with("message", json!(text)),
            "message",
            "invalid_value",
        );
    }
    // A raw (unescaped) line break inside a JSON string is not JSON at all.
    let raw = raw_event(&["message"], "\"message\":\"a\nb\"");
    fixture.reject(&raw, 400, "malformed_json");
}

// ---------------------------------------------------------------------------------------
// arrays and NDJSON
// ---------------------------------------------------------------------------------------

#[test]
fn an_array_of_three_returns_three_receipts_with_consecutive_seqs_in_order() {
    let mut fixture = Fixture::start();
    let events: Vec<String> = ["first", "second", "third"]
        .iter()
        .map(|message| event_with("message", json!(message)))
        .collect();
    let one = fixture
        .client
        .post_json(&event_with("id", json!("before-batch")));
    fixture.accepted(&one, 1);
    let mut batch = base_event();
    batch.insert("id".into(), json!("b-3"));
    batch.insert("message".into(), json!("third"));
    let body = format!(
        "[{},{},{}]",
        event_with("id", json!("b-1")),
        events[1],
        Value::Object(batch)
    );
    let reply = fixture.client.post_json(&body);
    let receipt = fixture.accepted(&reply, 3);
    let receipts = receipt["events"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 3, "{receipt}");
    let seqs: Vec<&Value> = receipts.iter().map(|r| &r["seq"]).collect();
    assert_eq!(seqs, [&json!(2), &json!(3), &json!(4)], "{receipt}");
    assert_eq!(receipts[0]["id"], "b-1");
    assert!(receipts[1]["id"].is_null(), "{receipt}");
    assert_eq!(receipts[2]["id"], "b-3");
    for (receipt, seq) in receipts.iter().zip(2..) {
        let stored = fixture.event(seq);
        assert_eq!(stored["seq"], seq);
        assert_eq!(stored["leaf_hash"], receipt["leaf_hash"]);
    }
    assert_eq!(fixture.event(3)["message"], "second");
    assert_eq!(fixture.event(4)["message"], "third");
}

#[test]
fn ndjson_with_blank_lines_and_crlf_is_three_events() {
    let mut fixture = Fixture::start();
    let lines: Vec<String> = (0..3)
        .map(|i| event_with("message", json!(format!("line {i}"))))
        .collect();
    let body = format!("\n{}\n\n   \n{}\r\n\t\n{}", lines[0], lines[1], lines[2]);
    let reply = fixture
        .client
        .post("/api/v1/events", "application/x-ndjson", body.as_bytes());
    let receipt = fixture.accepted(&reply, 3);
    assert_eq!(receipt["events"].as_array().map(Vec::len), Some(3));
    for seq in 1..=3 {
        assert_eq!(fixture.event(seq)["message"], format!("line {}", seq - 1));
    }
}

#[test]
fn a_batch_that_repeats_an_id_with_the_same_body_stores_it_once() {
    let mut fixture = Fixture::start();
    let twin = event_with("id", json!("twin"));
    let other = event_with("message", json!("other"));
    let reply = fixture
        .client
        .post_json(&format!("[{twin},{other},{twin}]"));
    let receipt = fixture.accepted(&reply, 2);
    let receipts = receipt["events"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 3, "{receipt}");
    assert_eq!(receipts[0], receipts[2], "{receipt}");
    assert_eq!(receipts[0]["seq"], 1);
    assert_eq!(receipts[1]["seq"], 2);
    let body = format!("{twin}\n{twin}\n");
    let reply = fixture
        .client
        .post("/api/v1/events", "application/x-ndjson", body.as_bytes());
    let again = fixture.accepted(&reply, 0);
    assert_eq!(again["events"][0], receipts[0]);
    assert_eq!(again["events"][1], receipts[0]);
}

#[test]
fn a_batch_that_repeats_an_id_with_a_different_body_is_a_conflict_and_stores_nothing() {
    let mut fixture = Fixture::start();
    let first = event_with("id", json!("twin"));
    let mut changed = base_event();
    changed.insert("id".into(), json!("twin"));
    changed.insert("message".into(), json!("changed"));
    let good = Value::Object(base_event()).to_string();
    let body = format!("[{first},{good},{}]", Value::Object(changed));
    let error = fixture.reject(&body, 409, "conflict");
    assert_eq!(error["index"], 2, "{error}");
    assert_eq!(error["field"], "id", "{error}");
    // Nothing of the refused batch was kept: the id is still free.
    let reply = fixture.client.post_json(&event_with("id", json!("twin")));
    let receipt = fixture.accepted(&reply, 1);
    assert_eq!(receipt["events"][0]["seq"], 1);
}

// ---------------------------------------------------------------------------------------
// reading
// ---------------------------------------------------------------------------------------

#[test]
fn an_event_route_with_a_seq_that_is_not_a_positive_integer_is_a_json_400() {
    let mut fixture = Fixture::start();
    fixture.accept(&Value::Object(base_event()).to_string());
    for seq in [
        "0",
        "-1",
        "abc",
        "99999999999999999999",
        "1.5",
        "1e3",
        "%20",
        "0x1",
    ] {
        let reply = fixture.client.get(&format!("/api/v1/events/{seq}"));
        assert_error(&reply, 400, "invalid_parameter");
    }
    for seq in ["2", "9223372036854775807"] {
        let reply = fixture.client.get(&format!("/api/v1/events/{seq}"));
        assert_error(&reply, 404, "not_found");
    }
}

#[test]
fn an_event_route_with_a_seq_that_is_not_utf8_is_a_json_400() {
    let fixture = Fixture::start();
    let reply = fixture.client.get("/api/v1/events/%FF");
    assert_error(&reply, 400, "invalid_parameter");
}

#[test]
fn an_unknown_route_is_a_json_404() {
    let fixture = Fixture::start();
    for path in [
        "/api/v1/nope",
        "/api/v2/events",
        "/api/v1/events/1/extra",
        "/nope?x=1",
        "/api/v1/proof",
    ] {
        let reply = fixture.client.get(path);
        assert_error(&reply, 404, "not_found");
    }
    let reply = fixture
        .client
        .post("/api/v1/nope", "application/json", b"{}");
    assert_error(&reply, 404, "not_found");
}

#[test]
fn a_known_route_with_the_wrong_method_is_a_json_405() {
    let fixture = Fixture::start();
    let reply = fixture
        .client
        .post("/api/v1/events/1", "application/json", b"{}");
    assert_error(&reply, 405, "method_not_allowed");
    let reply = fixture
        .client
        .post("/api/v1/checkpoint", "application/json", b"{}");
    assert_error(&reply, 405, "method_not_allowed");
}

/// Post `n_events` plain events in one batch; returns their leaf hashes.
fn post_events(fixture: &mut Fixture, n_events: u64) -> Vec<Value> {
    let events: Vec<String> = (0..n_events)
        .map(|i| event_with("message", json!(format!("event {i}"))))
        .collect();
    let reply = fixture.client.post_json(&format!("[{}]", events.join(",")));
    let receipt = fixture.accepted(&reply, n_events);
    receipt["events"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|r| r["leaf_hash"].clone())
        .collect()
}

#[test]
fn proof_routes_with_bad_parameters_are_a_json_400() {
    let mut fixture = Fixture::start();
    // An empty log has nothing to prove.
    let reply = fixture.client.get("/api/v1/proof/inclusion?seq=1&size=1");
    assert!(matches!(reply.status, 400 | 404), "{}", reply.text);
    assert_json_content_type(&reply);
    post_events(&mut fixture, 5);
    for (query, code) in [
        ("size=3", "missing_parameter"),
        ("", "missing_parameter"),
        ("seq=1&size=0", "invalid_parameter"),
        ("seq=4&size=3", "invalid_parameter"),
        ("seq=1&size=6", "invalid_parameter"),
        ("seq=0&size=3", "invalid_parameter"),
        ("seq=-1&size=3", "invalid_parameter"),
        ("seq=abc&size=3", "invalid_parameter"),
        ("seq=1&size=abc", "invalid_parameter"),
        ("seq=1&size=99999999999999999999", "invalid_parameter"),
        ("seq=&size=3", "invalid_parameter"),
    ] {
        let reply = fixture
            .client
            .get(&format!("/api/v1/proof/inclusion?{query}"));
        assert_error(&reply, 400, code);
    }
    for (query, code) in [
        ("to=3", "missing_parameter"),
        ("", "missing_parameter"),
        ("from=4&to=3", "invalid_parameter"),
        ("from=0&to=3", "invalid_parameter"),
        ("from=1&to=6", "invalid_parameter"),
        ("from=-1&to=3", "invalid_parameter"),
        ("from=x&to=3", "invalid_parameter"),
        ("from=1&to=y", "invalid_parameter"),
    ] {
        let reply = fixture
            .client
            .get(&format!("/api/v1/proof/consistency?{query}"));
        assert_error(&reply, 400, code);
    }
}

#[test]
fn a_proof_route_with_a_repeated_parameter_is_a_json_400() {
    let mut fixture = Fixture::start();
    post_events(&mut fixture, 2);
    let reply = fixture
        .client
        .get("/api/v1/proof/inclusion?seq=1&seq=2&size=2");
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_json_content_type(&reply);
    let reply = fixture
        .client
        .get("/api/v1/proof/consistency?from=1&from=2&to=2");
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_json_content_type(&reply);
}

/// The number of hashes in an RFC 9162 §2.1.3 inclusion proof of leaf `index` in a tree of
/// `size` leaves.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    if size <= 1 {
        return 0;
    }
    let split = largest_power_of_two_below(size);
    if index < split {
        inclusion_proof_len(index, split) + 1
    } else {
        inclusion_proof_len(index - split, size - split) + 1
    }
}

/// The number of hashes in an RFC 9162 §2.1.4 consistency proof from `from` to `to`.
fn consistency_proof_len(from: u64, to: u64) -> usize {
    fn subproof_len(from: u64, to: u64, complete: bool) -> usize {
        if from == to {
            return usize::from(!complete);
        }
        let split = largest_power_of_two_below(to);
        if from <= split {
            subproof_len(from, split, complete) + 1
        } else {
            subproof_len(from - split, to - split, false) + 1
        }
    }
    if from == to {
        0
    } else {
        subproof_len(from, to, true)
    }
}

fn largest_power_of_two_below(n: u64) -> u64 {
    let mut power = 1;
    while power * 2 < n {
        power *= 2;
    }
    power
}

#[test]
fn proofs_for_every_seq_and_size_have_the_rfc_9162_number_of_hashes() {
    let mut fixture = Fixture::start();
    let n_events = 11;
    let leaf_hashes = post_events(&mut fixture, n_events);
    let all_hashes_are_32_bytes = |proof: &Value| {
        proof["hashes"]
            .as_array()
            .expect("hashes")
            .iter()
            .all(|h| decoded_len(h.as_str().unwrap_or_default()) == 32)
    };
    for size in 1..=n_events {
        for seq in 1..=size {
            let reply = fixture
                .client
                .get(&format!("/api/v1/proof/inclusion?seq={seq}&size={size}"));
            assert_eq!(reply.status, 200, "{}", reply.text);
            let proof = reply.json();
            assert_eq!(proof["leaf_index"], seq - 1);
            assert_eq!(proof["tree_size"], size);
            assert_eq!(proof["leaf_hash"], leaf_hashes[(seq - 1) as usize]);
            let n_hashes = proof["hashes"].as_array().map(Vec::len);
            assert_eq!(
                n_hashes,
                Some(inclusion_proof_len(seq - 1, size)),
                "seq {seq} size {size}"
            );
            assert!(all_hashes_are_32_bytes(&proof), "{proof}");
        }
    }
    for to in 1..=n_events {
        for from in 1..=to {
            let reply = fixture
                .client
                .get(&format!("/api/v1/proof/consistency?from={from}&to={to}"));
            assert_eq!(reply.status, 200, "{}", reply.text);
            let proof = reply.json();
            assert_eq!((&proof["from"], &proof["to"]), (&json!(from), &json!(to)));
            let n_hashes = proof["hashes"].as_array().map(Vec::len);
            assert_eq!(
                n_hashes,
                Some(consistency_proof_len(from, to)),
                "from {from} to {to}"
            );
            assert!(all_hashes_are_32_bytes(&proof), "{proof}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// slow clients
// ---------------------------------------------------------------------------------------

/// Wait until the peer closes `stream` (EOF or reset); the time it took, or None if it is
/// still open after `limit`.
fn time_until_closed(
    stream: &mut TcpStream,
    started: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("read timeout");
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            // A 408 or similar before the close is fine; keep reading until it closes.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected_after_the_header_timeout() {
    // Three slow clients at once, so the test waits for one timeout, not three.
    let mut fixture = Fixture::start();
    let addr = fixture.server.addr.clone();
    let started = Instant::now();
    // Stops after a partial header line.
    let mut stalled = TcpStream::connect(&addr).expect("connect");
    stalled
        .write_all(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .expect("partial headers");
    // Connects and sends nothing at all.
    let mut silent = TcpStream::connect(&addr).expect("connect");
    // Trickles one header byte every 300 ms, forever (slowloris).
    let mut trickle = TcpStream::connect(&addr).expect("connect");
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .expect("headers");
    let mut trickle_writer = trickle.try_clone().expect("clone");
    std::thread::spawn(move || {
        while trickle_writer.write_all(b"a").is_ok() {
            std::thread::sleep(Duration::from_millis(300));
        }
    });

    // Meanwhile the server answers everyone else at once.
    let request_started = Instant::now();
    let reply = fixture
        .client
        .post_json(&Value::Object(base_event()).to_string());
    fixture.accepted(&reply, 1);
    assert!(request_started.elapsed() < Duration::from_secs(5));

    // The default header-read timeout is 10 s; allow scheduling slack on a busy machine.
    let limit = Duration::from_secs(20);
    let stalled_after = time_until_closed(&mut stalled, started, limit);
    let trickle_after = time_until_closed(&mut trickle, started, limit);
    let silent_after = time_until_closed(&mut silent, started, limit);
    assert!(
        silent_after.is_some(),
        "a connection that sent nothing was still open after {limit:?}"
    );
    assert!(
        stalled_after.is_some(),
        "a stalled request was still open after {limit:?}"
    );
    assert!(
        trickle_after.is_some(),
        "a trickling request was still open after {limit:?}"
    );
    // On a new connection: the pooled one has been idle for as long as the timeout, and the
    // server closes idle keep-alive connections after it too.
    let fresh = Client::new(&addr, Some(&fixture.server.token));
    let request_started = Instant::now();
    assert_eq!(fresh.get("/healthz").status, 200);
    assert!(request_started.elapsed() < Duration::from_secs(5));
}
