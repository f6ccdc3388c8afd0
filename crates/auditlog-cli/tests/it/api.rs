//! The HTTP contract of SPEC §2–§3 for the core log, through a real socket.

use serde_json::{Value, json};

use crate::support::{Server, create_token, tempdir};

fn event(extra: Value) -> Value {
    let mut base = json!({
        "user": "alice",
        "ip": "203.0.113.7",
        "action": "UPDATE",
        "table": "customer",
        "primary_key": "4711",
        "message": "Updated credit limit",
        "before": {"credit_limit": 100, "name": "ACME"},
        "after": {"credit_limit": 250, "name": "ACME"}
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

#[test]
fn an_ingested_event_comes_back_with_its_diff_and_proofs_verify() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    // Before any event, the signed head of the empty tree (RFC 9162: SHA-256 of nothing).
    let empty = client.get("/api/v1/checkpoint");
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert!(
        empty
            .text
            .starts_with("auditlog/default\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n"),
        "{}",
        empty.text
    );
    let reply = client.post_json(&event(json!({"id": "e-1"})).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text);
    let receipt = reply.json();
    assert_eq!(receipt["events"][0]["seq"], 1);
    assert_eq!(receipt["events"][0]["id"], "e-1");
    assert_eq!(receipt["checkpoint_size"], 1);

    let got = client.get("/api/v1/events/1").json();
    assert_eq!(got["user"], "alice");
    assert_eq!(got["tenant"], "default");
    assert_eq!(got["source"], "panel");
    assert_eq!(got["leaf_hash"], receipt["events"][0]["leaf_hash"]);
    assert_eq!(
        got["diff"],
        json!([{"path": "/credit_limit", "op": "replace", "before": 100, "after": 250}])
    );
    // SPEC §2: every entry has all four members; an added value's `before` and a removed
    // value's `after` are null.
    let reply = client.post_json(
        &json!({"user": "alice", "ip": "192.0.2.1", "action": "UPDATE", "table": "customer",
            "primary_key": "7", "before": {"gone": 1, "codecs": ["G711"]},
            "after": {"codecs": ["G711", "G729"], "new": null}})
        .to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let got = client.get("/api/v1/events/2").json();
    assert_eq!(
        got["diff"],
        json!([
            {"path": "/codecs/1", "op": "add", "before": null, "after": "G729"},
            {"path": "/gone", "op": "remove", "before": 1, "after": null},
            {"path": "/new", "op": "add", "before": null, "after": null},
        ]),
        "{got}"
    );

    // A checkpoint is signed within the interval.
    let mut checkpoint = String::new();
    for _ in 0..100 {
        let reply = client.get("/api/v1/checkpoint");
        if reply.status == 200 && !reply.text.starts_with("auditlog/default\n0\n") {
            checkpoint = reply.text;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        checkpoint.starts_with("auditlog/default\n1\n"),
        "{checkpoint:?}"
    );
    assert!(
        checkpoint.contains("\n\n\u{2014} auditlog/default "),
        "{checkpoint:?}"
    );
    let checkpoint_reply = client.get("/api/v1/checkpoint");
    assert!(
        checkpoint_reply.content_type.starts_with("text/plain"),
        "{}",
        checkpoint_reply.content_type
    );
    let key = client.get("/api/v1/public-key").text;
    assert!(key.starts_with("auditlog/default+"), "{key}");

    let proof = client.get("/api/v1/proof/inclusion?seq=1&size=1").json();
    assert_eq!(proof["leaf_index"], 0);
    assert_eq!(proof["hashes"], json!([]));
}

#[test]
fn replaying_an_id_returns_the_first_receipt_and_a_changed_body_is_a_conflict() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let body = event(json!({"id": "same"})).to_string();
    let first = client.post_json(&body);
    assert_eq!(first.status, 201);
    let again = client.post_json(&body);
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["events"], first.json()["events"]);
    let changed = client.post_json(&event(json!({"id": "same", "message": "other"})).to_string());
    assert_eq!(changed.status, 409, "{}", changed.text);
    assert_eq!(changed.code(), "conflict");
    assert_eq!(client.get("/api/v1/events/2").status, 404);
}

#[test]
fn a_bad_event_in_a_batch_stores_nothing_and_names_its_index_and_field() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let batch = json!([
        event(json!({})),
        event(json!({})),
        event(json!({"action": "update"}))
    ]);
    let reply = client.post_json(&batch.to_string());
    assert_eq!(reply.status, 400, "{}", reply.text);
    let error = reply.json();
    assert_eq!(error["error"]["index"], 2);
    assert_eq!(error["error"]["field"], "action");
    assert_eq!(client.get("/api/v1/events/1").status, 404);
}

#[test]
fn requests_without_a_valid_token_are_refused_and_scopes_are_enforced() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let anonymous = server.client().with_token(None);
    assert_eq!(
        anonymous.post_json(&event(json!({})).to_string()).status,
        401
    );
    assert_eq!(anonymous.get("/api/v1/checkpoint").status, 401);
    let wrong = server.client().with_token(Some("alog_not-a-real-token"));
    assert_eq!(wrong.get("/api/v1/public-key").status, 401);
    // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
    let token = std::fs::read_to_string(data.with_extension("token")).expect("token");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let auth = format!("{scheme} {token}");
        let reply = anonymous.send(
            "GET",
            "/api/v1/public-key",
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(reply.status, 200, "{scheme}: {}", reply.text);
    }
    for auth in [
        format!("Basic {token}"),
        format!("Bearer {}", token.to_uppercase()),
        format!("Bearer{token}"),
        "Bearer".to_owned(),
    ] {
        let reply = anonymous.send(
            "GET",
            "/api/v1/public-key",
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(reply.status, 401, "{auth}: {}", reply.text);
    }
    let reader = server
        .client()
        .with_token(Some(&create_token(&data, "default", "read", "reader")));
    let refused = reader.post_json(&event(json!({})).to_string());
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "forbidden");
    let ingester = server
        .client()
        .with_token(Some(&create_token(&data, "default", "ingest", "writer")));
    assert_eq!(
        ingester.post_json(&event(json!({})).to_string()).status,
        201
    );
    assert_eq!(ingester.get("/api/v1/events/1").status, 403);
}

