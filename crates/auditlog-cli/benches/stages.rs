//! Where ingest CPU goes, stage by stage, on one thread: `cargo bench -p auditlog-cli --bench
//! stages`. Parses 200,000 `generate`d events as NDJSON batches of 1,000 and times the
//! server's fast path (body straight to canonical parts), the strict path it falls back to
//! (parsing, then validation with the canonical parts and fingerprint), and compression with
//! a trained dictionary, in µs per event. No thresholds; for finding the next thing to make faster.

use std::time::Instant;

use auditlog_core::event::{EventInput, Timestamp, fast};
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
    let mut fast_s = 0.0;
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut all_plain: Vec<Vec<u8>> = Vec::with_capacity(n);
    for body in &bodies {
        let started = Instant::now();
        let fast = fast::prepare_batch(body.as_bytes(), true, &limits, 1000, now, peer);
        fast_s += started.elapsed().as_secs_f64();
        assert!(fast.is_some(), "generated events take the fast path");
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
    let fast_us = us(fast_s);
    let dict = zstd::dict::from_samples(&samples, 64 * 1024).expect("dict");
    let mut results = Vec::new();
    // (level, raw literals): the store uses level 1 with raw literals (no Huffman stage).
    // The first pass warms the allocator (200,000 fresh frames) and is not reported.
    let configs = [(1, true), (1, true), (1, false), (-1, true), (-3, true)];
    for (pass, (level, raw_literals)) in configs.into_iter().enumerate() {
        let mut ctx = zstd::bulk::Compressor::with_dictionary(level, &dict).expect("ctx");
        if raw_literals {
            ctx.set_parameter(zstd::stream::raw::CParameter::LiteralCompressionMode(
                zstd::zstd_safe::ParamSwitch::Disable,
            ))
            .expect("parameter");
        }
        let started = Instant::now();
        let frames: Vec<Vec<u8>> = all_plain
            .iter()
            .map(|plain| ctx.compress(plain).expect("compress"))
            .collect();
        let compress_us = us(started.elapsed().as_secs_f64());
        let bytes: usize = frames.iter().map(Vec::len).sum();
        let mut dctx = zstd::bulk::Decompressor::with_dictionary(&dict).expect("dctx");
        let started = Instant::now();
        for frame in &frames {
            dctx.decompress(frame, 1 << 20).expect("decompress");
        }
        if pass == 0 {
            continue;
        }
        results.push((
            level,
            raw_literals,
            compress_us,
            us(started.elapsed().as_secs_f64()),
            bytes as f64 / n as f64,
        ));
    }
    println!("| stage | µs/event (1 thread) |");
    println!("|---|---|");
    println!("| strict parse (parse_batch) | {parse_us:.2} |");
    println!("| canonical parts | {parts_us:.2} |");
    println!("| prepare_event (validate, resolve, parts, fingerprint) | {prepare_us:.2} |");
    println!(
        "| the server's path: fast::prepare_batch (body straight to canonical parts) | {fast_us:.2} |"
    );
    for (level, raw, compress, decompress, size) in results {
        let literals = if raw { "raw" } else { "Huffman" };
        println!(
            "| zstd level {level}, 64 KiB dictionary, {literals} literals: compress / decompress | \
             {compress:.2} / {decompress:.2} ({size:.0} B/event) |"
        );
    }
}
