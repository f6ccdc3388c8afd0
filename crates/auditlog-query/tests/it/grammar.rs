//! One test per grammar rule: what each piece of text parses to.

use std::net::IpAddr;

use auditlog_core::json::Number;
use auditlog_query::{
    Bound, Clause, ClauseKind, Column, Field, Op, Query, Side, Text, TimeBound, Value,
};

use crate::{at, query};

fn term(negated: bool, text: Text) -> Clause {
    Clause {
        negated,
        kind: ClauseKind::Term(text),
    }
}

fn field(field: Field, values: Vec<Value>) -> Clause {
    Clause {
        negated: false,
        kind: ClauseKind::Field { field, values },
    }
}

fn column(column: Column, values: Vec<Value>) -> Clause {
    field(Field::Column(column), values)
}

fn data(side: Option<Side>, path: &[&str], values: Vec<Value>) -> Clause {
    field(
        Field::Data {
            side,
            path: path.iter().map(|segment| segment.to_string()).collect(),
        },
        values,
    )
}

fn word(text: &str) -> Value {
    Value::Word(text.to_owned())
}

fn number(value: i64) -> Bound {
    Bound::Number(Number::from_i64(value).expect("safe integer"))
}

fn time(text: &str) -> Bound {
    Bound::Time(TimeBound::Absolute(at(text)))
}

