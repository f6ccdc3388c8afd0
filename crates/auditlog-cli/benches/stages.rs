//! Where ingest CPU goes, stage by stage, on one thread: `cargo bench -p auditlog-cli --bench
//! stages`. Parses 200,000 `generate`d events as NDJSON batches of 1,000 and times strict
//! parsing, validation with the canonical parts and fingerprint, and compression with a
//! trained dictionary, in µs per event. No thresholds; for finding the next thing to make faster.

use std::time::Instant;

use auditlog_core::event::{EventInput, Timestamp};
use auditlog_core::generate::{GenerateOptions, Generator};
use auditlog_core::json::{JsonLimits, parse_batch};
use auditlog_store::prepare_event;

// As in the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n = 200_000usize;
    let mut generator = Generator::new(GenerateOptions {
        seed: 1,
        ..GenerateOptions::default()
    });
    let lines: Vec<String> = (0..n).map(|_| generator.next().expect("event")).collect();
    let bodies: Vec<String> = lines.chunks(1000).map(|c| c.join("\n")).collect();
    let limits = JsonLimits::default();
    let now = Timestamp::from_unix_nanos(1_780_000_000_000_000_000);
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    // Batch by batch, as the server works: memory is reused, not grown to the whole set.
    let mut parse_s = 0.0;
    let mut prepare_s = 0.0;
    let mut parts_s = 0.0;
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut all_plain: Vec<Vec<u8>> = Vec::with_capacity(n);
    for body in &bodies {
        let started = Instant::now();
        let values = parse_batch(body.as_bytes(), true, &limits).expect("parse");
        parse_s += started.elapsed().as_secs_f64();
        let copies = values.clone();
        let started = Instant::now();
        let prepared: Vec<_> = values
            .into_iter()
            .map(|v| prepare_event(v, now, peer).expect("valid"))
            .collect();
        prepare_s += started.elapsed().as_secs_f64();
        let records: Vec<_> = copies
            .into_iter()
            .map(|v| {
                EventInput::from_value(v, now)
                    .expect("valid")
                    .resolve(now, peer)
            })
            .collect();
        let started = Instant::now();
        let parts: Vec<_> = records.iter().map(|r| r.canonical_parts()).collect();
        parts_s += started.elapsed().as_secs_f64();
        for p in &parts {
            let plain = [p.head.as_slice(), p.middle.as_slice(), p.tail.as_slice()].concat();
            if samples.len() < 4096 {
                samples.push(plain.clone());
            }
            all_plain.push(plain);
        }
        drop(prepared);
    }
    let us = |seconds: f64| seconds * 1e6 / n as f64;
    let (parse_us, prepare_us, parts_us) = (us(parse_s), us(prepare_s), us(parts_s));
    let dict = zstd::dict::from_samples(&samples, 64 * 1024).expect("dict");
    let mut results = Vec::new();
    for level in [1, -1, -3] {
        let mut ctx = zstd::bulk::Compressor::with_dictionary(level, &dict).expect("ctx");
        let started = Instant::now();
        let mut bytes = 0usize;
        for plain in &all_plain {
            bytes += ctx.compress(plain).expect("compress").len();
        }
        results.push((
            level,
            us(started.elapsed().as_secs_f64()),
            bytes as f64 / n as f64,
        ));
    }
    println!("| stage | µs/event (1 thread) |");
    println!("|---|---|");
    println!("| strict parse (parse_batch) | {parse_us:.2} |");
    println!("| canonical parts | {parts_us:.2} |");
    println!("| prepare_event (validate, resolve, parts, fingerprint) | {prepare_us:.2} |");
    for (level, us, size) in results {
        println!("| zstd level {level} with 64 KiB dictionary | {us:.2} ({size:.0} B/event) |");
    }
}
