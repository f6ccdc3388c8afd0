//! Tamper tests: change the storage behind the server's back — edit, delete, swap, drop the
//! newest, insert, forge a signature — and `verify` must exit 1 naming the kind and the seq.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::support::{generate, run, run_with_input};

const N_EVENTS: u64 = 2000;

/// One pristine data directory with N_EVENTS events, built once and copied per test.
fn pristine() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = crate::support::tempdir();
        let data = dir.path().join("data");
        let input = generate(N_EVENTS, 7).join("\n");
        let out = run_with_input(&data, &["ingest", "-", "--batch", "300"], input.as_bytes());
        assert!(
            out.status.success(),
            "ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let verify = run(&data, &["verify"]);
        assert!(
            verify.status.success(),
            "fresh log must verify: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        (dir, data)
    });
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A fresh copy of the pristine log, tampered by `f` through SQLite directly.
fn tampered(f: impl FnOnce(&Connection)) -> (tempfile::TempDir, PathBuf) {
    let dir = crate::support::tempdir();
    let data = dir.path().join("data");
    copy_dir(pristine(), &data);
    let conn = Connection::open(data.join("auditlog.db")).expect("open db");
    f(&conn);
    drop(conn);
    (dir, data)
}

/// Run verify; it must fail, and return its findings as (kind, seq).
fn findings(data: &Path) -> Vec<(String, Option<u64>)> {
    let out = run(data, &["verify", "--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify must exit 1 on tampering:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v.get("kind").is_some())
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or("").to_owned(),
                v["seq"].as_u64(),
            )
        })
        .collect()
}

