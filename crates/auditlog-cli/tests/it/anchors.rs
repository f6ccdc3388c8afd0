//! Anchors outside the server (issue 6): every signed checkpoint is copied to `--anchor-dir`,
//! and `verify --anchors` catches a log cut short or rebuilt with the same key, naming the
//! anchored size. The server also verifies itself on a schedule and says so in `/healthz`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::support::{Server, generate, run, tempdir};

/// Sizes of the anchored checkpoints of the default tenant.
fn anchored_sizes(anchors: &Path) -> Vec<u64> {
    let mut sizes: Vec<u64> = std::fs::read_dir(anchors.join("default"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".checkpoint")?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort_unstable();
    sizes
}

/// A server with anchors that stored `batches` × 100 generated events (seed `seed`), stopped
/// once the last checkpoint is anchored.
fn anchored_log(data: &Path, anchors: &Path, seed: u64, batches: usize) {
    let mut server = Server::start_with(
        data,
        &["--anchor-dir", anchors.to_str().expect("utf8 path")],
    );
    let client = server.client();
    for (idx, chunk) in generate(100 * batches as u64, seed).chunks(100).enumerate() {
        let reply = client.post(
            "/api/v1/events",
            "application/x-ndjson",
            chunk.join("\n").as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
        // Let a checkpoint be signed (and anchored) between batches.
        let want = 100 * (idx as u64 + 1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while anchored_sizes(anchors).last() != Some(&want) {
            assert!(Instant::now() < deadline, "checkpoint {want} not anchored");
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    // The count goes up just after the file is in place.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = client.get("/healthz").json();
        assert_eq!(health["background"]["anchors"]["enabled"], true, "{health}");
        if health["background"]["anchors"]["written"].as_u64() >= Some(batches as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
}

#[test]
fn every_checkpoint_is_anchored_and_an_intact_log_agrees_with_them() {
    let dir = tempdir();
    let (data, anchors) = (dir.path().join("data"), dir.path().join("anchors"));
    anchored_log(&data, &anchors, 1, 3);
    assert_eq!(anchored_sizes(&anchors), vec![100, 200, 300]);
    let out = run(
        &data,
        &["verify", "--anchors", anchors.to_str().expect("utf8")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let out = run(
        &data,
        &[
            "verify",
            "--anchors",
            anchors.to_str().expect("utf8"),
            "--format",
            "json",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("summary")).expect("json");
    assert_eq!(summary["anchors_checked"], 3, "{text}");
    assert_eq!(summary["ok"], true, "{text}");
}

#[test]
fn a_log_cut_short_behind_the_servers_back_is_truncated_at_the_anchored_size() {
    let dir = tempdir();
    let (data, anchors) = (dir.path().join("data"), dir.path().join("anchors"));
    anchored_log(&data, &anchors, 2, 3);
    // Cut the log to 150 events and remove every trace of the later checkpoints.
    let conn = Connection::open(data.join("auditlog.db")).expect("open db");
    conn.execute_batch(
        "DELETE FROM events WHERE seq > 150;
         UPDATE tenants SET tree_size = 150;
         DELETE FROM checkpoints WHERE size > 150;",
    )
    .expect("cut");
    drop(conn);
    let out = run(
        &data,
        &["verify", "--anchors", anchors.to_str().expect("utf8")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("truncated at anchored size 300"), "{text}");
    assert!(text.contains("truncated at anchored size 200"), "{text}");
}

#[test]
fn a_log_rebuilt_from_scratch_with_the_same_key_is_caught_by_the_anchors() {
    let dir = tempdir();
    let (data, anchors) = (dir.path().join("data"), dir.path().join("anchors"));
    anchored_log(&data, &anchors, 3, 2);
    // Someone with the key rebuilds the log: same key, other events, as many of them.
    let rebuilt = dir.path().join("rebuilt");
    std::fs::create_dir_all(rebuilt.join("keys")).expect("keys dir");
    std::fs::copy(
        data.join("keys").join("default.key"),
        rebuilt.join("keys").join("default.key"),
    )
    .expect("copy key");
    let input = dir.path().join("other.ndjson");
    std::fs::write(&input, generate(200, 99).join("\n")).expect("write");
    let out = run(&rebuilt, &["ingest", input.to_str().expect("utf8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On its own the rebuilt log is consistent…
    let out = run(&rebuilt, &["verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // …but not with what was anchored.
    let out = run(
        &rebuilt,
        &["verify", "--anchors", anchors.to_str().expect("utf8")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("altered at anchored size 100"), "{text}");
    assert!(text.contains("altered at anchored size 200"), "{text}");
}

#[test]
fn anchors_signed_by_another_key_are_reported() {
    let dir = tempdir();
    let (data, anchors) = (dir.path().join("data"), dir.path().join("anchors"));
    anchored_log(&data, &anchors, 4, 1);
    let other = dir.path().join("other");
    let out = run(
        &other,
        &["token", "create", "--name", "x", "--scopes", "read"],
    );
    assert!(out.status.success());
    let key = String::from_utf8(run(&other, &["key", "show"]).stdout).expect("utf8");
    assert!(key.starts_with("auditlog/default+"), "{key}");
    let args = [
        "verify",
        "--anchors",
        anchors.to_str().expect("utf8"),
        "--key",
        key.trim(),
    ];
    let out = run(&data, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bad signature"), "{text}");
    // In JSON the log itself is clean, but the summary is not ok: anchors count too.
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let out = run(&data, &args);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"kind\":\"bad_signature\""), "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("summary")).expect("json");
    assert_eq!(summary["ok"], false, "{text}");
}

#[test]
fn the_server_verifies_itself_and_reports_it_in_healthz() {
    let dir = tempdir();
    let server = Server::start_with(&dir.path().join("data"), &["--verify-every-secs", "1"]);
    let client = server.client();
    let reply = client.post(
        "/api/v1/events",
        "application/x-ndjson",
        generate(50, 5).join("\n").as_bytes(),
    );
    assert_eq!(reply.status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = client.with_token(None).get("/healthz").json();
        let verify = &health["background"]["verify"];
        if verify["events"].as_u64() == Some(50) {
            assert_eq!(verify["ok"], true, "{health}");
            assert_eq!(verify["findings"], 0);
            // No tenant names or data to anyone.
            assert!(!health.to_string().contains("default"), "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "no self-verification: {health}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal webhook: answers every request 204 and hands over each body.
fn webhook() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() {
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn every_checkpoint_is_posted_to_the_anchor_url() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let (url, received) = webhook();
    let server = Server::start_with(&data, &["--anchor-url", &url]);
    let client = server.client();
    let reply = client.post(
        "/api/v1/events",
        "application/x-ndjson",
        generate(20, 6).join("\n").as_bytes(),
    );
    assert_eq!(reply.status, 201);
    let key = client.get("/api/v1/public-key").text.trim().to_owned();
    let verifier = auditlog_ledger::note::NoteVerifier::parse(&key).expect("key");
    let note = received
        .recv_timeout(Duration::from_secs(20))
        .expect("a checkpoint posted to the webhook");
    let checkpoint =
        auditlog_ledger::note::open_checkpoint(&verifier, &note).expect("a signed checkpoint");
    assert_eq!(checkpoint.size, 20);
}
