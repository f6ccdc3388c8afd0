//! Property tests of the invariants hashing relies on: the canonical form reads back to the
//! same value, canonicalizing is idempotent, the spliced stored event equals the generic
//! canonicalizer, and timestamps print and parse to the same instant.

use std::net::IpAddr;

use auditlog_core::diff::diff;
use auditlog_core::event::{Record, Timestamp, canonical_event};
use auditlog_core::json::{
    JsonLimits, MAX_SAFE_INTEGER, Number, Value, cmp_utf16, parse, parse_batch,
};
use proptest::prelude::*;

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_filter_map("safe", Number::from_i64),
        (-1000i64..1000).prop_filter_map("small", Number::from_i64),
        any::<u64>().prop_filter_map("finite", |bits| Number::from_f64(f64::from_bits(bits))),
        (-1e6f64..1e6).prop_filter_map("finite", Number::from_f64),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,6}",
        any::<String>(),
        // Characters on both sides of the UTF-16 / code point ordering difference.
        prop::collection::vec(
            prop::sample::select(vec![
                'a',
                '\u{e000}',
                '\u{ffff}',
                '\u{10000}',
                '😂',
                '\u{7f}'
            ]),
            0..4
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(arb_key(), arb_value(), 0..5)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
}

/// `value` with every object's members in canonical order, so that values equal up to key
/// order compare equal.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        Value::Object(members) => {
            let mut members: Vec<(String, Value)> = members
                .iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect();
            members.sort_by(|a, b| cmp_utf16(&a.0, &b.0));
            Value::Object(members)
        }
        other => other.clone(),
    }
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        any::<i64>(),
        // Whole seconds and milliseconds, as clients usually send.
        (0i64..4_000_000_000).prop_map(|s| s * 1_000_000_000),
        (0i64..4_000_000_000_000).prop_map(|ms| ms * 1_000_000),
    ]
    .prop_map(Timestamp::from_unix_nanos)
}

prop_compose! {
    fn arb_record()(
        id in proptest::option::of("[A-Za-z0-9._:-]{1,40}"),
        time in arb_timestamp(),
        user in "\\PC{1,30}",
        source in "[a-z][a-z0-9_-]{0,31}",
        ip in any::<IpAddr>(),
        action in "[A-Z][A-Z0-9_]{0,31}",
        table in "\\PC{1,30}",
        primary_key in proptest::option::of("\\PC{1,30}"),
        message in proptest::option::of("[\\PC\t\n\r]{0,40}"),
        before in proptest::option::of(arb_object()),
        after in proptest::option::of(arb_object()),
        context in proptest::option::of(arb_object()),
    ) -> Record {
        Record { id, time, user, source, ip, action, table, primary_key, message, before, after, context }
    }
}

fn parse_unlimited(bytes: &[u8]) -> Value {
    let limits = JsonLimits {
        max_depth: 64,
        max_event_bytes: usize::MAX,
    };
    parse(bytes, &limits).unwrap_or_else(|err| panic!("{}: {err}", String::from_utf8_lossy(bytes)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_canonical_form_parses_back_to_the_same_value(value in arb_value()) {
        let canonical = value.to_canonical();
        let back = parse_unlimited(&canonical);
        prop_assert_eq!(sorted(&back), sorted(&value));
    }

    #[test]
    fn canonicalizing_is_idempotent(value in arb_value()) {
        let once = value.to_canonical();
        let twice = parse_unlimited(&once).to_canonical();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn canonical_objects_have_their_keys_in_utf16_order(value in arb_object()) {
        let back = parse_unlimited(&value.to_canonical());
        let members = back.as_object().unwrap_or_default();
        let keys: Vec<&String> = members.iter().map(|(k, _)| k).collect();
        for pair in keys.windows(2) {
            prop_assert!(cmp_utf16(pair[0], pair[1]).is_lt());
            let utf16 = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
            prop_assert!(utf16(pair[0]) < utf16(pair[1]));
        }
    }

    #[test]
    fn the_spliced_stored_event_equals_the_generic_canonical_form(
        record in arb_record(),
        received_at in arb_timestamp(),
        seq in 0..=(MAX_SAFE_INTEGER as u64),
        tenant in "[a-z0-9][a-z0-9_-]{0,20}",
    ) {
        let mut spliced = Vec::new();
        canonical_event(&record.canonical_parts(), received_at, seq, &tenant, &mut spliced);
        let Value::Object(mut members) = record.to_value() else {
            panic!("a record is an object");
        };
        members.push(("received_at".to_owned(), Value::String(received_at.to_rfc3339())));
        members.push(("seq".to_owned(), Value::Number(Number::from_i64(seq as i64).expect("safe"))));
        members.push(("tenant".to_owned(), Value::String(tenant.clone())));
        members.reverse();
        let generic = Value::Object(members).to_canonical();
        prop_assert_eq!(String::from_utf8_lossy(&spliced), String::from_utf8_lossy(&generic));
        // Reading the stored bytes back gives the same record, objects in canonical order.
        let read = Record::from_canonical(&spliced);
        prop_assert_eq!(
            read.map(|r| r.to_value().to_canonical()),
            Ok(record.to_value().to_canonical())
        );
    }

    #[test]
    fn timestamps_print_and_parse_to_the_same_instant(time in arb_timestamp()) {
        let text = time.to_rfc3339();
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), Ok(time));
        let with_time_crate = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .expect("the time crate reads our form");
        prop_assert_eq!(with_time_crate.unix_timestamp_nanos(), i128::from(time.unix_nanos()));
        let theirs = with_time_crate.format(&time::format_description::well_known::Rfc3339).expect("formats");
        prop_assert_eq!(Timestamp::parse_rfc3339(&theirs), Ok(time));
    }

    #[test]
    fn a_value_has_no_diff_with_itself_and_a_create_adds_every_key(value in arb_object()) {
        prop_assert!(diff(Some(&value), Some(&value)).is_empty());
        let n_keys = value.as_object().map_or(0, |members| members.len());
        prop_assert_eq!(diff(None, Some(&value)).len(), n_keys);
        prop_assert_eq!(diff(Some(&value), None).len(), n_keys);
    }

    #[test]
    fn a_batch_reads_the_same_as_an_array_and_as_ndjson(events in prop::collection::vec(arb_object(), 1..6)) {
        let canonical: Vec<Vec<u8>> = events.iter().map(Value::to_canonical).collect();
        let array = [b"[".to_vec(), canonical.join(&b","[..]), b"]".to_vec()].concat();
        let lines = canonical.join(&b"\n"[..]);
        let limits = JsonLimits { max_depth: 64, ..JsonLimits::default() };
        let from_array = parse_batch(&array, false, &limits).expect("array batch");
        let from_lines = parse_batch(&lines, true, &limits).expect("NDJSON batch");
        prop_assert_eq!(&from_array, &from_lines);
        prop_assert_eq!(from_array.iter().map(sorted).collect::<Vec<_>>(), events.iter().map(sorted).collect::<Vec<_>>());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let limits = JsonLimits { max_depth: 4, max_event_bytes: 32 };
        let _ = parse(&bytes, &limits);
        let _ = parse_batch(&bytes, false, &limits);
        let _ = parse_batch(&bytes, true, &limits);
    }
}
