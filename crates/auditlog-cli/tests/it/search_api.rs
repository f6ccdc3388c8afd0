//! The search routes of SPEC §3–§4 (`GET /api/v1/events`, `/facets`, `/histogram`, `/stream`)
//! through a real socket.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Client, Reply, Server, create_token, generate, tempdir};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Percent-encodes one query-string component (everything but RFC 3986 unreserved bytes).
fn enc(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn path_with(route: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{}={}", enc(name), enc(value)))
        .collect();
    if query.is_empty() {
        route.to_owned()
    } else {
        format!("{route}?{}", query.join("&"))
    }
}

fn search(client: &Client, params: &[(&str, &str)]) -> Reply {
    client.get(&path_with("/api/v1/events", params))
}

/// A 200 search answer, or the test fails showing the body.
fn search_ok(client: &Client, params: &[(&str, &str)]) -> Value {
    let reply = search(client, params);
    assert_eq!(reply.status, 200, "{params:?}: {}", reply.text);
    reply.json()
}

fn seqs_of(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events array: {page}"))
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect()
}

/// Seqs matching `q`, in ascending seq order, in one page.
fn matching(client: &Client, q: &str) -> Vec<u64> {
    let page = search_ok(
        client,
        &[
            ("q", q),
            ("sort", "seq"),
            ("order", "asc"),
            ("limit", "1000"),
        ],
    );
    let seqs = seqs_of(&page);
    assert_eq!(page["total"].as_u64(), Some(seqs.len() as u64), "{page}");
    seqs
}

fn event(extra: Value) -> Value {
    let mut base = json!({
        "user": "alice",
        "ip": "203.0.113.7",
        "action": "UPDATE",
        "table": "customer",
        "primary_key": "4711",
        "message": "Updated credit limit",
        "before": {"credit_limit": 100, "name": "ACME"},
        "after": {"credit_limit": 250, "name": "ACME"}
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// Posts events as one JSON array and returns their seqs.
fn ingest(client: &Client, events: &[Value]) -> Vec<u64> {
    let reply = client.post_json(&Value::Array(events.to_vec()).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["events"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|receipt| receipt["seq"].as_u64().expect("seq"))
        .collect()
}

fn ingest_ndjson(client: &Client, lines: &[String]) -> Vec<u64> {
    let reply = client.post(
        "/api/v1/events",
        "application/x-ndjson",
        lines.join("\n").as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["events"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|receipt| receipt["seq"].as_u64().expect("seq"))
        .collect()
}

fn nanos(rfc3339: &str) -> i128 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .unix_timestamp_nanos()
}

/// The log's size, seen without the search index: event n exists and n+1 does not.
fn assert_log_size(client: &Client, size: u64, leaf_of_last: &str) {
    let last = client.get(&format!("/api/v1/events/{size}"));
    assert_eq!(last.status, 200, "{}", last.text);
    assert_eq!(last.json()["leaf_hash"].as_str(), Some(leaf_of_last));
    assert_eq!(
        client.get(&format!("/api/v1/events/{}", size + 1)).status,
        404,
        "the log grew"
    );
    assert_eq!(search_ok(client, &[("q", "")])["total"], size);
}

// ---------------------------------------------------------------------------------------------
// The query language over HTTP

/// Four events about account 987654 in different places, and one about another account.
fn account_events() -> Vec<Value> {
    vec![
        event(json!({"id": "acc-after", "after": {"account_id": 987654, "status": "active"}})),
        event(json!({"id": "acc-context", "user": "bob", "context": {"account_id": "987654"}})),
        event(
            json!({"id": "acc-message", "user": "carol", "action": "PUT",
            "message": "Moved customer 987654 to prepaid billing"}),
        ),
        event(
            json!({"id": "acc-before", "user": "dave", "action": "DELETE",
            "before": {"account_id": 987654, "status": "suspended"}, "after": null,
            "message": "Deleted customer"}),
        ),
        event(
            json!({"id": "acc-other", "user": "erin", "action": "LOGIN", "primary_key": null,
            "message": "Signed in", "before": null, "after": null,
            "context": {"account_id": 111, "status": "suspended"}}),
        ),
    ]
}

#[test]
fn a_bare_term_finds_an_id_in_data_values_and_in_the_message() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let seqs = ingest(&client, &account_events());
    assert_eq!(
        matching(&client, "987654"),
        vec![seqs[0], seqs[1], seqs[2], seqs[3]]
    );
    // A word of the message only, in any case.
    assert_eq!(matching(&client, "PREPAID"), vec![seqs[2]]);
    assert_eq!(matching(&client, "\"prepaid billing\""), vec![seqs[2]]);
    assert_eq!(
        matching(&client, "98765"),
        Vec::<u64>::new(),
        "not a prefix"
    );
    assert_eq!(matching(&client, "98765*").len(), 4);
}

#[test]
fn a_key_value_clause_looks_inside_before_after_and_context_only() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let seqs = ingest(&client, &account_events());
    // The message mentions the account but holds no account_id key.
    assert_eq!(
        matching(&client, "account_id:987654"),
        vec![seqs[0], seqs[1], seqs[3]]
    );
    assert_eq!(matching(&client, "account_id:111"), vec![seqs[4]]);
    // A named side looks at that side only.
    assert_eq!(
        matching(&client, "status:suspended"),
        vec![seqs[3], seqs[4]]
    );
    assert_eq!(matching(&client, "before.status:suspended"), vec![seqs[3]]);
    assert_eq!(matching(&client, "context.status:suspended"), vec![seqs[4]]);
    assert_eq!(matching(&client, "after.account_id:987654"), vec![seqs[0]]);
}

#[test]
fn a_leading_minus_excludes_and_a_comma_ors_within_one_field() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let seqs = ingest(&client, &account_events());
    assert_eq!(
        matching(&client, "-action:LOGIN"),
        vec![seqs[0], seqs[1], seqs[2], seqs[3]]
    );
    assert_eq!(
        matching(&client, "987654 -user:alice"),
        vec![seqs[1], seqs[2], seqs[3]]
    );
    assert_eq!(matching(&client, "user:bob,DAVE"), vec![seqs[1], seqs[3]]);
    assert_eq!(
        matching(&client, "user:bob,dave,erin -action:LOGIN"),
        vec![seqs[1], seqs[3]]
    );
    assert_eq!(
        matching(&client, "action:put,delete"),
        vec![seqs[2], seqs[3]]
    );
}

#[test]
fn an_ip_network_matches_the_addresses_inside_it() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let ips = [
        "10.1.2.3",
        "10.255.255.255",
        "11.0.0.1",
        "9.255.255.255",
        "192.168.0.1",
        "2001:db8::1",
        "2001:db9::1",
    ];
    let events: Vec<Value> = ips.iter().map(|ip| event(json!({"ip": ip}))).collect();
    let seqs = ingest(&client, &events);
    assert_eq!(matching(&client, "ip:10.0.0.0/8"), vec![seqs[0], seqs[1]]);
    assert_eq!(matching(&client, "ip:2001:db8::/32"), vec![seqs[5]]);
    assert_eq!(matching(&client, "ip:192.168.0.1"), vec![seqs[4]]);
    assert_eq!(
        matching(&client, "-ip:10.0.0.0/8").len(),
        ips.len() - 2,
        "negation of a network"
    );
    assert_eq!(
        matching(&client, "ip:10.0.0.0/8,192.168.0.0/16"),
        vec![seqs[0], seqs[1], seqs[4]]
    );
}

#[test]
fn a_time_range_includes_both_ends_and_compares_instants() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let times = [
        "2026-01-31T23:59:59.999Z",
        "2026-02-01T00:00:00Z",
        // 2026-02-14T23:00:00Z, written with an offset.
        "2026-02-15T01:00:00+02:00",
        "2026-03-01T00:00:00Z",
        "2026-03-01T00:00:00.001Z",
    ];
    let events: Vec<Value> = times.iter().map(|t| event(json!({"time": t}))).collect();
    let seqs = ingest(&client, &events);
    assert_eq!(
        matching(&client, "time:2026-02-01..2026-03-01"),
        vec![seqs[1], seqs[2], seqs[3]]
    );
    assert_eq!(
        matching(&client, "time:>=2026-03-01"),
        vec![seqs[3], seqs[4]]
    );
    assert_eq!(matching(&client, "time:<2026-02-01"), vec![seqs[0]]);
    assert_eq!(
        matching(&client, "time:2026-02-14T23:00:00Z"),
        vec![seqs[2]],
        "an exact instant in another offset"
    );
    assert_eq!(
        matching(&client, "time:2026-02-10..").len(),
        3,
        "an open-ended range"
    );
    assert_eq!(matching(&client, "time:>now-1h"), Vec::<u64>::new());
}