fn read_event(conn: &Connection, seq: u64) -> (i64, Vec<u8>) {
    conn.query_row(
        "SELECT dict, body FROM events WHERE seq = ?1",
        params![seq as i64],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .expect("row")
}

fn dictionary(conn: &Connection, dict: i64) -> Vec<u8> {
    if dict == 0 {
        return Vec::new();
    }
    conn.query_row(
        "SELECT data FROM dicts WHERE id = ?1",
        params![dict],
        |row| row.get(0),
    )
    .expect("dict")
}

fn decode(conn: &Connection, dict: i64, body: &[u8]) -> Vec<u8> {
    let mut d = zstd::bulk::Decompressor::with_dictionary(&dictionary(conn, dict)).expect("dctx");
    d.decompress(body, 8 << 20).expect("decompress")
}

fn encode(conn: &Connection, dict: i64, plain: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::with_dictionary(3, &dictionary(conn, dict)).expect("cctx");
    c.compress(plain).expect("compress")
}

/// What an insider would do: decompress, change the user, compress, write back. The stored
/// frame is `u32 len(head) ‖ u32 len(middle) ‖ head ‖ middle ‖ tail`, and `user` is the last
/// member of the tail, so the frame stays well-formed.
fn edit_user(conn: &Connection, seq: u64) {
    let (dict, body) = read_event(conn, seq);
    let plain = decode(conn, dict, &body);
    let key = b"\"user\":\"";
    let start = plain
        .windows(key.len())
        .rposition(|w| w == key)
        .expect("user field")
        + key.len();
    let end = start
        + plain[start..]
            .iter()
            .position(|&b| b == b'"')
            .expect("end quote");
    let mut edited = plain[..start].to_vec();
    edited.extend_from_slice(b"mallory");
    edited.extend_from_slice(&plain[end..]);
    conn.execute(
        "UPDATE events SET body = ?2 WHERE seq = ?1",
        params![seq as i64, encode(conn, dict, &edited)],
    )
    .expect("update");
}

/// The data directory of an open database connection.
fn data_dir_of(conn: &Connection) -> PathBuf {
    PathBuf::from(conn.path().expect("path"))
        .parent()
        .expect("dir")
        .to_owned()
}

fn has(findings: &[(String, Option<u64>)], kind: &str, seq: u64) -> bool {
    findings.iter().any(|(k, s)| k == kind && *s == Some(seq))
}

#[test]
fn an_edited_event_is_reported_as_altered_with_its_seq() {
    let (_dir, data) = tampered(|conn| edit_user(conn, 500));
    let found = findings(&data);
    assert!(has(&found, "altered", 500), "{found:?}");
}

#[test]
fn a_deleted_event_is_reported_as_missing() {
    let (_dir, data) = tampered(|conn| {
        conn.execute("DELETE FROM events WHERE seq = 700", [])
            .expect("delete");
    });
    let found = findings(&data);
    assert!(has(&found, "missing", 700), "{found:?}");
}

#[test]
fn two_swapped_events_are_reported_as_reordered() {
    let (_dir, data) = tampered(|conn| {
        conn.execute_batch(
            "UPDATE events SET seq = -1 WHERE seq = 800;
             UPDATE events SET seq = 800 WHERE seq = 801;
             UPDATE events SET seq = 801 WHERE seq = -1;",
        )
        .expect("swap");
    });
    let found = findings(&data);
    assert!(has(&found, "reordered", 800), "{found:?}");
    assert!(has(&found, "reordered", 801), "{found:?}");
}

#[test]
fn dropping_the_newest_events_is_reported_as_truncated() {
    let (_dir, data) = tampered(|conn| {
        conn.execute("DELETE FROM events WHERE seq > 1900", [])
            .expect("delete");
    });
    let found = findings(&data);
    assert!(has(&found, "truncated", 1901), "{found:?}");
}

#[test]
fn dropping_the_newest_events_and_rewinding_the_tree_is_still_truncated() {
    let (_dir, data) = tampered(|conn| {
        conn.execute_batch(
            "DELETE FROM events WHERE seq > 1900;
             UPDATE tenants SET tree_size = 1900;",
        )
        .expect("rewind");
    });
    let found = findings(&data);
    assert!(has(&found, "truncated", 1901), "{found:?}");
}

#[test]
fn an_event_added_past_the_tree_is_reported_as_inserted() {
    let (_dir, data) = tampered(|conn| {
        conn.execute(
            "INSERT INTO events (tenant, seq, received_at, idem, idem_hash, dict, body)
             SELECT tenant, 2001, received_at, NULL, NULL, dict, body FROM events WHERE seq = 10",
            [],
        )
        .expect("insert");
    });
    let found = findings(&data);
    assert!(has(&found, "inserted", 2001), "{found:?}");
}

#[test]
fn a_forged_checkpoint_signature_is_reported() {
    let (_dir, data) = tampered(|conn| {
        let (size, note): (i64, String) = conn
            .query_row(
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("checkpoint");
        // Flip one character of the signature's base64.
        let at = note.trim_end().len() - 3;
        let mut bytes = note.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        conn.execute(
            "UPDATE checkpoints SET note = ?2 WHERE size = ?1",
            params![size, String::from_utf8(bytes).expect("utf8")],
        )
        .expect("update");
    });
    let found = findings(&data);
    assert!(found.iter().any(|(k, _)| k == "bad_signature"), "{found:?}");
}

#[test]
fn an_event_edited_together_with_its_leaf_hash_breaks_the_signed_root() {
    let (_dir, data) = tampered(|conn| {
        edit_user(conn, 300);
        // Recompute the leaf and write it into the level-0 tile, as a careful forger would
        // (`show` prints the leaf hash of the bytes as they are now stored).
        let out = run(&data_dir_of(conn), &["show", "300", "--format", "json"]);
        let shown: Value = serde_json::from_slice(&out.stdout).expect("show json");
        use base64::Engine as _;
        let leaf = base64::engine::general_purpose::STANDARD
            .decode(shown["leaf_hash"].as_str().expect("leaf"))
            .expect("base64");
        let index = 299u64;
        let mut tile: Vec<u8> = conn
            .query_row(
                "SELECT data FROM tiles WHERE level = 0 AND idx = ?1",
                params![(index / 256) as i64],
                |row| row.get(0),
            )
            .expect("tile");
        let at = (index % 256) as usize * 32;
        tile[at..at + 32].copy_from_slice(&leaf);
        conn.execute(
            "UPDATE tiles SET data = ?2 WHERE level = 0 AND idx = ?1",
            params![(index / 256) as i64, tile],
        )
        .expect("update tile");
    });
    let found = findings(&data);
    assert!(found.iter().any(|(k, _)| k == "altered"), "{found:?}");
}

#[test]
fn an_untouched_copy_verifies_clean() {
    let (_dir, data) = tampered(|_| {});
    let out = run(&data, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
