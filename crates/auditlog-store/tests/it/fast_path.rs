//! The fast path of ingest (`auditlog_core::event::fast`) against the strict path
//! (`prepare_batch_strictly`): for every body, either the fast path gives up, or the strict
//! path accepts the same events with the same canonical parts. `prepare_batch`, which the
//! server calls, must always answer exactly what the strict path answers.

use std::net::IpAddr;
use std::sync::OnceLock;

use auditlog_core::event::Timestamp;
use auditlog_core::event::fast::{self, FastEvent};
use auditlog_core::generate::{GenerateOptions, Generator};
use auditlog_core::json::JsonLimits;
use auditlog_store::{BatchError, PreparedEvent, prepare_batch, prepare_batch_strictly};
use proptest::prelude::*;

fn received() -> Timestamp {
    // 2026-06-01, after every generated event's time.
    Timestamp::from_unix_nanos(1_780_272_000_000_000_000)
}

fn peer() -> IpAddr {
    IpAddr::from([198, 51, 100, 7])
}

fn limits() -> JsonLimits {
    JsonLimits::default()
}

/// An event's id, fingerprint, and canonical parts joined by `|`.
type Summary = (Option<String>, Option<[u8; 16]>, Vec<u8>);

fn summary(events: &[PreparedEvent]) -> Vec<Summary> {
    events
        .iter()
        .map(|e| {
            let p = &e.parts;
            (
                e.id.clone(),
                e.input_hash,
                [p.head.as_slice(), b"|", &p.middle, b"|", &p.tail].concat(),
            )
        })
        .collect()
}

type Answer = Result<Vec<Summary>, BatchError>;

/// Check that both paths agree on `body`; returns whether the fast path took it.
fn agree_with(body: &str, ndjson: bool, limits: &JsonLimits, max_events: usize) -> bool {
    let bytes = body.as_bytes();
    let strict: Answer =
        prepare_batch_strictly(bytes, ndjson, limits, max_events, received(), peer())
            .map(|events| summary(&events));
    let combined: Answer = prepare_batch(bytes, ndjson, limits, max_events, received(), peer())
        .map(|events| summary(&events));
    assert_eq!(
        combined, strict,
        "prepare_batch differs from the strict path on {body:?}"
    );
    let Some(fast) = fast::prepare_batch(bytes, ndjson, limits, max_events, received(), peer())
    else {
        return false;
    };
    let Ok(strict) = strict else {
        panic!("the fast path took {body:?}, which the strict path refuses: {strict:?}");
    };
    assert_eq!(fast.len(), strict.len(), "{body:?}");
    for (
        FastEvent {
            id,
            sent_form,
            parts,
        },
        (strict_id, hash, joined),
    ) in fast.iter().zip(&strict)
    {
        assert_eq!(id, strict_id, "{body:?}");
        let fast_joined = [
            parts.head.as_slice(),
            b"|",
            &parts.middle,
            b"|",
            &parts.tail,
        ]
        .concat();
        assert_eq!(
            String::from_utf8_lossy(&fast_joined),
            String::from_utf8_lossy(joined),
            "canonical parts differ on {body:?}"
        );
        assert_eq!(
            hash.is_some(),
            sent_form.is_some(),
            "the fingerprint rule differs on {body:?}"
        );
    }
    true
}

fn agree(body: &str, ndjson: bool) -> bool {
    agree_with(body, ndjson, &limits(), 10_000)
}

fn generated(seed: u64, n: usize) -> Vec<String> {
    let mut generator = Generator::new(GenerateOptions {
        seed,
        ..GenerateOptions::default()
    });
    (0..n)
        .map(|_| generator.next().expect("an event"))
        .collect()
}

#[test]
fn generated_events_take_the_fast_path_and_come_out_as_the_strict_path_writes_them() {
    for seed in [1, 7, 42] {
        let lines = generated(seed, 3000);
        for chunk in lines.chunks(100) {
            assert!(
                agree(&chunk.join("\n"), true),
                "NDJSON batch of seed {seed}"
            );
            assert!(
                agree(&format!("[{}]", chunk.join(",")), false),
                "array of seed {seed}"
            );
        }
        for line in lines.iter().take(300) {
            assert!(agree(line, false), "single object {line}");
        }
    }
}