#[test]
fn a_search_right_after_a_201_sees_the_new_event() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    for i in 0..20 {
        let marker = format!("ryw{i}x{}", std::process::id());
        let seqs = ingest(
            &client,
            &[event(
                json!({"id": format!("ryw-{i}"), "after": {"marker": marker}}),
            )],
        );
        let page = search_ok(&client, &[("q", &marker)]);
        assert_eq!(seqs_of(&page), seqs, "round {i}: {page}");
        assert_eq!(page["total"], 1);
        assert_eq!(page["total_is_exact"], true);
        let by_id = search_ok(&client, &[("q", &format!("id:ryw-{i}"))]);
        assert_eq!(seqs_of(&by_id), seqs, "round {i} by id");
    }
}

#[test]
fn a_search_answer_has_the_documented_shape() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let seqs = ingest(&client, &account_events());
    let page = search_ok(&client, &[("q", "user:alice")]);
    assert_eq!(seqs_of(&page), vec![seqs[0]]);
    let hit = &page["events"][0];
    assert_eq!(hit["id"], "acc-after");
    assert_eq!(hit["tenant"], "default");
    assert!(hit["leaf_hash"].is_string(), "{hit}");
    assert!(hit["received_at"].is_string(), "{hit}");
    assert!(hit["diff"].is_array(), "{hit}");
    assert_eq!(
        hit,
        &client.get(&format!("/api/v1/events/{}", seqs[0])).json()
    );
    assert!(page["next_cursor"].is_null(), "{page}");
    assert!(page["took_ms"].is_number(), "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["total_is_exact"], true);
}

// ---------------------------------------------------------------------------------------------
// Sorting and keyset pages

/// The sort value of a stored event, as the contract orders it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Number(i128),
    Ip(u128),
    Text(Vec<u8>),
}

fn key_of(event: &Value, field: &str) -> Key {
    match field {
        "time" | "received_at" => Key::Number(nanos(event[field].as_str().expect("instant"))),
        "seq" => Key::Number(i128::from(event["seq"].as_u64().expect("seq"))),
        "ip" => {
            let ip: IpAddr = event["ip"].as_str().expect("ip").parse().expect("ip");
            Key::Ip(u128::from(match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            }))
        }
        "pk" => key_of(event, "primary_key"),
        text => Key::Text(event[text].as_str().unwrap_or("").as_bytes().to_vec()),
    }
}

