//! The OpenAPI document (SPEC §11) against a live server: served without a credential, every
//! operation it names reaches a handler, and Schemathesis finds no 5xx and no answer that the
//! document does not describe.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{Server, generate, tempdir};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The Python tools `scripts/test` installs (schemathesis, prometheus_client).
pub fn pytools() -> PathBuf {
    let dir = match std::env::var_os("AUDITLOG_PYTOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pytools")),
    };
    assert!(
        dir.join("bin/python").exists(),
        "no Python tools at {}: run scripts/test, which installs schemathesis and \
         prometheus_client there (python3 -m venv target/pytools && \
         target/pytools/bin/pip install schemathesis prometheus_client)",
        dir.display()
    );
    dir
}

fn started() -> (tempfile::TempDir, Server) {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let body = generate(300, 11).join("\n");
    let reply = server
        .client()
        .post("/api/v1/events", "application/x-ndjson", body.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.text);
    (dir, server)
}

#[test]
fn the_openapi_document_is_served_to_anyone_and_every_operation_reaches_a_handler() {
    let (_dir, server) = started();
    let anonymous = server.client().with_token(None);
    let reply = anonymous.get("/api/v1/openapi.json");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type.starts_with("application/json"));
    let doc = reply.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1."))
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut n_operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{seq}", "1")
            .replace("{name}", "nobody")
            .replace("{path}", "0/000");
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            n_operations += 1;
            let reply = anonymous.send(&method.to_uppercase(), &concrete, &[], None);
            // The router's own answers for a route or method it lacks.
            let code = serde_json::from_str::<Value>(&reply.text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let unrouted = (reply.status == 404 && reply.text.contains("no such route"))
                || code == "method_not_allowed";
            assert!(
                !unrouted,
                "{method} {path}: the server has no such route ({} {})",
                reply.status, reply.text
            );
            assert!(
                reply.status < 500,
                "{method} {path}: {} {}",
                reply.status,
                reply.text
            );
        }
    }
    assert!(n_operations > 20, "{n_operations}");

    // Every documented query parameter is one the handler takes (routes refuse unknown ones
    // with `unknown_parameter`).
    let client = server.client();
    let mut n_parameters = 0;
    for (path, item) in paths {
        let Some(operation) = item.get("get") else {
            continue;
        };
        // The live stream answers 200 and never ends; its parameters are the stream tests'.
        if path == "/api/v1/stream" {
            continue;
        }
        let concrete = path.replace("{seq}", "1").replace("{path}", "0/000");
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().expect("name");
            n_parameters += 1;
            let reply = client.get(&format!("{concrete}?{name}=1"));
            assert!(
                !reply.text.contains("unknown_parameter"),
                "GET {path}: documented parameter {name} is refused: {}",
                reply.text
            );
        }
    }
    assert!(n_parameters > 10, "{n_parameters}");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let tools = pytools();
    let (dir, server) = started();
    let report = dir.path().join("schemathesis");
    let out = Command::new(tools.join("bin/schemathesis"))
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", server.addr))
        .args(["--header", &format!("Authorization: Bearer {}", server.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        // Bounded: a fixed seed and a few dozen cases per operation (≈ 1,500 requests).
        .args(["--max-examples", "25", "--seed", "1", "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "30"])
        // The live stream never ends by itself, so each case would last until the request
        // timeout (minutes in all); its answers are checked by the stream tests instead.
        .args(["--exclude-path", "/api/v1/stream"])
        .arg("--report-dir")
        .arg(&report)
        // Schemathesis keeps a cache (`.schemathesis/`) in its working directory.
        .current_dir(dir.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
