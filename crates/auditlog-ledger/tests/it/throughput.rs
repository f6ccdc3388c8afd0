//! Throughput floors from the brief: a verifier recomputes more than 1M leaf hashes per second
//! (`leaf_hash` + `Frontier::push`), the writer appends 150k leaves per second
//! (`TileWriter::append` + `take_dirty`). Timing is meaningless in debug builds and noisy on
//! shared CI machines, so this runs only on request:
//! `cargo test --release -p auditlog-ledger --test it throughput -- --ignored`.

use std::time::Instant;

use auditlog_ledger::leaf_hash;
use auditlog_ledger::merkle::Frontier;
use auditlog_ledger::tiles::TileWriter;

#[test]
#[ignore = "timing; run with --release -- --ignored"]
fn throughput_meets_the_ingest_and_verify_floors() {
    if cfg!(debug_assertions) {
        return;
    }
    const N: u64 = 2_000_000;
    // A small canonical event is a few hundred bytes.
    let mut event = [b'x'; 300];

    let start = Instant::now();
    let mut frontier = Frontier::new();
    for i in 0..N {
        event[..8].copy_from_slice(&i.to_le_bytes());
        frontier.push(leaf_hash(&event));
    }
    let verify_rate = N as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box(frontier.root());

    let start = Instant::now();
    let mut writer = TileWriter::new();
    let mut stored_bytes = 0usize;
    for i in 0..N {
        writer.append(leaf_hash(&i.to_le_bytes()));
        if i % 500 == 499 {
            stored_bytes += writer
                .take_dirty()
                .iter()
                .map(|(_, b)| b.len())
                .sum::<usize>();
        }
    }
    let append_rate = N as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box((writer.root(), stored_bytes));

    assert!(
        verify_rate > 1_000_000.0,
        "verify: {verify_rate:.0} leaves/s"
    );
    assert!(append_rate > 150_000.0, "append: {append_rate:.0} leaves/s");
}
