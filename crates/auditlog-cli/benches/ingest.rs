//! Ingest benchmark (issue 2): `cargo bench -p auditlog-cli --bench ingest`.
//!
//! On `AUDITLOG_BENCH_EVENTS` (default 1,000,000) `generate`d events it measures, in one run,
//! twice: on a server started with `--no-search-index` (the core log alone, as issue 2 sets
//! its goals) and on a server with the search index (the default), each on a fresh directory:
//! - ingest through the HTTP batch API (NDJSON, 1,000 events per request, 4 connections) with
//!   durability on, in events/s, and the CPU time per event it took the server and the
//!   benchmark's own client (both share the machine's cores);
//! - single-event POST latency p50/p99 at a fixed 1,000 requests/s (open loop: latency counts
//!   from the scheduled send time, so a stall is not hidden), once right after the batch burst
//!   and once after a 3 s pause;
//! - `auditlog verify` speed in events/s;
//! - bytes per event of the log (the data directory without the search index, which is
//!   reported apart: it may still be catching up when the server stops);
//!
//! and the baseline: the same events inserted into a plain SQLite table (WAL, synchronous=FULL,
//! 1,000 per transaction), its events/s and bytes/event, with the ratios.
//!
//! No thresholds: the figures are printed (and written to target/bench-ingest.md).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_core::generate::{GenerateOptions, Generator};

#[path = "support/common.rs"]
#[allow(dead_code)]
mod common;
use common::{
    agent, create_token, dir_size, generated_lines, post_batches, start_server_with, work_dir,
};

/// Baseline transaction size (the HTTP batch size is AUDITLOG_BENCH_BATCH, default the same).
const BATCH: usize = 1000;
/// Connections posting batches at once (AUDITLOG_BENCH_CONNECTIONS to change).
const CONNECTIONS: usize = 4;

