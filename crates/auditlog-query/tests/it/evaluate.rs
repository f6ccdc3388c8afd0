//! The reference evaluator on seed-style events from the ConnexCS audit log: the customer
//! portal (`Portal`) changing an account, a person creating an ingress from an IPv6 address,
//! and a sign-in from a private IPv4 network.

use auditlog_core::event::Timestamp;
use auditlog_core::json::Value as Json;
use auditlog_query::matches;

use crate::{at, json, query};

fn events() -> Vec<Json> {
    [
        r#"{"action":"UPDATE",
            "after":{"account_id":4711,"credit_limit":1500,"status":"suspended",
                     "routing":{"strategy":"quality","ingress_id":"ing-9001"}},
            "before":{"account_id":4711,"credit_limit":1000,"status":"active",
                      "routing":{"strategy":"cost","ingress_id":"ing-9001"}},
            "context":{"request_id":"req-1","ticket":"T-42","tags":["vip","wholesale"]},
            "id":"evt-1","ip":"203.0.113.7",
            "message":"Changed credit limit of customer 4711","primary_key":"4711",
            "received_at":"2026-11-25T20:42:29Z","seq":1,"source":"portal","table":"customer",
            "tenant":"connexcs","time":"2026-11-25T20:42:28.5Z","user":"Portal"}"#,
        r#"{"action":"CREATE",
            "after":{"ingress_id":"ing-9002","account_id":"4712","codecs":["PCMA","G729"],
                     "enabled":true,"max_channels":"250","routes":[{"carrier":"acme"}]},
            "before":null,
            "context":{"user_agent":"Mozilla/5.0"},
            "ip":"2001:db8:85a3::8a2e:370:7334",
            "message":"Created ingress ing-9002 for account 4712","primary_key":"9002",
            "received_at":"2026-11-26T09:00:00Z","seq":2,"source":"panel","table":"ingress",
            "tenant":"connexcs","time":"2026-11-26T08:59:59Z","user":"alice@connexcs.com"}"#,
        r#"{"action":"LOGIN","ip":"10.1.2.3","message":"Signed in",
            "received_at":"2026-11-26T10:00:00Z","seq":3,"source":"panel","table":"session",
            "tenant":"connexcs","time":"2026-11-26T10:00:00Z","user":"Alistair"}"#,
    ]
    .into_iter()
    .map(json)
    .collect()
}

fn now() -> Timestamp {
    at("2026-11-26T12:00:00Z")
}

/// The `seq` of every sample event the query matches at `now`.
fn hits_at(text: &str, now: Timestamp) -> Vec<i64> {
    let parsed = query(text);
    events()
        .iter()
        .filter(|event| matches(&parsed, event, now))
        .filter_map(|event| {
            event.get("seq").and_then(|seq| match seq {
                Json::Number(number) => number.as_i64(),
                _ => None,
            })
        })
        .collect()
}

fn hits(text: &str) -> Vec<i64> {
    hits_at(text, now())
}

#[test]
fn an_empty_query_matches_every_event() {
    assert_eq!(hits(""), vec![1, 2, 3]);
}

#[test]
fn an_account_id_typed_as_a_term_finds_every_change_that_mentions_it() {
    assert_eq!(hits("4711"), vec![1]);
    assert_eq!(hits("4712"), vec![2]);
}

#[test]
fn an_ingress_id_typed_as_a_term_finds_its_events() {
    assert_eq!(hits("ing-9001"), vec![1]);
    assert_eq!(hits("ing-9002"), vec![2]);
    assert_eq!(hits("\"ing-9001\""), vec![1]);
}

#[test]
fn terms_compare_numbers_by_their_canonical_text() {
    assert_eq!(hits("1500"), vec![1]);
    assert_eq!(hits("1500.0"), Vec::<i64>::new());
}

#[test]
fn bare_terms_ignore_seq_time_booleans_and_nulls() {
    assert_eq!(hits("2"), Vec::<i64>::new());
    assert_eq!(hits("true"), Vec::<i64>::new());
    assert_eq!(hits("null"), Vec::<i64>::new());
    assert_eq!(hits("2026-11-26T10:00:00Z"), Vec::<i64>::new());
}

#[test]
fn terms_are_case_insensitive_on_columns_and_values() {
    assert_eq!(hits("portal"), vec![1]);
    assert_eq!(hits("ALICE@CONNEXCS.COM"), vec![2]);
    assert_eq!(hits("VIP"), vec![1]);
    assert_eq!(hits("2001:DB8:85A3::8A2E:370:7334"), vec![2]);
}

