//! Search benchmark (issue 3): `cargo bench -p auditlog-cli --bench search`.
//!
//! On `AUDITLOG_BENCH_EVENTS` (default 1,000,000) `generate`d events it measures, in one run:
//! - ingest with the index on: the events sent through the HTTP batch API (1,000 per request,
//!   4 connections, durable), until a search sees all of them, in events/s;
//! - the standard query set through HTTP, p50/p95 over `AUDITLOG_BENCH_RUNS` (default 30)
//!   runs each: newest 50; one action newest 50; a hot account id; a rare account id;
//!   user+table sorted by primary key; count of a common term; facets of `user` under a
//!   filter; a deep keyset page;
//! - the data directory in bytes/event, index included;
//!
//! and the baseline in the same run: the same events in SQLite with FTS5 and btree indexes
//! (`support/sqlite_baseline.rs`), queried in process (it pays no HTTP, but reads and parses
//! the events of each page as the server does), with ratios.
//! No thresholds: the figures are printed and written to target/bench-search-<N>.md.

#[path = "support/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "support/sqlite_baseline.rs"]
mod sqlite_baseline;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_search::{Cursor, SortField, SortKey, SortOrder};

use common::{
    agent, create_token, dir_size, generated_lines, percentile_ms, post_batches, start_server,
    work_dir,
};
use sqlite_baseline::{SqliteBaseline, StandardParams, standard_params};

const BATCH: usize = 1000;
const CONNECTIONS: usize = 4;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n_events = env_or("AUDITLOG_BENCH_EVENTS", 1_000_000);
    let runs = env_or("AUDITLOG_BENCH_RUNS", 30);
    let work = work_dir("auditlog-search-bench-");
    let lines = generated_lines(n_events);
    let params = standard_params(&lines);
    eprintln!("  {params:?}");

    // --- auditlog: ingest with the index on, over HTTP ---
    let data = work.path().join("data");
    let token = create_token(&data, "ingest,read");
    let log = work.path().join("server.log");
    let (mut server, addr) = start_server(&data, &log);
    eprintln!("auditlog: ingest with the index on…");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        lines
            .chunks(BATCH)
            .map(|c| c.join("\n").into_bytes())
            .collect(),
    );
    let started = Instant::now();
    post_batches(&addr, &token, bodies, CONNECTIONS);
    let acked_secs = started.elapsed().as_secs_f64();
    let client = Http {
        agent: agent(),
        base: format!("http://{addr}"),
        auth: format!("Bearer {token}"),
    };
    // Searchable: a search sees every event (it waits for the index itself, up to 10 s).
    loop {
        let (status, body) = client.get("/api/v1/events?limit=1");
        if status == 200 && body["total"].as_u64() == Some(n_events as u64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let indexed_secs = started.elapsed().as_secs_f64();
    let ingest_rate = n_events as f64 / indexed_secs;
    eprintln!(
        "  acknowledged in {acked_secs:.1} s, searchable in {indexed_secs:.1} s: {ingest_rate:.0} events/s"
    );

    // --- auditlog: the standard queries ---
    let deep_offset = params.deep_offset;
    let queries = standard_queries(&params);
    // The deep page's cursor: the event at `deep_offset` in the default order, by walking the
    // baseline (same events, same order).
    let mut ours: Vec<(String, f64, f64)> = Vec::new();
    // Settle merges a moment, as a server at rest would be.
    std::thread::sleep(Duration::from_secs(2));

    // --- baseline ---
    eprintln!("baseline: SQLite with FTS5 and btree indexes…");
    let mut baseline = SqliteBaseline::create(&work.path().join("baseline.db"));
    let base_ingest = baseline.ingest(&lines, BATCH);
    let base_rate = n_events as f64 / base_ingest.as_secs_f64();
    eprintln!("  {base_rate:.0} events/s");
    let (deep_time, deep_seq) = baseline.position(deep_offset);
    let deep_cursor = Cursor {
        sort: SortField::Time,
        order: SortOrder::Desc,
        key: SortKey::Number(i128::from(deep_time)),
        seq: deep_seq,
    }
    .encode();

    eprintln!("auditlog: queries…");
    for (name, path) in queries.iter().chain(std::iter::once(&(
        "deep keyset page (50 after position {deep_offset})".to_owned(),
        format!("/api/v1/events?limit=50&cursor={deep_cursor}"),
    ))) {
        let mut times = Vec::with_capacity(runs);
        for run in 0..runs + 3 {
            let started = Instant::now();
            let (status, body) = client.get(path);
            let took = started.elapsed();
            assert_eq!(status, 200, "{path}: {body}");
            if run >= 3 {
                times.push(took);
            }
        }
        times.sort();
        let (p50, p95) = (percentile_ms(&times, 0.5), percentile_ms(&times, 0.95));
        eprintln!("  {name}: p50 {p50:.2} ms, p95 {p95:.2} ms");
        ours.push((name.clone(), p50, p95));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let data_bytes = dir_size(&data);
    let index_bytes = dir_size(&data.join("index"));
    eprintln!("auditlog in process: queries…");
    let in_process = engine_queries(&data, &params, &deep_cursor, runs);

    eprintln!("baseline: queries…");
    let base_times = baseline_queries(&baseline, &params, (deep_time, deep_seq), runs);
    let base_bytes = baseline.bytes();

    let mut report = format!(
        "Search benchmark, {n_events} generated events, {runs} runs per query, {cores} cores.\n\n\
         | measure | auditlog over HTTP | auditlog in process | SQLite + FTS5 + btree, in process | ratio (in process) |\n\
         |---|---|---|---|---|\n\
         | ingest with index, events/s (durable, searchable) | {ingest_rate:.0} | – | {base_rate:.0} | {r:.2}× |\n",
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        r = ingest_rate / base_rate,
    );
    for (((name, p50, p95), (base_p50, base_p95)), (own_p50, own_p95)) in
        ours.iter().zip(&base_times).zip(&in_process)
    {
        report.push_str(&format!(
            "| {name}: p50 / p95 ms | {p50:.2} / {p95:.2} | {own_p50:.2} / {own_p95:.2} | {base_p50:.2} / {base_p95:.2} | {r:.2}× (p95) |\n",
            name = name.replace("{deep_offset}", &deep_offset.to_string()),
            r = base_p95 / own_p95,
        ));
    }
    report.push_str(&format!(
        "| data directory, bytes/event (index: {ibpe:.0}) | {bpe:.0} | – | {base_bpe:.0} | {r:.2}× |\n",
        ibpe = index_bytes as f64 / n_events as f64,
        bpe = data_bytes as f64 / n_events as f64,
        base_bpe = base_bytes as f64 / n_events as f64,
        r = data_bytes as f64 / base_bytes as f64,
    ));
    println!("{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../target/bench-search-{n_events}.md")),
        &report,
    );
}

