//! `auditlog ingest FILE --url` beside the ingest benchmark's fast client (issue 18):
//! `cargo bench -p auditlog-cli --bench ingest_url`.
//!
//! On `AUDITLOG_BENCH_EVENTS` (default 200,000) `generate`d events, in one run and alternating
//! (so the machine's drift hits both alike), each on a fresh server started with
//! `--no-search-index`:
//! - the fast client: prebuilt NDJSON bodies of 1,000 events over 4 connections
//!   (`post_batches`, the same as `benches/ingest.rs`);
//! - `auditlog ingest FILE --url` (its defaults: 1,000 per request, 4 connections), on the
//!   generated file, whose events carry ids;
//! - the same on the file with every `id` removed (ids are then spliced in by the CLI).
//!
//! Each is run `AUDITLOG_BENCH_ROUNDS` times (default 2); the best rate of each and the
//! ratios to the fast client are printed. No thresholds.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

#[path = "support/common.rs"]
#[allow(dead_code)]
mod common;
use common::{create_token, generated_lines, post_batches, start_server_with, work_dir};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One fresh server; `send` ingests everything into it; the events/s it took.
fn timed(dir: &Path, n_events: usize, send: &dyn Fn(&str, &str)) -> f64 {
    std::fs::create_dir_all(dir).expect("run dir");
    let data = dir.join("data");
    let token = create_token(&data, "ingest,read");
    let (mut server, addr) =
        start_server_with(&data, &dir.join("server.log"), &["--no-search-index"]);
    let started = Instant::now();
    send(&addr, &token);
    let rate = n_events as f64 / started.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(dir);
    rate
}

fn cli_ingest(file: &Path, addr: &str, token: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("ingest")
        .arg(file)
        .args(["--url", &format!("http://{addr}"), "--token", token])
        .output()
        .expect("run ingest");
    assert!(
        out.status.success(),
        "ingest --url: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let n_events = env_or("AUDITLOG_BENCH_EVENTS", 200_000);
    let rounds = env_or("AUDITLOG_BENCH_ROUNDS", 2);
    let work = work_dir("auditlog-bench-url-");
    let lines = generated_lines(n_events);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        lines
            .chunks(1000)
            .map(|c| c.join("\n").into_bytes())
            .collect(),
    );
    let with_ids = work.path().join("with-ids.ndjson");
    std::fs::write(&with_ids, lines.join("\n")).expect("write");
    let without_ids = work.path().join("without-ids.ndjson");
    let stripped: Vec<String> = lines
        .iter()
        .map(|line| {
            let mut event: serde_json::Value = serde_json::from_str(line).expect("json");
            event.as_object_mut().expect("object").remove("id");
            event.to_string()
        })
        .collect();
    std::fs::write(&without_ids, stripped.join("\n")).expect("write");
    drop(stripped);

    let (mut fast, mut cli, mut cli_no_ids) = (0f64, 0f64, 0f64);
    for round in 0..rounds {
        let dir = |name: &str| work.path().join(format!("{name}-{round}"));
        let rate = timed(&dir("fast"), n_events, &|addr, token| {
            post_batches(addr, token, bodies.clone(), 4)
        });
        eprintln!("round {round}: fast client {rate:.0} events/s");
        fast = fast.max(rate);
        let rate = timed(&dir("cli"), n_events, &|addr, token| {
            cli_ingest(&with_ids, addr, token)
        });
        eprintln!("round {round}: ingest --url {rate:.0} events/s");
        cli = cli.max(rate);
        let rate = timed(&dir("cli-no-ids"), n_events, &|addr, token| {
            cli_ingest(&without_ids, addr, token)
        });
        eprintln!("round {round}: ingest --url, no ids in the file {rate:.0} events/s");
        cli_no_ids = cli_no_ids.max(rate);
    }
    let report = format!(
        "| {n_events} events, best of {rounds}, server --no-search-index | events/s | of the fast client |\n\
         |---|---|---|\n\
         | fast client (prebuilt bodies, 1,000 per request, 4 connections) | {fast:.0} | 1.00× |\n\
         | `auditlog ingest FILE --url` (events with ids) | {cli:.0} | {r1:.2}× |\n\
         | `auditlog ingest FILE --url` (no ids: spliced in) | {cli_no_ids:.0} | {r2:.2}× |\n",
        r1 = cli / fast,
        r2 = cli_no_ids / fast,
    );
    println!("{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-ingest-url.md"),
        &report,
    );
}