/// `events` in the contract's order: by the key, equal keys by seq, both in one direction.
fn expected_order(events: &[Value], field: &str, order: &str) -> Vec<u64> {
    let mut keyed: Vec<(Key, u64)> = events
        .iter()
        .map(|e| (key_of(e, field), e["seq"].as_u64().expect("seq")))
        .collect();
    keyed.sort();
    if order == "desc" {
        keyed.reverse();
    }
    keyed.into_iter().map(|(_, seq)| seq).collect()
}

const SORTS: [&str; 11] = [
    "time",
    "received_at",
    "seq",
    "user",
    "ip",
    "primary_key",
    "pk",
    "action",
    "table",
    "message",
    "source",
];

/// 40 events with repeated values in every column, absent optional columns, IPv4 and IPv6,
/// equal instants written with different offsets, in five requests.
fn sortable_events(client: &Client) -> Vec<Value> {
    let users = ["alice", "Bob", "bob", "zoë", "Émile", "carol", "alice"];
    let ips = [
        "10.0.0.2",
        "10.0.0.10",
        "9.255.255.255",
        "::1",
        "2001:db8::1",
        "203.0.113.7",
        "fe80::1",
    ];
    let pks = [
        Some("9"),
        Some("10"),
        Some("100"),
        None,
        Some("a-7"),
        Some("10"),
    ];
    let actions = ["UPDATE", "CREATE", "LOGIN", "DELETE", "PUT"];
    let tables = ["customer", "Customer", "rate_card", "did"];
    let messages = [
        Some("Updated"),
        Some(""),
        None,
        Some("zeta"),
        Some("alpha beta"),
        Some("Élan"),
        Some("Updated"),
    ];
    let sources = [
        Some("panel"),
        Some("portal"),
        Some("api"),
        Some("system"),
        None,
    ];
    let times = [
        "2026-03-01T10:00:00Z",
        "2026-03-01T12:00:00+02:00",
        "2026-03-01T09:59:59.999Z",
        "2026-02-28T23:00:00-05:00",
        "2026-01-15T00:00:00Z",
    ];
    let mut seqs = Vec::new();
    for batch in 0..5 {
        let mut events = Vec::new();
        for i in batch * 8..batch * 8 + 8 {
            let action = actions[(i * 3) % actions.len()];
            let mut e = json!({
                "id": format!("sort-{i}"),
                "time": times[(i * 7) % times.len()],
                "user": users[(i * 5) % users.len()],
                "ip": ips[(i * 3) % ips.len()],
                "action": action,
                "table": tables[(i * 11) % tables.len()],
            });
            let object = e.as_object_mut().expect("object");
            match pks[(i * 5) % pks.len()] {
                Some(pk) => {
                    object.insert("primary_key".into(), json!(pk));
                }
                None if action == "LOGIN" => {}
                None => {
                    object.insert("primary_key".into(), json!(i));
                }
            }
            if let Some(message) = messages[(i * 2) % messages.len()] {
                object.insert("message".into(), json!(message));
            }
            if let Some(source) = sources[(i * 3) % sources.len()] {
                object.insert("source".into(), json!(source));
            }
            events.push(e);
        }
        seqs.extend(ingest(client, &events));
    }
    // The stored events (received_at and defaults come from the server), read by seq.
    seqs.iter()
        .map(|seq| {
            let reply = client.get(&format!("/api/v1/events/{seq}"));
            assert_eq!(reply.status, 200);
            reply.json()
        })
        .collect()
}

