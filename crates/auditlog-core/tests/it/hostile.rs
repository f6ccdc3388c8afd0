//! Hostile input: what an attacker or a broken client sends must be refused cleanly (no
//! panic, no stack overflow, no quadratic time) or, when it is merely odd data, kept verbatim.

use std::time::Instant;

use auditlog_core::diff::diff;
use auditlog_core::event::{EventInput, Timestamp};
use auditlog_core::json::{JsonErrorKind, JsonLimits, MAX_DEPTH_CEILING, parse, parse_batch};

use crate::{canonical_string, json, parse_str};

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-25T20:42:28Z").expect("valid")
}

#[test]
fn html_and_script_in_strings_are_kept_verbatim_as_data() {
    let payload = r#"<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'--"#;
    let text = format!(
        r#"{{"user":{user},"action":"LOGIN","table":{user},"message":{user},"after":{{{user}:{user}}}}}"#,
        user = canonical_string(&auditlog_core::json::Value::String(payload.to_owned()))
    );
    let value = json(&text);
    let event = EventInput::from_value(value.clone(), now()).expect("data, not markup");
    assert_eq!(event.user.as_str(), payload);
    assert_eq!(event.message.as_ref().map(|m| m.as_str()), Some(payload));
    // RFC 8785 escapes only quotes, backslashes and controls: '<' and '>' stay literal.
    assert!(canonical_string(&value).contains("<script>alert(\\\"x\\\")</script>"));
}

#[test]
fn control_characters_in_the_user_are_refused() {
    for user in [
        r#""ali\u0000ce""#,
        r#""ali\u001bce""#,
        r#""ali\nce""#,
        r#""ali\u007fce""#,
        r#""ali\u009bce""#,
    ] {
        let value = json(&format!(
            r#"{{"user":{user},"action":"LOGIN","table":"t"}}"#
        ));
        let err = EventInput::from_value(value, now()).expect_err(user);
        assert_eq!(
            (err.field.as_str(), err.code),
            ("user", "invalid_value"),
            "{user}"
        );
    }
}

#[test]
fn a_hundred_thousand_nested_brackets_are_refused_without_overflowing_the_stack() {
    let arrays = "[".repeat(100_000);
    let objects = "{\"a\":".repeat(100_000);
    for text in [&arrays, &objects] {
        let err = parse(text.as_bytes(), &JsonLimits::default()).expect_err("too deep");
        assert_eq!(err.kind, JsonErrorKind::TooDeep(32));
    }
    let err = parse_batch(
        format!("[{objects}").as_bytes(),
        false,
        &JsonLimits::default(),
    )
    .expect_err("too deep");
    assert_eq!((err.kind, err.index), (JsonErrorKind::TooDeep(32), Some(0)));
    let balanced = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(balanced.as_bytes(), &JsonLimits::default()).is_err());
}

#[test]
fn a_huge_configured_depth_is_capped_so_values_stay_safe_to_drop() {
    let limits = JsonLimits {
        max_depth: usize::MAX,
        max_event_bytes: usize::MAX,
    };
    let at_ceiling = format!(
        "{}{}",
        "[".repeat(MAX_DEPTH_CEILING),
        "]".repeat(MAX_DEPTH_CEILING)
    );
    let value = parse(at_ceiling.as_bytes(), &limits).expect("at the ceiling");
    // Canonicalizing, comparing, diffing and dropping recurse; at the ceiling they must not
    // overflow a test thread's stack.
    assert_eq!(value.to_canonical(), at_ceiling.as_bytes());
    assert!(diff(Some(&value), Some(&value)).is_empty());
    drop(value);
    let beyond = format!("[{at_ceiling}]");
    let err = parse(beyond.as_bytes(), &limits).expect_err("beyond the ceiling");
    assert_eq!(err.kind, JsonErrorKind::TooDeep(MAX_DEPTH_CEILING));
}