fn main() {
    let n_events: usize = std::env::var("AUDITLOG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let latency_secs: u64 = std::env::var("AUDITLOG_BENCH_LATENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let work = work_dir("auditlog-bench-");
    let lines = generated_lines(n_events);
    let raw_bytes: usize = lines.iter().map(|l| l.len()).sum();
    let batch: usize = std::env::var("AUDITLOG_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BATCH);
    let bodies: Vec<Vec<u8>> = lines
        .chunks(batch)
        .map(|c| c.join("\n").into_bytes())
        .collect();

    let bodies = Arc::new(bodies);
    let core = server_run(
        &work.path().join("core"),
        &bodies,
        n_events,
        latency_secs,
        false,
    );
    let indexed = server_run(
        &work.path().join("indexed"),
        &bodies,
        n_events,
        latency_secs,
        true,
    );

    // --- baseline: plain SQLite table, same events, same durability ---
    eprintln!("baseline: plain SQLite table …");
    let base_path = work.path().join("baseline.db");
    let (base_rate, base_bytes) = sqlite_baseline(&base_path, &lines);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let both = |f: &dyn Fn(&Run) -> String| format!("{} | {}", f(&core), f(&indexed));
    let report = format!(
        "| measure ({n_events} events, raw avg {raw:.0} B) | auditlog, no search index | auditlog with search index | plain SQLite table | ratio (no index) |\n\
         |---|---|---|---|---|\n\
         | ingest, events/s (HTTP batch API, {batch} per request, durable) | {ingest} | {base_rate:.0} (direct inserts) | {r1:.2}× |\n\
         | CPU per event while ingesting, server / client (µs; at the no-index rate, 2 cores have {budget:.1} µs per event) | {cpu} | – | – |\n\
         | single POST p50 / p99 at 1,000 req/s, right after the burst | {burst} | – | – |\n\
         | single POST p50 / p99 at 1,000 req/s, settled | {settled} | – | – |\n\
         | verify, events/s | {verify} | – | – |\n\
         | storage of the log, bytes/event | {log} | {base_bpe:.0} | {r2:.2}× |\n\
         | search index so far, bytes/event | – | {ibpe:.0} | – | – |\n",
        raw = raw_bytes as f64 / n_events as f64,
        ingest = both(&|r| format!("{:.0}", r.ingest_rate)),
        r1 = core.ingest_rate / base_rate,
        budget = 2e6 / core.ingest_rate,
        cpu = both(&|r| format!("{:.2} / {:.2}", r.cpu_us.0, r.cpu_us.1)),
        burst = both(&|r| format!("{:.2} ms / {:.2} ms", ms(r.burst.0), ms(r.burst.1))),
        settled = both(&|r| format!("{:.2} ms / {:.2} ms", ms(r.settled.0), ms(r.settled.1))),
        verify = both(&|r| format!("{:.0}", r.verify_rate)),
        log = both(&|r| format!("{:.0}", r.log_bytes_per_event)),
        ibpe = indexed.index_bytes_per_event,
        base_bpe = base_bytes as f64 / n_events as f64,
        r2 = core.log_bytes_per_event / (base_bytes as f64 / n_events as f64),
    );
    println!("{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-ingest.md"),
        &report,
    );
}

/// What one server configuration measured.
struct Run {
    ingest_rate: f64,
    /// CPU time per event while ingesting: the server's, the benchmark client's (µs).
    cpu_us: (f64, f64),
    burst: (Duration, Duration),
    settled: (Duration, Duration),
    verify_rate: f64,
    log_bytes_per_event: f64,
    index_bytes_per_event: f64,
}

/// Ingest `bodies` into a fresh server on `dir`, measure single-POST latency twice, stop it
/// cleanly and verify its log.
fn server_run(
    dir: &Path,
    bodies: &Arc<Vec<Vec<u8>>>,
    n_events: usize,
    latency_secs: u64,
    search_index: bool,
) -> Run {
    std::fs::create_dir_all(dir).expect("run dir");
    let data = dir.join("data");
    let token = create_token(&data, "ingest,read");
    let log = dir.join("server.log");
    let extra: &[&str] = if search_index {
        &[]
    } else {
        &["--no-search-index"]
    };
    let (mut server, addr) = start_server_with(&data, &log, extra);
    let label = if search_index {
        "with the search index"
    } else {
        "without a search index"
    };
    eprintln!("ingesting through http://{addr} ({label}) …");
    let connections = std::env::var("AUDITLOG_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CONNECTIONS);
    let server_cpu = cpu_seconds(&server.id().to_string());
    let client_cpu = cpu_seconds("self");
    let started = Instant::now();
    post_batches(&addr, &token, bodies.clone(), connections);
    let ingest_rate = n_events as f64 / started.elapsed().as_secs_f64();
    let per_event = |before: f64, after: f64| (after - before) * 1e6 / n_events as f64;
    let cpu_us = (
        per_event(server_cpu, cpu_seconds(&server.id().to_string())),
        per_event(client_cpu, cpu_seconds("self")),
    );
    eprintln!(
        "  {ingest_rate:.0} events/s; CPU per event: server {:.2} µs, client {:.2} µs",
        cpu_us.0, cpu_us.1
    );

    // Single-event latency at a fixed rate: right after the burst (the WAL it left is still
    // being copied into the database, the index still catching up), and once settled.
    let burst = latency_run(&addr, &token, latency_secs, 2);
    std::thread::sleep(Duration::from_secs(3));
    let settled = latency_run(&addr, &token, latency_secs, 3);
    let singles_len = 2 * latency_secs as usize * 1000;

    // Stop cleanly (checkpoint signed, WAL folded into the database) and measure.
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let total_events = (n_events + singles_len) as f64;
    // The log (database, keys) apart from the search index, which may still be catching up.
    let index_bytes = dir_size(&data.join("index"));
    let log_bytes = dir_size(&data) - index_bytes;

    eprintln!("verifying …");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(&data)
        .arg("verify")
        .output()
        .expect("verify");
    let verify_secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "verify failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Run {
        ingest_rate,
        cpu_us,
        burst,
        settled,
        verify_rate: total_events / verify_secs,
        log_bytes_per_event: log_bytes as f64 / total_events,
        index_bytes_per_event: index_bytes as f64 / total_events,
    }
}

/// One event per millisecond for `secs` seconds over 8 connections, open loop: each request's
/// latency counts from when it was due, so a stall is not hidden. Returns (p50, p99).
fn latency_run(addr: &str, token: &str, secs: u64, seed: u64) -> (Duration, Duration) {
    eprintln!("single-event POSTs at 1,000/s for {secs} s …");
    let singles: Vec<String> = {
        let mut generator = Generator::new(GenerateOptions {
            seed: 100 + seed,
            ..GenerateOptions::default()
        });
        (0..(secs as usize * 1000))
            .map(|_| generator.next().expect("event"))
            .collect()
    };
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(singles.len())));
    let singles = Arc::new(singles);
    let lanes = 8;
    let t0 = Instant::now() + Duration::from_millis(100);
    let threads: Vec<_> = (0..lanes)
        .map(|lane| {
            let singles = singles.clone();
            let latencies = latencies.clone();
            let url = format!("http://{addr}/api/v1/events");
            let auth = format!("Bearer {token}");
            std::thread::spawn(move || {
                let agent = agent();
                let mut mine = Vec::new();
                let mut i = lane;
                while i < singles.len() {
                    let due = t0 + Duration::from_micros(i as u64 * 1000);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let mut response = agent
                        .post(&url)
                        .header("Authorization", &auth)
                        .header("Content-Type", "application/json")
                        .send(singles[i].as_bytes())
                        .expect("post");
                    let _ = response.body_mut().read_to_vec();
                    assert_eq!(response.status().as_u16(), 201);
                    mine.push(due.elapsed());
                    i += lanes;
                }
                latencies.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("lane");
    }
    let mut latencies = latencies.lock().expect("lock").clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let (p50, p99) = (pct(0.50), pct(0.99));
    eprintln!("  p50 {p50:?} p99 {p99:?}");
    (p50, p99)
}

/// User and system CPU time of a process (`self` or a pid) so far, in seconds, from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 per second on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn sqlite_baseline(path: &Path, lines: &[String]) -> (f64, u64) {
    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .expect("schema");
    let started = Instant::now();
    for chunk in lines.chunks(BATCH) {
        let tx = conn.transaction().expect("tx");
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO events (body) VALUES (?1)")
                .expect("stmt");
            for line in chunk {
                insert.execute([line]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let rate = lines.len() as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    (rate, bytes)
}