#[test]
fn the_fast_path_writes_what_rfc_8785_asks_for() {
    let base = r#""user":"u","action":"LOGIN","table":"t","time":"2026-01-02T03:04:05.5Z","ip":"192.0.2.1""#;
    let taken = [
        // Keys sorted by UTF-16 code units: U+E000 sorts after U+1F600 (a surrogate pair).
        "{\"z\":1,\"\u{e000}\":2,\"😀\":3,\"a\":{\"b\":[],\"a\":{}},\"é\":4}",
        r#"{"n":[1.5,-0,0,0.1,1e21,1E-7,100,-12.25e1,5e-324],"t":true,"f":false,"z":null}"#,
        "{\"s\":\"<script>alert(1)</script>\",\"q\":\"=SUM(A1)\",\"del\":\"\u{7f}x\u{85}\",\"sp\":\" \"}",
        r#"{ "a" : [ 1 , [ 2 , { "c" : 3 , "b" : 4 } ] ] }"#,
        // Escapes, decoded and written the RFC 8785 way; keys compared once decoded.
        r#"{"q":"say \"hi\"\\ \/ \b\f\n\r\t \u0000\u001f \u00e9\u20ac \ud83d\ude00","\u0062":1,"a":2}"#,
        r#"{"\ue000":1,"\ud83d\ude00":2,"\u007f":3}"#,
    ];
    for object in taken {
        for field in ["after", "before", "context"] {
            let body = format!("{{{base},\"{field}\":{object}}}");
            assert!(agree(&body, false), "{body}");
        }
    }
    let events = [
        // Defaults: source from the user, time and ip from the request.
        r#"{"user":"Portal","action":"LOGIN","table":"t"}"#,
        r#"{"user":"someone","action":"LOGIN","table":"t","source":null,"time":null,"ip":null}"#,
        // A key replay of a self-contained body needs no fingerprint.
        r#"{"id":"k-1","user":"u","action":"UPDATE","table":"t","primary_key":12,"time":"2026-01-02T03:04:05Z","ip":"2001:db8::1"}"#,
        r#"{"user":"u","action":"DELETE","table":"t","primary_key":-0,"message":"a b"}"#,
        r#"{"user":"u","action":"DELETE","table":"t","primary_key":"9007199254740993"}"#,
        r#"{"user":"u\u00e9 \"quoted\"","action":"X","table":"t\/x","message":"a\tb\r\nc"}"#,
        r#"{"\u0075ser":"u","action":"X","table":"t"}"#,
        r#"{"user":"u","action":"X","table":"t","ip":"::ffff:192.0.2.1","time":"2026-01-02T04:04:05+01:00"}"#,
        r#"{"user":"u","action":"X","table":"t","before":null,"after":{},"context":{"a":null}}"#,
    ];
    for event in events {
        assert!(agree(event, false), "{event}");
        assert!(
            agree(&format!("\r\n\n  {event} \r\n\n{event}\n"), true),
            "{event}"
        );
        assert!(
            agree(&format!(" [ {event} ,\n{event} ] "), false),
            "{event}"
        );
    }
}

#[test]
fn everything_else_takes_the_strict_path_and_gets_its_answer() {
    let refused = [
        // Not JSON, or not events.
        "",
        " ",
        "[]",
        "[{}",
        "{}",
        "null",
        r#"[{"user":"u","action":"X","table":"t"},]"#,
        r#"{"user":"u","action":"X","table":"t"} x"#,
        r#"{"user":"u","action":"X","table":"t"}{"user":"u","action":"X","table":"t"}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":01}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1.}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":-}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1e}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":tru}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a" 1}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":[1 2]}}"#,
        "{\"user\":\"u\",\"action\":\"X\",\"table\":\"t\",\"after\":{\"a\":\"x\u{1}\"}}",
        // Numbers the parser does not keep.
        r#"{"user":"u","action":"X","table":"t","after":{"a":9007199254740993}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1e400}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1e20}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":0.10000000000000000001}}"#,
        // Duplicate keys, at the top and inside.
        r#"{"user":"u","action":"X","table":"t","user":"v"}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1,"b":2,"a":3}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"b":1,"a":2,"b":3}}"#,
        // Fields: unknown, server-owned, wrong type, invalid, missing.
        r#"{"user":"u","action":"X","table":"t","seq":1}"#,
        r#"{"user":"u","action":"X","table":"t","extra":1}"#,
        r#"{"user":1,"action":"X","table":"t"}"#,
        r#"{"user":"","action":"X","table":"t"}"#,
        r#"{"user":"u","action":"x","table":"t"}"#,
        r#"{"user":"u","action":"X","table":"t","source":"Panel"}"#,
        r#"{"user":"u","action":"X","table":"t","id":"a b"}"#,
        r#"{"user":"u","action":"X","table":"t","ip":"300.1.1.1"}"#,
        r#"{"user":"u","action":"X","table":"t","time":"yesterday"}"#,
        r#"{"user":"u","action":"X","table":"t","time":"1999-01-01T00:00:00Z"}"#,
        r#"{"user":"u","action":"X","table":"t","time":"2099-01-01T00:00:00Z"}"#,
        r#"{"user":"u","action":"X","table":"t","after":[]}"#,
        r#"{"user":"u","action":"X","table":"t","after":"x"}"#,
        r#"{"user":"u","action":"UPDATE","table":"t"}"#,
        r#"{"user":"u","action":"UPDATE","table":"t","primary_key":1.5}"#,
        r#"{"user":"u","action":"UPDATE","table":"t","primary_key":true}"#,
        r#"{"action":"X","table":"t"}"#,
        "{\"user\":\"u\u{85}\",\"action\":\"X\",\"table\":\"t\"}",
        "{\"user\":\"u\",\"action\":\"X\",\"table\":\"t\",\"message\":\"\u{1b}[31m\"}",
        // Escapes: broken, lone surrogates, a key sent twice once escaped.
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\x"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\u12"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\u12g4"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\ud800"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\ud800\u0041"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"\udc00"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":"x\"}}"#,
        r#"{"user":"u","action":"X","table":"t","after":{"a":1,"\u0061":2}}"#,
        r#"{"user":"u","action":"X","table":"t","\u0075ser":"v"}"#,
        r#"{"user":"u\u0007","action":"X","table":"t"}"#,
        r#"{"user":"u","action":"X","table":"t","message":"\u001b[31m"}"#,
    ];
    for body in refused {
        assert!(!agree(body, false), "the strict path refuses {body:?}");
        assert!(
            !agree(body, true),
            "the strict path refuses {body:?} as NDJSON"
        );
    }
    // An `id` whose replay check needs a fingerprint of the body as sent: the fast path
    // writes the body's RFC 8785 form, and the fingerprint is the strict path's.
    for body in [
        r#"{"id":"k","user":"u","action":"X","table":"t","after":{"b":1,"a":[2.50]}}"#,
        r#"{"context":{"\u00e9":"\/"},"id":null,"user":"u","action":"X","table":"t","ip":"192.0.2.1","primary_key":7,"source":null}"#,
    ] {
        assert!(agree(body, false), "{body}");
        assert!(
            prepare_batch(body.as_bytes(), false, &limits(), 10, received(), peer())
                .is_ok_and(|events| events[0].input_hash.is_some()),
            "{body}"
        );
    }
    // In NDJSON a line break ends the event: this is two broken lines.
    assert!(!agree(
        "{\"user\":\"u\",\n\"action\":\"X\",\"table\":\"t\"}",
        true
    ));
}