#[test]
fn a_two_megabyte_string_is_refused_as_too_large() {
    let big = "x".repeat(2 * 1024 * 1024);
    let event = format!(r#"{{"user":"u","action":"LOGIN","table":"t","message":"{big}"}}"#);
    let limits = JsonLimits::default();
    for (body, is_ndjson) in [
        (event.clone(), false),
        (format!("[{event}]"), false),
        (format!("{{}}\n{event}\n"), true),
    ] {
        let err = parse_batch(body.as_bytes(), is_ndjson, &limits).expect_err("too large");
        assert_eq!(err.kind, JsonErrorKind::TooLarge(1024 * 1024));
        assert_eq!(err.code(), "event_too_large");
    }
    let err = parse(event.as_bytes(), &limits).expect_err("too large");
    assert_eq!(err.kind, JsonErrorKind::TooLarge(1024 * 1024));
}

#[test]
fn duplicate_keys_are_refused_at_any_depth_with_their_path() {
    for (text, path) in [
        (r#"{"a":1,"a":2}"#, ""),
        (r#"{"before":{"x":1,"x":1}}"#, "/before"),
        (
            r#"{"after":{"list":[{"k":1},{"k":1,"k":1}]}}"#,
            "/after/list/1",
        ),
        (
            r#"{"context":{"a/b":{"~":{"z":0,"z":0}}}}"#,
            "/context/a~1b/~0",
        ),
        (r#"[[{"q":[],"q":{}}]]"#, "/0/0"),
    ] {
        let err = parse_str(text).expect_err(text);
        assert!(matches!(err.kind, JsonErrorKind::DuplicateKey(_)), "{text}");
        assert_eq!(err.path, path, "{text}");
    }
}

#[test]
fn an_integer_beyond_two_to_the_53_is_refused_with_its_path() {
    let err =
        parse_str(r#"{"after":{"account":{"balance":9007199254740993}}}"#).expect_err("inexact");
    assert_eq!(
        err.kind,
        JsonErrorKind::NumberNotExact("9007199254740993".to_owned())
    );
    assert_eq!(err.path, "/after/account/balance");
    assert_eq!(
        err.to_string().split(" cannot").next(),
        Some("number 9007199254740993 at /after/account/balance")
    );
}

#[test]
fn a_number_beyond_the_double_range_is_refused() {
    for text in ["1e400", "-1e400", "1e99999999999999999999999", "1e-400"] {
        let err = parse_str(&format!("[{text}]")).expect_err(text);
        assert_eq!(err.kind, JsonErrorKind::NumberNotExact(text.to_owned()));
        assert_eq!(err.path, "/0");
    }
}

#[test]
fn a_number_with_a_million_digits_is_refused_quickly() {
    let digits = format!("0.{}1", "0".repeat(1_000_000));
    let started = Instant::now();
    let limits = JsonLimits {
        max_event_bytes: usize::MAX,
        ..JsonLimits::default()
    };
    assert!(parse(digits.as_bytes(), &limits).is_err());
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn lone_surrogates_are_refused_anywhere() {
    for text in [
        r#"{"user":"\ud800"}"#,
        r#"{"\udfff":1}"#,
        r#"{"after":{"name":"ok\ud83d"}}"#,
    ] {
        let err = parse_str(text).expect_err(text);
        assert!(
            matches!(err.kind, JsonErrorKind::LoneSurrogate(_)),
            "{text}"
        );
    }
}

#[test]
fn an_object_with_a_hundred_thousand_keys_is_checked_in_linear_time() {
    let mut text = String::from("{");
    for key_idx in 0..100_000 {
        text.push_str(&format!("\"key{key_idx}\":{key_idx},"));
    }
    let limits = JsonLimits {
        max_event_bytes: usize::MAX,
        ..JsonLimits::default()
    };
    let started = Instant::now();
    let mut unique = text.clone();
    unique.push_str("\"last\":0}");
    let value = parse(unique.as_bytes(), &limits).expect("unique keys");
    let mut duplicated = text;
    duplicated.push_str("\"key99999\":0}");
    let err = parse(duplicated.as_bytes(), &limits).expect_err("duplicate");
    assert_eq!(err.kind, JsonErrorKind::DuplicateKey("key99999".to_owned()));
    assert!(diff(Some(&value), Some(&value)).is_empty());
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let sample = br#"{"user":"a\u00e9\ud83d\ude02","n":[1.5e3,-0,true,null,{"x":"y"}],"s":"\n"}"#;
    for cut in 0..sample.len() {
        let _ = parse(&sample[..cut], &JsonLimits::default());
        let _ = parse_batch(&sample[..cut], true, &JsonLimits::default());
        let limits = JsonLimits {
            max_event_bytes: cut,
            ..JsonLimits::default()
        };
        let mut array = b"[".to_vec();
        array.extend_from_slice(sample);
        array.push(b']');
        let _ = parse_batch(&array, false, &limits);
    }
    for byte in 0..=255u8 {
        let mut mutated = sample.to_vec();
        for position in 0..mutated.len() {
            let original = mutated[position];
            mutated[position] = byte;
            let _ = parse(&mutated, &JsonLimits::default());
            mutated[position] = original;
        }
    }
}
