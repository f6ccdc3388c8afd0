//! The canonical text: fixed examples of how ASTs are written, and the property
//! `parse(&query.to_string()) == Ok(query)` over random valid ASTs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use auditlog_core::event::Timestamp;
use auditlog_core::json::{MAX_SAFE_INTEGER, Number};
use auditlog_query::{
    Bound, Clause, ClauseKind, Column, Field, Op, Query, Side, Text, TimeBound, Value, parse,
};
use proptest::prelude::*;

use crate::query;

fn canonical(text: &str) -> String {
    query(text).to_string()
}

#[test]
fn canonical_text_spells_aliases_addresses_times_and_units_one_way() {
    for (text, expected) in [
        ("", ""),
        ("  Portal   UPDATE ", "Portal UPDATE"),
        ("pk:5", "primary_key:5"),
        ("ip:10.0.0.1/32,2001:db8::1/128", "ip:10.0.0.1,2001:db8::1"),
        ("ip:2001:0db8::/32", "ip:2001:db8::/32"),
        ("time:>now-86400s", "time:>now-1d"),
        ("time:>now-0h", "time:>now"),
        ("time:>now-90m", "time:>now-90m"),
        ("time:2026-01-01", "time:2026-01-01T00:00:00Z"),
        (
            "time:2026-01-01T01:00:00+01:00..",
            "time:2026-01-01T00:00:00Z..",
        ),
        ("credit_limit:>1e3,<-0.50", "credit_limit:>1000,<-0.5"),
        ("user:ali*,\"a \\\"b\\\"\"", "user:ali*,\"a \\\"b\\\"\""),
        (r"user\:x", r"user\:x"),
        ("--x", r"-\-x"),
        (r"ali\*", r"ali\*"),
        ("after:x", "after:x"),
    ] {
        assert_eq!(canonical(text), expected, "{text}");
    }
}

#[test]
fn words_holding_syntax_are_escaped_not_quoted() {
    let tricky = [
        "a b",
        "-x",
        "x:y",
        ":x",
        "a,b",
        "1..2",
        "a*",
        ">5",
        "\"q\"",
        "back\\slash",
        "pk:1",
    ];
    for word in tricky {
        for clause in [
            ClauseKind::Term(Text::Word(word.to_owned())),
            ClauseKind::Field {
                field: Field::Column(Column::User),
                values: vec![Value::Word(word.to_owned())],
            },
        ] {
            let original = Query {
                clauses: vec![Clause {
                    negated: false,
                    kind: clause,
                }],
            };
            let text = original.to_string();
            assert_eq!(parse(&text), Ok(original), "{word:?} written as {text}");
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{1,12}",
        "[-a-z0-9:.,<>=*\"\\\\ _]{1,10}",
        "[a-z]{1,3}:[a-z:]{0,3}",
    ]
}

fn time_bound() -> impl Strategy<Value = TimeBound> {
    prop_oneof![
        (-2_000_000_000_000_000_000i64..4_000_000_000_000_000_000)
            .prop_map(|nanos| TimeBound::Absolute(Timestamp::from_unix_nanos(nanos))),
        (0i64..1_000_000_000)
            .prop_map(|seconds_before_now| TimeBound::Relative { seconds_before_now }),
        prop_oneof![Just(60i64), Just(3600), Just(86_400), Just(604_800)].prop_flat_map(|unit| {
            (0i64..1000).prop_map(move |n| TimeBound::Relative {
                seconds_before_now: n * unit,
            })
        }),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_filter_map("safe", Number::from_i64),
        any::<f64>().prop_filter_map("exact", Number::from_f64),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Gt), Just(Op::Ge), Just(Op::Lt), Just(Op::Le)]
}

/// Ranges and comparisons over one kind of bound.
fn ordered(bound: BoxedStrategy<Bound>) -> impl Strategy<Value = Value> {
    prop_oneof![
        (op(), bound.clone()).prop_map(|(op, bound)| Value::Compare(op, bound)),
        (
            proptest::option::of(bound.clone()),
            proptest::option::of(bound)
        )
            .prop_filter("one end", |(lo, hi)| lo.is_some() || hi.is_some())
            .prop_map(|(lo, hi)| Value::Range { lo, hi }),
    ]
}

fn textual() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::Word),
        text().prop_map(Value::Prefix),
        text().prop_map(Value::Phrase),
    ]
}

fn values_for(field: &Field) -> BoxedStrategy<Value> {
    let time = time_bound().prop_map(Bound::Time).boxed();
    match field {
        Field::Column(Column::Ip) => prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(addr, prefix)| Value::Cidr(IpAddr::V4(Ipv4Addr::from(addr)), prefix)),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(addr, prefix)| Value::Cidr(IpAddr::V6(Ipv6Addr::from(addr)), prefix)),
            text().prop_map(Value::Prefix),
        ]
        .boxed(),
        Field::Column(Column::Time | Column::ReceivedAt) => {
            prop_oneof![time.clone().prop_map(Value::Exact), ordered(time),].boxed()
        }
        Field::Column(Column::Seq) => {
            let seq = (1..=MAX_SAFE_INTEGER)
                .prop_filter_map("safe", Number::from_i64)
                .prop_map(Bound::Number)
                .boxed();
            prop_oneof![seq.clone().prop_map(Value::Exact), ordered(seq)].boxed()
        }
        Field::Column(_) => textual().boxed(),
        Field::Data { .. } => prop_oneof![
            textual(),
            ordered(number().prop_map(Bound::Number).boxed()),
            ordered(time),
        ]
        .boxed(),
    }
}

fn data_field() -> impl Strategy<Value = Field> {
    let side = proptest::option::of(prop_oneof![
        Just(Side::Before),
        Just(Side::After),
        Just(Side::Context)
    ]);
    let path = proptest::collection::vec("[a-zé_][a-zé0-9_-]{0,6}", 0..3);
    (side, path)
        .prop_filter("valid data path", |(side, path)| {
            side.is_some()
                || (!path.is_empty()
                    && Side::from_name(&path[0]).is_none()
                    && !(path.len() == 1 && Column::from_name(&path[0]).is_some()))
        })
        .prop_map(|(side, path)| Field::Data { side, path })
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        proptest::sample::select(Column::ALL.to_vec()).prop_map(Field::Column),
        data_field(),
    ]
}

fn clause() -> impl Strategy<Value = Clause> {
    let term = prop_oneof![
        text().prop_map(Text::Word),
        text().prop_map(Text::Prefix),
        text().prop_map(Text::Phrase),
    ]
    .prop_map(ClauseKind::Term);
    let field_clause = field().prop_flat_map(|field| {
        proptest::collection::vec(values_for(&field), 1..4).prop_map(move |values| {
            ClauseKind::Field {
                field: field.clone(),
                values,
            }
        })
    });
    (any::<bool>(), prop_oneof![term, field_clause])
        .prop_map(|(negated, kind)| Clause { negated, kind })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_the_canonical_text_gives_back_the_ast(
        clauses in proptest::collection::vec(clause(), 0..6),
    ) {
        let original = Query { clauses };
        let text = original.to_string();
        prop_assert_eq!(parse(&text), Ok(original), "text: {}", text);
    }

    #[test]
    fn canonical_text_is_a_fixed_point_of_parsing(
        text in "[-a-z0-9:.,<>=*\"\\\\ /_]{0,60}",
    ) {
        if let Ok(parsed) = parse(&text) {
            let canonical = parsed.to_string();
            prop_assert_eq!(parse(&canonical), Ok(parsed), "canonical: {}", canonical);
        }
    }
}
