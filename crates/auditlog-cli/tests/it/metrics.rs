//! `/metrics` (SPEC §11): off by default, on `--metrics-listen` in the Prometheus text format
//! that Prometheus's own Python parser reads, with figures that move as events arrive and no
//! tenant name anywhere.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::openapi::pytools;
use crate::support::{Client, Server, create_token, generate, tempdir};

/// Parses an exposition with `prometheus_client.parser.text_string_to_metric_families` and
/// returns every sample as (name with its labels in order) → value.
fn parse(text: &str) -> HashMap<String, f64> {
    use std::io::Write as _;
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       out[s.name + '{' + labels + '}'] = s.value\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(pytools().join("bin/python"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: HashMap<String, Value> = serde_json::from_slice(&out.stdout).expect("json");
    parsed
        .into_iter()
        .map(|(k, v)| (k, v.as_f64().expect("number")))
        .collect()
}

fn metrics_addr(server: &Server) -> String {
    let log = server.log_text();
    let rest = log
        .split("metrics on http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no metrics address in the log: {log}"));
    rest.split('/').next().expect("addr").to_owned()
}

fn scrape(addr: &str) -> (String, HashMap<String, f64>) {
    let reply = Client::new(addr, None).get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let parsed = parse(&reply.text);
    (reply.text, parsed)
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[test]
fn metrics_are_off_by_default_and_not_on_the_api_listener() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    assert!(!server.log_text().contains("metrics on"));
    let reply = server.client().get("/metrics");
    assert_eq!(reply.status, 404, "{}", reply.text);
}

#[test]
fn scraped_metrics_parse_move_with_ingest_and_name_no_tenant() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let acme_token = create_token(&data, "acme-corp", "ingest,read", "acme-writer");
    let server = Server::start_with(
        &data,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--verify-every-secs",
            "1",
        ],
    );
    let addr = metrics_addr(&server);
    let (_, before) = scrape(&addr);
    assert_eq!(value(&before, "auditlog_stored_events_total{}"), 0.0);
    assert!(
        value(&before, "process_resident_memory_bytes{}") > 0.0,
        "{before:?}"
    );
    assert!(
        before.contains_key("process_cpu_seconds_total{}"),
        "{before:?}"
    );

    let client = server.client();
    let acme = client.with_token(Some(&acme_token));
    let body = generate(40, 5).join("\n");
    for (who, n) in [(&client, 40), (&acme, 40)] {
        let reply = who.post("/api/v1/events", "application/x-ndjson", body.as_bytes());
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json()["events"].as_array().map(Vec::len), Some(n));
    }
    assert_eq!(client.get("/api/v1/events/7").status, 200);
    assert_eq!(acme.get("/api/v1/events/99999").status, 404);
    assert_eq!(client.get("/api/v1/events?q=user:nobody").status, 200);

    let (text, after) = scrape(&addr);
    assert_eq!(
        value(&after, "auditlog_stored_events_total{}"),
        80.0,
        "{text}"
    );
    assert_eq!(value(&after, "auditlog_tenants{}"), 2.0, "{text}");
    let posted = "auditlog_http_requests_total{method=POST,route=/api/v1/events,status=201}";
    assert_eq!(
        value(&after, posted) - value(&before, posted),
        2.0,
        "{text}"
    );
    // Routes are patterns: the seq asked for is not in a label.
    assert_eq!(
        value(
            &after,
            "auditlog_http_requests_total{method=GET,route=/api/v1/events/{seq},status=200}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &after,
            "auditlog_http_requests_total{method=GET,route=/api/v1/events/{seq},status=404}"
        ),
        1.0,
        "{text}"
    );
    assert!(
        value(
            &after,
            "auditlog_http_request_duration_seconds_count{method=POST,route=/api/v1/events}"
        ) >= 2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &after,
            "auditlog_search_duration_seconds_count{method=GET,route=/api/v1/events}"
        ),
        1.0,
        "{text}"
    );
    for key in [
        "auditlog_index_tenants_behind{}",
        "auditlog_checkpoint_age_seconds{}",
        "auditlog_unsigned_events{}",
    ] {
        assert!(after.contains_key(key), "{key} missing: {text}");
    }
    // The scheduled self-verification shows up once it has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (text, samples) = scrape(&addr);
        if samples.contains_key("auditlog_self_verify_ok{}") {
            assert_eq!(value(&samples, "auditlog_self_verify_ok{}"), 1.0, "{text}");
            assert_eq!(
                value(&samples, "auditlog_self_verify_findings{}"),
                0.0,
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no self-verification: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // No tenant names, token names or data in the exposition.
    for secret in ["acme", "default", "acme-writer", "gen-5-"] {
        assert!(!text.contains(secret), "{secret:?} in the metrics:\n{text}");
    }
}