struct Http {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Http {
    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .call()
            .expect("GET");
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .expect("body");
        (status, serde_json::from_str(&text).unwrap_or_default())
    }
}

fn encode(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// The standard query set as API paths, in the order of [`baseline_queries`].
fn standard_queries(params: &StandardParams) -> Vec<(String, String)> {
    vec![
        ("newest 50".into(), "/api/v1/events?limit=50".into()),
        (
            format!("action {} newest 50", params.action),
            format!(
                "/api/v1/events?limit=50&q={}",
                encode(&format!("action:{}", params.action))
            ),
        ),
        (
            format!("hot account id {} newest 50", params.hot_account),
            format!("/api/v1/events?limit=50&q={}", encode(&params.hot_account)),
        ),
        (
            format!("rare account id {} newest 50", params.rare_account),
            format!("/api/v1/events?limit=50&q={}", encode(&params.rare_account)),
        ),
        (
            format!(
                "user {} + table {} by primary key",
                params.user, params.table
            ),
            format!(
                "/api/v1/events?limit=50&sort=primary_key&order=asc&q={}",
                encode(&format!("user:{} table:{}", params.user, params.table))
            ),
        ),
        (
            format!("count of common term {}", params.common_term),
            format!("/api/v1/events?limit=1&q={}", encode(&params.common_term)),
        ),
        (
            format!("facets of user under action:{}", params.facet_action),
            format!(
                "/api/v1/facets?field=user&limit=10&q={}",
                encode(&format!("action:{}", params.facet_action))
            ),
        ),
    ]
}

/// p50/p95 in ms of each standard query on the baseline, deep page last.
fn baseline_queries(
    db: &SqliteBaseline,
    params: &StandardParams,
    deep: (i64, u64),
    runs: usize,
) -> Vec<(f64, f64)> {
    let queries: Vec<Box<dyn Fn() -> usize + '_>> = vec![
        Box::new(|| db.load(&db.newest(50))),
        Box::new(|| db.load(&db.action_newest(&params.action, 50))),
        Box::new(|| db.load(&db.term_newest(&params.hot_account, 50))),
        Box::new(|| db.load(&db.term_newest(&params.rare_account, 50))),
        Box::new(|| db.load(&db.user_table_by_pk(&params.user, &params.table, 50))),
        Box::new(|| db.count_term(&params.common_term) as usize),
        Box::new(|| db.facet_user(&params.facet_action, 10).len()),
        Box::new(|| db.load(&db.page_after(deep, 50))),
    ];
    time_runs(&queries, runs)
}