#[test]
fn every_column_sorts_both_ways_with_ties_by_seq_in_the_same_direction() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let stored = sortable_events(&client);
    let mut wrong = Vec::new();
    for field in SORTS {
        for order in ["asc", "desc"] {
            let page = search_ok(
                &client,
                &[("sort", field), ("order", order), ("limit", "1000")],
            );
            let got = seqs_of(&page);
            let want = expected_order(&stored, field, order);
            if got != want {
                wrong.push(format!(
                    "sort={field}&order={order}:\n  got  {got:?}\n  want {want:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_default_order_is_time_descending() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let stored = sortable_events(&client);
    let page = search_ok(&client, &[("limit", "1000")]);
    assert_eq!(seqs_of(&page), expected_order(&stored, "time", "desc"));
    let page = search_ok(&client, &[("sort", "user"), ("limit", "1000")]);
    assert_eq!(seqs_of(&page), expected_order(&stored, "user", "desc"));
    let page = search_ok(&client, &[("order", "asc"), ("limit", "1000")]);
    assert_eq!(seqs_of(&page), expected_order(&stored, "time", "asc"));
    // Without a limit: 50.
    assert_eq!(seqs_of(&search_ok(&client, &[])).len(), 40);
}

/// Walks every page of `params` with `limit`, returning the seqs in order and the page count.
fn walk(client: &Client, params: &[(&str, &str)], limit: usize) -> (Vec<u64>, usize) {
    let limit_text = limit.to_string();
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("limit", &limit_text));
        if let Some(cursor) = &cursor {
            all.push(("cursor", cursor));
        }
        let page = search_ok(client, &all);
        pages += 1;
        assert!(pages < 1000, "the walk does not end");
        let got = seqs_of(&page);
        assert!(
            got.len() <= limit,
            "{} events on a page of {limit}",
            got.len()
        );
        seqs.extend(got.iter().copied());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(got.len(), limit, "a short page with a next_cursor");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    (seqs, pages)
}

#[test]
fn keyset_pages_return_every_match_once_in_the_order_of_one_big_page() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest_ndjson(&client, &generate(100, 11));
    let cases: [&[(&str, &str)]; 8] = [
        &[],
        &[("sort", "time"), ("order", "asc")],
        &[("sort", "user"), ("order", "asc")],
        &[("sort", "ip"), ("order", "desc")],
        &[("sort", "pk"), ("order", "asc")],
        &[("sort", "message"), ("order", "desc")],
        &[("sort", "received_at"), ("order", "desc")],
        &[("q", "-action:LOGIN"), ("sort", "table"), ("order", "asc")],
    ];
    for params in cases {
        let mut big_params = params.to_vec();
        big_params.push(("limit", "1000"));
        let big = search_ok(&client, &big_params);
        let want = seqs_of(&big);
        let (got, pages) = walk(&client, params, 7);
        assert_eq!(got, want, "{params:?}");
        assert_eq!(pages, want.len().div_ceil(7).max(1), "{params:?}");
        let unique: HashSet<u64> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "{params:?}: a seq twice");
        if params.is_empty() {
            assert_eq!(got.len(), 100);
        }
    }
}

#[test]
fn keyset_pages_stay_correct_while_events_arrive_between_pages() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let old: Vec<u64> = ingest_ndjson(&client, &generate(60, 12));
    let times_of = |seqs: &[u64]| -> BTreeMap<u64, i128> {
        seqs.iter()
            .map(|seq| {
                let event = client.get(&format!("/api/v1/events/{seq}")).json();
                (*seq, nanos(event["time"].as_str().expect("time")))
            })
            .collect()
    };
    let mut times = times_of(&old);
    let middle = times.values().copied().min().expect("events")
        + (times.values().copied().max().expect("events")
            - times.values().copied().min().expect("events"))
            / 2;
    let middle_text = time::OffsetDateTime::from_unix_timestamp_nanos(middle)
        .expect("instant")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");

    // Newest first: new events land before, inside and after the walk's position.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let mut params = vec![("limit", "7")];
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let page = search_ok(&client, &params);
        seen.extend(seqs_of(&page));
        let arrivals = ingest(
            &client,
            &[
                event(json!({"id": format!("late-new-{round}"), "time": "2026-06-01T00:00:00Z"})),
                event(json!({"id": format!("late-mid-{round}"), "time": middle_text})),
                event(json!({"id": format!("late-old-{round}"), "time": "2001-01-01T00:00:00Z"})),
            ],
        );
        times.extend(times_of(&arrivals));
        round += 1;
        assert!(round < 100, "the walk does not end");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a seq twice: {seen:?}");
    for seq in &old {
        assert!(unique.contains(seq), "old event {seq} skipped: {seen:?}");
    }
    for pair in seen.windows(2) {
        let (a, b) = ((times[&pair[0]], pair[0]), (times[&pair[1]], pair[1]));
        assert!(a > b, "out of order: {a:?} before {b:?}");
    }
    // Events older than everything sort last: those that arrived before the last page
    // was read are on it.
    assert!(seen.len() > old.len(), "no late event was seen at all");
}