fn only(text: &str) -> Clause {
    let mut parsed = query(text);
    assert_eq!(parsed.clauses.len(), 1, "{text}: {parsed:?}");
    parsed.clauses.remove(0)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn an_empty_or_blank_query_has_no_clauses() {
    assert_eq!(query(""), Query::default());
    assert_eq!(query(" \t\n "), Query::default());
}

#[test]
fn clauses_are_separated_by_any_whitespace() {
    let parsed = query("  Portal\tUPDATE\n 4711 ");
    assert_eq!(
        parsed.clauses,
        vec![
            term(false, Text::Word("Portal".into())),
            term(false, Text::Word("UPDATE".into())),
            term(false, Text::Word("4711".into())),
        ]
    );
}

#[test]
fn a_bare_word_is_a_term_and_keeps_its_case() {
    assert_eq!(only("Portal"), term(false, Text::Word("Portal".into())));
}

#[test]
fn a_quoted_phrase_is_a_term_with_its_escapes_resolved() {
    assert_eq!(
        only(r#""changed \"credit\" limit \\ now""#),
        term(
            false,
            Text::Phrase(r#"changed "credit" limit \ now"#.into())
        )
    );
}

#[test]
fn a_leading_minus_negates_terms_phrases_and_fields() {
    assert_eq!(only("-Portal"), term(true, Text::Word("Portal".into())));
    assert_eq!(only("-\"a b\""), term(true, Text::Phrase("a b".into())));
    let negated = only("-action:LOGIN");
    assert!(negated.negated);
    assert_eq!(
        negated.kind,
        column(Column::Action, vec![word("LOGIN")]).kind
    );
}

#[test]
fn a_double_minus_is_the_negated_term_minus_something() {
    assert_eq!(only("--x"), term(true, Text::Word("-x".into())));
}

#[test]
fn a_trailing_star_makes_a_prefix_for_terms_and_values() {
    assert_eq!(only("ingr*"), term(false, Text::Prefix("ingr".into())));
    assert_eq!(
        only("user:ali*"),
        column(Column::User, vec![Value::Prefix("ali".into())])
    );
}

#[test]
fn a_backslash_escapes_any_character_in_a_word() {
    assert_eq!(only(r"ali\*"), term(false, Text::Word("ali*".into())));
    assert_eq!(only(r"\-x"), term(false, Text::Word("-x".into())));
    assert_eq!(only(r"a\ b"), term(false, Text::Word("a b".into())));
    assert_eq!(only(r"user\:x"), term(false, Text::Word("user:x".into())));
    assert_eq!(only(r"user:a\,b"), column(Column::User, vec![word("a,b")]));
    assert_eq!(
        only(r"account_id:1\..5"),
        data(None, &["account_id"], vec![word("1..5")])
    );
}

#[test]
fn every_column_name_parses_to_its_column_and_pk_is_primary_key() {
    for column_value in Column::ALL {
        let value = match column_value {
            Column::Ip => "10.0.0.1",
            Column::Time | Column::ReceivedAt => "now",
            Column::Seq => "1",
            _ => "x",
        };
        let text = format!("{}:{value}", column_value.name());
        let clause = only(&text);
        let ClauseKind::Field { field, .. } = clause.kind else {
            panic!("{text}: not a field clause");
        };
        assert_eq!(field, Field::Column(column_value));
        if column_value == Column::PrimaryKey {
            let ClauseKind::Field { field, .. } = only("pk:x").kind else {
                panic!("pk: not a field clause");
            };
            assert_eq!(field, Field::Column(Column::PrimaryKey));
        }
    }
}

#[test]
fn commas_separate_values_that_are_ored() {
    assert_eq!(
        only("action:CREATE,UPDATE,\"a phrase\""),
        column(
            Column::Action,
            vec![
                word("CREATE"),
                word("UPDATE"),
                Value::Phrase("a phrase".into())
            ]
        )
    );
}

#[test]
fn an_unknown_field_name_is_a_data_key_in_any_side() {
    assert_eq!(
        only("account_id:4711"),
        data(None, &["account_id"], vec![word("4711")])
    );
    assert_eq!(
        only("foo.bar:baz"),
        data(None, &["foo", "bar"], vec![word("baz")])
    );
}

#[test]
fn a_side_name_restricts_a_data_key_to_that_side() {
    assert_eq!(
        only("after.status:suspended"),
        data(Some(Side::After), &["status"], vec![word("suspended")])
    );
    assert_eq!(
        only("before.x:1"),
        data(Some(Side::Before), &["x"], vec![word("1")])
    );
    assert_eq!(
        only("context.ticket:T-1"),
        data(Some(Side::Context), &["ticket"], vec![word("T-1")])
    );
}

#[test]
fn dots_beyond_the_side_address_nested_objects() {
    assert_eq!(
        only("after.routing.strategy:quality"),
        data(
            Some(Side::After),
            &["routing", "strategy"],
            vec![word("quality")]
        )
    );
}

#[test]
fn a_side_alone_matches_any_value_under_it() {
    assert_eq!(
        only("after:suspended"),
        data(Some(Side::After), &[], vec![word("suspended")])
    );
}

#[test]
fn field_names_are_case_sensitive() {
    assert_eq!(
        only("User:Portal"),
        data(None, &["User"], vec![word("Portal")])
    );
}

#[test]
fn an_ipv4_network_and_a_plain_address_parse_to_cidr() {
    assert_eq!(
        only("ip:10.0.0.0/8"),
        column(Column::Ip, vec![Value::Cidr(ip("10.0.0.0"), 8)])
    );
    assert_eq!(
        only("ip:10.1.2.3"),
        column(Column::Ip, vec![Value::Cidr(ip("10.1.2.3"), 32)])
    );
}

#[test]
fn ipv6_values_keep_their_colons() {
    assert_eq!(
        only("ip:2001:db8::/32"),
        column(Column::Ip, vec![Value::Cidr(ip("2001:db8::"), 32)])
    );
    assert_eq!(
        only("ip:::1"),
        column(Column::Ip, vec![Value::Cidr(ip("::1"), 128)])
    );
    assert_eq!(
        only("ip:2001:db8::1,10.0.0.1"),
        column(
            Column::Ip,
            vec![
                Value::Cidr(ip("2001:db8::1"), 128),
                Value::Cidr(ip("10.0.0.1"), 32)
            ]
        )
    );
}

#[test]
fn an_ip_prefix_is_textual() {
    assert_eq!(
        only("ip:10.0.*"),
        column(Column::Ip, vec![Value::Prefix("10.0.".into())])
    );
}

#[test]
fn a_bare_ipv6_address_or_clock_time_is_a_term_not_a_field() {
    assert_eq!(
        only("2001:db8::1"),
        term(false, Text::Word("2001:db8::1".into()))
    );
    assert_eq!(only("fe80::1"), term(false, Text::Word("fe80::1".into())));
    assert_eq!(only("12:30"), term(false, Text::Word("12:30".into())));
    assert_eq!(only("::1"), term(false, Text::Word("::1".into())));
}

#[test]
fn a_time_range_takes_dates_as_utc_midnight() {
    assert_eq!(
        only("time:2026-01-01..2026-02-01"),
        column(
            Column::Time,
            vec![Value::Range {
                lo: Some(time("2026-01-01T00:00:00Z")),
                hi: Some(time("2026-02-01T00:00:00Z")),
            }]
        )
    );
}

#[test]
fn a_range_may_leave_either_end_open() {
    assert_eq!(
        only("seq:..10"),
        column(
            Column::Seq,
            vec![Value::Range {
                lo: None,
                hi: Some(number(10))
            }]
        )
    );
    assert_eq!(
        only("received_at:2026-11-25T20:42:28.5+01:00.."),
        column(
            Column::ReceivedAt,
            vec![Value::Range {
                lo: Some(time("2026-11-25T19:42:28.5Z")),
                hi: None
            }]
        )
    );
}

#[test]
fn comparisons_take_every_operator() {
    for (text, op) in [
        ("seq:>5", Op::Gt),
        ("seq:>=5", Op::Ge),
        ("seq:<5", Op::Lt),
        ("seq:<=5", Op::Le),
    ] {
        assert_eq!(
            only(text),
            column(Column::Seq, vec![Value::Compare(op, number(5))]),
            "{text}"
        );
    }
    assert_eq!(
        only("time:>=2026-11-01"),
        column(
            Column::Time,
            vec![Value::Compare(Op::Ge, time("2026-11-01T00:00:00Z"))]
        )
    );
}

#[test]
fn relative_times_count_back_from_now_in_every_unit() {
    for (text, seconds) in [
        ("now", 0),
        ("now-30s", 30),
        ("now-15m", 900),
        ("now-24h", 86_400),
        ("now-7d", 604_800),
        ("now-2w", 1_209_600),
    ] {
        assert_eq!(
            only(&format!("time:>{text}")),
            column(
                Column::Time,
                vec![Value::Compare(
                    Op::Gt,
                    Bound::Time(TimeBound::Relative {
                        seconds_before_now: seconds
                    })
                )]
            ),
            "{text}"
        );
    }
}

#[test]
fn a_bare_time_or_seq_is_an_exact_bound() {
    assert_eq!(
        only("seq:42"),
        column(Column::Seq, vec![Value::Exact(number(42))])
    );
    assert_eq!(
        only("time:2026-11-25T20:42:28Z"),
        column(
            Column::Time,
            vec![Value::Exact(time("2026-11-25T20:42:28Z"))]
        )
    );
}

#[test]
fn data_keys_take_numeric_and_time_comparisons_and_ranges() {
    assert_eq!(
        only("credit_limit:>1000"),
        data(
            None,
            &["credit_limit"],
            vec![Value::Compare(Op::Gt, number(1000))]
        )
    );
    assert_eq!(
        only("balance:-5.5..1e3"),
        data(
            None,
            &["balance"],
            vec![Value::Range {
                lo: Some(Bound::Number(Number::from_f64(-5.5).expect("finite"))),
                hi: Some(number(1000)),
            }]
        )
    );
    assert_eq!(
        only("after.expires:<2027-01-01"),
        data(
            Some(Side::After),
            &["expires"],
            vec![Value::Compare(Op::Lt, time("2027-01-01T00:00:00Z"))]
        )
    );
}

#[test]
fn a_data_word_stays_a_word_even_when_it_looks_like_a_number() {
    assert_eq!(
        only("account_id:4711"),
        data(None, &["account_id"], vec![word("4711")])
    );
}

#[test]
fn values_may_hold_colons_and_minus_signs() {
    assert_eq!(
        only("context.request:a:b:c"),
        data(Some(Side::Context), &["request"], vec![word("a:b:c")])
    );
    assert_eq!(only("delta:-5"), data(None, &["delta"], vec![word("-5")]));
}

#[test]
fn the_query_from_str_impl_is_parse() {
    let parsed: Query = "user:Portal".parse().expect("parses");
    assert_eq!(parsed, query("user:Portal"));
}
