//! The model-based test of issue 3: random events and random queries, each answered by the
//! index and by a naive evaluator over the same events (`auditlog_query::matches` for the
//! match, a sort written here for the order) — same rows, same order (ties by seq), pages
//! that walk every match exactly once, same totals, facets and histogram counts.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use auditlog_core::event::Timestamp;
use auditlog_core::json::{self, JsonLimits, Value as Json};
use auditlog_query::matches;
use auditlog_search::{FacetField, SearchRequest, SortField, SortKey, SortOrder};

use crate::support::{Rng, Setup, now};

const USERS: [&str; 7] = [
    "alice",
    "Alice",
    "alice.moreau",
    "bob",
    "Portal",
    "ÉMILE",
    "<b>x</b>",
];
const ACTIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "LOGIN", "SEND"];
const TABLES: [&str; 4] = ["customer", "customer_note", "ingress_route", "did"];
const IPS: [&str; 7] = [
    "10.0.0.1",
    "10.0.0.10",
    "10.0.0.2",
    "192.168.1.7",
    "2001:db8::1",
    "fe80::1",
    "203.0.113.9",
];
const MESSAGES: [&str; 6] = [
    "Changed credit limit of customer 4711",
    "credit-limit raised",
    "Created ingress ing-9002 for account 4712",
    "Signed in",
    "",
    "=cmd|' /C calc'!A0 <script>alert(1)</script>",
];
const PKS: [&str; 6] = ["42", "4711", "9", "abc", "ABD", ""];

/// One random event as JSON text (an input event, as a client sends it).
fn random_event(rng: &mut Rng, idx: usize) -> String {
    let mut fields: Vec<String> = Vec::new();
    if rng.chance(0.7) {
        fields.push(format!("\"id\":\"e-{idx}\""));
    }
    // Few distinct times, so many ties.
    let second = rng.below(40);
    let millis = if rng.chance(0.3) { rng.below(1000) } else { 0 };
    fields.push(format!(
        "\"time\":\"2026-01-01T00:00:{second:02}.{millis:03}Z\""
    ));
    fields.push(format!("\"user\":{}", quote(rng.pick(&USERS))));
    if rng.chance(0.3) {
        fields.push(format!(
            "\"source\":{}",
            quote(rng.pick(&["api", "portal", "system"]))
        ));
    }
    fields.push(format!("\"ip\":{}", quote(rng.pick(&IPS))));
    let action = rng.pick(&ACTIONS);
    fields.push(format!("\"action\":\"{action}\""));
    fields.push(format!("\"table\":{}", quote(rng.pick(&TABLES))));
    let pk = rng.pick(&PKS);
    if !pk.is_empty() || matches!(action, "CREATE" | "UPDATE" | "DELETE") {
        let pk = if pk.is_empty() { "1" } else { pk };
        if pk.bytes().all(|b| b.is_ascii_digit()) && rng.chance(0.3) {
            fields.push(format!("\"primary_key\":{pk}"));
        } else {
            fields.push(format!("\"primary_key\":{}", quote(pk)));
        }
    }
    if rng.chance(0.8) {
        fields.push(format!("\"message\":{}", quote(rng.pick(&MESSAGES))));
    }
    for side in ["before", "after", "context"] {
        if rng.chance(0.2) {
            continue;
        }
        if side != "context" && rng.chance(0.2) {
            fields.push(format!("\"{side}\":null"));
            continue;
        }
        fields.push(format!("\"{side}\":{}", random_data(rng)));
    }
    format!("{{{}}}", fields.join(","))
}

fn random_data(rng: &mut Rng) -> String {
    let mut members: Vec<String> = Vec::new();
    let candidates: [(&str, &[&str]); 11] = [
        ("account_id", &["4711", "\"4711\"", "4712", "17", "4711.5"]),
        ("status", &["\"active\"", "\"Suspended\"", "\"ACTIVE\""]),
        ("amount", &["5", "100.5", "-3", "\"250\"", "1000", "0"]),
        (
            "routing",
            &[
                "{\"strategy\":\"quality\",\"failover\":[1,2]}",
                "{\"strategy\":\"cost\",\"failover\":[]}",
                "[{\"strategy\":\"cost\"},{\"strategy\":\"quality\"}]",
            ],
        ),
        (
            "codecs",
            &["[\"G729\",\"PCMU\"]", "[[\"G711\"]]", "\"G729\"", "[]"],
        ),
        ("flag", &["true", "false", "null"]),
        (
            "expires",
            &[
                "\"2026-02-01T00:00:00Z\"",
                "\"2025-12-31T23:59:59.5Z\"",
                "\"soon\"",
            ],
        ),
        (
            "note",
            &["\"<script>alert(1)</script>\"", "\"credit limit\"", "\"\""],
        ),
        ("request_id", &["\"req_1\"", "\"req_12\"", "\"REQ_2\""]),
        (
            "nested",
            &["{\"status\":\"active\",\"deep\":{\"account_id\":17}}"],
        ),
        ("a.b", &["1", "\"dotted\""]),
    ];
    for (key, values) in candidates {
        if rng.chance(0.45) {
            members.push(format!("{}:{}", quote(key), rng.pick(values)));
        }
    }
    format!("{{{}}}", members.join(","))
}

fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const QUERY_PIECES: [&str; 96] = [
    "alice",
    "ALICE",
    "ali*",
    "bob",
    "portal",
    "émile",
    "ÉMILE",
    "4711",
    "47*",
    "quality",
    "active",
    "suspended",
    "g729",
    "req_1*",
    "10.0.0.1",
    "fe80::1",
    "\"credit limit\"",
    "credit",
    "cred*",
    "limit",
    "true",
    "null",
    "\"<script>alert(1)</script>\"",
    "script",
    "<b>x</b>",
    "user:alice",
    "user:ali*,bob",
    "user:\"Portal\"",
    "user:émile",
    "action:DELETE",
    "action:create,update",
    "action:LOG*",
    "table:customer",
    "table:cust*",
    "pk:42",
    "primary_key:4*",
    "pk:abd",
    "id:e-1*",
    "id:e-3",
    "source:portal",
    "source:api,system",
    "source:panel",
    "ip:10.0.0.0/8",
    "ip:192.168.1.7",
    "ip:2001:db8::/32",
    "ip:10.0.*",
    "ip:::ffff:0:0/96",
    "ip:fe80::/10",
    "time:>=2026-01-01T00:00:20Z",
    "time:2026-01-01T00:00:10Z..2026-01-01T00:00:30Z",
    "time:<2026-01-01T00:00:05Z",
    "time:2026-01-01T00:00:07Z",
    "time:>now-30d",
    "received_at:>2000-01-01",
    "seq:5..40",
    "seq:>100",
    "seq:<=3",
    "seq:7",
    "message:credit",
    "message:\"credit limit\"",
    "message:cred*",
    "message:calc",
    "message:\"limit of customer\"",
    "account_id:4711",
    "account_id:47*",
    "account_id:>4711",
    "account_id:4700..4711",
    "after.account_id:4711",
    "context.account_id:17",
    "status:active",
    "after.status:suspended",
    "routing.strategy:quality",
    "after.routing.strategy:cost",
    "strategy:quality",
    "failover:2",
    "codecs:g729",
    "codecs:g711",
    "flag:true",
    "flag:null",
    "before:null",
    "after:active",
    "context:4711",
    "amount:>=100",
    "amount:<0",
    "amount:\"250\"",
    "amount:0",
    "expires:>2026-01-15",
    "expires:<now",
    "note:\"<script>alert(1)</script>\"",
    "after:>=1000",
    "deep.account_id:17",
    "nested.deep.account_id:17",
    "request_id:req_1*",
    "b:1",
    "context:req*",
    "after.codecs:pcmu",
];