#[test]
fn keyset_pages_by_seq_ascending_include_events_appended_during_the_walk() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let mut all = ingest_ndjson(&client, &generate(30, 13));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        assert!(round < 100, "the walk does not end");
        let mut params = vec![("sort", "seq"), ("order", "asc"), ("limit", "7")];
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let page = search_ok(&client, &params);
        seen.extend(seqs_of(&page));
        // Only while more pages follow (30 + 3 events need five pages of 7).
        if round < 3 {
            all.extend(ingest(
                &client,
                &[event(json!({"id": format!("append-{round}")}))],
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

// ---------------------------------------------------------------------------------------------
// Hostile input

#[test]
fn bad_sort_order_limit_and_parameters_are_400_with_a_code() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest(&client, &account_events());
    let cases: [(&str, &str); 17] = [
        ("sort=password", "invalid_parameter"),
        ("sort=", "invalid_parameter"),
        ("sort=TIME", "invalid_parameter"),
        ("order=sideways", "invalid_parameter"),
        ("order=", "invalid_parameter"),
        ("limit=0", "invalid_parameter"),
        ("limit=-1", "invalid_parameter"),
        ("limit=abc", "invalid_parameter"),
        ("limit=1.5", "invalid_parameter"),
        ("limit=", "invalid_parameter"),
        ("limit=99999999999999999999999", "invalid_parameter"),
        ("page=2", "unknown_parameter"),
        ("Q=alice", "unknown_parameter"),
        ("q=alice&q=bob", "duplicate_parameter"),
        ("limit=5&limit=5", "duplicate_parameter"),
        ("sort=user&sort=user", "duplicate_parameter"),
        ("cursor=bm90LWEtY3Vyc29y", "invalid_cursor"),
    ];
    for (query, code) in cases {
        let reply = client.get(&format!("/api/v1/events?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        assert_eq!(reply.code(), code, "{query}: {}", reply.text);
    }
}

#[test]
fn a_huge_limit_is_capped_at_1000() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest_ndjson(&client, &generate(1200, 21));
    let page = search_ok(&client, &[("limit", "1000000")]);
    assert_eq!(seqs_of(&page).len(), 1000);
    assert_eq!(page["total"], 1200);
    assert!(page["next_cursor"].is_string(), "more pages follow");
    assert_eq!(seqs_of(&search_ok(&client, &[])).len(), 50, "default limit");
}

#[test]
fn a_malformed_query_is_400_with_its_position_and_a_caret() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    for (q, position) in [("user:", 5), ("action:UPDATE \"open", 14), ("seq:0", 4)] {
        let reply = search(&client, &[("q", q)]);
        assert_eq!(reply.status, 400, "{q}: {}", reply.text);
        assert_eq!(reply.code(), "invalid_query", "{q}");
        let error = &reply.json()["error"];
        let reported = error["position"].as_u64().expect("position");
        assert!(
            reported.abs_diff(position) <= 1,
            "{q}: position {reported}, expected about {position}"
        );
        let caret = error["caret"].as_str().expect("caret");
        assert!(caret.contains('^'), "{caret}");
        // SPEC §4: the message itself shows the position.
        let message = error["message"].as_str().expect("message");
        assert!(
            message.ends_with(&format!(" at position {reported}")),
            "{q}: {message}"
        );
    }
}

#[test]
fn an_overlong_query_or_a_control_character_is_400_not_a_crash() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest(&client, &account_events());
    let long = "a".repeat(5000);
    let long_words = "ab ".repeat(1700);
    for q in [
        long.as_str(),
        long_words.as_str(),
        "alice\u{1}",
        "user:\u{1b}[31m",
        "\u{0}",
        "\"phrase \u{7f}\"",
        "user:a\\\u{8}",
    ] {
        let reply = search(&client, &[("q", q)]);
        assert_eq!(
            reply.status,
            400,
            "{:?}: {}",
            q.chars().take(20).collect::<String>(),
            reply.text
        );
        assert_eq!(reply.code(), "invalid_query");
    }
    // Whitespace control characters separate clauses.
    assert_eq!(matching(&client, "user:bob\taccount_id:987654").len(), 1);
}

#[test]
fn injection_shaped_queries_match_only_literally_and_change_nothing() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let seqs = ingest(&client, &account_events());
    let last = *seqs.last().expect("seqs");
    let leaf = client.get(&format!("/api/v1/events/{last}")).json()["leaf_hash"]
        .as_str()
        .expect("leaf")
        .to_owned();
    let hostile = [
        "' OR 1=1 --",
        "\"; DROP TABLE events; --",
        "'; DROP TABLE events; --",
        "1' OR '1'='1",
        "\") OR (\"1\"=\"1",
        "user:alice' OR 'x'='x",
        "%",
        "_",
        "*",
        "user:*",
        "\\",
        "a\\",
        "user:\"a\\\"",
        "account_id:1 UNION SELECT token FROM tokens",
        "../../etc/passwd",
        "${jndi:ldap://x}",
        "<script>alert(1)</script>",
        "ip:999.1.1.1",
        "ip:10.0.0.0/99",
        "time:2026-13-45",
        "seq:99999999999999999999",
        "account_id:>1e999",
        "account_id:1..2..3",
        "-",
        ":",
        ",",
        "user:,",
        "user:a,",
        "\u{202e}evil",
        "user:🦀",
    ];
    for q in hostile {
        let reply = search(&client, &[("q", q)]);
        assert!(
            reply.status == 200 || reply.status == 400,
            "{q:?}: {} {}",
            reply.status,
            reply.text
        );
        if reply.status == 200 {
            // No event holds any of these texts, so a literal match finds nothing.
            assert_eq!(reply.json()["total"], 0, "{q:?} matched: {}", reply.text);
        } else {
            assert_eq!(reply.code(), "invalid_query", "{q:?}: {}", reply.text);
        }
        for route in ["/api/v1/facets", "/api/v1/histogram"] {
            let mut params = vec![("q", q)];
            if route.ends_with("facets") {
                params.push(("field", "user"));
            }
            let reply = client.get(&path_with(route, &params));
            assert!(
                reply.status == 200 || reply.status == 400,
                "{route} {q:?}: {} {}",
                reply.status,
                reply.text
            );
        }
    }
    // `--` is the negated term `-`, which no event holds: literally, every event.
    let negated = search(&client, &[("q", "--")]);
    assert!(
        negated.status == 400 || negated.json()["total"] == 5,
        "{}",
        negated.text
    );
    assert_log_size(&client, last, &leaf);
    assert_eq!(matching(&client, "987654").len(), 4, "search still works");
}

