//! One test per rule and limit of the strict parser (SPEC §2), with the messages and codes
//! the API passes on.

use auditlog_core::json::{JsonError, JsonErrorKind, JsonLimits, Value, parse, parse_batch};

use crate::{json, parse_str};

fn batch(body: &str) -> Result<Vec<Value>, JsonError> {
    parse_batch(body.as_bytes(), false, &JsonLimits::default())
}

fn ndjson(body: &str) -> Result<Vec<Value>, JsonError> {
    parse_batch(body.as_bytes(), true, &JsonLimits::default())
}

fn nested_objects(depth: usize) -> String {
    // depth 1 is {"v":0}; each further level wraps it in {"a": …}.
    let mut text = "{\"v\":0}".to_owned();
    for _ in 1..depth {
        text = format!("{{\"a\":{text}}}");
    }
    text
}

#[test]
fn default_limits_are_depth_32_and_one_mebibyte() {
    let limits = JsonLimits::default();
    assert_eq!(limits.max_depth, 32);
    assert_eq!(limits.max_event_bytes, 1024 * 1024);
}

#[test]
fn one_value_with_surrounding_whitespace_parses() {
    assert_eq!(
        json(" \t\r\n{\"a\":[true,false,null]} \n"),
        json("{\"a\":[true,false,null]}")
    );
    assert_eq!(json("\"x\""), Value::String("x".to_owned()));
    assert_eq!(json("null"), Value::Null);
}

#[test]
fn object_members_keep_the_order_they_were_sent_in() {
    let value = json(r#"{"b":1,"a":2}"#);
    let keys: Vec<&str> = value
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["b", "a"]);
}