#[test]
fn a_prefix_term_starts_any_column_message_word_or_value() {
    assert_eq!(hits("ali*"), vec![2, 3]);
    assert_eq!(hits("sign*"), vec![3]);
    assert_eq!(hits("wholes*"), vec![1]);
}

#[test]
fn a_phrase_term_is_consecutive_words_of_the_message() {
    assert_eq!(hits("\"credit limit\""), vec![1]);
    assert_eq!(hits("\"limit credit\""), Vec::<i64>::new());
}

#[test]
fn clauses_are_anded_and_negation_inverts_one() {
    assert_eq!(hits("source:panel ali*"), vec![2, 3]);
    assert_eq!(hits("source:panel -action:LOGIN"), vec![2]);
    assert_eq!(hits("-4711"), vec![2, 3]);
}

#[test]
fn comma_separated_values_are_ored() {
    assert_eq!(hits("action:create,login"), vec![2, 3]);
    assert_eq!(hits("table:customer,nothing"), vec![1]);
}

#[test]
fn text_columns_match_the_whole_value_or_a_prefix() {
    assert_eq!(hits("user:portal"), vec![1]);
    assert_eq!(hits("user:Port"), Vec::<i64>::new());
    assert_eq!(hits("user:Port*"), vec![1]);
    assert_eq!(hits("pk:9002"), vec![2]);
    assert_eq!(hits("primary_key:\"4711\""), vec![1]);
}

#[test]
fn an_absent_column_does_not_match_and_its_negation_does() {
    assert_eq!(hits("id:evt-1"), vec![1]);
    assert_eq!(hits("-id:evt-1"), vec![2, 3]);
    assert_eq!(hits("-after.status:suspended"), vec![2, 3]);
}

#[test]
fn message_words_and_phrases_are_whole_consecutive_words() {
    assert_eq!(hits("message:credit"), vec![1]);
    assert_eq!(hits("message:cred"), Vec::<i64>::new());
    assert_eq!(hits("message:cred*"), vec![1]);
    assert_eq!(hits("message:credit_limit"), vec![1]);
    assert_eq!(hits("message:\"limit of customer\""), vec![1]);
    assert_eq!(hits("message:\"limit of cust\""), Vec::<i64>::new());
    assert_eq!(hits("message:--"), Vec::<i64>::new());
}

#[test]
fn ip_matches_networks_and_exact_addresses() {
    assert_eq!(hits("ip:10.0.0.0/8"), vec![3]);
    assert_eq!(hits("ip:10.1.2.99/24"), vec![3]);
    assert_eq!(hits("ip:203.0.113.7"), vec![1]);
    assert_eq!(hits("ip:203.0.113.8"), Vec::<i64>::new());
    assert_eq!(hits("ip:2001:db8::/32"), vec![2]);
    assert_eq!(hits("ip:0.0.0.0/0"), vec![1, 3]);
    assert_eq!(hits("ip:10.0.0.0/8,2001:db8::/32"), vec![2, 3]);
    assert_eq!(hits("ip:203.0.*"), vec![1]);
}