fn random_query(rng: &mut Rng) -> String {
    let clauses = rng.below(4);
    (0..clauses)
        .map(|_| {
            let piece = rng.pick(&QUERY_PIECES);
            if rng.chance(0.2) {
                format!("-{piece}")
            } else {
                piece.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The naive sort key of a stored event (independent of the engine's code).
fn naive_key(event: &Json, sort: SortField) -> SortKey {
    let text = |name: &str| {
        SortKey::Text(
            event
                .get(name)
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    let instant = |name: &str| {
        let text = event.get(name).and_then(Json::as_str).expect("time");
        SortKey::Number(i128::from(
            Timestamp::parse_rfc3339(text)
                .expect("rfc3339")
                .unix_nanos(),
        ))
    };
    match sort {
        SortField::Time => instant("time"),
        SortField::ReceivedAt => instant("received_at"),
        SortField::Seq => SortKey::Number(i128::from(seq_of(event))),
        SortField::Ip => {
            let addr: IpAddr = event
                .get("ip")
                .and_then(Json::as_str)
                .and_then(|t| t.parse().ok())
                .expect("ip");
            SortKey::Ip(match addr {
                IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
                IpAddr::V6(v6) => u128::from(v6),
            })
        }
        SortField::User => text("user"),
        SortField::PrimaryKey => text("primary_key"),
        SortField::Action => text("action"),
        SortField::Table => text("table"),
        SortField::Message => text("message"),
        SortField::Source => text("source"),
    }
}

fn seq_of(event: &Json) -> u64 {
    match event.get("seq") {
        Some(Json::Number(n)) => n.as_i64().expect("seq") as u64,
        _ => panic!("no seq"),
    }
}

fn stored_events(setup: &Setup) -> Vec<Json> {
    let size = setup.store.tree_size(&setup.tenant).expect("size");
    let limits = JsonLimits {
        max_depth: json::MAX_DEPTH_CEILING,
        max_event_bytes: usize::MAX,
    };
    setup
        .store
        .events_from(&setup.tenant, 1, size as usize)
        .expect("events")
        .into_iter()
        .map(|e| json::parse(&e.canonical, &limits).expect("parse"))
        .collect()
}

fn check_query(setup: &Setup, events: &[Json], text: &str, rng: &mut Rng) {
    let query = auditlog_query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let now = now();
    let sort = rng.pick(&SortField::ALL);
    let order = if rng.chance(0.5) {
        SortOrder::Asc
    } else {
        SortOrder::Desc
    };
    let mut expected: Vec<(SortKey, u64)> = events
        .iter()
        .filter(|event| matches(&query, event, now))
        .map(|event| (naive_key(event, sort), seq_of(event)))
        .collect();
    expected.sort();
    if order == SortOrder::Desc {
        expected.reverse();
    }
    let limit = 1 + rng.below(9) as usize;
    let mut got: Vec<(SortKey, u64)> = Vec::new();
    let mut cursor = None;
    let context = format!("q={text:?} sort={} order={}", sort.name(), order.name());
    for _page in 0..=events.len() + 1 {
        let page = setup
            .engine
            .search(
                &setup.tenant,
                &SearchRequest {
                    query: query.clone(),
                    sort,
                    order,
                    limit,
                    cursor: cursor.clone(),
                },
                now,
            )
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(page.total, expected.len() as u64, "total of {context}");
        assert!(page.hits.len() <= limit, "{context}");
        got.extend(page.hits);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let got_seqs: Vec<u64> = got.iter().map(|(_, seq)| *seq).collect();
    let expected_seqs: Vec<u64> = expected.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(got_seqs, expected_seqs, "{context} limit={limit}");
    assert_eq!(got, expected, "keys of {context}");
    let unique: HashSet<u64> = got_seqs.iter().copied().collect();
    assert_eq!(
        unique.len(),
        got_seqs.len(),
        "a page repeated an event: {context}"
    );

    // Facets of a random column under the same query.
    let facet = rng.pick(&FacetField::ALL);
    let facets = setup
        .engine
        .facets(&setup.tenant, &query, facet, 1000, now)
        .unwrap_or_else(|e| panic!("facets {context}: {e}"));
    let mut naive: HashMap<String, u64> = HashMap::new();
    for event in events.iter().filter(|event| matches(&query, event, now)) {
        let value = event
            .get(facet.name())
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_owned();
        *naive.entry(value).or_default() += 1;
    }
    let mut naive: Vec<(String, u64)> = naive.into_iter().collect();
    naive.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert_eq!(
        facets.values,
        naive,
        "facets of {} for {context}",
        facet.name()
    );
    assert_eq!(facets.total, expected.len() as u64);

    // The histogram counts every match once, in the bucket of its time.
    let histogram = setup
        .engine
        .histogram(&setup.tenant, &query, None, now)
        .unwrap_or_else(|e| panic!("histogram {context}: {e}"));
    assert_eq!(
        histogram.total,
        expected.len() as u64,
        "histogram of {context}"
    );
    if let Some((first, _)) = histogram.buckets.first() {
        let width = i128::from(histogram.interval_secs) * 1_000_000_000;
        let mut naive_counts = vec![0u64; histogram.buckets.len()];
        for event in events.iter().filter(|event| matches(&query, event, now)) {
            let SortKey::Number(time) = naive_key(event, SortField::Time) else {
                unreachable!()
            };
            let idx = (time - i128::from(first.unix_nanos())) / width;
            naive_counts[idx as usize] += 1;
        }
        let got_counts: Vec<u64> = histogram.buckets.iter().map(|(_, c)| *c).collect();
        assert_eq!(got_counts, naive_counts, "histogram of {context}");
    }
}

#[test]
fn index_and_naive_evaluator_agree_on_random_events_and_queries() {
    for seed in [1u64, 2, 3] {
        let mut rng = Rng::new(seed);
        let setup = Setup::new();
        let mut idx = 0;
        // Several appends with searches between them: several segments, read-your-writes.
        for _round in 0..4 {
            let batch: Vec<String> = (0..40 + rng.below(60) as usize)
                .map(|_| {
                    idx += 1;
                    random_event(&mut rng, idx)
                })
                .collect();
            setup.append(&batch);
            let events = stored_events(&setup);
            for _ in 0..60 {
                let text = random_query(&mut rng);
                check_query(&setup, &events, &text, &mut rng);
            }
        }
        // Every piece at least once, alone and negated, on the full set.
        let events = stored_events(&setup);
        for piece in QUERY_PIECES {
            check_query(&setup, &events, piece, &mut rng);
            check_query(&setup, &events, &format!("-{piece}"), &mut rng);
        }
    }
}