/// p50/p95 in ms of each standard query run on the engine in this process, loading and
/// parsing each page's events from the log as the baseline does: no HTTP, no JSON answer.
fn engine_queries(
    data: &Path,
    params: &StandardParams,
    deep_cursor: &str,
    runs: usize,
) -> Vec<(f64, f64)> {
    use auditlog_search::{FacetField, SearchEngine, SearchOptions, SearchRequest};
    use auditlog_store::{SqliteStore, Store};
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(data, Default::default()).expect("open data"));
    let engine = SearchEngine::open(store.clone(), &data.join("index"), SearchOptions::default())
        .expect("open index");
    let tenant = auditlog_core::tenant::TenantId::default_tenant();
    engine
        .catch_up(&tenant, Duration::from_secs(600))
        .expect("index current");
    let limits = auditlog_core::json::JsonLimits {
        max_depth: 64,
        max_event_bytes: 64 << 20,
    };
    let page = |q: &str, sort: SortField, order: SortOrder, limit: usize, cursor: Option<&str>| {
        let request = SearchRequest {
            query: auditlog_query::parse(q).expect("query"),
            sort,
            order,
            limit,
            cursor: cursor.map(|c| Cursor::decode(c, sort, order).expect("cursor")),
        };
        let found = engine
            .search(&tenant, &request, auditlog_store::now())
            .expect("search");
        for (_, seq) in &found.hits {
            let event = store.event(&tenant, *seq).expect("event").expect("present");
            std::hint::black_box(
                auditlog_core::json::parse(&event.canonical, &limits).expect("parse"),
            );
        }
        found.hits.len()
    };
    let (desc, asc) = (SortOrder::Desc, SortOrder::Asc);
    let queries: Vec<Box<dyn Fn() -> usize + '_>> = vec![
        Box::new(|| page("", SortField::Time, desc, 50, None)),
        Box::new(|| {
            page(
                &format!("action:{}", params.action),
                SortField::Time,
                desc,
                50,
                None,
            )
        }),
        Box::new(|| page(&params.hot_account, SortField::Time, desc, 50, None)),
        Box::new(|| page(&params.rare_account, SortField::Time, desc, 50, None)),
        Box::new(|| {
            let q = format!("user:{} table:{}", params.user, params.table);
            page(&q, SortField::PrimaryKey, asc, 50, None)
        }),
        Box::new(|| {
            let q = auditlog_query::parse(&params.common_term).expect("query");
            engine
                .count(&tenant, &q, auditlog_store::now())
                .expect("count") as usize
        }),
        Box::new(|| {
            let q =
                auditlog_query::parse(&format!("action:{}", params.facet_action)).expect("query");
            engine
                .facets(&tenant, &q, FacetField::User, 10, auditlog_store::now())
                .expect("facets")
                .values
                .len()
        }),
        Box::new(|| page("", SortField::Time, desc, 50, Some(deep_cursor))),
    ];
    time_runs(&queries, runs)
}

/// p50/p95 in ms of each query over `runs` runs, after 3 to warm up.
fn time_runs(queries: &[Box<dyn Fn() -> usize + '_>], runs: usize) -> Vec<(f64, f64)> {
    queries
        .iter()
        .map(|query| {
            let mut times = Vec::with_capacity(runs);
            for run in 0..runs + 3 {
                let started = Instant::now();
                std::hint::black_box(query());
                if run >= 3 {
                    times.push(started.elapsed());
                }
            }
            times.sort();
            (percentile_ms(&times, 0.5), percentile_ms(&times, 0.95))
        })
        .collect()
}