#[test]
fn an_ipv4_mapped_address_is_in_its_ipv4_network() {
    let event = json(r#"{"ip":"::ffff:10.9.8.7","seq":9}"#);
    assert!(matches(&query("ip:10.0.0.0/8"), &event, now()));
    assert!(!matches(&query("ip:11.0.0.0/8"), &event, now()));
    let event = json(r#"{"ip":"10.9.8.7","seq":9}"#);
    assert!(matches(&query("ip:::ffff:10.0.0.0/104"), &event, now()));
    assert!(!matches(&query("ip:2001:db8::/32"), &event, now()));
}

#[test]
fn relative_times_resolve_against_the_given_now() {
    assert_eq!(hits("time:>now-24h"), vec![1, 2, 3]);
    assert_eq!(hits("time:>now-6h"), vec![2, 3]);
    assert_eq!(
        hits_at("time:>now-6h", at("2026-11-27T12:00:00Z")),
        Vec::<i64>::new()
    );
    assert_eq!(hits("time:>now"), Vec::<i64>::new());
}

#[test]
fn time_ranges_include_both_ends() {
    assert_eq!(hits("time:2026-11-26..2026-11-27"), vec![2, 3]);
    assert_eq!(hits("time:..2026-11-26T10:00:00Z"), vec![1, 2, 3]);
    assert_eq!(hits("time:>=2026-11-26T10:00:00Z"), vec![3]);
    assert_eq!(hits("time:>2026-11-26T10:00:00Z"), Vec::<i64>::new());
    assert_eq!(hits("time:2026-11-26T10:00:00Z"), vec![3]);
    assert_eq!(hits("time:2026-11-25T21:42:28.5+01:00"), vec![1]);
    assert_eq!(hits("received_at:<2026-11-26"), vec![1]);
}

#[test]
fn seq_compares_numerically() {
    assert_eq!(hits("seq:2"), vec![2]);
    assert_eq!(hits("seq:2..3"), vec![2, 3]);
    assert_eq!(hits("seq:>=2"), vec![2, 3]);
    assert_eq!(hits("seq:..1"), vec![1]);
    assert_eq!(hits("seq:1,3"), vec![1, 3]);
}

#[test]
fn a_data_key_matches_in_any_side_numbers_and_strings_alike() {
    assert_eq!(hits("account_id:4711"), vec![1]);
    assert_eq!(hits("account_id:4712"), vec![2]);
    assert_eq!(hits("account_id:47*"), vec![1, 2]);
    assert_eq!(hits("request_id:REQ-1"), vec![1]);
}

#[test]
fn a_named_side_restricts_the_data_key() {
    assert_eq!(hits("after.status:suspended"), vec![1]);
    assert_eq!(hits("before.status:suspended"), Vec::<i64>::new());
    assert_eq!(hits("before.status:active"), vec![1]);
    assert_eq!(hits("status:SUSPENDED"), vec![1]);
    assert_eq!(hits("context.ticket:t-42"), vec![1]);
    assert_eq!(hits("context:t-42"), vec![1]);
    assert_eq!(hits("after:t-42"), Vec::<i64>::new());
}

#[test]
fn a_dotted_path_addresses_nested_objects_from_any_depth() {
    assert_eq!(hits("after.routing.strategy:quality"), vec![1]);
    assert_eq!(hits("after.routing.strategy:cost"), Vec::<i64>::new());
    assert_eq!(hits("routing.strategy:cost"), vec![1]);
    assert_eq!(hits("strategy:quality"), vec![1]);
    assert_eq!(hits("routes.carrier:acme"), vec![2]);
    assert_eq!(hits("after.routing.missing:quality"), Vec::<i64>::new());
}

#[test]
fn array_elements_match_a_data_key() {
    assert_eq!(hits("tags:vip"), vec![1]);
    assert_eq!(hits("codecs:g729,opus"), vec![2]);
}

#[test]
fn keyed_matches_see_booleans() {
    assert_eq!(hits("enabled:true"), vec![2]);
    assert_eq!(hits("enabled:false"), Vec::<i64>::new());
}

#[test]
fn numeric_comparisons_read_numbers_and_numeric_strings() {
    assert_eq!(hits("credit_limit:>1000"), vec![1]);
    assert_eq!(hits("after.credit_limit:>1500"), Vec::<i64>::new());
    assert_eq!(hits("before.credit_limit:<=1000"), vec![1]);
    assert_eq!(hits("max_channels:>=250"), vec![2]);
    assert_eq!(hits("max_channels:100..300"), vec![2]);
    assert_eq!(hits("status:>5"), Vec::<i64>::new());
}

#[test]
fn data_time_comparisons_read_rfc3339_strings() {
    let event = json(r#"{"seq":7,"after":{"expires":"2026-12-01T00:00:00Z","n":"x"}}"#);
    assert!(matches(&query("after.expires:>now"), &event, now()));
    assert!(matches(
        &query("expires:2026-11-01..2026-12-01"),
        &event,
        now()
    ));
    assert!(!matches(&query("expires:<2026-12-01"), &event, now()));
    assert!(!matches(&query("n:>now"), &event, now()));
}

#[test]
fn deeply_nested_data_does_not_exhaust_the_stack() {
    let depth = 20_000;
    let mut text = String::new();
    for _ in 0..depth {
        text.push_str("{\"a\":");
    }
    text.push_str("\"deep\"");
    for _ in 0..depth {
        text.push('}');
    }
    let mut value = Json::String("deep".to_owned());
    for _ in 0..depth {
        value = Json::Object(vec![("a".to_owned(), value)]);
    }
    let event = Json::Object(vec![("after".to_owned(), value)]);
    assert!(matches(&query("deep"), &event, now()));
    assert!(matches(&query("a:deep"), &event, now()));
    // Dropping a 20 000-deep value recursively is the test's business, not the evaluator's.
    std::mem::forget(event);
    drop(text);
}