#[test]
fn a_forged_or_foreign_cursor_is_refused() {
    use base64::Engine as _;
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest_ndjson(&client, &generate(20, 14));
    let by_user = search_ok(&client, &[("sort", "user"), ("limit", "5")]);
    let user_cursor = by_user["next_cursor"].as_str().expect("cursor").to_owned();
    // Valid where it came from.
    assert_eq!(
        search(
            &client,
            &[("sort", "user"), ("limit", "5"), ("cursor", &user_cursor)]
        )
        .status,
        200
    );
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([
        0x9c_u8, 0x01, 0xfe, 0x42, 0x00, 0x13, 0x37, 0x7f, 0x80, 0xaa, 0x55,
    ]);
    let standard = base64::engine::general_purpose::STANDARD.encode("1|time|desc|5|3|n123");
    let long = "A".repeat(5000);
    let forged: [(&[(&str, &str)], &str); 8] = [
        (
            &[("cursor", &user_cursor)],
            "a sort=user cursor with sort=time",
        ),
        (
            &[("sort", "user"), ("order", "asc"), ("cursor", &user_cursor)],
            "a desc cursor with asc",
        ),
        (
            &[("sort", "ip"), ("cursor", &user_cursor)],
            "another column",
        ),
        (&[("cursor", &random)], "random base64"),
        (&[("cursor", "!!!not base64!!!")], "not base64"),
        (&[("cursor", "")], "empty"),
        (&[("cursor", &long)], "very long"),
        (
            &[("cursor", &standard)],
            "padded base64 of a wrong key length",
        ),
    ];
    for (params, what) in forged {
        let reply = search(&client, params);
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.code(), "invalid_cursor", "{what}: {}", reply.text);
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes

#[test]
fn every_search_route_needs_a_token_with_the_read_scope() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    ingest(&server.client(), &account_events());
    let routes = [
        "/api/v1/events?q=alice",
        "/api/v1/facets?field=user",
        "/api/v1/histogram",
        "/api/v1/stream?q=alice",
    ];
    let ingester = server
        .client()
        .with_token(Some(&create_token(&data, "default", "ingest", "writer")));
    let anonymous = server.client().with_token(None);
    let wrong = server.client().with_token(Some("alog_not-a-real-token"));
    for route in routes {
        let reply = ingester.get(route);
        assert_eq!(reply.status, 403, "{route}: {}", reply.text);
        assert_eq!(reply.code(), "forbidden", "{route}");
        assert_eq!(anonymous.get(route).status, 401, "{route}");
        assert_eq!(wrong.get(route).status, 401, "{route}");
    }
    let reader = server
        .client()
        .with_token(Some(&create_token(&data, "default", "read", "reader")));
    for route in &routes[..3] {
        assert_eq!(reader.get(route).status, 200, "{route}");
    }
}

#[test]
fn a_token_of_another_tenant_sees_none_of_these_events() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    ingest(&server.client(), &account_events());
    let other =
        server
            .client()
            .with_token(Some(&create_token(&data, "other", "read", "other-reader")));
    let page = search_ok(&other, &[("q", "987654")]);
    assert_eq!(page["total"], 0, "{page}");
    let facets = other.get("/api/v1/facets?field=user").json();
    assert_eq!(facets["total"], 0, "{facets}");
}

// ---------------------------------------------------------------------------------------------
// Facets and histogram

/// A query, the facet field, and the test's own filter equal to the query.
type FacetCase = (&'static str, &'static str, fn(&Value) -> bool);

fn own_facets<'a>(
    lines: &'a [Value],
    keep: impl Fn(&Value) -> bool,
    field: &str,
) -> Vec<(&'a str, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for event in lines.iter().filter(|e| keep(e)) {
        *counts
            .entry(event[field].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    let mut values: Vec<(&str, u64)> = counts.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_bytes().cmp(b.0.as_bytes())));
    values
}

