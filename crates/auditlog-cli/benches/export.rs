//! Export benchmark (issue 6): `cargo bench -p auditlog-cli --bench export`.
//!
//! `AUDITLOG_BENCH_EVENTS` (default 1,000,000) `generate`d events are appended to a data
//! directory with `auditlog ingest` (local), a server is started on it, and the whole log is
//! exported over HTTP as CSV and as NDJSON with proofs (read to the last byte), twice each;
//! the best run of each is reported in events/s. No thresholds: the figures are printed and
//! written to target/bench-export.md.

#[path = "support/common.rs"]
#[allow(dead_code)]
mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Instant;

use auditlog_core::generate::{GenerateOptions, Generator};

use common::{agent, create_token, wait_for_addr, work_dir};

fn main() {
    let n_events: usize = std::env::var("AUDITLOG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let work = work_dir("auditlog-export-bench-");
    let data = work.path().join("data");
    eprintln!("generating and ingesting {n_events} events…");
    let input = work.path().join("events.ndjson");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("file"));
        let mut generator = Generator::new(GenerateOptions {
            seed: 1,
            ..GenerateOptions::default()
        });
        for _ in 0..n_events {
            writeln!(file, "{}", generator.next().expect("event")).expect("write");
        }
    }
    let bin = env!("CARGO_BIN_EXE_auditlog");
    let status = Command::new(bin)
        .arg("--data")
        .arg(&data)
        .arg("ingest")
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .expect("ingest");
    assert!(status.success());
    let token = create_token(&data, "read");
    let log = work.path().join("server.log");
    let mut server = Command::new(bin)
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("server");
    let addr = wait_for_addr(&log);
    let agent = agent();
    // The index catches up with the log first (a search waits for it).
    loop {
        let mut response = agent
            .get(format!("http://{addr}/api/v1/events?limit=1"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("search");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if response.status().as_u16() == 200 && text.contains(&format!("\"total\":{n_events}")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut rows = Vec::new();
    for format in ["csv", "ndjson"] {
        let mut best = f64::MAX;
        let mut bytes = 0;
        for _ in 0..2 {
            let started = Instant::now();
            let response = agent
                .get(format!("http://{addr}/api/v1/export?format={format}"))
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .expect("export");
            assert_eq!(response.status().as_u16(), 200);
            let mut reader = response
                .into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader();
            let mut buffer = vec![0u8; 1 << 20];
            bytes = 0;
            loop {
                let n = reader.read(&mut buffer).expect("read");
                if n == 0 {
                    break;
                }
                bytes += n;
            }
            best = best.min(started.elapsed().as_secs_f64());
        }
        let rate = n_events as f64 / best;
        eprintln!(
            "  {format}: {rate:.0} events/s ({:.0} B/event)",
            bytes as f64 / n_events as f64
        );
        rows.push((format, rate, bytes as f64 / n_events as f64));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let mut report = format!(
        "Export benchmark, {n_events} generated events, whole log over HTTP, best of 2.\n\n\
         | format | events/s | bytes/event |\n|---|---|---|\n"
    );
    for (format, rate, bpe) in rows {
        report.push_str(&format!("| {format} | {rate:.0} | {bpe:.0} |\n"));
    }
    println!("{report}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-export.md"),
        &report,
    );
}