#[test]
fn limits_are_kept_to_the_byte_and_the_level() {
    let event = r#"{"user":"u","action":"X","table":"t","after":{"a":[1,{"b":[2]}]}}"#;
    // Nesting: the event 1, after 2, [ 3, { 4, [ 5.
    for max_depth in 0..=7 {
        let limits = JsonLimits {
            max_depth,
            ..JsonLimits::default()
        };
        let taken = agree_with(event, false, &limits, 10);
        assert_eq!(taken, max_depth >= 5, "max_depth {max_depth}");
        agree_with(&format!("{event}\n{event}"), true, &limits, 10);
        agree_with(&format!("[{event},{event}]"), false, &limits, 10);
    }
    for max_event_bytes in [event.len() - 1, event.len(), event.len() + 1] {
        let limits = JsonLimits {
            max_event_bytes,
            ..JsonLimits::default()
        };
        let fits = max_event_bytes >= event.len();
        assert_eq!(agree_with(event, false, &limits, 10), fits);
        assert_eq!(
            agree_with(&format!(" {event}\n\n {event} \n"), true, &limits, 10),
            fits
        );
        assert_eq!(
            agree_with(&format!("[ {event} ,{event}]"), false, &limits, 10),
            fits
        );
    }
    let two = format!("{event}\n{event}");
    assert!(agree_with(&two, true, &limits(), 2));
    assert!(!agree_with(&two, true, &limits(), 1));
    // Deeper than the fast path follows: the strict path takes it.
    let deep = format!(
        r#"{{"user":"u","action":"X","table":"t","after":{}1{}}}"#,
        r#"{"a":"#.repeat(40),
        "}".repeat(40)
    );
    let limits = JsonLimits {
        max_depth: 64,
        ..JsonLimits::default()
    };
    assert!(!agree_with(&deep, false, &limits, 10));
    assert!(prepare_batch(deep.as_bytes(), false, &limits, 10, received(), peer()).is_ok());
}

/// A generated event, perhaps without its `time`, with one or two small random edits: a byte
/// inserted, removed or replaced with one that matters to JSON.
fn mutated() -> impl Strategy<Value = String> {
    let alphabet: Vec<u8> = b"{}[]:,\"\\ \n\t-+.eE0159tfnul\x01\x7fa".to_vec();
    (
        0u64..50,
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::sample::select(alphabet),
            ),
            1..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(n, edits, without_time)| {
            static LINES: OnceLock<Vec<String>> = OnceLock::new();
            let lines = LINES.get_or_init(|| generated(9, 50));
            let mut line = lines[n as usize].clone();
            if without_time {
                // Leaving the time to the server makes the `id` check fingerprint the body.
                let start = line.find(",\"time\":").expect("a time");
                let end = start + 1 + line[start + 1..].find(',').expect("a member after");
                line.replace_range(start..end, "");
            }
            let mut bytes = line.into_bytes();
            for (at, kind, byte) in edits {
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes.insert(at, byte),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes[at] = byte,
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_paths_agree_on_mutated_events(event in mutated(), ndjson in any::<bool>()) {
        agree(&event, ndjson);
        agree(&format!("[{event}]"), false);
    }
}