#[test]
fn healthz_reports_storage_state_without_data() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let reply = server.client().with_token(None).get("/healthz");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["storage"]["writable"], true);
}

#[test]
fn a_clean_stop_signs_the_newest_events_and_secrets_never_reach_the_log() {
    let dir = tempdir();
    let data = dir.path().join("data");
    // A long interval: only the stop itself can sign the newest events.
    let mut server = Server::start_with(&data, &["--checkpoint-interval-ms", "600000"]);
    let client = server.client();
    for i in 0..3 {
        let reply = client.post_json(&event(json!({"id": format!("s-{i}")})).to_string());
        assert_eq!(reply.status, 201);
    }
    let _ = client
        .with_token(Some("alog_wrongwrongwrong"))
        .get("/api/v1/checkpoint");
    server.stop();
    let log = server.log_text();
    assert!(
        !log.contains(&server.token),
        "the token leaked into the server log"
    );
    assert!(
        !log.contains("alog_wrongwrongwrong"),
        "a presented token leaked into the log"
    );
    let server = Server::start_with(&data, &["--checkpoint-interval-ms", "600000"]);
    let checkpoint = server.client().get("/api/v1/checkpoint");
    assert_eq!(checkpoint.status, 200);
    assert!(
        checkpoint.text.starts_with("auditlog/default\n3\n"),
        "{}",
        checkpoint.text
    );
}

#[test]
fn a_body_declared_too_large_is_refused_unread_and_the_connection_is_closed() {
    use std::io::{Read as _, Write as _};
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n",
        server.token
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
}
