//! Crash tests: concurrent ingest, `kill -9` at a random moment, restart, and every
//! acknowledged event must be there with its acknowledged seq and leaf hash; `verify` clean.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Ack, Client, Server, assert_acknowledged_present, generate, run, tempdir};

/// A tiny deterministic PRNG so a failing round can be replayed from its printed seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn acknowledged_events_survive_kill_9_at_random_moments() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("crash test seed {seed}");
    let rounds = 5;
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..rounds {
        let mut server = Server::start(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let round_acks: Arc<Mutex<Vec<Ack>>> = Arc::new(Mutex::new(Vec::new()));
        let mut clients = Vec::new();
        for client_no in 0..4u64 {
            let addr = server.addr.clone();
            let token = server.token.clone();
            let stop = stop.clone();
            let round_acks = round_acks.clone();
            let mut rng = seed ^ ((client_no + 1) * 0x1234_5678);
            // Distinct generator seeds: ids are "gen-<seed>-<n>", unique across clients and rounds.
            let events = generate(3000, 1000 + round as u64 * 10 + client_no);
            clients.push(std::thread::spawn(move || {
                let client = Client::new(&addr, Some(&token));
                let mut next = 0usize;
                while !stop.load(Ordering::Relaxed) && next < events.len() {
                    let n = 1 + (splitmix(&mut rng) % 40) as usize;
                    let batch = &events[next..(next + n).min(events.len())];
                    next += batch.len();
                    let body = batch.join("\n");
                    let Ok(reply) =
                        client.try_post("/api/v1/events", "application/x-ndjson", body.as_bytes())
                    else {
                        return; // the server died under us
                    };
                    if reply.status != 201 {
                        return;
                    }
                    let json = reply.json();
                    let receipts = json["events"].as_array().expect("receipts");
                    assert_eq!(receipts.len(), batch.len());
                    let mut acks = round_acks.lock().expect("lock");
                    for receipt in receipts {
                        acks.push((
                            receipt["id"].as_str().expect("id").to_owned(),
                            receipt["seq"].as_u64().expect("seq"),
                            receipt["leaf_hash"].as_str().expect("leaf").to_owned(),
                        ));
                    }
                }
            }));
        }
        let wait_ms = 150 + splitmix(&mut seed) % 1200;
        std::thread::sleep(Duration::from_millis(wait_ms));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().expect("client thread");
        }
        acked.extend(round_acks.lock().expect("lock").drain(..));

        // Restart and check every acknowledged event, from every round so far.
        let server = Server::start(&data);
        let client = server.client();
        assert_acknowledged_present(&client, &acked, &format!("round {round}"));
        let verify = run(&data, &["verify"]);
        assert!(
            verify.status.success(),
            "round {round}: verify after kill -9 failed:\n{}",
            String::from_utf8_lossy(&verify.stdout)
        );
        drop(server);
        eprintln!(
            "round {round}: killed after {wait_ms} ms, {} acknowledged so far",
            acked.len()
        );
    }
    assert!(
        !acked.is_empty(),
        "no request was acknowledged in any round"
    );
}