#[test]
fn a_syntax_error_names_the_byte_and_what_was_expected() {
    let err = parse_str(r#"{"user" "x"}"#).expect_err("missing colon");
    assert_eq!(err.code(), "malformed_json");
    assert_eq!(err.offset, 8);
    assert!(
        err.to_string()
            .starts_with("invalid JSON at byte 8: expected ':'"),
        "{err}"
    );
}

#[test]
fn anything_beyond_strict_json_is_a_syntax_error() {
    for text in [
        "",
        "   ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{'a':1}",
        "{a:1}",
        "// comment\n{}",
        "{} {}",
        "[1] x",
        "01",
        "-",
        "+1",
        ".5",
        "1.",
        "1e",
        "1e+",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "True",
        "\"\\x\"",
        "\"\\u12G4\"",
        "\"abc",
        "\u{feff}{}",
        "{\"a\" 1}",
        "[1 2]",
    ] {
        let err = parse_str(text).expect_err(text);
        assert!(
            matches!(err.kind, JsonErrorKind::Syntax(_)),
            "{text:?}: {err:?}"
        );
        assert_eq!(err.code(), "malformed_json", "{text:?}");
    }
}

#[test]
fn duplicate_keys_are_refused_with_the_path_of_their_object() {
    let err =
        parse_str(r#"{"user":"a","before":{"user":1,"x":2,"user":3}}"#).expect_err("duplicate");
    assert_eq!(err.kind, JsonErrorKind::DuplicateKey("user".to_owned()));
    assert_eq!(err.path, "/before");
    assert_eq!(err.code(), "duplicate_key");
    assert_eq!(err.to_string(), "duplicate key \"user\" at /before");

    let err = parse_str(r#"{"user":"a","user":"b"}"#).expect_err("duplicate");
    assert_eq!(err.path, "");
    assert_eq!(err.to_string(), "duplicate key \"user\" at the top level");
}

#[test]
fn keys_differing_only_after_unescaping_are_duplicates() {
    let err = parse_str(r#"{"a":1,"\u0061":2}"#).expect_err("duplicate");
    assert_eq!(err.kind, JsonErrorKind::DuplicateKey("a".to_owned()));
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let text = nested_objects(32);
    assert!(parse_str(&text).is_ok());
    assert_eq!(batch(&format!("[{text}]")).map(|e| e.len()), Ok(1));
    assert_eq!(ndjson(&text).map(|e| e.len()), Ok(1));
}

#[test]
fn nesting_beyond_the_limit_is_refused_with_its_path() {
    let err = parse_str(&nested_objects(33)).expect_err("too deep");
    assert_eq!(err.kind, JsonErrorKind::TooDeep(32));
    assert_eq!(err.code(), "too_deep");
    assert_eq!(err.path, "/a".repeat(32));
    assert!(
        err.to_string()
            .starts_with("nesting deeper than 32 at /a/a/a"),
        "{err}"
    );

    let err = parse_str(&format!("{}{}", "[".repeat(33), "]".repeat(33))).expect_err("too deep");
    assert_eq!(err.path, "/0".repeat(32));
}

#[test]
fn the_wrapping_array_of_a_batch_does_not_use_up_a_level() {
    let deepest = nested_objects(32);
    let events = batch(&format!("[{deepest},{deepest}]")).expect("within depth");
    assert_eq!(events.len(), 2);
    let err = batch(&format!("[{deepest},{}]", nested_objects(33))).expect_err("too deep");
    assert_eq!(err.index, Some(1));
    assert_eq!(err.kind, JsonErrorKind::TooDeep(32));
}

#[test]
fn a_configured_depth_applies() {
    let limits = JsonLimits {
        max_depth: 2,
        ..JsonLimits::default()
    };
    assert!(parse(br#"{"a":{"b":1}}"#, &limits).is_ok());
    let err = parse(br#"{"a":{"b":[1]}}"#, &limits).expect_err("depth 3");
    assert_eq!(err.path, "/a/b");
}

#[test]
fn an_event_of_exactly_the_size_limit_is_accepted() {
    let limits = JsonLimits {
        max_event_bytes: 20,
        ..JsonLimits::default()
    };
    let event = r#"{"user":"abcdefghi"}"#;
    assert_eq!(event.len(), 20);
    assert!(parse(event.as_bytes(), &limits).is_ok());
    assert!(parse_batch(format!("[{event}, {event}]").as_bytes(), false, &limits).is_ok());
    assert!(parse_batch(format!("{event}\n{event}\n").as_bytes(), true, &limits).is_ok());
    assert!(parse_batch(format!("  {event}  ").as_bytes(), false, &limits).is_ok());
}

#[test]
fn an_event_over_the_size_limit_is_refused_with_its_index() {
    let limits = JsonLimits {
        max_event_bytes: 20,
        ..JsonLimits::default()
    };
    let small = r#"{"user":"abcdefghi"}"#;
    let large = r#"{"user":"abcdefghij"}"#;

    let err = parse(large.as_bytes(), &limits).expect_err("21 bytes");
    assert_eq!(err.kind, JsonErrorKind::TooLarge(20));
    assert_eq!(err.code(), "event_too_large");

    for (body, ndjson) in [
        (format!("[{small},{large}]"), false),
        (format!("{small}\n{large}\n"), true),
    ] {
        let err = parse_batch(body.as_bytes(), ndjson, &limits).expect_err("second too large");
        assert_eq!(err.kind, JsonErrorKind::TooLarge(20), "{body}");
        assert_eq!(err.index, Some(1), "{body}");
        assert!(
            err.to_string()
                .starts_with("event 1: event larger than 20 bytes"),
            "{err}"
        );
    }
    let err = parse_batch(large.as_bytes(), false, &limits).expect_err("single too large");
    assert_eq!(err.index, Some(0));
}

#[test]
fn safe_integers_and_exact_decimals_are_accepted() {
    for (text, expected) in [
        ("0", 0.0),
        ("-0", 0.0),
        ("9007199254740991", 9_007_199_254_740_991.0),
        ("-9007199254740991", -9_007_199_254_740_991.0),
        ("0.1", 0.1),
        ("4.50", 4.5),
        ("1E30", 1e30),
        ("1e21", 1e21),
        ("2e-3", 0.002),
        ("0.000001", 0.000001),
        ("5e-324", 5e-324),
        ("1.7976931348623157e308", f64::MAX),
        ("9007199254740991.0", 9_007_199_254_740_991.0),
        ("123.456e-2", 1.23456),
        ("0.0e999999999999999999999", 0.0),
    ] {
        let Value::Number(number) = json(text) else {
            panic!("{text} is not a number");
        };
        assert_eq!(number.as_f64(), expected, "{text}");
    }
}

#[test]
fn numbers_that_would_be_rounded_are_refused_with_their_path() {
    for text in [
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551616",
        "100000000000000000000",
        "1e20",
        "9007199254740993.0",
        "1.00000000000000001",
        "0.1000000000000000055511151231257827",
        "333333333.33333329",
        "1e400",
        "-1e400",
        "1e-400",
        "2.4703282292062327e-324",
    ] {
        let err = parse_str(&format!("{{\"after\":{{\"amount\":{text}}}}}")).expect_err(text);
        assert_eq!(
            err.kind,
            JsonErrorKind::NumberNotExact(text.to_owned()),
            "{text}"
        );
        assert_eq!(err.path, "/after/amount", "{text}");
        assert_eq!(err.code(), "number_not_exact");
        assert!(err.to_string().contains("send it as a string"), "{err}");
    }
}

#[test]
fn strings_must_be_valid_utf8() {
    for bytes in [
        &b"\"\xff\""[..],
        b"\"\xc0\xaf\"",
        b"\"\xed\xa0\x80\"",
        b"\"abc\xe2\x82\"",
        b"{\"\xfe\":1}",
    ] {
        let err = parse(bytes, &JsonLimits::default()).expect_err("invalid UTF-8");
        assert_eq!(err.kind, JsonErrorKind::InvalidUtf8, "{bytes:?}");
        assert_eq!(err.code(), "malformed_json");
    }
    let err = parse(b"[\"ok\",\"ab\xff\"]", &JsonLimits::default()).expect_err("invalid");
    assert_eq!((err.offset, err.path.as_str()), (9, "/1"));
    assert!(json("\"é€😂\"").as_str().is_some());
}

#[test]
fn raw_control_characters_in_strings_are_refused() {
    for text in ["\"a\nb\"", "\"\t\"", "\"\u{0}\"", "{\"k\u{1f}\":1}"] {
        let err = parse_str(text).expect_err(text);
        assert!(
            matches!(err.kind, JsonErrorKind::ControlCharacter(_)),
            "{text:?}"
        );
    }
    // Escaped, they are ordinary data; DEL is not a JSON control character.
    assert_eq!(
        json(r#""a\nb\u0000\u001f""#).as_str(),
        Some("a\nb\u{0}\u{1f}")
    );
    assert_eq!(json("\"\u{7f}\"").as_str(), Some("\u{7f}"));
}

#[test]
fn unpaired_surrogate_escapes_are_refused() {
    for text in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800x""#,
        r#""\udbff\udbff""#,
        r#""\ude00\ud83d""#,
        r#"{"\ud83d":1}"#,
    ] {
        let err = parse_str(text).expect_err(text);
        assert!(
            matches!(err.kind, JsonErrorKind::LoneSurrogate(_)),
            "{text}: {err:?}"
        );
        assert_eq!(err.code(), "malformed_json");
    }
    assert_eq!(json(r#""\ud83d\ude02""#).as_str(), Some("😂"));
    assert_eq!(json(r#""\uD83D\uDE02""#).as_str(), Some("😂"));
}

#[test]
fn every_escape_decodes() {
    assert_eq!(
        json(r#""\"\\\/\b\f\n\r\t\u00e9\u20AC""#).as_str(),
        Some("\"\\/\u{8}\u{c}\n\r\té€")
    );
}

#[test]
fn a_batch_is_one_object_or_an_array_of_objects() {
    assert_eq!(batch(r#"{"n":1}"#).map(|e| e.len()), Ok(1));
    assert_eq!(
        batch(r#" [ {"n":1} , {"n":2},{"n":3} ] "#).map(|e| e.len()),
        Ok(3)
    );
    let err = batch(r#"{"n":1}{"n":2}"#).expect_err("two objects without array");
    assert!(err.to_string().contains("NDJSON"), "{err}");
}

#[test]
fn ndjson_has_one_object_per_non_empty_line() {
    let events = ndjson("{\"n\":1}\r\n\n   \n{\"n\":2}\n{\"n\":3}").expect("three events");
    assert_eq!(events.len(), 3);
    assert_eq!(events[2], json(r#"{"n":3}"#));
    // The index counts events, not lines.
    let err = ndjson("{\"n\":1}\n\n{\"n\":}\n").expect_err("bad second event");
    assert_eq!(err.index, Some(1));
    let err = ndjson("{\"n\":1} {\"n\":2}\n").expect_err("two objects on one line");
    assert_eq!(err.index, Some(0));
}

#[test]
fn an_event_that_is_not_an_object_is_refused() {
    for (body, is_ndjson, index) in [
        ("[{}, 1]", false, Some(1)),
        ("[[]]", false, Some(0)),
        ("\"event\"", false, None),
        ("42", false, None),
        ("{}\n[]\n", true, Some(1)),
        ("null", true, Some(0)),
    ] {
        let err = parse_batch(body.as_bytes(), is_ndjson, &JsonLimits::default()).expect_err(body);
        assert_eq!(err.kind, JsonErrorKind::NotAnObject, "{body}");
        assert_eq!(err.index, index, "{body}");
        assert_eq!(err.code(), "not_an_object");
    }
}

#[test]
fn a_batch_without_events_is_refused() {
    for (body, is_ndjson) in [
        ("", false),
        ("  \n", false),
        ("[]", false),
        (" [ ] ", false),
        ("", true),
        ("\n\r\n  \n", true),
    ] {
        let err = parse_batch(body.as_bytes(), is_ndjson, &JsonLimits::default()).expect_err(body);
        assert_eq!(err.kind, JsonErrorKind::EmptyBatch, "{body:?}");
        assert_eq!(err.code(), "empty_batch");
    }
}

#[test]
fn errors_in_a_batch_name_the_event_and_the_offset_in_the_body() {
    let body = r#"[{"a":1},{"b":{"c":1,"c":2}}]"#;
    let err = batch(body).expect_err("duplicate in event 1");
    assert_eq!(err.index, Some(1));
    assert_eq!(err.path, "/b");
    assert_eq!(err.offset, body.rfind("\"c\"").expect("second c"));
    assert_eq!(err.to_string(), "event 1: duplicate key \"c\" at /b");

    let body = "{\"a\":1}\n{\"b\":1e400}\n";
    let err = ndjson(body).expect_err("inexact in event 1");
    assert_eq!(
        (err.index, err.offset, err.path.as_str()),
        (Some(1), 13, "/b")
    );
}