fn facet_values(reply: &Reply) -> Vec<(String, u64)> {
    reply.json()["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values: {}", reply.text))
        .iter()
        .map(|v| {
            (
                v["value"].as_str().expect("value").to_owned(),
                v["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

#[test]
fn facets_under_a_filter_count_each_value_most_frequent_first() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let lines = generate(400, 31);
    ingest_ndjson(&client, &lines);
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let cases: [FacetCase; 4] = [
        ("action:UPDATE", "user", |e| e["action"] == "UPDATE"),
        ("-action:UPDATE", "table", |e| e["action"] != "UPDATE"),
        ("", "action", |_| true),
        ("table:customer,did", "source", |e| {
            e["table"] == "customer" || e["table"] == "did"
        }),
    ];
    for (q, field, keep) in cases {
        let want = own_facets(&events, keep, field);
        let reply = client.get(&path_with(
            "/api/v1/facets",
            &[("q", q), ("field", field), ("limit", "1000")],
        ));
        assert_eq!(reply.status, 200, "{q} {field}: {}", reply.text);
        let got = facet_values(&reply);
        let want_owned: Vec<(String, u64)> =
            want.iter().map(|(v, c)| ((*v).to_owned(), *c)).collect();
        assert_eq!(got, want_owned, "q={q:?} field={field}");
        let body = reply.json();
        assert_eq!(body["field"], field);
        assert_eq!(body["distinct"], want.len() as u64, "{q} {field}");
        let total: u64 = want.iter().map(|(_, c)| c).sum();
        assert_eq!(body["total"], total, "{q} {field}");
        assert_eq!(search_ok(&client, &[("q", q)])["total"], total);

        // A limit keeps the head of the same list and still counts every distinct value.
        let top = client.get(&path_with(
            "/api/v1/facets",
            &[("q", q), ("field", field), ("limit", "2")],
        ));
        assert_eq!(facet_values(&top), want_owned[..want.len().min(2)].to_vec());
        assert_eq!(top.json()["distinct"], want.len() as u64);
    }
}

#[test]
fn facets_refuse_a_missing_or_unknown_field() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest(&client, &account_events());
    let missing = client.get("/api/v1/facets?q=alice");
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.code(), "missing_parameter");
    for query in [
        "field=time",
        "field=seq",
        "field=received_at",
        "field=password",
        "field=",
        "field=user&field=ip",
        "field=user&limit=0",
        "field=user&sort=user",
        "field=user&q=user:",
    ] {
        let reply = client.get(&format!("/api/v1/facets?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
    }
    // pk is the alias of primary_key here too.
    let reply = client.get("/api/v1/facets?field=pk");
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn the_histogram_counts_what_the_search_finds() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest_ndjson(&client, &generate(400, 32));
    for q in [
        "",
        "action:UPDATE",
        "-action:UPDATE",
        "nothing-matches-this",
    ] {
        let total = search_ok(&client, &[("q", q)])["total"]
            .as_u64()
            .expect("total");
        for interval in ["auto", "1m", "15m", "1h", "1d"] {
            let reply = client.get(&path_with(
                "/api/v1/histogram",
                &[("q", q), ("interval", interval)],
            ));
            assert_eq!(reply.status, 200, "{q} {interval}: {}", reply.text);
            let body = reply.json();
            assert_eq!(body["total"], total, "q={q:?} interval={interval}");
            let buckets = body["buckets"].as_array().expect("buckets");
            let sum: u64 = buckets
                .iter()
                .map(|b| b["count"].as_u64().expect("count"))
                .sum();
            assert_eq!(sum, total, "q={q:?} interval={interval}");
            let width = body["interval_seconds"].as_i64().expect("interval_seconds");
            if interval != "auto" {
                assert_eq!(body["interval"], interval);
            }
            let starts: Vec<i128> = buckets
                .iter()
                .map(|b| nanos(b["start"].as_str().expect("start")))
                .collect();
            for pair in starts.windows(2) {
                assert_eq!(pair[1] - pair[0], i128::from(width) * 1_000_000_000);
            }
        }
    }
}

#[test]
fn a_bad_interval_or_too_many_buckets_is_400() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest(
        &client,
        &[
            event(json!({"time": "2026-01-01T00:00:00Z"})),
            event(json!({"time": "2026-02-01T00:00:00Z"})),
        ],
    );
    for interval in [
        "15x",
        "0m",
        "m",
        "-1h",
        "1.5h",
        "",
        "1 h",
        "1H",
        "9999999999s",
    ] {
        let reply = client.get(&path_with("/api/v1/histogram", &[("interval", interval)]));
        assert_eq!(reply.status, 400, "{interval:?}: {}", reply.text);
        assert_eq!(reply.code(), "invalid_parameter", "{interval:?}");
    }
    let reply = client.get("/api/v1/histogram?interval=1s");
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.code(), "query_too_broad");
    // A huge interval is one bucket or a 400, never a 500.
    let reply = client.get("/api/v1/histogram?interval=999999999w");
    assert!(
        reply.status == 200 || reply.status == 400,
        "{} {}",
        reply.status,
        reply.text
    );
    let reply = client.get("/api/v1/histogram?interval=1d");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["buckets"].as_array().map(Vec::len), Some(32));
    let unknown = client.get("/api/v1/histogram?interval=1d&sort=time");
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.code(), "unknown_parameter");
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

