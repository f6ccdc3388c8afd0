//! `auditlog ingest FILE --url` (issue 18): raw lines batched over parallel connections; the
//! server's parse is the only one, so its refusal must still name the file's line, and ids
//! spliced into lines without one keep a rerun from adding anything twice.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::{Server, bin, generate, tempdir};

fn ingest_url(server: &Server, file: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(["ingest", file.to_str().expect("path")])
        .args(["--url", &format!("http://{}", server.addr)])
        .args(["--token", &server.token])
        .args(extra)
        .output()
        .expect("run ingest")
}

/// The highest stored seq (a search sees every event acknowledged before it).
fn tree_size(server: &Server) -> u64 {
    let reply = server
        .client()
        .get("/api/v1/events?sort=seq&order=desc&limit=1");
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["events"][0]["seq"].as_u64().unwrap_or(0)
}

#[test]
fn lines_without_ids_nested_ids_escaped_keys_and_blank_lines_go_in_once_over_parallel_connections()
{
    let dir = tempdir();
    let mut server = Server::start(&dir.path().join("data"));
    let mut lines = Vec::new();
    for (i, line) in generate(900, 11).into_iter().enumerate() {
        let mut event: Value = serde_json::from_str(&line).expect("json");
        let object = event.as_object_mut().expect("object");
        match i % 5 {
            // No id at all: one is spliced in.
            0 => {
                object.remove("id");
            }
            // An `id` only below the top level, and in a message: still none of its own.
            1 => {
                object.remove("id");
                object.insert("context".into(), serde_json::json!({"id": i, "x": ["id"]}));
                object.insert("message".into(), Value::from(format!("\"id\": {i}")));
            }
            // The key spelt with an escape is still the event's id.
            2 => {
                let id = object.remove("id").expect("id");
                let rest = serde_json::to_string(&event).expect("json");
                lines.push(format!("{{\"\\u0069d\":{id},{}", &rest[1..]));
                continue;
            }
            _ => {}
        }
        lines.push(serde_json::to_string(&event).expect("json"));
        if i % 7 == 0 {
            lines.push(String::new());
        }
    }
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\r\n")).expect("write");
    for connections in ["4", "1"] {
        let out = ingest_url(
            &server,
            &file,
            &["--batch", "50", "--connections", connections],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(tree_size(&server), 900, "a rerun must add nothing");
    }
    server.stop();
}

#[test]
fn a_line_the_server_refuses_is_named_by_its_line_number_and_stops_the_run() {
    let dir = tempdir();
    let mut server = Server::start(&dir.path().join("data"));
    let mut lines = generate(400, 12);
    let mut bad: Value = serde_json::from_str(&lines[236]).expect("json");
    bad["action"] = Value::from("not upper");
    lines[236] = bad.to_string();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = ingest_url(&server, &file, &["--batch", "20"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 237: "), "{stderr}");
    assert!(stderr.contains("a rerun adds nothing twice"), "{stderr}");
    // The refused batch (lines 221-240) is stored not at all: a request is all or nothing.
    let stored = tree_size(&server);
    assert!(stored <= 400 - 20, "{stored}");
    // Fixed, the rerun completes the file without doubles.
    lines[236] = generate(400, 12)[236].clone();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = ingest_url(&server, &file, &["--batch", "20"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree_size(&server), 400);
    server.stop();
}