#[derive(Debug)]
struct SseMessage {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// A raw HTTP/1.1 connection to `/api/v1/stream`, read with timeouts.
struct SseStream {
    reader: BufReader<TcpStream>,
    chunked: bool,
    status: u16,
    content_type: String,
    /// Body text read but not yet split into messages.
    text: String,
    ended: bool,
}

impl SseStream {
    fn open(server: &Server, q: &str, last_event_id: Option<&str>) -> SseStream {
        let stream = TcpStream::connect(&server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n",
            path_with("/api/v1/stream", &[("q", q)]),
            server.addr,
            server.token
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        (&stream).write_all(request.as_bytes()).expect("write");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let (mut chunked, mut content_type) = (false, String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            if let Some(value) = lower.strip_prefix("content-type:") {
                content_type = value.trim().to_owned();
            }
        }
        SseStream {
            reader,
            chunked,
            status,
            content_type,
            text: String::new(),
            ended: false,
        }
    }

    /// Reads more of the body; false on timeout or end.
    fn fill(&mut self, timeout: Duration) -> bool {
        if self.ended {
            return false;
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("timeout");
        if self.chunked {
            let mut size_line = String::new();
            if self.reader.read_line(&mut size_line).is_err() {
                return false;
            }
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                self.ended = true;
                return false;
            };
            if size == 0 {
                self.ended = true;
                return false;
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("chunk");
            self.text.push_str(&String::from_utf8_lossy(&chunk[..size]));
            true
        } else {
            let mut buf = [0u8; 4096];
            match self.reader.read(&mut buf) {
                Ok(0) => {
                    self.ended = true;
                    false
                }
                Ok(n) => {
                    self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    true
                }
                Err(_) => false,
            }
        }
    }

    /// The next message with an event or data (comments and keep-alives skipped), or None
    /// when none comes `within`.
    fn next(&mut self, within: Duration) -> Option<SseMessage> {
        let deadline = Instant::now() + within;
        loop {
            let normalized = self.text.replace("\r\n", "\n");
            if let Some(end) = normalized.find("\n\n") {
                let block = normalized[..end].to_owned();
                self.text = normalized[end + 2..].to_owned();
                let mut message = SseMessage {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match name {
                        "id" => message.id = Some(value.to_owned()),
                        "event" => message.event = Some(value.to_owned()),
                        "data" => {
                            if !message.data.is_empty() {
                                message.data.push('\n');
                            }
                            message.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if message.event.is_some() || !message.data.is_empty() {
                    return Some(message);
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline || !self.fill(deadline - now) {
                return None;
            }
        }
    }

    /// The next event, which must be a stored event; returns (id, event JSON).
    fn expect_event(&mut self) -> (u64, Value) {
        let message = self
            .next(Duration::from_secs(15))
            .expect("an event within 15 s");
        assert_eq!(message.event.as_deref(), Some("event"), "{message:?}");
        let data: Value = serde_json::from_str(&message.data).expect("data is JSON");
        let id: u64 = message
            .id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no numeric id: {message:?}"));
        assert_eq!(data["seq"].as_u64(), Some(id), "id is the seq");
        (id, data)
    }
}

#[test]
fn the_stream_sends_each_new_matching_event_with_its_seq_as_id() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    ingest(
        &client,
        &[event(json!({"user": "streamer", "id": "before-connect"}))],
    );
    let mut stream = SseStream::open(&server, "user:streamer", None);
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "{}",
        stream.content_type
    );
    let other = ingest(&client, &[event(json!({"user": "someone-else"}))]);
    let matching = ingest(
        &client,
        &[event(json!({"user": "streamer", "id": "live-1"}))],
    );
    let (id, data) = stream.expect_event();
    assert_eq!(
        id, matching[0],
        "not {other:?}, not the event before connecting"
    );
    assert_eq!(data["user"], "streamer");
    assert_eq!(data["id"], "live-1");
    assert!(data["leaf_hash"].is_string(), "{data}");
    let extra = stream.next(Duration::from_millis(1500));
    assert!(extra.is_none(), "unexpected {extra:?}");
}

#[test]
fn a_reconnect_with_last_event_id_replays_the_missed_matching_events() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let mut stream = SseStream::open(&server, "table:route", None);
    assert_eq!(stream.status, 200);
    let first = ingest(
        &client,
        &[
            event(json!({"table": "route", "id": "m1"})),
            event(json!({"table": "customer", "id": "x1"})),
        ],
    );
    let (seen, _) = stream.expect_event();
    assert_eq!(seen, first[0]);
    drop(stream);

    // While disconnected.
    let missed = ingest(
        &client,
        &[
            event(json!({"table": "route", "id": "m2"})),
            event(json!({"table": "customer", "id": "x2"})),
            event(json!({"table": "ROUTE", "id": "m3"})),
        ],
    );
    let mut stream = SseStream::open(&server, "table:route", Some(&seen.to_string()));
    assert_eq!(stream.status, 200);
    assert_eq!(stream.expect_event().0, missed[0]);
    assert_eq!(stream.expect_event().0, missed[2]);
    let extra = stream.next(Duration::from_millis(1000));
    assert!(extra.is_none(), "unexpected {extra:?}");
    // And it goes on live after the replay.
    let live = ingest(&client, &[event(json!({"table": "route", "id": "m4"}))]);
    assert_eq!(stream.expect_event().0, live[0]);

    // From the start: every matching event again, in order.
    let mut stream = SseStream::open(&server, "table:route", Some("0"));
    let replayed: Vec<u64> = (0..4).map(|_| stream.expect_event().0).collect();
    assert_eq!(replayed, vec![first[0], missed[0], missed[2], live[0]]);
}

#[test]
fn the_stream_refuses_a_bad_query_or_last_event_id() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let stream = SseStream::open(&server, "user:", None);
    assert_eq!(stream.status, 400);
    let stream = SseStream::open(&server, "", Some("abc"));
    assert_eq!(stream.status, 400);
    let stream = SseStream::open(&server, "", Some("-1"));
    assert_eq!(stream.status, 400);
    let reply = server.client().get("/api/v1/stream?q=a&limit=5");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "unknown_parameter");
}

#[test]
fn a_server_without_a_search_index_records_and_proves_but_refuses_searches() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, &["--no-search-index"]);
    let client = server.client();
    let body = generate(20, 11).join("\n");
    let reply = client.post("/api/v1/events", "application/x-ndjson", body.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.text);
    let stored = client.get("/api/v1/events/7");
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.json()["seq"], 7);
    assert_eq!(
        client.get("/api/v1/proof/inclusion?seq=7&size=20").status,
        200
    );
    for path in [
        "/api/v1/events",
        "/api/v1/events?q=alice",
        "/api/v1/facets?field=user",
        "/api/v1/histogram",
        "/api/v1/export?format=ndjson",
    ] {
        let reply = client.get(path);
        assert_eq!(reply.status, 503, "{path}: {}", reply.text);
        assert_eq!(reply.code(), "search_disabled", "{path}: {}", reply.text);
    }
    assert!(!data.join("index").exists(), "no index is written");
    server.stop();

    // Started with the index again, the server builds it from the log.
    let server = Server::start(&data);
    let page = search_ok(&server.client(), &[("limit", "100")]);
    assert_eq!(seqs_of(&page).len(), 20, "{page}");
}

#[test]
fn the_no_search_index_variable_takes_the_usual_spellings_of_true_and_refuses_others() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut server = Server::start_with_env(&data, &[], &[("AUDITLOG_NO_SEARCH_INDEX", "1")]);
    let reply = server.client().get("/api/v1/events?q=alice");
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.code(), "search_disabled", "{}", reply.text);
    server.stop();

    let mut server = Server::start_with_env(&data, &[], &[("AUDITLOG_NO_SEARCH_INDEX", "off")]);
    let reply = server.client().get("/api/v1/events?q=alice");
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.stop();

    let out = std::process::Command::new(crate::support::bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AUDITLOG_NO_SEARCH_INDEX", "maybe")
        .output()
        .expect("serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUDITLOG_NO_SEARCH_INDEX") || stderr.contains("no-search-index"),
        "{stderr}"
    );
}
